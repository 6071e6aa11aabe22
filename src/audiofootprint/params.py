"""Compose the Hydra tree in conf/ into params.yaml, and catch a stale params.yaml.

DVC composes Hydra configuration only in ``dvc exp run``, never in ``dvc repro``. The
committed params.yaml is therefore generated here; it records the overrides it was
composed with so that :func:`check_params` can compose again and compare. What Hydra alone
cannot compose (the model plan, the recorded overrides) is written in conf/ as resolvers
(:mod:`audiofootprint.resolvers`), so that DVC's own composition in ``dvc exp run`` (enabled in
.dvc/config) writes a params.yaml that :func:`check_params` accepts too.

A composition that cannot be made (an override Hydra refuses, a resolver's refusal, a profile of
conf/profile/ with a key no stage reads or a value of the wrong type: :func:`check_profile`) raises
:class:`ComposeError`, one line naming the file or the key.
"""
from __future__ import annotations

import re
import types
import typing
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Iterator

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError

from audiofootprint import atomic, resolvers
from audiofootprint.paths import DVC_DIR, PARAMS_CHECKED, USER_PACKAGE

HEADER = (
    "# Generated from conf/ by `audiofootprint params --write` (make params).\n"
    "# Do not edit: change conf/ and compose again. The stages read this file.\n"
)


class StaleParamsError(RuntimeError):
    """params.yaml does not match what conf/ composes to."""


class ComposeError(ValueError):
    """conf/ cannot be composed as asked: an override Hydra refuses, a resolver's refusal, a bad profile."""


@contextmanager
def _outside_hydra_app() -> Iterator[None]:
    """Hydra's compose API will not start inside a running Hydra application (audiofootprint-jobs):
    set that application's Hydra aside meanwhile."""
    outer = GlobalHydra.instance()
    if not outer.is_initialized():
        yield
        return
    hydra_app = outer.hydra
    outer.clear()
    try:
        yield
    finally:
        GlobalHydra.instance().initialize(hydra_app)


def compose_params(root: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Compose ``root/conf`` with Hydra ``overrides`` into a plain dict."""
    conf_dir = (Path(root) / "conf").resolve()
    if not (conf_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{conf_dir / 'config.yaml'} not found: is {root} the project root?")
    try:
        with _outside_hydra_app(), initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    except HydraException as error:
        raise ComposeError(f"{conf_dir} cannot be composed with overrides [{' '.join(overrides)}]: "
                           f"{_hydra_message(error)}; an override is KEY=VALUE with a key of conf/, e.g. profile=ci"
                           ) from None
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    resolvers.register()
    with resolvers.composing(root, overrides):
        try:
            params = OmegaConf.to_container(cfg, resolve=True)
        except InterpolationResolutionError as error:
            raise ComposeError(_resolver_message(error)) from None
    if "profile" in params:
        try:
            check_profile(params["profile"])
        except ValueError as error:
            raise ComposeError(f"{conf_dir / 'profile' / choices['profile']}.yaml: {error}") from None
    if "energy" in params:
        try:
            check_energy(params["energy"])
        except ValueError as error:
            raise ComposeError(f"{conf_dir / 'energy' / choices['energy']}.yaml: {error}") from None
    if "benchmark" in params:
        # DVC's foreach needs the models spelled out: conf/ does it with ${vocoders:all}; an override
        # such as benchmark.models=[a,b] replaces that resolver by a plain list, planned here.
        from audiofootprint.vocoders.zoo import plan_models, training_plan

        plan = params["benchmark"]["models"]
        if not isinstance(plan, dict):
            plan = params["benchmark"]["models"] = plan_models(root, plan)
        params["benchmark"]["training"] = training_plan(root, plan)
        if "quantize" in params:
            from audiofootprint.quantization.registry import select_schemes
            from audiofootprint.vocoders.zoo import plan_quantization

            params["quantize"]["models"] = plan_quantization(root, params["quantize"]["models"], plan)
            try:
                params["quantize"]["schemes"] = select_schemes(params["quantize"]["schemes"])
            except ValueError as error:
                raise ComposeError(f"{conf_dir / 'quantize' / choices['quantize']}.yaml (or its profile's scope): "
                                   f"{error}") from None
    params["overrides"] = list(overrides)
    return params


def _hydra_message(error: HydraException) -> str:
    """Hydra's refusal in one line: its first sentence and the options of the group it names."""
    text = str(error).split("\nConfig search path:")[0]
    head, _, options = text.partition("\n\nAvailable options in ")
    message = " ".join(head.split())
    if options:
        group, _, names = options.partition(":")
        message += f" (options of {group}: {', '.join(names.split())})"
    return message


def _resolver_message(error: InterpolationResolutionError) -> str:
    """OmegaConf's message of a failed interpolation in one line: the resolver's own refusal if it raised one."""
    first, *rest = str(error).splitlines()
    message = re.sub(r"^(\w+ raised while resolving interpolation: )+", "", first)
    if message != first:
        return message
    key = next((line.split("full_key:", 1)[1].strip() for line in rest if "full_key:" in line), None)
    return message + (f" (composing {key} of conf/)" if key else "")


def _kinds(hint) -> tuple[type, ...]:
    """The Python types a YAML value of annotation ``hint`` may have (an int is a float too)."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    kinds: list[type] = []
    for arg in typing.get_args(hint) if union else (hint,):
        origin = typing.get_origin(arg) or arg
        kinds += [origin, *([int] if origin is float else []), *([list] if origin is tuple else [])]
    return tuple(kinds)


def _spec_of(cls) -> dict:
    """``{field: (types, required)}`` of a settings dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: (_kinds(hints[f.name]), f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls)}


