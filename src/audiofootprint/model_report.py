"""Stage ``model_report@NAME``: one benchmarked model's notebook, rendered into reports/vocoders/."""
from __future__ import annotations

from pathlib import Path

from audiofootprint.params import load_params
from audiofootprint.paths import BENCHMARK_DIR, MODEL_REPORTS_DIR, NOTEBOOKS_DIR
from audiofootprint.records import ModelMetrics
from audiofootprint.report import render_notebook


def render_model_report(root: str | Path, model: str) -> Path:
    """The per-model notebook (or, for a failed model, the notebook that says why it failed) into
    reports/vocoders/MODEL.ipynb and .html; returns the .ipynb. As for the studies
    (:func:`audiofootprint.report.render_study`), the notebook runs in the root, given ``root = "."``.
    A model outside benchmark.models, or without its metrics.json, is refused before the kernel starts."""
    root = Path(root).resolve()
    models = load_params(root)["benchmark"]["models"]
    if model not in models:
        raise KeyError(f"unknown model {model!r}: not in benchmark.models of {root / 'params.yaml'} "
                       f"({', '.join(models)})")
    failed = not ModelMetrics.read(root / BENCHMARK_DIR / model / "metrics.json").ok
    notebook = "vocoder_failed.py" if failed else "vocoder.py"
    return render_notebook(root / NOTEBOOKS_DIR / notebook, root / MODEL_REPORTS_DIR / f"{model}.ipynb",
                           root / MODEL_REPORTS_DIR / f"{model}.html",
                           parameters={"root": ".", "model": model}, cwd=root)
