"""Static costs of a model run: FLOPs per call and peak memory of a call (a vocoder's parameters and
size on disk are its own methods: :class:`audiofootprint.vocoders.base.Vocoder`)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call, counted by torch's FLOP counter.

    The counter knows matrix products and convolutions (where nearly all of a vocoder's work
    is); element-wise operations are not counted, so this is a lower bound.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


PROC_STATUS = Path("/proc/self/status")
PROC_MEMINFO = Path("/proc/meminfo")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def proc_kib(field: str, path: Path = PROC_STATUS) -> int:
    """A ``FIELD:  N kB`` line of a Linux /proc file, in KiB (OSError where there is no such file,
    RuntimeError where it lacks the field)."""
    match = re.search(rf"^{field}:\s+(\d+) kB", path.read_text(), re.MULTILINE)
    if not match:
        raise RuntimeError(f"{field} not found in {path}")
    return int(match.group(1))


def release_free_heap() -> None:
    """Return glibc's free heap pages to the system (``malloc_trim``), where glibc is the C library."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        libc = ctypes.CDLL(name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


def peak_memory_bytes(fn: Callable[[], object], device: str = "cpu") -> dict:
    """Peak memory one call adds above what was resident before it.

    CPU: Linux's resident-set high-water mark (VmHWM), reset before the call through
    /proc/self/clear_refs, after glibc has returned its free heap to the system (else memory
    freed by earlier calls is reused unseen). CUDA: torch's peak allocated memory. Returns the
    bytes and the method.
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return {"bytes": int(torch.cuda.max_memory_allocated() - before),
                "method": "torch.cuda.max_memory_allocated"}
    if not _CLEAR_REFS.exists():
        return {"bytes": None, "method": "not available (needs Linux /proc)"}
    release_free_heap()  # memory freed by earlier calls would otherwise be reused without raising RSS
    _CLEAR_REFS.write_text("5")  # reset the peak resident set size to the current one
    before = proc_kib("VmRSS")
    fn()
    return {"bytes": int((proc_kib("VmHWM") - before) * 1024), "method": "Linux VmHWM above VmRSS, after malloc_trim"}
