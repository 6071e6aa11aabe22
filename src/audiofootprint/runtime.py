"""How every stage that runs a model sets up: seed, torch threads, device and energy tracker; and the
memory ceiling under which a model too large for the machine fails as an error instead of a kill."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from audiofootprint.energy import TrackerSettings
from audiofootprint.energy.static import PROC_MEMINFO, proc_kib


@dataclass(frozen=True)
class StageSetup:
    """What every measuring stage sets up the same way: seed, threads, device and tracker."""

    seed: int
    threads: int
    device: str
    tracker: TrackerSettings


def set_up(root: str | Path, params: dict) -> StageSetup:
    """Seed torch and set its threads from the profile; the device falls back to the CPU when the
    profile asks for CUDA and none is present; the tracker writes under ``energy.output_dir``."""
    profile, energy = params["profile"], params["energy"]
    seed, threads = int(profile["seed"]), int(profile["torch_threads"])
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    device = profile["device"] if (profile["device"] == "cpu" or torch.cuda.is_available()) else "cpu"
    tracker = TrackerSettings(**{**energy, "output_dir": str(Path(root) / energy["output_dir"])})
    return StageSetup(seed=seed, threads=threads, device=device, tracker=tracker)


#: The share of the system's available memory a run under :func:`memory_ceiling` may add.
MEMORY_SHARE = 0.9


def available_memory_bytes() -> int | None:
    """The memory the system can give without swapping (Linux ``MemAvailable``), or None elsewhere."""
    try:
        return proc_kib("MemAvailable", PROC_MEMINFO) * 1024
    except (OSError, RuntimeError):
        return None


@contextmanager
def memory_ceiling(device: str = "cpu") -> Iterator[int | None]:
    """Cap this process' address space at what it holds now plus :data:`MEMORY_SHARE` of the available
    memory, and yield the cap in bytes (None where none is set: not Linux, or a CUDA ``device``,
    whose driver reserves address space far beyond what it uses and whose own out-of-memory is
    already an error). Under it, an allocation too large for the machine fails with torch's "not
    enough memory" RuntimeError (or MemoryError) that the caller records, where otherwise the
    kernel's out-of-memory killer would end the whole stage (or another process). The previous
    limit is restored on leaving."""
    available = available_memory_bytes() if device == "cpu" else None
    try:
        import resource
        held = proc_kib("VmSize") * 1024
    except (ImportError, OSError, RuntimeError):
        held = None
    if available is None or held is None:
        yield None
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = held + int(MEMORY_SHARE * available)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
