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
                model = getattr(part, "_model", None) or "this CPU"
                label += f" ({getattr(part, '_tdp', '?')} W TDP for {model}{_tdp_origin(part, model)})"
            methods["cpu"] = label
        elif kind == "GPU":
            methods["gpu"] = "NVML total-energy counter"
        elif kind == "RAM":
            mode = getattr(part, "_tracking_mode", "machine")
            methods["ram"] = f"estimate: codecarbon RAM power model ({mode} mode)"
    return methods


def _tdp_origin(part, model: str) -> str:
    """``""`` when codecarbon read the CPU's TDP in its own table; else why the TDP is a stand-in (said
    loudly: a fallback TDP makes every joule of the machine a guess, far from its real draw)."""
    from codecarbon.core.cpu import DEFAULT_POWER_PER_CORE, TDP

    if getattr(part, "_is_generic_tdp", False):
        return ": codecarbon's generic TDP, the CPU model could not be read"
    try:
        known = TDP.__new__(TDP)._get_cpu_power_from_registry(model)  # its table lookup, without re-detecting
    except Exception:  # noqa: BLE001 - a codecarbon internal: if it changes, say that the origin is unknown
        return ": TDP origin unknown (codecarbon's table could not be read)"
    if known:
        return ""
    return (f": FALLBACK TDP, {DEFAULT_POWER_PER_CORE} W per thread, since codecarbon's CPU table does not know "
            "this model; energy is proportional to time at a guessed power")


def cpu_signature() -> str:
    """What tells CPUs apart where the model name does not (cloud VMs often show "AMD EPYC" for every
    generation): vendor, family, model and stepping, and the vector ISA extensions a vocoder's speed
    depends on. Read from /proc/cpuinfo; elsewhere, the platform's processor string."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    first = dict(line.split(":", 1) for line in text.split("\n\n")[0].splitlines() if ":" in line)
    info = {key.strip(): value.strip() for key, value in first.items()}
    flags = set(info.get("flags", "").split())
    isa = [flag for flag in ISA_FLAGS if flag in flags]
    return (f"{info.get('vendor_id', '?')} family {info.get('cpu family', '?')} model {info.get('model', '?')} "
            f"stepping {info.get('stepping', '?')}; {' '.join(isa) or 'no AVX2'}")


#: The vector extensions that change a model's speed on a CPU (int8, bf16 and fp16 paths, wide vectors).
ISA_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16",
             "amx_int8")


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


def hardware_label(hardware: dict) -> str:
    """The one-line name of the hardware a measurement ran on, as tables and fronts compare it:
    measurements compare only under the same label (the CPU model and its :func:`cpu_signature`)."""
    signature = hardware.get("cpu_signature")
    return f"{hardware['cpu_model']} ({signature})" if signature else str(hardware["cpu_model"])


def hardware_seen(tracker: OfflineEmissionsTracker, emissions) -> dict:
    """The hardware and location codecarbon reported for a window (an ``EmissionsData``)."""
    return {
        "cpu_model": emissions.cpu_model,
        "cpu_signature": cpu_signature(),
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
