"""The measurement harness on work of known cost, its statistics, static costs, and no network."""
from __future__ import annotations

import time

import pytest
import torch

from audiofootprint.energy import MeasureSettings, TrackerSettings, measure, spread
from audiofootprint.energy.static import count_flops, peak_memory_bytes
from audiofootprint.vocoders.base import Vocoder, parameter_count

FAST = MeasureSettings(warmup=1, windows=3, min_window_s=0.25, min_repeats=3, idle_windows=1)


@pytest.fixture
def tracker_settings(tmp_path):
    return TrackerSettings(country_iso3="FRA", output_dir=str(tmp_path / "codecarbon"))




def test_spread_by_hand():
    stats = spread([4.0, 1.0, 3.0, 2.0])
    assert stats == {"median": 2.5, "q1": 1.75, "q3": 3.25, "min": 1.0, "max": 4.0, "n": 4}
    assert spread([7.0])["q1"] == 7.0


def test_sleep_has_the_time_it_sleeps(tracker_settings, no_network):
    result = measure(lambda: time.sleep(0.02), label="sleep", audio_seconds=0.5, samples=8000,
                     settings=FAST, tracker_settings=tracker_settings)
    summary = result.summary()
    assert len(result.windows) == 3
    for window in result.windows:
        assert window.calls >= 3 and window.wall_s >= 0.25
    assert len(result.call_times_s) == sum(w.calls for w in result.windows)
    assert summary["per_call"]["wall_s"]["median"] == pytest.approx(0.02, rel=0.25)
    assert summary["per_call"]["cpu_s"]["median"] < 0.005  # sleeping uses no CPU
    assert summary["real_time_factor"]["median"] == pytest.approx(summary["per_call"]["wall_s"]["median"] / 0.5)
    assert summary["samples_per_s"]["median"] == pytest.approx(8000 / summary["per_call"]["wall_s"]["median"], rel=0.05)
    # energy is counted for every part, and per audio second is per call / audio seconds
    assert summary["per_call"]["energy_j"]["median"] > 0
    assert summary["energy_j_per_audio_s"]["median"] == pytest.approx(summary["per_call"]["energy_j"]["median"] / 0.5)
    # sleeping costs what idle costs: net of idle is small next to gross
    assert abs(summary["net_energy_j_per_audio_s"]["median"]) < 0.2 * summary["energy_j_per_audio_s"]["median"]


def test_busy_loop_uses_its_wall_time_in_cpu(tracker_settings):
    """A call that burns 30 ms of CPU is counted as 30 ms of CPU, and at least that much wall time
    (more when other processes share the cores: the loop counts CPU time, so load cannot fail it)."""
    def busy():
        end = time.process_time() + 0.03
        while time.process_time() < end:
            pass
    result = measure(busy, label="busy", audio_seconds=1.0, samples=1, settings=FAST,
                     tracker_settings=tracker_settings)
    summary = result.summary()
    assert summary["per_call"]["cpu_s"]["median"] == pytest.approx(0.03, rel=0.3)
    assert summary["per_call"]["wall_s"]["median"] >= 0.9 * summary["per_call"]["cpu_s"]["median"]
    q = summary["per_call"]["wall_s"]
    assert q["min"] <= q["q1"] <= q["median"] <= q["q3"] <= q["max"]


def test_methods_and_hardware_are_reported(tracker_settings):
    result = measure(lambda: None, label="noop", audio_seconds=1.0, samples=1,
                     settings=MeasureSettings(warmup=0, windows=1, min_window_s=0.05, min_repeats=1, idle_windows=1),
                     tracker_settings=tracker_settings)
    methods = result.methods
    assert methods["cpu"].startswith(("RAPL", "estimate", "Intel", "Windows"))
    assert methods["ram"].startswith("estimate") and methods["gpu"]
    assert result.hardware["country_iso3"] == "FRA" and result.hardware["cpu_count"] >= 1
    record = result.as_dict()
    assert record["tracker"]["country_iso3"] == "FRA" and "summary" in record and len(record["windows"]) == 1


@pytest.mark.parametrize("settings", [
    MeasureSettings(windows=0), MeasureSettings(min_repeats=0), MeasureSettings(min_window_s=0),
])
def test_bad_settings_are_refused(settings, tracker_settings):
    with pytest.raises(ValueError):
        measure(lambda: None, label="x", audio_seconds=1, samples=1, settings=settings,
                tracker_settings=tracker_settings)


def test_static_costs_of_a_convolution():
    conv = torch.nn.Conv1d(80, 64, 5, padding=2)
    x = torch.randn(1, 80, 100)
    assert parameter_count(conv) == 80 * 64 * 5 + 64
    assert count_flops(lambda: conv(x)) == 2 * 80 * 64 * 5 * 100  # multiply-adds x 2
    memory = peak_memory_bytes(lambda: torch.ones(25_000_000).sum())  # a 100 MB tensor
    assert memory["bytes"] == pytest.approx(100e6, rel=0.15)


def test_a_vocoders_weights_at_rest_and_on_disk():
    """A vocoder of one float32 convolution: its weights take 4 bytes per parameter at rest; its
    shipped file (torch.save of the state dict) that plus a little pickle framing."""
    class OneConv(Vocoder):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(80, 64, 5, padding=2)

    model = OneConv()
    assert model.num_params() == 80 * 64 * 5 + 64
    assert model.weight_bytes() == (80 * 64 * 5 + 64) * 4
    assert model.weight_bytes() < model.artifact_bytes() < model.weight_bytes() + 4096
    assert model.engine_threads() == torch.get_num_threads()


def test_the_cpu_signature_tells_apart_cpus_that_share_a_model_name():
    """Cloud VMs show "AMD EPYC" for Zen 3 and Zen 4 alike: the label must carry family, model and ISA flags."""
    from audiofootprint.energy.tracker import cpu_signature, hardware_label

    signature = cpu_signature()
    assert "family" in signature and "model" in signature
    zen3 = {"cpu_model": "AMD EPYC", "cpu_signature": "AuthenticAMD family 25 model 1 stepping 1; avx2 fma"}
    zen4 = {"cpu_model": "AMD EPYC", "cpu_signature": "AuthenticAMD family 25 model 17 stepping 1; avx2 fma avx512f"}
    assert hardware_label(zen3) != hardware_label(zen4)
    assert hardware_label({"cpu_model": "AMD EPYC"}) == "AMD EPYC"  # records made before signatures


def test_a_fallback_tdp_is_said_in_the_method_label():
    """codecarbon guesses 4 W per thread for a CPU its table does not know: the label must say so."""
    from types import SimpleNamespace

    from audiofootprint.energy.tracker import _tdp_origin

    assert "FALLBACK TDP" in _tdp_origin(SimpleNamespace(_is_generic_tdp=False), "AMD EPYC")
    assert _tdp_origin(SimpleNamespace(_is_generic_tdp=False), "AMD EPYC 7763 64-Core Processor") == ""
    assert "could not be read" in _tdp_origin(SimpleNamespace(_is_generic_tdp=True), "Unknown")
