"""Compose the Hydra tree in conf/ into params.yaml, and catch a stale params.yaml.

DVC composes Hydra configuration only in ``dvc exp run``, never in ``dvc repro``. The
committed params.yaml is therefore generated here; it records the overrides it was
composed with so that :func:`check_params` can compose again and compare. What Hydra alone
cannot compose (the model plan, the recorded overrides) is written in conf/ as resolvers
(:mod:`audiofootprint.resolvers`), so that DVC's own composition in ``dvc exp run`` (enabled in
.dvc/config) writes a params.yaml that :func:`check_params` accepts too.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from audiofootprint import atomic, resolvers

HEADER = (
    "# Generated from conf/ by `audiofootprint params --write` (make params).\n"
    "# Do not edit: change conf/ and compose again. The stages read this file.\n"
)


class StaleParamsError(RuntimeError):
    """params.yaml does not match what conf/ composes to."""


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
    with _outside_hydra_app(), initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    resolvers.register()
    with resolvers.composing(root, overrides):
        params = OmegaConf.to_container(cfg, resolve=True)
    if "benchmark" in params:
        # DVC's foreach needs the models spelled out: conf/ does it with ${vocoders:all}; an override
        # such as benchmark.models=[a,b] replaces that resolver by a plain list, planned here.
        from audiofootprint.vocoders.zoo import plan_models, training_plan

        plan = params["benchmark"]["models"]
        if not isinstance(plan, dict):
            plan = params["benchmark"]["models"] = plan_models(root, plan)
        params["benchmark"]["training"] = training_plan(root, plan)
        if "quantize" in params:
            from audiofootprint.vocoders.zoo import plan_quantization

            params["quantize"]["models"] = plan_quantization(root, params["quantize"]["models"], plan)
    params["overrides"] = list(overrides)
    return params


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
    same values without this module's header.
    """
    path = Path(root) / "params.yaml"
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