def _profile_spec() -> dict:
    """What a profile holds: ``{key: (types, or the spec of a section, required)}``."""
    from audiofootprint.energy.harness import MeasureSettings
    from audiofootprint.training.config import Budget

    count, seconds, maybe = (int,), (float, int), (type(None),)
    return {
        "name": ((str,), True), "seed": (count, True), "device": ((str,), True), "torch_threads": (count, True),
        "measure": ({**_spec_of(MeasureSettings), "audio_seconds": (seconds, True)}, True),
        "train": ({**_spec_of(Budget), "max_seconds": (seconds + maybe, False)}, True),  # null: no time limit
        "benchmark": ({"test_utterances": (count, True), "max_test_seconds": (seconds, True),
                       "listen": (count, True),
                       "converged": ({"test_utterances": (count + maybe, True),
                                      "max_test_seconds": (seconds + maybe, True)}, True)}, True),
        "quantize": ({"test_utterances": (count, True), "max_test_seconds": (seconds, True)}, True),
        "recipe_cost": ({"models": ((str, list), True), "warmup": (count, True), "steps": (count, True)}, True),
        "scope": ({"models": ((str, list), True), "models_left_out": ((list,), True),
                   "quantize_models": ((str, list), True), "quantize_schemes": ((str, list), True)}, True),
    }


def _check_keys(section: dict, spec: dict, prefix: str = "", example: str = "conf/profile/default.yaml") -> None:
    """Refuse a key ``spec`` does not know, a required key missing (``example`` shows one) or a value of the
    wrong type; ``spec`` is ``{key: (types, or the spec of a section, required)}``."""
    unknown = [key for key in section if key not in spec]
    if unknown:
        raise ValueError(f"{prefix}{unknown[0]} is not a known key (known{' in ' + prefix[:-1] if prefix else ''}: "
                         f"{', '.join(spec)}); fix its name or remove it")
    for key, (kind, required) in spec.items():
        if key not in section:
            if required:
                raise ValueError(f"{prefix}{key} is missing; add it (see {example})")
            continue
        value = section[key]
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                raise ValueError(f"{prefix}{key} must be a mapping of {', '.join(kind)}, not {value!r}")
            _check_keys(value, kind, f"{prefix}{key}.", example)
        elif not isinstance(value, kind) or (isinstance(value, bool) and bool not in kind):
            names = " or ".join(dict.fromkeys("null" if k is type(None) else k.__name__ for k in kind))
            raise ValueError(f"{prefix}{key} is {value!r}, not {'an' if names[0] in 'aeiou' else 'a'} {names}")


def check_profile(profile: dict) -> None:
    """Raise ``ValueError`` naming the key of a profile (conf/profile/*.yaml) that no stage reads, that
    is missing, of the wrong type or out of range (the measurement and training settings' own checks)."""
    from audiofootprint.energy.harness import MeasureSettings, check_settings
    from audiofootprint.training.config import Budget

    _check_keys(profile, _profile_spec())
    if not re.fullmatch(r"cpu|cuda(:\d+)?", profile["device"]):
        raise ValueError(f"device is {profile['device']!r}: use cpu, cuda or cuda:N")
    if profile["torch_threads"] < 1:
        raise ValueError(f"torch_threads must be at least 1, got {profile['torch_threads']}")
    measure = dict(profile["measure"])
    if not measure.pop("audio_seconds") > 0:
        raise ValueError(f"measure.audio_seconds must be positive, got {profile['measure']['audio_seconds']}")
    try:
        check_settings(MeasureSettings(**measure))
    except ValueError as error:
        raise ValueError(f"measure.{error}") from None
    try:
        Budget.coerce(profile["train"])
    except ValueError as error:
        raise ValueError(f"train.{error}") from None
    recipe = profile["recipe_cost"]
    if recipe["steps"] < 1 or recipe["warmup"] < 0:
        raise ValueError(f"recipe_cost.steps must be at least 1 and recipe_cost.warmup at least 0, got "
                         f"{recipe['steps']} and {recipe['warmup']}")
    if isinstance(recipe["models"], str) and recipe["models"] != "all":
        raise ValueError(f"recipe_cost.models is {recipe['models']!r}: give all, or a list of names of conf/vocoder/")


