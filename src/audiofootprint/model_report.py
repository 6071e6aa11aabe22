"""Stage ``model_report@NAME``: one benchmarked model's notebook, rendered into reports/vocoders/."""
from __future__ import annotations

from pathlib import Path

from audiofootprint.paths import BENCHMARK_DIR, MODEL_REPORTS_DIR, NOTEBOOKS_DIR
from audiofootprint.records import ModelMetrics
from audiofootprint.report import render_notebook


def render_model_report(root: str | Path, model: str) -> Path:
    """The per-model notebook (or, for a failed model, the notebook that says why it failed) into
    reports/vocoders/MODEL.ipynb and .html; returns the .ipynb. As for the studies
    (:func:`audiofootprint.report.render_study`), the notebook runs in the root, given ``root = "."``."""
    root = Path(root).resolve()
    metrics = root / BENCHMARK_DIR / model / "metrics.json"
    failed = metrics.is_file() and not ModelMetrics.read(metrics).ok
    notebook = "vocoder_failed.py" if failed else "vocoder.py"
    return render_notebook(root / NOTEBOOKS_DIR / notebook, root / MODEL_REPORTS_DIR / f"{model}.ipynb",
                           root / MODEL_REPORTS_DIR / f"{model}.html",
                           parameters={"root": ".", "model": model}, cwd=root)
