"""Reliability in the machine's hands: no network, a full disk, two runs at once.

* No network: the end-to-end fixtures (`reproduced`: survey and carbon stages and notebooks;
  `benchmarked`: the ci benchmark, corpus to Pareto notebook) run `dvc repro` in a network
  namespace with loopback only (``unshare -n``, where permitted) and, everywhere, with an audit hook
  in each Python process (tests/netguard/sitecustomize.py) that records any attempt to reach a
  non-loopback address; the tests here check that nothing was tried and that the guard was there.
* A full disk: a stage whose output folder is a small full tmpfs (``unshare -m``) fails with one
  clear line, leaves its previous outputs byte for byte, and completes once space is freed.
* Two runs at once: a second `dvc repro` while one runs is refused by DVC's lock; the first is unharmed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from conftest import (ROOT, NetworkCheck, copy_project, guard_environment, network_namespace_refused, offline,
                      run, run_guarded)
from reliability_support import assert_refused, fingerprint, run_cli


def _report(network: NetworkCheck) -> None:
    """Say how the run was kept off the network (shown with -s; a warning where no namespace was used)."""
    print(f"no network: {network.how}; {len(network.processes)} Python processes guarded")
    if not network.namespace:
        warnings.warn(f"no network namespace, the audit hook alone checked: {network.why_no_namespace}")


def _assert_offline_and_guarded(network: NetworkCheck, programs: list[str]) -> None:
    assert not network.attempts, network.failure()
    for program in programs:  # the guard was in each kind of process of the run
        assert any(program in line for line in network.processes), f"{program} ran unguarded:\n{network.processes}"
    if network.namespace:  # and the namespace had nothing but loopback
        interfaces = [line.split(":")[1].strip() for line in network.links]
        assert interfaces == ["lo"], network.links
    _report(network)


@pytest.mark.reliability("no_network", "survey_carbon_pipeline")
def test_survey_and_carbon_stages_run_without_network(reproduced):
    project, first = reproduced
    assert "Running stage 'survey_report'" in first.stdout and "Running stage 'carbon_report'" in first.stdout
    _assert_offline_and_guarded(reproduced.network, ["dvc", "audiofootprint survey", "audiofootprint training-carbon",
                                                     "audiofootprint notebook", "ipykernel"])


@pytest.mark.reliability("no_network", "ci_benchmark")
def test_ci_benchmark_runs_without_network(benchmarked):
    """Corpus, training, pretrained weights, PESQ/STOI, codecarbon, quantization and notebooks: all offline."""
    project, first = benchmarked
    assert "Running stage 'benchmark_report'" in first.stdout
    _assert_offline_and_guarded(benchmarked.network, ["dvc", "audiofootprint corpus", "audiofootprint train",
                                                      "audiofootprint benchmark", "audiofootprint notebook",
                                                      "ipykernel"])


_REACH_OUT = """
import socket
for family, host in [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"), (socket.AF_INET, "192.0.2.1")]:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect((host, 9))
    except OSError:
        pass
    s.close()
for host in ["localhost", "example.org"]:
    try:
        socket.getaddrinfo(host, 80)
    except OSError:
        pass
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", ("192.0.2.1", 9))
except OSError:
    pass
"""


@pytest.mark.reliability("no_network", "guard_detects")
def test_the_guard_catches_an_attempt_and_passes_loopback(tmp_path):
    """The detection can fail: a connect, a name lookup and a datagram to non-loopback addresses are
    recorded (192.0.2.1 is TEST-NET-1: nothing answers; inside ``unshare -n`` nothing leaves, and
    outside one the guard also refuses, so nothing leaves either), loopback ones are not."""
    env = guard_environment(tmp_path / "guard")
    command = [sys.executable, "-c", _REACH_OUT]
    if network_namespace_refused() is None:
        command = offline(command)
    else:
        env["AUDIOFOOTPRINT_NETGUARD_BLOCK"] = "1"
    run(command, tmp_path, env=env)
    attempts = Path(env["AUDIOFOOTPRINT_NETGUARD_LOG"]).read_text().splitlines()
    assert [tuple(line.split("\t")[2:]) for line in attempts] == [
        ("socket.connect", "('192.0.2.1', 9)"), ("socket.getaddrinfo", "('example.org', 80)"),
        ("socket.sendto", "('192.0.2.1', 9)")], attempts


@pytest.mark.reliability("no_network", "guard_reaches_children")
def test_the_guard_is_in_every_python_process_a_command_starts(tmp_path):
    """A grandchild Python process (as papermill's kernel is to dvc) is guarded as well."""
    child = "import socket, contextlib\nwith contextlib.suppress(OSError): socket.getaddrinfo('example.org', 80)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    result, network = run_guarded([sys.executable, "-c", parent], tmp_path, tmp_path / "guard")
    assert len(network.processes) == 2 and len(network.attempts) == 1, (network.processes, network.attempts)
    assert "example.org" in network.attempts[0]


@pytest.mark.slow
@pytest.mark.reliability("no_network", "model_metric_codecarbon_tests")
def test_model_quality_and_energy_tests_pass_without_network(tmp_path):
    """The tests that load models and pretrained weights, score PESQ/STOI and run codecarbon's tracker, run in a
    network namespace with the guard in each process: they pass and try nothing."""
    if (why := network_namespace_refused()) is not None:
        pytest.skip(why)
    folder = tmp_path / "guard"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
               "tests/test_quality.py", "tests/test_energy.py", "tests/test_pretrained.py",
               "tests/test_checkpoints_official.py"]
    result, network = run_guarded(command, ROOT, folder, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert not network.attempts, network.failure()


# --- A full disk -----------------------------------------------------------------------------------

def _mount_namespace_refused() -> str | None:
    if not shutil.which("unshare"):
        return "no `unshare` command (util-linux)"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`unshare -m` with a tmpfs mount not permitted here (needs root): {probe.stderr.strip()}"
    return None


#: Inside a private mount namespace: keep the stage's outputs, mount a small tmpfs over their folder,
#: put them back, fill it, run the stage (full disk), copy what is there out, free the space, run again.
_FULL_DISK = r"""
set -u
out=$1; folder=$2; shift 2
mkdir -p "$out/kept" "$out/full" "$out/freed"
cp -a "$folder/." "$out/kept/"
mount -t tmpfs -o size=4m tmpfs "$folder"
cp -a "$out/kept/." "$folder/"
dd if=/dev/zero of="$folder/.filler" bs=4k 2>/dev/null
"$@" >"$out/full.stdout" 2>"$out/full.stderr"; echo $? >"$out/full.rc"
rm "$folder/.filler"
cp -a "$folder/." "$out/full/"
"$@" >"$out/freed.stdout" 2>"$out/freed.stderr"; echo $? >"$out/freed.rc"
cp -a "$folder/." "$out/freed/"
"""


@pytest.mark.parametrize("command, folder", [
    pytest.param("survey", "results/survey", marks=pytest.mark.reliability("full_disk", "survey"), id="survey"),
    pytest.param("training-carbon", "results/carbon", marks=pytest.mark.reliability("full_disk", "training_carbon"),
                 id="training_carbon"),
    pytest.param("notebook survey", "reports", id="survey_report",  # papermill and a kernel: some 30 s
                 marks=[pytest.mark.slow, pytest.mark.reliability("full_disk", "survey_report")]),
])
def test_a_stage_on_a_full_disk_fails_clearly_and_keeps_its_outputs(reproduced, tmp_path, command, folder):
    if (why := _mount_namespace_refused()) is not None:
        pytest.skip(why)
    project = tmp_path / "project"
    shutil.copytree(reproduced[0], project, symlinks=True)
    out = tmp_path / "out"
    run(["unshare", "-m", "sh", "-c", _FULL_DISK, "sh", str(out), folder, "audiofootprint", *command.split()], project)

    stderr = (out / "full.stderr").read_text()
    assert int((out / "full.rc").read_text()) != 0, "the stage succeeded on a full disk"
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith(f"audiofootprint {command.split()[0]}: error: "), line
    assert f"{folder}/" in line.split(": error: ", 1)[1].split(":", 1)[0], line  # names the file it could not write
    assert "no space left on device" in line and "the disk is full" in line and "free space" in line, line
    assert f"run `audiofootprint {command}` again" in line, line

    kept = fingerprint(out, ("kept",))
    assert kept and {k.replace("full/", "kept/", 1): v for k, v in fingerprint(out, ("full",)).items()} == kept
    assert int((out / "freed.rc").read_text()) == 0, (out / "freed.stderr").read_text()
    freed = {k.replace("freed/", "kept/", 1): v for k, v in fingerprint(out, ("freed",)).items()}
    assert freed == kept  # the same inputs give the same bytes, now written


@pytest.mark.reliability("full_disk", "survey_simulated")
def test_a_full_disk_is_one_line_naming_the_output_everywhere(tmp_path, monkeypatch):
    """Where no tmpfs can be mounted: the same refusal, from a write that fails as on a full disk
    (a write names no file; the atomic write names its output)."""
    import errno

    import pandas as pd

    project = copy_project(ROOT, tmp_path / "project")
    monkeypatch.chdir(project)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    line = assert_refused(run_cli(["survey"]), "results/survey/tables/", "no space left on device", "the disk is full",
                          "run `audiofootprint survey` again")
    assert line.startswith("audiofootprint survey: error: results/survey/tables/") and ".tmp" not in line, line
    assert not list((project / "results").rglob("*.tmp*")), "a temporary was left behind"


# --- Two runs at once -----------------------------------------------------------------------------

@pytest.mark.reliability("concurrent", "dvc_repro")
def test_a_second_repro_is_refused_by_the_lock_and_the_first_completes(reproduced, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(reproduced[0], project, symlinks=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    env.pop("MPLBACKEND", None)
    log = tmp_path / "first.out"
    with log.open("w") as handle:  # the notebook stage alone, forced: some 15 s with the lock held
        first = subprocess.Popen(["dvc", "repro", "--force", "--single-item", "survey_report"], cwd=project, env=env,
                                 stdout=handle, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while "Running stage 'survey_report'" not in log.read_text():
            assert first.poll() is None, f"the first run ended early:\n{log.read_text()}"
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        second = subprocess.run(["dvc", "repro", "survey_report"], cwd=project, env=env, capture_output=True, text=True)
        still_running = first.poll() is None
        first.wait(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    said = second.stdout + second.stderr
    assert second.returncode != 0, said
    # DVC's locks: the repository's (held while a run collects and commits stages) or, while a stage's
    # command runs, the read-write lock on that stage's dependencies and outputs, naming the holder.
    repo_lock = "Unable to acquire lock" in said and "another DVC process is running" in said
    rwlock = "is busy, it is being blocked by" in said and f"(PID {first.pid})" in said and "rwlock" in said
    assert repo_lock or rwlock, said
    print(f"second run refused by DVC's {'repository lock' if repo_lock else 'read-write lock'}: "
          f"{said.strip().splitlines()[0]}")
    assert "Running stage" not in said and "Traceback" not in said, said
    assert still_running, "the first run ended before the second was refused: the test proved nothing"

    assert first.returncode == 0, log.read_text()
    assert "rendered reports/survey.ipynb" in log.read_text()
    notebook = json.loads((project / "reports/survey.ipynb").read_text())
    assert not any(o.get("output_type") == "error" for c in notebook["cells"] for o in c.get("outputs", []))
    for report in ("survey.ipynb", "survey.html"):  # the same bytes as the undisturbed run
        assert (project / "reports" / report).read_bytes() == (reproduced[0] / "reports" / report).read_bytes()
    status = run(["dvc", "status", "survey_report"], project)
    assert "changed" not in status.stdout, status.stdout
