"""Kill at random (issue 16, part 1): the machinery of tests/test_reliability_kill.py.

A trial copies a project whose pipeline has run (without DVC's run cache, which would restore a
stage instead of running it), force-runs one stage with ``dvc repro -s -f``, SIGKILLs the stage's
``audiofootprint`` process and everything it started at a chosen moment, runs ``dvc repro`` again,
and then checks what is left: the stage's outputs against the uninterrupted run's (bytes, or JSON
without its timing fields), no temporary or unreadable file anywhere, ``dvc status`` clean.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

#: How often the process tree is looked at (seconds).
POLL_S = 0.02


def env(project: Path) -> dict:
    """The environment of conftest.run (the venv's bin/ first on PATH, offline), with ``project``'s own
    src/ first on PYTHONPATH: the stages (notebook kernels included) run the package as it was copied
    into the project, so an edit of the working tree during the test changes neither the code that
    runs nor the training's code fingerprint (which hashes the running package's sources)."""
    environ = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                   DVC_NO_ANALYTICS="1", PYTHONPATH=os.pathsep.join(
                       [str(Path(project).resolve() / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    environ.pop("MPLBACKEND", None)
    return environ


def run_in(project: Path, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run ``command`` in ``project`` with :func:`env`; fail with its output if it fails."""
    result = subprocess.run(command, cwd=project, env=env(project), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def stage_argv(proc: psutil.Process) -> tuple[str, ...] | None:
    """The arguments after ``audiofootprint`` when ``proc`` is the stage's CLI process, else None
    (the ``sh -c`` that DVC starts, and the children the CLI starts, are not it)."""
    try:
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    for index, arg in enumerate(cmdline[:2]):
        if Path(arg).name == "audiofootprint":
            return tuple(cmdline[index + 1:])
    return None


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


class StageClock:
    """Measures how long each ``audiofootprint`` stage process started under ``pid`` lives
    (first seen to gone), by its arguments: ``durations[("train", "melgan")]``."""

    def __init__(self, pid: int):
        self.pid = pid
        self.durations: dict[tuple[str, ...], float] = {}
        self._seen: dict[int, tuple[tuple[str, ...], float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            alive = set()
            for proc in _descendants(self.pid):
                if proc.pid in self._seen:
                    alive.add(proc.pid)
                    continue
                argv = stage_argv(proc)
                if argv is not None:
                    self._seen[proc.pid] = (argv, time.monotonic())
                    alive.add(proc.pid)
            for pid in [pid for pid in self._seen if pid not in alive]:
                argv, start = self._seen.pop(pid)
                self.durations[argv] = time.monotonic() - start
            time.sleep(POLL_S)

    def __enter__(self) -> "StageClock":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed_run(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``command`` (``dvc repro``) and return it with its stage processes' lifetimes (:class:`StageClock`)."""
    proc = subprocess.Popen(command, cwd=cwd, env=env(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with StageClock(proc.pid) as clock:
        stdout, stderr = proc.communicate()
    result = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({proc.returncode}):\n{stdout}\n{stderr}")
    return result, clock.durations


def copy_without_run_cache(base: Path, dest: Path) -> Path:
    """Copy a project, its outputs and DVC cache included, but not DVC's run cache (``.dvc/cache/runs``:
    with it, ``dvc repro`` would restore a killed stage's outputs instead of running it) nor DVC's
    scratch folder (``.dvc/tmp``: locks, index)."""
    skip = {base / ".dvc" / "cache" / "runs", base / ".dvc" / "tmp"}

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [name for name in names if Path(folder) / name in skip]

    shutil.copytree(base, dest, symlinks=True, ignore=ignore, dirs_exist_ok=True)
    return dest


def forget_outputs(project: Path, stage: str) -> list[Path]:
    """Remove ``stage``'s outputs (as dvc.lock records them) from ``project``'s DVC cache, so that the
    ``dvc repro`` after a kill runs the stage again: with them cached and its dependencies unchanged,
    DVC would check the outputs out ("Stage ... is cached - skipping run") and the stage's own
    recovery would go untried. For a folder, its listing (``.dir``) is removed; its files' objects may
    be shared with other outputs and stay. Returns what was removed."""
    import yaml

    lock = yaml.safe_load((project / "dvc.lock").read_text())
    removed = []
    for out in lock["stages"][stage].get("outs", []):
        md5 = out.get("md5")
        if not md5:
            continue
        obj = project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
        if obj.is_file():
            obj.chmod(0o644)
            obj.unlink()
            removed.append(obj)
    return removed


@dataclass
class Kill:
    """What one kill did: whether the stage's process was still running at the chosen moment."""

    stage: str
    at_s: float  # the moment chosen, seconds after the stage's process appeared
    killed: bool  # False: the process had ended before that moment (nothing was killed)
    lived_s: float  # how long the process had run when it was killed (or when it ended)
    processes: list[str] = field(default_factory=list)  # what was killed: "pid name"
    dvc_code: int | None = None
    dvc_output: str = ""

    def describe(self) -> str:
        if self.killed:
            return (f"{self.stage}: SIGKILL at {self.lived_s:.2f} s (chosen {self.at_s:.2f} s) of "
                    f"{len(self.processes)} process(es) [{', '.join(self.processes)}]; dvc exited {self.dvc_code}")
        return (f"{self.stage}: not killed, its process ended at {self.lived_s:.2f} s, before the chosen "
                f"{self.at_s:.2f} s; dvc exited {self.dvc_code}")


def kill_stage(project: Path, stage: str, argv: tuple[str, ...], at_s: float, appear_timeout_s: float = 120) -> Kill:
    """Run ``dvc repro -s -f STAGE`` in ``project`` and SIGKILL the stage's ``audiofootprint ARGV``
    process, and every process it started, ``at_s`` seconds after it appeared. Waits for DVC to exit."""
    dvc = subprocess.Popen(["dvc", "repro", "-s", "-f", stage], cwd=project, env=env(project), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(dvc.stdout.read()), daemon=True)
    reader.start()
    target, started = None, None
    deadline = time.monotonic() + appear_timeout_s
    try:
        while target is None:
            if dvc.poll() is not None or time.monotonic() > deadline:
                reader.join(5)
                raise AssertionError(f"the process `audiofootprint {' '.join(argv)}` of {stage} never appeared "
                                     f"(dvc exit {dvc.returncode}):\n{''.join(output)}")
            for proc in _descendants(dvc.pid):
                if stage_argv(proc) == argv:
                    target, started = proc, time.monotonic()
                    break
            else:
                time.sleep(POLL_S)
        while time.monotonic() - started < at_s and target.is_running() and target.status() != psutil.STATUS_ZOMBIE:
            time.sleep(min(POLL_S, max(0.0, at_s - (time.monotonic() - started))))
        lived = time.monotonic() - started
        killed, names = False, []
        try:
            if target.status() != psutil.STATUS_ZOMBIE:
                tree = [target, *target.children(recursive=True)]
                for proc in tree:  # stop them all first, so that none reacts to another's death
                    try:
                        proc.send_signal(signal.SIGSTOP)
                    except psutil.NoSuchProcess:
                        pass
                for proc in tree:
                    try:
                        names.append(f"{proc.pid} {proc.name()}")
                        proc.send_signal(signal.SIGKILL)
                        killed = True
                    except psutil.NoSuchProcess:
                        pass
        except psutil.NoSuchProcess:
            pass
        code = dvc.wait(timeout=300)
    finally:
        if dvc.poll() is None:
            dvc.kill()
            dvc.wait()
    reader.join(30)
    return Kill(stage, at_s, killed, lived, names, code, "".join(output))


def kill_moment(seed: int, case: int | str, duration_s: float, low: float = 0.1, high: float = 0.9) -> float:
    """The seeded moment of case ``case``: a fraction in [low, high] of ``duration_s`` (the same on every run)."""
    import random

    fraction = random.Random(f"{seed}-{case}").uniform(low, high)
    return fraction * duration_s


# -- what a killed and re-run stage must leave ---------------------------------------------------

#: JSON keys whose values depend on timing or on how the run went (energy, durations, rates, calls
#: counted in a window, memory peaks, codecarbon tasks, resumes, the measurement windows and their
#: summary): dropped before two runs' JSON is compared. Settings that only name a duration
#: (``max_seconds``, ``min_window_s``, ``test_seconds``) are kept.
TIMING_KEY = re.compile(r"^(seconds|quantize_seconds|energy|calls|tasks|resumes|summary|windows|idle|cpu_s)$|energy_j|energy_kwh|_j$"
                        r"|_kwh$|co2e|real_time|per_s$|per_second|power_w|peak_memory|^wall_")


def without_timing(obj):
    """``obj`` (parsed JSON) without the keys of :data:`TIMING_KEY`, at any depth."""
    if isinstance(obj, dict):
        return {key: without_timing(value) for key, value in obj.items() if not TIMING_KEY.search(str(key))}
    if isinstance(obj, list):
        return [without_timing(value) for value in obj]
    return obj


def output_files(project: Path, outs: list[str]) -> dict[str, Path]:
    """Every file of the outputs ``outs`` (files or folders, relative to ``project``), by relative path."""
    files = {}
    for out in outs:
        path = project / out
        if path.is_dir():
            files.update({str(f.relative_to(project)): f for f in sorted(path.rglob("*")) if f.is_file()})
        elif path.is_file():
            files[out] = path
    return files


def compare_outputs(base: Path, project: Path, outs: list[str], json_exact: bool = False,
                    skip: tuple[str, ...] = ()) -> list[str]:
    """The differences between two projects' outputs ``outs``: missing or extra files, other bytes,
    or (JSON, unless ``json_exact``) other values once :func:`without_timing`. Files named in ``skip``
    (relative paths) must exist in both but are not compared (the caller says why)."""
    want, got = output_files(base, outs), output_files(project, outs)
    problems = [f"missing after the kill: {name}" for name in sorted(set(want) - set(got))]
    problems += [f"not in the uninterrupted run: {name}" for name in sorted(set(got) - set(want))]
    for name in sorted(set(want) & set(got)):
        if name in skip:
            continue
        if name.endswith(".json") and not json_exact:
            if without_timing(json.loads(want[name].read_text())) != without_timing(json.loads(got[name].read_text())):
                problems.append(f"{name}: other values (timing fields aside)")
        elif want[name].read_bytes() != got[name].read_bytes():
            problems.append(f"{name}: other bytes")
    return problems


#: Names a finished project holds nowhere: the temporaries of atomic.atomic_path (``.STEM.*.tmpSUFFIX``),
#: the corpus' work and old folders (``.corpus.*.building``, ``.corpus.*.old``), partial downloads.
LEFTOVER = re.compile(r"(^\..*\.tmp(\.[^.]+)?$|\.building$|\.old$|\.part$|\.partial$|^tmp[a-z0-9_]{6,}$|\.tmp$)")


def leftovers(project: Path) -> list[str]:
    """Temporary files or folders anywhere in ``project`` (DVC's own .dvc/ aside), and any hidden
    entry under results/ or reports/ (no stage writes one)."""
    found = []
    for folder, dirs, files in os.walk(project):
        here = Path(folder)
        if here == project:
            dirs[:] = [d for d in dirs if d != ".dvc"]
        inside_outputs = here != project and here.relative_to(project).parts[0] in ("results", "reports")
        for name in dirs + files:
            if LEFTOVER.search(name) or (inside_outputs and name.startswith(".")):
                found.append(str((here / name).relative_to(project)))
    return sorted(found)


def unreadable(project: Path, folders: tuple[str, ...] = ("results", "reports")) -> list[str]:
    """Files under ``folders`` that do not read whole: JSON that does not parse, CSV with ragged rows,
    WAV whose frames fall short of its header, .pt that torch cannot load, notebooks that do not
    validate, PNG that does not decode, HTML without its end."""
    import nbformat
    import soundfile as sf
    import torch
    from PIL import Image

    bad = []
    for folder in folders:
        for path in sorted((project / folder).rglob("*")):
            if not path.is_file():
                continue
            name = str(path.relative_to(project))
            try:
                suffix = path.suffix.lower()
                if path.stat().st_size == 0:
                    raise ValueError("empty")
                if suffix == ".json":
                    json.loads(path.read_text(encoding="utf-8"))
                elif suffix == ".csv":
                    with path.open(newline="", encoding="utf-8") as handle:
                        rows = list(csv.reader(handle))
                    if not rows or any(len(row) != len(rows[0]) for row in rows):
                        raise ValueError("ragged or empty CSV")
                elif suffix == ".wav":
                    with sf.SoundFile(path) as wav:
                        frames = wav.frames
                        data = wav.read()
                    if len(data) != frames or frames == 0:
                        raise ValueError(f"{len(data)} of {frames} frames")
                elif suffix == ".pt":
                    torch.load(path, map_location="cpu", weights_only=True)
                elif suffix == ".ipynb":
                    nbformat.validate(nbformat.read(path, as_version=4))
                elif suffix == ".png":
                    with Image.open(path) as image:
                        image.load()
                elif suffix == ".html":
                    if not path.read_text(encoding="utf-8").rstrip().lower().endswith("</html>"):
                        raise ValueError("no </html> at its end")
            except Exception as error:  # noqa: BLE001 - any failure to read is the finding
                bad.append(f"{name}: {type(error).__name__}: {error}")
    return bad


def status_clean(output: str) -> bool:
    """Whether ``dvc status`` said there is nothing to reproduce."""
    text = output.strip().lower()
    return "up to date" in text or "no changes" in text or text in ("", "{}")
