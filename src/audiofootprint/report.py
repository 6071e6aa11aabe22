"""Execute jupytext notebooks with papermill into reports/, with stable bytes, and render HTML.

An executed notebook is normalised before it is written: papermill's timestamps and
execution metadata are removed and cell ids are numbered, so an unchanged stage that
runs again writes identical files.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import jupytext
import nbformat
import papermill
from nbconvert import HTMLExporter

from audiofootprint import atomic
from audiofootprint.paths import NOTEBOOKS_DIR, REPORTS_DIR, STUDY_NOTEBOOKS

KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


#: The memory address in an object's default repr (``<... at 0x7f...>``): different on every run.
ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def normalise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop run-specific metadata (timestamps, durations) and memory addresses in plain-text
    reprs, and give cells stable ids."""
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain")
            if isinstance(text, str):
                output["data"]["text/plain"] = ADDRESS.sub(">", text)
    return nb


def render_notebook(source: str | Path, executed: str | Path, html: str | Path | None = None,
                    parameters: dict | None = None, cwd: str | Path | None = None) -> Path:
    """Execute the jupytext notebook ``source`` into ``executed`` (and ``html``); return ``executed``.

    Outputs are written atomically: a failing cell leaves the previous outputs untouched and
    raises papermill's error, which names the cell and shows its traceback.
    """
    source, executed = Path(source), Path(executed)
    if not source.is_file():
        raise FileNotFoundError(f"notebook source {source} not found")
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = dict(KERNEL)
    with atomic.atomic_path(executed) as tmp, warnings.catch_warnings():
        # the temporary may be an unnamed file, /proc/self/fd/N (atomic.atomic_path): no extension
        warnings.filterwarnings("ignore", "the file is not specified with any extension", UserWarning)
        papermill.execute_notebook(
            nb, str(tmp), parameters=parameters or {}, kernel_name=KERNEL["name"],
            cwd=str(cwd) if cwd else None, progress_bar=False,
        )
        clean = normalise(nbformat.read(tmp, as_version=4))
        nbformat.validate(clean)
        nbformat.write(clean, tmp)
    if html is not None:
        body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(executed, as_version=4))
        atomic.write_text(html, body)
    return executed


def render_study(root: str | Path, name: str) -> Path:
    """Stage ``NAME_report``: notebooks/NAME.py executed into reports/NAME.ipynb and .html.

    The notebook runs in the project root and is given ``root = "."``: the rendered files hold no
    path of this checkout, so two clones of one commit render the same bytes."""
    if name not in STUDY_NOTEBOOKS:
        raise KeyError(f"{name!r} is not a study notebook ({', '.join(STUDY_NOTEBOOKS)})")
    root = Path(root).resolve()
    return render_notebook(root / NOTEBOOKS_DIR / f"{name}.py", root / REPORTS_DIR / f"{name}.ipynb",
                           root / REPORTS_DIR / f"{name}.html", parameters={"root": "."}, cwd=root)