def check_energy(energy: dict) -> None:
    """Raise ``ValueError`` naming the key of conf/energy that no tracker setting has, that is missing, of the
    wrong type or out of range (a country codecarbon's energy-mix table does not know included)."""
    from audiofootprint.carbon import intensity_for
    from audiofootprint.energy.tracker import TrackerSettings

    _check_keys(energy, {name: (kinds, True) for name, (kinds, _) in _spec_of(TrackerSettings).items()},
                example="conf/energy/default.yaml")
    if energy["tracking_mode"] not in ("process", "machine"):
        raise ValueError(f"tracking_mode is {energy['tracking_mode']!r}: use process or machine")
    if not energy["pue"] >= 1:
        raise ValueError(f"pue is {energy['pue']!r}: a power usage effectiveness is at least 1 (1.0: no overhead)")
    if not energy["measure_power_secs"] > 0:
        raise ValueError(f"measure_power_secs must be positive, got {energy['measure_power_secs']!r}")
    try:
        intensity_for(energy["country_iso3"])
    except KeyError:
        raise ValueError(f"country_iso3 {energy['country_iso3']!r} is not in codecarbon's energy-mix table: "
                         "give an ISO 3166 alpha-3 code such as FRA, DEU or USA") from None


def render_params(params: dict) -> str:
    """The exact text of params.yaml for ``params``."""
    return HEADER + yaml.safe_dump(params, sort_keys=False, default_flow_style=False)


def write_params(root: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Path:
    """Compose conf/ and write params.yaml atomically; return its path."""
    path = Path(root) / "params.yaml"
    atomic.write_text(path, render_params(compose_params(root, overrides)))
    return path


def load_params(root: str | Path) -> dict:
    """Read params.yaml."""
    path = Path(root) / "params.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `make params` to compose it from conf/.")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


_MISSING = object()


def differing_keys(left: dict, right: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts (a key on one side only counts)."""
    differing = []
    for key in list(left) + [key for key in right if key not in left]:
        a, b = left.get(key, _MISSING), right.get(key, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict):
            differing += differing_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            differing.append(f"{prefix}{key}")
    return differing


def check_params(root: str | Path) -> None:
    """Raise :class:`StaleParamsError` unless params.yaml holds what conf/ composes to.

    The values are compared, not the text: DVC's composition in ``dvc exp run`` writes the
    same values without this module's header. Every stage checks, and composing takes seconds:
    a project whose inputs to the composition (:func:`composition_fingerprint`) are those of its
    last passed check is not composed again (the fingerprint is kept in DVC's scratch folder,
    :data:`~audiofootprint.paths.PARAMS_CHECKED`).
    """
    path = Path(root) / "params.yaml"
    stamp = Path(root) / PARAMS_CHECKED
    fingerprint = composition_fingerprint(root)
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == fingerprint:
        return
    current = load_params(root)
    overrides = current.get("overrides") or []
    differing = differing_keys(current, compose_params(root, overrides))
    if differing:
        shown = " ".join(overrides)
        raise StaleParamsError(
            f"{path} is stale: it differs from what conf/ composes to"
            + (f" with overrides [{shown}]" if shown else "")
            + f" at {', '.join(differing[:5])}" + (f" and {len(differing) - 5} more keys" if len(differing) > 5 else "")
            + ". Edit conf/, not params.yaml, then run `make params`"
            + (f" PARAMS_OVERRIDES='{shown}'" if shown else "")
            + " (or `audiofootprint params --write"
            + (f" {shown}" if shown else "")
            + "`) and run the pipeline again."
        )
    if (Path(root) / DVC_DIR).is_dir():  # a DVC project: remember the check
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(stamp, fingerprint)
        except OSError:  # a read-only checkout checks every time
            pass


def composition_fingerprint(root: str | Path) -> str:
    """sha256 of everything :func:`compose_params` reads: params.yaml, every file of conf/ and of
    the project's own ``vocoders/`` package, audiofootprint's source, and the versions of Hydra and
    OmegaConf."""
    import hashlib

    import hydra
    import omegaconf

    import audiofootprint

    root = Path(root)
    digest = hashlib.sha256(f"hydra {hydra.__version__} omegaconf {omegaconf.__version__}".encode())
    package = Path(audiofootprint.__file__).parent
    files = [(root / "params.yaml", "params.yaml")]
    for base, label, pattern in ((root / "conf", "conf", "*"), (root / USER_PACKAGE, USER_PACKAGE, "*"),
                                 (package, "audiofootprint", "*.py")):
        files += [(file, f"{label}/{file.relative_to(base).as_posix()}") for file in sorted(base.rglob(pattern))
                  if file.is_file() and "__pycache__" not in file.parts]  # bytecode comes and goes with imports
    for file, label in files:
        digest.update(f"\0{label}\0".encode())
        digest.update(file.read_bytes() if file.is_file() else b"(missing)")
    return digest.hexdigest()
