"""The vocoder zoo: one Hydra config file per model in conf/vocoder/, built on demand.

Each file holds the model's metadata and, under ``model``, the ``_target_`` class and its
hyperparameters::

    family: HiFi-GAN
    official_params: 13.92e6            # as published
    official_params_source: arXiv:2010.05646, Table 1
    model:
      _target_: audiofootprint.vocoders.hifigan.HiFiGAN
      upsample_rates: [8, 8, 2, 2]
      ...

A researcher's own class lives in the project's ``vocoders/`` folder (``vocoders/mine.py``,
``_target_: vocoders.mine.MyVocoder``): :func:`load_zoo` makes that folder importable, and the
stages of the model depend on that module only (:func:`code_path`), so adding or editing it
re-runs that model alone.

Bad configuration (a missing or unknown key, a ``_target_`` that cannot be imported, a parameter
the class does not take or a value of the wrong type, mel settings that cannot analyse audio or do
not fit the corpus) raises :class:`ConfigError` naming the file and the key.
"""
from __future__ import annotations

import copy
import functools
import importlib
import io
import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from audiofootprint.failures import first_line
from audiofootprint.paths import USER_PACKAGE
from audiofootprint.vocoders.base import MelSettings, MelSettingsError, Vocoder
from audiofootprint.vocoders.weights import WeightsSpec, check_format, spec_of

REQUIRED = ("family", "official_params", "official_params_source", "model")
#: Every top-level key a config may hold: the required ones, then the optional ones.
KNOWN = (*REQUIRED, "features", "grid", "weights", "training", "benchmark", "measure")
#: What ``benchmark.models`` selects by the name ``all``: every config that belongs to no grid.
ALL = "all"
#: The optional sections read once with the file (:func:`section`); ``weights`` becomes ``ZooEntry.weights``.
SECTIONS = ("training", "benchmark", "measure")


