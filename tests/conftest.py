"""Shared fixtures: the project root, small hand-made survey tables, and the pipeline run in a
temporary copy of the project (shared by the pipeline and site tests)."""
from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

SURVEY_HEADER = [
    "id", "title", "first_author", "year", "venue", "arxiv_id", "doi", "task_family",
    "human_rating", "distribution_metric", "signal_metric", "likelihood", "param_count", "flops",
    "inference_speed", "training_time", "training_hardware", "energy_co2", "evidence", "checked", "notes",
    "text_source",
]


def survey_row(id, year=2020, task="neural_vocoder", metrics="1000000000", **overrides) -> dict:
    """A valid survey row; ``metrics`` gives the ten metric cells in order ('1', '0' or ' ' for empty)."""
    row = {
        "id": id, "title": f"Paper {id}", "first_author": "Doe", "year": str(year), "venue": "ICASSP",
        "arxiv_id": "2001.00001", "doi": "", "task_family": task, "evidence": "Tab. 1",
        "checked": "full_text", "notes": "", "text_source": "arxiv_html",
    }
    for name, cell in zip(SURVEY_HEADER[8:18], metrics):
        row[name] = "" if cell == " " else cell
    row.update(overrides)
    return row


def write_survey(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SURVEY_HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny model runs: short inputs gain nothing from more, and on
    a busy 2-core machine OpenMP's spinning threads make them about 8x slower. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def speechlike(seconds: float, sr: int, seed: int, level: float = 0.1) -> np.ndarray:
    """A voiced-speech stand-in: harmonics of a gliding f0, syllable-rate envelope, some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 20))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + seed)
    x = voice * envelope + 0.05 * rng.standard_normal(len(t))
    return (level * x / np.max(np.abs(x))).astype(np.float32)


#: The quality_status (evaluate.quality_status) of a hand-made metrics.json whose quality counts.
CONVERGED = {"kind": "training-free", "converged": True, "steps": 0, "recipe_steps": None}


def measured_metrics(name: str, energy: float, pesq: float, *, trained_by: str | None = None, q1: float | None = None,
                     q3: float | None = None, status: dict | None = None, training: dict | None = None,
                     hardware: str = "cpu", host: str | None = None):
    """The metrics.json record (records.ModelMetrics) of a measured model, made by hand for a test."""
    from audiofootprint.records import OK, ModelMetrics

    spread = {"median": energy, "q1": energy * 0.9 if q1 is None else q1, "q3": energy * 1.1 if q3 is None else q3,
              "n": 3}
    return ModelMetrics(
        status=OK, family=name, params=1000, size_mb=0.1, gflops_per_audio_s=1.0, energy_j_per_audio_s=spread,
        net_energy_j_per_audio_s={**spread, "median": energy / 2}, hardware=hardware, host=host,
        real_time_factor={"median": 0.5, "q1": 0.4, "q3": 0.6, "n": 3},
        energy_method={"cpu": "estimate: CPU load x TDP", "gpu": "no GPU seen", "ram": "estimate"},
        quality_status=status or CONVERGED, sample_rate=16000, test_utterances=2, test_seconds=4.0,
        quality={"pesq": {"mean": pesq, "ci95": 0.05, "n": 2}},
        training=training or {"objective": "none", "energy_kwh": 0.0, "steps": 0, "seconds": 0.0,
                              "trained_by": trained_by or name, "hardware": None})

#: What a temporary copy of the compendium needs to run its pipeline.
PROJECT_FILES = ["conf", "data", "notebooks", "src", "vocoders", "dvc.yaml", "params.yaml", ".dvc/config",
                 ".dvcignore"]
#: The models of the `benchmarked` pipeline run.
BENCHMARK_MODELS = ["griffinlim_32", "hifigan_v1_ljspeech", "hifigan_v3", "melgan"]
# The quantization stages of that pipeline: one model, a scheme of each kind (dynamic int8 never
# applies to HiFi-GAN, which has no Linear layer), two calibration utterances.
QUANTIZED_MODELS = ["hifigan_v3"]
QUANTIZATION_SCHEMES = ["fp32", "dynamic_int8", "static_int8", "weight_int4"]


def copy_project(root: Path, dest: Path) -> Path:
    """Copy the compendium's sources into ``dest`` as a DVC project without git."""
    for name in PROJECT_FILES:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    run(["dvc", "config", "core.no_scm", "true"], dest)
    return dest


def run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command from the project's environment (its bin/ first on PATH), offline."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1")
    env.pop("MPLBACKEND", None)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def benchmarked(tmp_path_factory):
    """The whole benchmark, corpus to Pareto notebook, on the ci profile for four models, one pretrained (one run per session)."""
    from audiofootprint.corpus import ALLISON_DIR

    if not ALLISON_DIR.is_dir():
        pytest.skip(f"{ALLISON_DIR} missing: `make test` installs asterisk-core-sounds-en-g722 when run as root")
    project = copy_project(ROOT, tmp_path_factory.mktemp("bench"))
    run(["audiofootprint", "params", "--write", "profile=ci", f"benchmark.models=[{','.join(BENCHMARK_MODELS)}]",
         f"quantize.models=[{','.join(QUANTIZED_MODELS)}]", f"quantize.schemes=[{','.join(QUANTIZATION_SCHEMES)}]",
         "quantize.calibration_utterances=2"],
        project)
    first = run(["dvc", "repro", "benchmark_report"], project)
    return project, first
