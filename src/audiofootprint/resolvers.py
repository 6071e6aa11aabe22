"""OmegaConf resolvers that let any Hydra composition of conf/ produce the complete params.yaml.

Two programs compose conf/config.yaml into params.yaml: ``audiofootprint params --write``
(:func:`audiofootprint.params.compose_params`) and DVC itself in ``dvc exp run`` (``hydra.enabled``
in .dvc/config), which runs no code of ours after composing. What Hydra alone cannot do is
therefore written in conf/ as resolvers::

    benchmark.models    ${vocoders:all}              'all' or a list -> {name: {trained_by: ...}}
    benchmark.training  ${training_runs:${.models}}  the models that train, sorted -> {name: {code: ...}}
    quantize.models     ${quantizable:all}           'all' or a list, checked against benchmark.models
    quantize.schemes    ${schemes:all}               'all' (every scheme of the registry) or a list, checked
    overrides           ${composed_with:}            the overrides of this composition

Hydra imports ``hydra_plugins.audiofootprint_resolvers`` (in src/) in every process that scans
its plugins, DVC's included, and that module calls :func:`register`.

The resolvers need the project root and the overrides. :func:`compose_params` provides both
through :func:`composing`; in ``dvc exp run`` they are read from the arguments of DVC's
``dvc.utils.hydra.compose_and_dump`` (its ``config_dir`` and ``overrides``), the function that
resolves the composed configuration (checked with dvc 3.67).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig, ListConfig, OmegaConf

_COMPOSITION: ContextVar[tuple[Path, tuple[str, ...]] | None] = ContextVar("audiofootprint_composition",
                                                                           default=None)
#: The DVC function whose arguments hold the root (config_dir/..) and overrides of `dvc exp run`.
DVC_COMPOSER = ("dvc.utils.hydra", "compose_and_dump")


class CompositionError(RuntimeError):
    """conf/ is being composed by a program that does not say where the project is."""


@contextmanager
def composing(root: str | Path, overrides: list[str] | tuple[str, ...]) -> Iterator[None]:
    """Within this block, resolvers compose for the project at ``root`` with ``overrides``."""
    token = _COMPOSITION.set((Path(root), tuple(overrides)))
    try:
        yield
    finally:
        _COMPOSITION.reset(token)


def composition() -> tuple[Path, list[str], str]:
    """The project root, the overrides and who composes (``audiofootprint`` or ``dvc``)."""
    current = _COMPOSITION.get()
    if current is not None:
        return current[0], list(current[1]), "audiofootprint"
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_globals.get("__name__"), frame.f_code.co_name) == DVC_COMPOSER:
            config_dir = frame.f_locals.get("config_dir")
            if config_dir:
                return Path(config_dir).parent, list(frame.f_locals.get("overrides") or []), "dvc"
        frame = frame.f_back
    raise CompositionError(
        "conf/ uses audiofootprint's resolvers (${vocoders:...}, ${composed_with:}): compose it with "
        "`audiofootprint params --write [OVERRIDES]` or `dvc exp run -S OVERRIDE` (hydra.config_dir must be "
        "set, not hydra.config_module), not with another Hydra program")


def _node(value):
    """A resolver's result as an OmegaConf node: OmegaConf.resolve (DVC calls it) cannot put a
    plain dict or list in place of an interpolation."""
    return OmegaConf.create(value)


def _plain(value):
    """A resolver argument as plain Python (lists and dicts arrive as OmegaConf nodes)."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def vocoders(models, left_out=()) -> DictConfig:
    """``${vocoders:all}`` or ``${vocoders:[a, b]}``, and optionally the names to leave out
    (``${vocoders:all,[c]}``): the benchmark plan (zoo.plan_models)."""
    from audiofootprint.vocoders.zoo import plan_models

    root, _, _ = composition()
    return _node(plan_models(root, _plain(models), _plain(left_out) or ()))


def _benchmark_plan(models, root: Path, composer: str) -> dict[str, dict]:
    models = _plain(models)
    if isinstance(models, dict):
        return models
    if composer == "dvc":
        spelled = f"[{','.join(models)}]" if isinstance(models, list) else models
        raise CompositionError(
            f"benchmark.models={models} stays as written in `dvc exp run`, and dvc.yaml needs the plan: write "
            f"-S 'benchmark.models=${{vocoders:{spelled}}}'")
    from audiofootprint.vocoders.zoo import plan_models

    return plan_models(root, models)


def training_runs(models) -> DictConfig:
    """``${training_runs:${.models}}``: the models whose training the benchmark needs, sorted, with
    the code of their class (zoo.training_plan)."""
    from audiofootprint.vocoders.zoo import training_plan

    root, _, composer = composition()
    return _node(training_plan(root, _benchmark_plan(models, root, composer)))


def quantizable(models, *, _root_: DictConfig) -> ListConfig:
    """``${quantizable:all}`` (or ``pretrained``, or a list): the models of the quantization study
    (zoo.plan_quantization)."""
    from audiofootprint.vocoders.zoo import plan_quantization

    root, _, composer = composition()
    plan = _benchmark_plan(_root_.benchmark.models, root, composer)
    return _node(plan_quantization(root, _plain(models), plan))


def schemes(names) -> ListConfig:
    """``${schemes:all}`` or ``${schemes:[fp32, ort_fp32]}``: the quantization schemes of the study
    (:data:`audiofootprint.quantization.registry.SCHEMES`, in its order, for ``all``)."""
    from audiofootprint.quantization.registry import select_schemes

    return _node(select_schemes(_plain(names)))


def composed_with() -> ListConfig:
    """``${composed_with:}``: the Hydra overrides this params.yaml was composed with."""
    # escaped: an override such as benchmark.models=${vocoders:[a]} is recorded as written, not resolved
    return _node([override.replace("${", "\\${") for override in composition()[1]])


RESOLVERS = {"vocoders": vocoders, "training_runs": training_runs, "quantizable": quantizable,
             "schemes": schemes, "composed_with": composed_with}


def register() -> None:
    """Register the resolvers with OmegaConf (again if already there: Hydra may re-import)."""
    for name, function in RESOLVERS.items():
        # cached per composed configuration, as ${.models} and ${benchmark.models} resolve ${vocoders:all} again
        # (OmegaConf caches no resolver that reads _root_)
        OmegaConf.register_new_resolver(name, function, replace=True, use_cache=name != "quantizable")
