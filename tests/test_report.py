"""Notebook execution: parameters injected, bytes stable across runs, failures leave nothing half-written."""
from __future__ import annotations

import json

import nbformat
import pytest

from audiofootprint.report import normalise, render_notebook

NOTEBOOK = '''# %% [markdown]
# # A tiny study

# %% tags=["parameters"]
scale = 1

# %%
import matplotlib.pyplot as plt
import numpy as np
rng = np.random.default_rng(0)
values = rng.normal(size=50) * scale
fig, ax = plt.subplots()
ax.hist(values)
plt.show()
print(f"mean={values.mean():.6f}")
'''


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws figures
    path = tmp_path / "tiny.py"
    path.write_text(NOTEBOOK)
    return path


def test_parameters_are_injected_and_bytes_are_stable(tmp_path, source):
    out, html = tmp_path / "out" / "tiny.ipynb", tmp_path / "out" / "tiny.html"
    render_notebook(source, out, html, parameters={"scale": 3}, cwd=tmp_path)
    first, first_html = out.read_bytes(), html.read_bytes()
    render_notebook(source, out, html, parameters={"scale": 3}, cwd=tmp_path)
    assert out.read_bytes() == first
    assert html.read_bytes() == first_html
    nb = json.loads(first)
    assert "papermill" not in nb["metadata"]
    assert [c["id"] for c in nb["cells"]] == [f"cell-{i}" for i in range(len(nb["cells"]))]
    text = json.dumps(nb)
    assert "scale = 3" in text  # papermill's injected-parameters cell
    expected = 3 * __import__("numpy").random.default_rng(0).normal(size=50).mean()
    assert f"mean={expected:.6f}" in text
    assert "image/png" in text
    assert b"<html" in first_html and b"A tiny study" in first_html


def test_failing_cell_keeps_previous_outputs(tmp_path, source):
    out, html = tmp_path / "tiny.ipynb", tmp_path / "tiny.html"
    render_notebook(source, out, html, cwd=tmp_path)
    before = out.read_bytes()
    source.write_text(NOTEBOOK + '\n# %%\nraise RuntimeError("boom")\n')
    with pytest.raises(Exception, match="boom"):
        render_notebook(source, out, html, cwd=tmp_path)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.html", "tiny.ipynb", "tiny.py"]


def test_missing_source_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        render_notebook(tmp_path / "nope.py", tmp_path / "x.ipynb")


def test_memory_addresses_in_reprs_are_dropped():
    cell = nbformat.v4.new_code_cell("display(table.style)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "<pandas.io.formats.style.Styler at 0x7f6a8f4988d0>", "text/html": "<table></table>"})]
    nb = normalise(nbformat.v4.new_notebook(cells=[cell]))
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "<pandas.io.formats.style.Styler>"
    assert nb.cells[0].outputs[0]["data"]["text/html"] == "<table></table>"
