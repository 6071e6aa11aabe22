"""Measure what one call of a function costs: time, energy (by part), CO2e, with their spread.

The callable (typically one synthesis of a fixed mel input) runs a few warm-up times, then in
``windows`` measurement windows; each window repeats the call until it has lasted at least
``min_window_s`` seconds and run at least ``min_repeats`` times, inside one codecarbon task.
Energy is read per window (codecarbon's resolution); time per call. An idle baseline measured
the same way (sleeping) gives the machine's idle power, so figures come gross and net of idle.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from audiofootprint.energy.tracker import TrackerSettings, hardware_seen, measurement_methods, open_tracker

#: Joules per kilowatt-hour: the one conversion between codecarbon's kWh and the joules reported here.
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how often to measure (set per profile in conf/energy)."""

    warmup: int = 2
    windows: int = 5
    min_window_s: float = 3.0
    min_repeats: int = 3
    idle_windows: int = 3


@dataclass
class Window:
    """One codecarbon task: ``calls`` calls of the function, their time and energy."""

    calls: int
    wall_s: float
    cpu_s: float
    cpu_j: float
    gpu_j: float
    ram_j: float
    co2e_kg: float

    @property
    def energy_j(self) -> float:
        return self.cpu_j + self.gpu_j + self.ram_j


def spread(values: list[float]) -> dict:
    """Median, interquartile range (q1, q3), min, max and count of ``values``."""
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {"median": statistics.median(ordered), "q1": q1, "q3": q3,
            "min": ordered[0], "max": ordered[-1], "n": len(ordered)}


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _window(tracker, name: str, fn: Callable[[], object], settings: MeasureSettings, device: str,
            call_times: list[float] | None) -> tuple[Window, object]:
    _synchronize(device)
    tracker.start_task(name)
    start_wall, start_cpu, calls = time.perf_counter(), time.process_time(), 0
    while True:
        before = time.perf_counter()
        fn()
        if call_times is not None:
            _synchronize(device)
            call_times.append(time.perf_counter() - before)
        calls += 1
        if calls >= settings.min_repeats and time.perf_counter() - start_wall >= settings.min_window_s:
            break
    _synchronize(device)
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    data = tracker.stop_task(name)
    return Window(calls=calls, wall_s=wall, cpu_s=cpu, cpu_j=data.cpu_energy * J_PER_KWH,
                  gpu_j=data.gpu_energy * J_PER_KWH, ram_j=data.ram_energy * J_PER_KWH, co2e_kg=data.emissions), data


@dataclass
class Measurement:
    """Everything measured about one callable; :meth:`as_dict` is what results/ store."""

    label: str
    audio_seconds: float
    samples: int
    device: str
    settings: dict
    tracker: dict
    methods: dict
    hardware: dict
    windows: list[Window]
    idle: list[Window]
    call_times_s: list[float] = field(repr=False)

    def idle_power_w(self) -> dict[str, float]:
        """Mean idle power per part over the idle windows (W)."""
        duration = sum(w.wall_s for w in self.idle)
        return {part: sum(getattr(w, f"{part}_j") for w in self.idle) / duration
                for part in ("cpu", "gpu", "ram")}

    def summary(self) -> dict:
        """Per-call and per-second-of-audio figures, each as a median with its spread."""
        idle = self.idle_power_w()
        idle_total = sum(idle.values())
        per_call = {
            "energy_j": spread([w.energy_j / w.calls for w in self.windows]),
            "cpu_j": spread([w.cpu_j / w.calls for w in self.windows]),
            "gpu_j": spread([w.gpu_j / w.calls for w in self.windows]),
            "ram_j": spread([w.ram_j / w.calls for w in self.windows]),
            "net_energy_j": spread([(w.energy_j - idle_total * w.wall_s) / w.calls for w in self.windows]),
            "co2e_kg": spread([w.co2e_kg / w.calls for w in self.windows]),
            "wall_s": spread(self.call_times_s),
            "cpu_s": spread([w.cpu_s / w.calls for w in self.windows]),
        }
        audio = self.audio_seconds
        return {
            "per_call": per_call,
            "energy_j_per_audio_s": spread([w.energy_j / w.calls / audio for w in self.windows]),
            "net_energy_j_per_audio_s": spread(
                [(w.energy_j - idle_total * w.wall_s) / w.calls / audio for w in self.windows]),
            "energy_kwh_per_audio_s": per_call["energy_j"]["median"] / audio / J_PER_KWH,
            "real_time_factor": spread([t / audio for t in self.call_times_s]),
            "samples_per_s": spread([self.samples / t for t in self.call_times_s]),
            "idle_power_w": idle,
            "mean_power_w": sum(w.energy_j for w in self.windows) / sum(w.wall_s for w in self.windows),
        }

    def as_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("windows", "idle", "call_times_s")}
        out["windows"] = [asdict(w) | {"energy_j": w.energy_j} for w in self.windows]
        out["idle"] = [asdict(w) | {"energy_j": w.energy_j} for w in self.idle]
        out["summary"] = self.summary()
        return out


def check_settings(settings: MeasureSettings) -> None:
    """Refuse settings that cannot measure: at least one window of at least one call, lasting some time."""
    for name in ("windows", "min_repeats"):
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(settings, name)}")
    if not settings.min_window_s > 0:
        raise ValueError(f"min_window_s must be positive, got {settings.min_window_s}")


def measure(fn: Callable[[], object], *, label: str, audio_seconds: float, samples: int,
            settings: MeasureSettings = MeasureSettings(), tracker_settings: TrackerSettings = TrackerSettings(),
            device: str = "cpu") -> Measurement:
    """Measure one call of ``fn`` (producing ``audio_seconds`` of audio, ``samples`` samples)."""
    if audio_seconds <= 0 or samples <= 0:
        raise ValueError(f"audio_seconds and samples must be positive, got {audio_seconds}, {samples}")
    check_settings(settings)
    tracker = open_tracker(tracker_settings)
    for _ in range(settings.warmup):
        fn()
    _synchronize(device)
    call_times: list[float] = []
    windows, last = [], None
    for number in range(settings.windows):
        window, last = _window(tracker, f"{label}-{number}", fn, settings, device, call_times)
        windows.append(window)
    idle_settings = MeasureSettings(min_window_s=settings.min_window_s, min_repeats=1)
    idle = [_window(tracker, f"idle-{n}", lambda: time.sleep(0.05), idle_settings, device, None)[0]
            for n in range(max(1, settings.idle_windows))]
    return Measurement(
        label=label, audio_seconds=audio_seconds, samples=samples, device=device,
        settings=asdict(settings), tracker=tracker_settings.as_dict(), methods=measurement_methods(tracker),
        hardware=hardware_seen(tracker, last), windows=windows, idle=idle, call_times_s=call_times,
    )
