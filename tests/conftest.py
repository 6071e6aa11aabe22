"""Shared fixtures: the project root, small hand-made survey tables, and the pipeline run in a
temporary copy of the project (shared by the pipeline and site tests)."""
from __future__ import annotations

import csv
import functools
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers share the cores: OpenMP threads that spin while they wait for work would take
    # them from the other worker (set before torch loads its OpenMP runtime; DVC runs inherit it).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

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


#: Session-scoped runs that many modules share: under pytest-xdist each is built on one worker only.
SHARED_RUNS = ("benchmarked", "reproduced")
#: The test groups that take longest (`make test` lists the slowest steps), scheduled first.
LONGEST_GROUPS = (*SHARED_RUNS, "test_reliability_kill", "test_training", "test_jobs")


def pytest_collection_modifyitems(config, items):
    """Group the tests for pytest-xdist's ``--dist loadgroup`` (``make test``): the tests that use one
    of :data:`SHARED_RUNS` run on the same worker, so the run is built once; every other test runs with
    the rest of its module, so module-scoped fixtures are built once too.

    pytest-xdist 3.8 names a test's group by appending ``@GROUP`` to ``item._nodeid``, which pytest
    9.2 no longer reads (a node's id is ``item._id``): without the suffix every test is scheduled
    alone. The suffix is therefore set here, where a worker collects for ``--dist loadgroup``."""
    from _pytest.nodeid import NodeId

    groups = {}
    for item in items:
        shared = [name for name in SHARED_RUNS if name in item.fixturenames]
        group = groups[item] = shared[0] if shared else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))
        if getattr(config.option, "loadgroup", False) and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{group}")
    # longest first: xdist hands out groups in collection order (with --no-loadscope-reorder, as
    # `make test` runs it), so a long group collected late would run alone while the others wait
    items.sort(key=lambda item: LONGEST_GROUPS.index(groups[item]) if groups[item] in LONGEST_GROUPS
               else len(LONGEST_GROUPS))


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
                 "results/quantize/README.md",
                 ".dvcignore"]
#: The models of the `benchmarked` pipeline run.
BENCHMARK_MODELS = ["griffinlim_32", "hifigan_v1_ljspeech", "hifigan_v3", "melgan"]
# The quantization stages of that pipeline: one model, a scheme of each kind (dynamic int8 never
# applies to HiFi-GAN, which has no Linear layer) and the onnxruntime engine's mixed precision (its
# search on one utterance, three counts of ops), two calibration utterances.
QUANTIZED_MODELS = ["hifigan_v3"]
QUANTIZATION_SCHEMES = ["fp32", "dynamic_int8", "static_int8", "weight_int4", "ort_mixed_int8"]


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


def run(command: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command from the project's environment (its bin/ first on PATH), offline; ``env`` adds variables."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1") | (env or {})
    env.pop("MPLBACKEND", None)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


#: The network guard: a sitecustomize.py that every Python process started with it on PYTHONPATH
#: loads (dvc, the stages, papermill's kernels); it records each attempt to reach a non-loopback address.
NETGUARD = ROOT / "tests" / "netguard"


def _ip() -> str:
    return shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if Path(p).exists()), "ip")


