"""Compose the Hydra tree in conf/ into params.yaml, and catch a stale params.yaml.

DVC composes Hydra configuration only in ``dvc exp run``, never in ``dvc repro``. The
committed params.yaml is therefore generated here; it records the overrides it was
composed with so that :func:`check_params` can compose again and compare.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from audiofootprint import atomic

HEADER = (
    "# Generated from conf/ by `audiofootprint params --write` (make params).\n"
    "# Do not edit: change conf/ and compose again. The stages read this file.\n"
)


class StaleParamsError(RuntimeError):
    """params.yaml does not match what conf/ composes to."""


def compose_params(root: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Compose ``root/conf`` with Hydra ``overrides`` into a plain dict."""
    conf_dir = (Path(root) / "conf").resolve()
    if not (conf_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{conf_dir / 'config.yaml'} not found: is {root} the project root?")
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    params = OmegaConf.to_container(cfg, resolve=True)
    if "benchmark" in params:
        # DVC's foreach needs the models spelled out: `all` becomes every conf/vocoder file.
        from audiofootprint.vocoders.zoo import plan_models

        plan = plan_models(root, params["benchmark"]["models"])
        params["benchmark"]["models"] = plan
        params["benchmark"]["training"] = sorted({entry["trained_by"] for entry in plan.values()})
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


def check_params(root: str | Path) -> None:
    """Raise :class:`StaleParamsError` unless params.yaml is what conf/ composes to."""
    path = Path(root) / "params.yaml"
    current = load_params(root)
    overrides = current.get("overrides") or []
    expected = render_params(compose_params(root, overrides))
    if path.read_text(encoding="utf-8") != expected:
        shown = " ".join(overrides)
        raise StaleParamsError(
            f"{path} is stale: it differs from what conf/ composes to"
            + (f" with overrides [{shown}]" if shown else "")
            + ". Edit conf/, not params.yaml, then run `make params`"
            + (f" PARAMS_OVERRIDES='{shown}'" if shown else "")
            + " (or `audiofootprint params --write"
            + (f" {shown}" if shown else "")
            + "`) and run the pipeline again."
        )
