"""codecarbon's offline tracker, configured explicitly, and what it says about its own method.

Only :class:`codecarbon.OfflineEmissionsTracker` is used: offline, the online tracker silently
assumes Quebec's grid. Location and PUE always come from configuration.
"""
from __future__ import annotations

import logging
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from codecarbon import OfflineEmissionsTracker

from audiofootprint.paths import CODECARBON_DIR

#: Readable names of codecarbon's CPU power modes.
CPU_METHODS = {
    "intel_rapl": "RAPL energy counter",
    "intel_power_gadget": "Intel Power Gadget energy counter",
    "windows_emi": "Windows EMI energy counter",
    "cpu_load": "estimate: CPU load x TDP",
    "constant": "estimate: constant TDP share",
}


@dataclass(frozen=True)
class TrackerSettings:
    """Where the machine is and how codecarbon should track it."""

    country_iso3: str = "FRA"
    pue: float = 1.0
    tracking_mode: str = "process"
    measure_power_secs: float = 1.0
    output_dir: str = str(CODECARBON_DIR)

    def as_dict(self) -> dict:
        return asdict(self)


def open_tracker(settings: TrackerSettings) -> OfflineEmissionsTracker:
    """An offline tracker for start_task/stop_task windows; nothing is written to disk or network."""
    Path(settings.output_dir).mkdir(parents=True, exist_ok=True)
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    return OfflineEmissionsTracker(
        country_iso_code=settings.country_iso3,
        pue=settings.pue,
        tracking_mode=settings.tracking_mode,
        measure_power_secs=settings.measure_power_secs,
        output_dir=settings.output_dir,
        output_methods=[],  # measurements go to results/ through the harness, not codecarbon files
        log_level="error",
        allow_multiple_runs=True,
    )


def measurement_methods(tracker: OfflineEmissionsTracker) -> dict[str, str]:
    """How codecarbon obtains each part's energy on this machine (counter or estimate)."""
    methods = {"cpu": "not measured", "gpu": "no GPU seen", "ram": "not measured"}
    for part in getattr(tracker, "_hardware", []):
        kind = type(part).__name__
        if kind == "CPU":
            mode = getattr(part, "_mode", "unknown")
            label = CPU_METHODS.get(mode, f"codecarbon mode {mode}")
            if mode in ("cpu_load", "constant"):
                label += f" ({getattr(part, '_tdp', '?')} W TDP for {getattr(part, '_model', 'this CPU')})"
            methods["cpu"] = label
        elif kind == "GPU":
            methods["gpu"] = "NVML total-energy counter"
        elif kind == "RAM":
            mode = getattr(part, "_tracking_mode", "machine")
            methods["ram"] = f"estimate: codecarbon RAM power model ({mode} mode)"
    return methods


def method_kind(label: str) -> str:
    """How one codecarbon method label obtained its energy: measured, estimate, none or unknown."""
    if label.startswith("estimate"):
        return "estimate"
    if "counter" in label:
        return "measured"
    if label in ("no GPU seen", "not measured"):
        return "none"
    return "unknown"


def overall_method(methods: dict[str, str]) -> str:
    """One label for an energy figure summed over parts: measured only if every counted part is."""
    kinds = {method_kind(label) for label in methods.values()} - {"none"}
    if not kinds or "unknown" in kinds:
        return "unknown"
    if kinds == {"measured"}:
        return "measured"
    if kinds == {"estimate"}:
        return "estimate"
    return "partly estimated"


def hardware_seen(tracker: OfflineEmissionsTracker, emissions) -> dict:
    """The hardware and location codecarbon reported for a window (an ``EmissionsData``)."""
    return {
        "cpu_model": emissions.cpu_model,
        "cpu_count": emissions.cpu_count,
        "gpu_model": emissions.gpu_model or None,
        "gpu_count": emissions.gpu_count,
        "ram_total_gb": emissions.ram_total_size,
        "os": emissions.os or platform.platform(),
        "country_iso3": emissions.country_iso_code,
        "tracking_mode": emissions.tracking_mode,
        "pue": emissions.pue,
        "codecarbon_version": emissions.codecarbon_version,
    }