@functools.lru_cache(maxsize=None)
def network_namespace_refused() -> str | None:
    """None where a command can run in a network namespace with loopback only (``unshare -n``: root,
    util-linux and iproute2); otherwise why not, in words."""
    if not shutil.which("unshare"):
        return "no `unshare` command (util-linux)"
    try:
        probe = subprocess.run(["unshare", "-n", "sh", "-c", f"{_ip()} link set lo up"], capture_output=True,
                               text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`unshare -n` failed: {error}"
    if probe.returncode != 0:
        return f"`unshare -n` not permitted here (needs root): {probe.stderr.strip() or probe.returncode}"
    return None


def guard_environment(folder: Path) -> dict[str, str]:
    """The variables that put the network guard in every Python process of a command, logging to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(p for p in (str(NETGUARD), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": pythonpath, "AUDIOFOOTPRINT_NETGUARD_LOG": str(folder / "attempts.log"),
            "AUDIOFOOTPRINT_NETGUARD_SEEN": str(folder / "processes.log"),
            "AUDIOFOOTPRINT_NETGUARD_LINKS": str(folder / "links.txt")}


def offline(command: list[str]) -> list[str]:
    """``command`` in a new network namespace with no interface but loopback, brought up (papermill's
    kernels talk ZMQ over 127.0.0.1); the interfaces seen there go to $AUDIOFOOTPRINT_NETGUARD_LINKS."""
    ip = _ip()
    script = (f'{ip} link set lo up && {ip} -o link show > "${{AUDIOFOOTPRINT_NETGUARD_LINKS:-/dev/null}}" '
              '&& exec "$@"')
    return ["unshare", "-n", "sh", "-c", script, "sh", *command]


@dataclass
class NetworkCheck:
    """How a command was kept off the network, and what it tried."""

    namespace: bool  # it ran in a network namespace with loopback only
    why_no_namespace: str | None  # if not, why not
    attempts: list[str] = field(default_factory=list)  # one line per attempt to reach a non-loopback address
    processes: list[str] = field(default_factory=list)  # the Python processes that ran guarded
    links: list[str] = field(default_factory=list)  # the interfaces seen in the namespace

    @property
    def how(self) -> str:
        return ("network namespace (loopback only) and audit hook" if self.namespace
                else f"audit hook only; no network namespace: {self.why_no_namespace}")

    def failure(self) -> str:
        return (f"{len(self.attempts)} attempt(s) to reach the network ({self.how}):\n" + "\n".join(self.attempts))


def run_guarded(command: list[str], cwd: Path, folder: Path, check: bool = True) -> tuple[subprocess.CompletedProcess, NetworkCheck]:
    """Run ``command`` with the network guard in each of its Python processes, inside a network
    namespace with loopback only where that is permitted; the guard's logs go to ``folder``."""
    why_not = network_namespace_refused()
    env = guard_environment(folder)
    result = run(offline(command) if why_not is None else command, cwd, check=check, env=env)

    def lines(name: str) -> list[str]:
        path = folder / name
        return path.read_text().splitlines() if path.exists() else []

    return result, NetworkCheck(why_not is None, why_not, lines("attempts.log"), lines("processes.log"),
                                lines("links.txt"))


class PipelineRun(tuple):
    """What an end-to-end fixture gives: ``project, first = run`` (the project copy and its first
    `dvc repro`), and ``run.network``, how that run was kept off the network and what it tried."""

    network: NetworkCheck

    def __new__(cls, project: Path, first: subprocess.CompletedProcess, network: NetworkCheck):
        made = super().__new__(cls, (project, first))
        made.network = network
        return made


def offline_repro(project: Path, targets: list[str], folder: Path) -> PipelineRun:
    """``dvc repro TARGETS`` in ``project``, off the network (see :func:`run_guarded`); an attempt to
    reach the network fails it, listed."""
    first, network = run_guarded(["dvc", "repro", *targets], project, folder)
    assert not network.attempts, network.failure()
    return PipelineRun(project, first, network)


@pytest.fixture(scope="session")
def benchmarked(tmp_path_factory):
    """The whole benchmark, corpus to Pareto notebook, on the ci profile for four models, one pretrained
    (one run per session), off the network: see :func:`offline_repro`."""
    from audiofootprint.corpus import ALLISON_DIR

    if not ALLISON_DIR.is_dir():
        pytest.skip(f"{ALLISON_DIR} missing: `make test` installs asterisk-core-sounds-en-g722 when run as root")
    project = copy_project(ROOT, tmp_path_factory.mktemp("bench"))
    run(["audiofootprint", "params", "--write", "profile=ci", f"benchmark.models=[{','.join(BENCHMARK_MODELS)}]",
         f"quantize.models=[{','.join(QUANTIZED_MODELS)}]", f"quantize.schemes=[{','.join(QUANTIZATION_SCHEMES)}]",
         "quantize.calibration_utterances=2", "quantize.mixed_precision.search_utterances=1",
         "quantize.mixed_precision.block=8", "quantize.mixed_precision.metric=mrstft"],
        project)
    return offline_repro(project, ["benchmark_report"], tmp_path_factory.mktemp("bench_netguard"))


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory):
    """The survey and training-carbon stages and their notebooks, off the network (one run per session:
    the pipeline tests and the reliability suite share it)."""
    project = copy_project(ROOT, tmp_path_factory.mktemp("project"))
    return offline_repro(project, ["survey_report", "carbon_report"], tmp_path_factory.mktemp("project_netguard"))
