"""`make lab`: the project's kernel is registered and jupytext's .py notebooks open as notebooks."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jupytext
import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
TOKEN = "audiofootprint-test"


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> Path:
    """The Makefile's lab-setup target run into a temporary prefix instead of the venv."""
    prefix = tmp_path_factory.mktemp("lab")
    # -o: never rebuild the venv from here, even if requirements.lock is newer than its stamp
    command = ["make", "-s", "-C", str(ROOT), "-o", ".venv/.installed", "lab-setup", f"LAB_PREFIX={prefix}"]
    for _ in range(2):  # idempotent: a second run succeeds and changes nothing
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    return prefix


def jupyter_env(prefix: Path) -> dict:
    return dict(os.environ, JUPYTER_PATH=str(prefix / "share/jupyter"), JUPYTER_CONFIG_PATH=str(prefix / "etc/jupyter"),
                JUPYTER_RUNTIME_DIR=str(prefix / "runtime"))


def test_lab_setup_registers_the_project_kernel(prefix):
    listed = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "kernelspec", "list", "--json"],
                            env=jupyter_env(prefix), capture_output=True, text=True, check=True)
    kernel = json.loads(listed.stdout)["kernelspecs"]["audiofootprint"]
    assert Path(kernel["resource_dir"]) == prefix / "share/jupyter/kernels/audiofootprint"
    assert kernel["spec"]["display_name"] == "audiofootprint (.venv)"
    assert kernel["spec"]["argv"][0] == sys.executable  # the venv's python, whatever PATH says
    overrides = json.loads((prefix / "etc/jupyter/labconfig/default_setting_overrides.json").read_text())
    assert overrides == {"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_reads_as_a_notebook_on_the_project_kernel(path):
    nb = jupytext.read(path)
    assert sum(cell.cell_type == "code" for cell in nb.cells) >= 2
    assert any("parameters" in cell.metadata.get("tags", []) for cell in nb.cells)
    kernelspec = nb.metadata.get("kernelspec")
    assert kernelspec is None or kernelspec["name"] == "audiofootprint", f"{path}: kernelspec {kernelspec}"


def test_jupyterlab_serves_py_notebooks_as_notebooks(prefix):
    """Start JupyterLab as `make lab` does (on a free port, with a token), ask for a .py as a notebook."""
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", "--port=0",
               f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={ROOT}", "--ServerApp.open_browser=False"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(command, env=jupyter_env(prefix), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        base, log, deadline = None, [], time.monotonic() + 60
        while base is None and time.monotonic() < deadline:
            line = server.stderr.readline()
            assert line or server.poll() is None, "jupyter lab exited:\n" + "".join(log)
            log.append(line)
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            base = found.group(0) if found else None
        assert base, "jupyter lab printed no URL within 60 s:\n" + "".join(log)

        def get(path: str) -> dict:
            request = urllib.request.Request(base + path, headers={"Authorization": f"token {TOKEN}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)

        while True:  # the URL is printed just before the server listens
            try:
                get("/api/status")
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and server.poll() is None, "jupyter lab never answered"
                time.sleep(0.2)
        assert "audiofootprint" in get("/api/kernelspecs")["kernelspecs"]
        viewers = get("/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
        assert viewers["schema"]["properties"]["defaultViewers"]["default"]["python"] == "Jupytext Notebook"
        for path in NOTEBOOKS:
            model = get(f"/api/contents/notebooks/{path.name}?type=notebook&content=1")
            assert model["type"] == "notebook" and model["path"] == f"notebooks/{path.name}"
            assert model["content"]["metadata"]["kernelspec"]["name"] == "audiofootprint"
            assert any(cell["cell_type"] == "code" for cell in model["content"]["cells"])
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stderr.close()