class ConfigError(ValueError):
    """A vocoder configuration that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class GridPlace:
    """Where a config sits in a named design grid (``grid: {name: thesis, size: small}``): a grid is
    selected as a whole (``benchmark.models=thesis``) and stays out of ``all``."""

    name: str
    size: str


@dataclass(frozen=True)
class ZooEntry:
    """One configured vocoder: its name (the file's stem), file, metadata, model config, pretrained
    weights, optional sections (``training``, ``benchmark``, ``measure``: read :func:`section`), the
    feature convention that replaces its class' own (``features``) and its place in a grid, all read
    once from the file."""

    name: str
    path: Path
    family: str
    official_params: float
    official_params_source: str
    model: DictConfig
    weights: WeightsSpec | None = None  # pretrained weights named by the config (vocoders.weights)
    sections: Mapping[str, dict] = field(default_factory=dict, compare=False, hash=False)
    features: str | None = None  # a key of audiofootprint.features.CONVENTIONS; None: the class' own
    grid: GridPlace | None = None

    @property
    def pretrained(self) -> bool:
        return self.weights is not None


def config_paths(root: str | Path) -> dict[str, Path]:
    """Every vocoder configuration under ``root/conf/vocoder``, by name, sorted."""
    folder = Path(root) / "conf" / "vocoder"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: is {root} the project root?")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def load_entry(path: str | Path) -> ZooEntry:
    """Read and check one vocoder configuration file (parsed once per process for the same text:
    composing the parameters reads every file several times)."""
    path = Path(path)
    return _parse_entry(path, path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=512)
def _parse_entry(path: Path, text: str) -> ZooEntry:
    try:
        cfg = OmegaConf.load(io.StringIO(text))
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(error, 'problem', None) or error}; "
                          "quote a value that contains ': '") from None
    missing = [key for key in REQUIRED if key not in cfg]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {', '.join(missing)} (required: {', '.join(REQUIRED)})")
    unknown = [str(key) for key in cfg if key not in KNOWN]
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(KNOWN)}); "
                          "fix the name or remove it")
    if "_target_" not in cfg.model:
        raise ConfigError(f"{path}: missing key model._target_ (the vocoder class to build)")
    weights = cfg.get("weights")
    if weights is not None and cfg.get("training") is not None:
        raise ConfigError(f"{path}: a config names either weights (pretrained) or a training section, not both")
    try:
        official_params = float(cfg.official_params)
    except ValueError:
        raise ConfigError(f"{path}: official_params must be a number (the published parameter count, e.g. "
                          f"13.92e6), not {cfg.official_params!r}") from None
    sections = {key: dict(OmegaConf.to_container(cfg[key], resolve=True)) for key in SECTIONS
                if cfg.get(key) is not None}
    return ZooEntry(name=path.stem, path=path, family=str(cfg.family),
                    official_params=official_params,
                    official_params_source=str(cfg.official_params_source), model=cfg.model,
                    weights=spec_of(path, OmegaConf.to_container(weights, resolve=True) if weights is not None else None),
                    sections=sections, features=_features(path, cfg.get("features")),
                    grid=_grid_place(path, cfg.get("grid")))


def _features(path: Path, name) -> str | None:
    """The ``features`` key: a convention name of audiofootprint.features, or absent."""
    from audiofootprint.features import CONVENTIONS

    if name is None or name in CONVENTIONS:
        return name
    raise ConfigError(f"{path}: features: {name!r} is not a feature convention; known: {', '.join(CONVENTIONS)} "
                      "(or leave the key out: the class' own)")


def _grid_place(path: Path, grid) -> GridPlace | None:
    """The ``grid`` key: ``{name: GRID, size: SIZE}``, or absent."""
    if grid is None:
        return None
    if not isinstance(grid, DictConfig) or set(grid) != {"name", "size"} or not all(
            isinstance(grid[key], str) and grid[key] for key in ("name", "size")):
        raise ConfigError(f"{path}: grid must be {{name: GRID, size: SIZE}} (e.g. {{name: thesis, size: small}}), "
                          f"not {OmegaConf.to_container(grid) if isinstance(grid, DictConfig) else grid!r}")
    if grid.name == ALL:
        raise ConfigError(f"{path}: grid.name {ALL!r} is reserved (it selects every config outside a grid)")
    return GridPlace(str(grid.name), str(grid.size))


def load_zoo(root: str | Path) -> dict[str, ZooEntry]:
    """All configured vocoders of the project at ``root`` (its ``vocoders/`` folder made importable)."""
    paths = config_paths(root)
    user_folder = Path(root).resolve() / USER_PACKAGE
    if user_folder.is_dir() and str(user_folder.parent) not in sys.path:
        sys.path.append(str(user_folder.parent))  # `vocoders.MODULE` imports from the project itself
    return {name: load_entry(path) for name, path in paths.items()}


def code_path(root: str | Path, entry: ZooEntry) -> str:
    """The project file or folder holding the class of ``entry`` (its ``model._target_``), relative to ``root``.

    ``audiofootprint.vocoders.hifigan.HiFiGAN`` is ``src/audiofootprint/vocoders/hifigan.py``;
    ``vocoders.mine.MyVocoder`` is ``vocoders/mine.py`` or the package ``vocoders/mine/``. The
    model's stages depend on it. A class outside the project cannot be tracked by DVC: refused.
    """
    import audiofootprint

    target = str(entry.model._target_)
    parts = target.split(".")
    if parts[0] == "audiofootprint" and len(parts) >= 3:
        module, base = Path(*parts[1:-1]), Path(audiofootprint.__file__).parent  # the installed package
        prefix = Path("src", "audiofootprint")
    elif parts[0] == USER_PACKAGE and len(parts) >= 3:
        module, base, prefix = Path(parts[1]), Path(root) / USER_PACKAGE, Path(USER_PACKAGE)
    else:
        raise ConfigError(
            f"{entry.path}: model._target_ '{target}' is not a class of this project, so DVC could not re-run "
            f"the model when its code changes: put the module in {USER_PACKAGE}/ (e.g. {USER_PACKAGE}/mine.py) and "
            f"write _target_: {USER_PACKAGE}.mine.ClassName (README, 'Adding your own vocoder')")
    for candidate in (module.with_suffix(".py"), module):
        if (base / candidate).exists():
            return (prefix / candidate).as_posix()
    raise ConfigError(f"{entry.path}: model._target_ '{target}' names module {'.'.join(parts[:-1])}, but "
                      f"{prefix / module}.py does not exist (nor a package {prefix / module}/)")


def section(entry: ZooEntry, key: str) -> dict:
    """An optional section of a vocoder's file (``training``, ``benchmark``, ``measure``; ``{}`` when
    absent), a copy of what :func:`load_entry` read."""
    if key not in SECTIONS:
        raise KeyError(f"{key!r} is not a section of a vocoder config ({', '.join(SECTIONS)})")
    return copy.deepcopy(entry.sections.get(key, {}))


def within_limits(profile: Mapping, own: Mapping, keys: Iterable[str]) -> dict:
    """The one rule between a profile and a model's own section, for every limit they share (test
    utterances and seconds, harness windows and repeats, audio seconds, training batch and segment):
    both are limits (the profile a budget, the model what its sampler can afford), so where both give
    a key the smaller wins; ``None`` or an absent key is no limit (``None`` if neither gives one)."""
    out = {}
    for key in keys:
        given = [value for value in (profile.get(key), own.get(key)) if value is not None]
        out[key] = min(given) if given else None
    return out


def build(entry: ZooEntry, **overrides) -> Vocoder:
    """Instantiate the vocoder of ``entry`` (``overrides`` replace model keys, e.g. ``mel``)."""
    cfg = OmegaConf.merge(entry.model, overrides) if overrides else entry.model
    target = cfg._target_
    try:
        model = instantiate(cfg, _convert_="all")
    except InstantiationException as error:
        text = str(error)
        if isinstance(error.__cause__, MelSettingsError):
            raise ConfigError(f"{entry.path}: model.mel: {error.__cause__}") from None
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", text)
        missing = re.search(r"missing \d+ required (?:positional |keyword-only )?arguments?: (.+)", text)
        if unexpected:
            raise ConfigError(f"{entry.path}: model.{unexpected.group(1)} is not a parameter of {target}; "
                              "remove it or fix its name") from None
        if missing:
            raise ConfigError(f"{entry.path}: {target} needs model.{missing.group(1)}; add it") from None
        if "Error locating target" in text or "Could not import" in text or "not a callable" in text:
            raise ConfigError(f"{entry.path}: model._target_ '{target}' cannot be imported; give the full "
                              "dotted path of a Vocoder class (e.g. audiofootprint.vocoders.hifigan.HiFiGAN)") from None
        cause = error.__cause__ or error
        raise ConfigError(f"{entry.path}: building {target} failed ({type(cause).__name__}: "
                          f"{first_line(cause)}){_type_mismatch(target, cfg)}") from None
    if not isinstance(model, Vocoder):
        raise ConfigError(f"{entry.path}: model._target_ '{target}' built a {type(model).__name__}, "
                          "not an audiofootprint.vocoders.base.Vocoder")
    if entry.features is not None:
        model.feature_convention = entry.features
    return model


def _type_mismatch(target: str, cfg: DictConfig) -> str:
    """``; model.KEY is V, ...`` for the first model key whose value is not of the type of that
    parameter's default in the class (the likely cause of a failed build), or ``""``."""
    module, _, name = target.rpartition(".")
    try:
        parameters = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    except (ImportError, AttributeError, TypeError, ValueError):
        return ""
    for key, value in OmegaConf.to_container(cfg, resolve=True).items():
        default = parameters[key].default if key in parameters else None
        kinds = ((bool,) if isinstance(default, bool) else (int,) if isinstance(default, int)
                 else (int, float) if isinstance(default, float) else (str,) if isinstance(default, str)
                 else (list, tuple) if isinstance(default, (list, tuple)) else None)
        wrong = kinds and value is not None and (not isinstance(value, kinds)
                                                 or (isinstance(value, bool) and bool not in kinds))
        if wrong:
            kind = type(default).__name__
            return (f"; model.{key} is {value!r}, but {name} takes {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                    f"there (its default: {default!r})")
    return ""


def check_mel(entry: ZooEntry, model: Vocoder, expected: MelSettings) -> None:
    """Raise :class:`ConfigError` if the model's mel settings differ from the corpus' ``expected``."""
    have, want = model.mel.as_dict(), expected.as_dict()
    wrong = {k: (have[k], want[k]) for k in want if have[k] != want[k]}
    if wrong:
        details = "; ".join(f"model.mel.{k} is {v[0]!r}, the corpus needs {v[1]!r}" for k, v in wrong.items())
        raise ConfigError(f"{entry.path}: mel settings do not fit the corpus: {details}")


def corpus_mel(model_default: MelSettings, sample_rate: int) -> dict:
    """A model's mel settings adapted to a corpus: its sample rate, f_max capped at Nyquist.

    Window, hop and number of bands are the model's own (its upsampling depends on the hop).
    """
    settings = model_default.as_dict()
    settings["sample_rate"] = sample_rate
    nyquist = sample_rate / 2
    settings["f_max"] = nyquist if settings["f_max"] is None else min(settings["f_max"], nyquist)
    return settings


def build_for_corpus(entry: ZooEntry, sample_rate: int) -> Vocoder:
    """Build a zoo model as it runs on a corpus at ``sample_rate``.

    A pretrained model keeps the native mel analysis of its weights (``weights.mel``): the
    benchmark resamples the recordings to its rate. Any other model has its mel analysis
    adapted to the corpus' rate (:func:`corpus_mel`) and is trained there.
    """
    if entry.weights is not None:
        model = build(entry, mel=entry.weights.mel.as_dict())
        check_format(entry.weights, model)
        return model
    default = build(entry).mel
    model = build(entry, mel=corpus_mel(default, sample_rate))
    check_mel(entry, model, MelSettings(**corpus_mel(default, sample_rate)))
    return model


def class_source(entry: ZooEntry) -> str:
    """The source of the module defining ``entry``'s class: part of a training run's fingerprint, so
    that a changed module trains afresh instead of resuming weights made by the old code."""
    module = str(entry.model._target_).rpartition(".")[0]
    try:
        return inspect.getsource(importlib.import_module(module))
    except (ImportError, OSError, TypeError) as error:
        raise ConfigError(f"{entry.path}: model._target_ '{entry.model._target_}': cannot read module {module!r} "
                          f"({type(error).__name__}: {error})") from None


def plan_models(root: str | Path, models: str | list[str], left_out: tuple[str, ...] | list[str] = ()) -> dict[str, dict]:
    """The benchmark's models, which training run each uses and the code of its class.

    ``models`` is what :func:`selection` takes: ``"all"`` (every file of conf/vocoder/ outside a
    grid), a grid's name (``"thesis"``) or a list of names and grids (``[griffinlim_32, thesis]``:
    the grid with the benchmark's floor). A config whose
    ``training.shares_training_with`` names another (DiffWave sampled with 50 instead of 6
    steps) is benchmarked on that model's training run instead of training again. ``code`` is
    :func:`code_path`, a dependency of the model's stages. ``left_out`` names configs the selection
    drops (a profile's scope; an unknown name is refused).
    """
    paths = config_paths(root)
    unknown = [name for name in left_out if name not in paths]
    if unknown:
        raise ConfigError(f"profile.scope.models_left_out names {unknown[0]!r}, not in conf/vocoder/ "
                          f"(known: {', '.join(paths)})")
    plan = {}
    for name in [name for name in selection(paths, models) if name not in left_out]:
        entry = load_entry(paths[name])
        shared = section(entry, "training").get("shares_training_with")
        if shared is not None and shared not in paths:
            raise ConfigError(f"{paths[name]}: training.shares_training_with names {shared!r}, not in conf/vocoder/")
        plan[name] = {"trained_by": shared or name, "code": code_path(root, entry)}
    return plan


def selection(paths: Mapping[str, Path], models: str | list[str]) -> list[str]:
    """The config names ``models`` selects: ``"all"`` (every config outside a grid), a grid's name
    (its configs), or a list of names in which a grid's name or ``"all"`` stands for its configs."""
    if not isinstance(models, str):
        chosen = [name for item in models for name in (selection(paths, item) if item not in paths else [item])]
        return list(dict.fromkeys(chosen))
    grids: dict[str, list[str]] = {}
    for name, path in paths.items():
        place = load_entry(path).grid
        grids.setdefault(place.name if place else ALL, []).append(name)
    if models not in grids:
        raise ConfigError(f"benchmark.models names {models!r}, not in conf/vocoder/ (known: {', '.join(paths)}), "
                          f"nor {ALL!r}, nor a grid (grids: {', '.join(sorted(set(grids) - {ALL})) or 'none'})")
    return sorted(grids[models])


def training_plan(root: str | Path, benchmark_plan: dict[str, dict]) -> dict[str, dict]:
    """The training runs a benchmark plan needs (the ``train@NAME`` stages), sorted, with their code."""
    owners = sorted({entry["trained_by"] for entry in benchmark_plan.values()})
    paths = config_paths(root)
    return {name: {"code": benchmark_plan.get(name, {}).get("code") or code_path(root, load_entry(paths[name]))}
            for name in owners}


def plan_quantization(root: str | Path, models: str | list[str], benchmark_plan: dict[str, dict]) -> list[str]:
    """The models the quantization study takes: benchmarked models with weights of their own
    (trained here, or pretrained).

    ``models`` is ``"all"``, ``"pretrained"`` (those with published weights: the models whose
    quality change under quantization is a finding) or a list of names; a named model that is not
    benchmarked, has no training objective (nothing to quantize) or reuses another model's
    training is refused.
    """
    paths = config_paths(root)

    def reason_to_skip(name: str) -> str | None:
        if name not in benchmark_plan:
            return "is not in benchmark.models"
        if benchmark_plan[name]["trained_by"] != name:
            return f"reuses {benchmark_plan[name]['trained_by']}'s weights: quantize that model instead"
        entry = load_entry(paths[name])
        if entry.weights is None and (section(entry, "training").get("objective") or "none") == "none":
            return "has no weights (no weights section, and training.objective is none)"
        return None

    if models in ("all", "pretrained"):
        chosen = [name for name in benchmark_plan if reason_to_skip(name) is None]
        if models == "pretrained":
            chosen = [name for name in chosen if load_entry(paths[name]).weights is not None]
        return chosen
    if isinstance(models, str):
        raise ConfigError(f"quantize.models: {models!r} is not a selection: use ${{quantizable:all}}, "
                          f"${{quantizable:pretrained}} or a list of names, ${{quantizable:[hifigan_v1, vocos]}}")
    refused = {name: reason_to_skip(name) for name in models if reason_to_skip(name)}
    if refused:
        raise ConfigError("quantize.models: " + "; ".join(f"{n} {why}" for n, why in refused.items()))
    return list(models)
