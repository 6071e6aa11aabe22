"""Quantization schemes on small real vocoders: what each changes, how close it stays to float32,
and the schemes that do not apply recorded with their reason."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from audiofootprint.quantization import schemes
from audiofootprint.quantization.base import Calibration, NotApplicable
from audiofootprint.quantization.registry import apply
from audiofootprint.quantization.schemes import WeightOnlyQuantized, pack_int4, unpack_int4
from audiofootprint.evaluate import snr_db
from audiofootprint.quantization.devices import feasibility
from audiofootprint.quantization.summary import against_baseline
from audiofootprint.vocoders.hifigan import HiFiGAN
from audiofootprint.vocoders.vocos import Vocos

MEL = {"sample_rate": 16000, "n_fft": 1024, "win_length": 1024, "hop_length": 256, "n_mels": 80, "f_max": 8000.0}


def small_hifigan() -> HiFiGAN:
    torch.manual_seed(0)
    return HiFiGAN(resblock="2", upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
                   upsample_initial_channel=64, resblock_kernel_sizes=(3, 5, 7),
                   resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)), mel=MEL).for_inference()


def small_vocos() -> Vocos:
    torch.manual_seed(0)
    return Vocos(dim=64, intermediate_dim=128, num_layers=2, n_fft=1024,
                 mel={**MEL, "n_mels": 100}).for_inference()


def mels(model, count=3, frames=40) -> Calibration:
    generator = torch.Generator().manual_seed(1)
    return Calibration([torch.randn(1, model.mel.n_mels, frames, generator=generator) - 4.0 for _ in range(count)])


def close_to_fp32(model, quantized, mel) -> float:
    with torch.inference_mode():
        return snr_db(model(mel).double().numpy(), quantized(mel).double().numpy())


def test_snr_by_hand():
    reference = np.array([1.0, -1.0, 1.0, -1.0])
    assert snr_db(reference, reference * 0.9) == pytest.approx(10 * math.log10(4 / (4 * 0.01)))
    assert snr_db(reference, reference) == math.inf


@pytest.mark.parametrize("codes", [torch.tensor([[-8, 7, 0, 3, -1]]), torch.arange(-8, 8).reshape(2, 8)])
def test_int4_packing_round_trips(codes):
    codes = codes.to(torch.int8)
    packed = pack_int4(codes)
    assert packed.dtype == torch.uint8 and packed.shape[1] == math.ceil(codes.shape[1] / 2)
    assert torch.equal(unpack_int4(packed, codes.shape[1]), codes)


def test_weight_only_layer_dequantizes_within_half_a_step():
    conv = torch.nn.Conv1d(4, 6, 3)
    layer = WeightOnlyQuantized(conv, bits=8)
    scale = conv.weight.detach().abs().reshape(6, -1).amax(dim=1) / 127
    error = (layer.dequantized_weight() - conv.weight.detach()).abs().reshape(6, -1)
    assert torch.all(error <= scale[:, None] / 2 + 1e-7)
    assert layer.codes.dtype == torch.int8 and "weight" not in dict(layer.named_parameters(recurse=True))
    with pytest.raises(ValueError, match="bits must be 4 or 8"):
        WeightOnlyQuantized(conv, bits=3)


def test_weight_only_int8_and_int4_shrink_and_stay_close():
    model = small_hifigan()
    fp32_size = model.artifact_bytes()
    mel = mels(model).mels[0]
    int8 = apply("weight_int8", model, mels(model))
    int4 = apply("weight_int4", model, mels(model))
    assert all(p.dtype == torch.float32 and p.dim() == 1 for p in int8.model.parameters())  # only biases left
    assert 3.0 < fp32_size / int8.model.artifact_bytes() <= 4.0
    assert int4.model.artifact_bytes() < int8.model.artifact_bytes()
    assert close_to_fp32(model, int8.model, mel) > 30  # dB
    assert close_to_fp32(model, int4.model, mel) > 8
    assert close_to_fp32(model, int4.model, mel) < close_to_fp32(model, int8.model, mel)


def test_static_int8_quantizes_convolutions_through_fx_and_says_why_not_pt2e():
    model = small_hifigan()
    made = apply("static_int8", model, mels(model))
    assert "FX" in made.backend and "conv1d" in made.notes[0]
    weights = [v for v in made.model.state_dict().values() if isinstance(v, torch.Tensor) and v.is_quantized]
    assert weights and all(w.dtype == torch.qint8 for w in weights)
    assert model.weight_bytes() / made.model.weight_bytes() > 3.0  # int8 codes + per-channel scales, float32 biases
    assert close_to_fp32(model, made.model, mels(model).mels[0]) > 10


def test_static_int8_keeps_a_quiet_waveform():
    """A barely trained GAN whispers (peak ~1e-3): 8-bit tanh output would round it to silence."""
    model = small_hifigan()
    with torch.no_grad():
        model.conv_post.weight.mul_(1e-3)
        model.conv_post.bias.zero_()
    mel = mels(model).mels[0]
    with torch.inference_mode():
        assert model(mel).abs().max() < 1 / 256
    made = apply("static_int8", model, mels(model))
    assert "output layer and tanh in float" in made.backend
    assert close_to_fp32(model, made.model, mel) > 10


def test_dynamic_int8_on_linear_layers_and_not_applicable_without_them():
    vocos = small_vocos()
    made = apply("dynamic_int8", vocos, mels(vocos))
    kinds = {type(m).__module__ for m in made.model.modules() if "Linear" in type(m).__name__}
    assert any("quantized" in k for k in kinds)
    assert close_to_fp32(vocos, made.model, mels(vocos).mels[0]) > 20
    with pytest.raises(NotApplicable, match="no Linear or recurrent layers"):
        apply("dynamic_int8", small_hifigan(), mels(small_hifigan()))


def test_half_precision_needs_hardware(monkeypatch):
    model = small_hifigan()
    monkeypatch.setattr(schemes, "cpu_flags", lambda: {"avx2"})
    with pytest.raises(NotApplicable, match="avx512_bf16 or amx_bf16"):
        apply("bf16", model, mels(model))
    monkeypatch.setattr(schemes, "cpu_flags", lambda: {"avx512_bf16"})
    made = apply("bf16", model, mels(model))
    assert made.model.network.conv_pre.weight.dtype == torch.bfloat16
    with torch.inference_mode():
        assert made.model(mels(model).mels[0]).dtype == torch.float32


def test_unknown_scheme_and_empty_calibration():
    with pytest.raises(KeyError, match="unknown quantization scheme 'int2'"):
        apply("int2", small_hifigan(), mels(small_hifigan()))
    with pytest.raises(ValueError, match="calibration"):
        Calibration([])


def test_ratios_against_the_baseline_by_hand():
    table = pd.DataFrame([
        {"model": "a", "scheme": "fp32", "status": "ok", "size_bytes": 400.0, "weight_bytes": 390.0,
         "real_time_factor": 0.2, "energy_j_per_audio_s": 4.0, "pesq": 2.0},
        {"model": "a", "scheme": "weight_int8", "status": "ok", "size_bytes": 100.0, "weight_bytes": 97.5,
         "real_time_factor": 0.1, "energy_j_per_audio_s": 3.0, "pesq": 1.9},
        {"model": "a", "scheme": "fp16", "status": "not_applicable", "reason": "no hardware"},
    ])
    out = against_baseline(table, "fp32", "pesq").set_index("scheme")
    assert out.loc["weight_int8", "size_ratio"] == 4.0 and out.loc["weight_int8", "weight_ratio"] == 4.0
    assert out.loc["weight_int8", "speedup"] == 2.0 and out.loc["weight_int8", "energy_ratio"] == 0.75
    assert out.loc["weight_int8", "delta_pesq"] == pytest.approx(-0.1)
    assert math.isnan(out.loc["fp16", "size_ratio"])


def test_feasibility_against_device_ram():
    variants = pd.DataFrame([
        {"model": "a", "scheme": "fp32", "status": "ok", "weight_bytes": 4e6, "peak_memory_bytes": 2e6,
         "real_time_factor": 0.5},
        {"model": "a", "scheme": "weight_int4", "status": "ok", "weight_bytes": 0.5e6, "peak_memory_bytes": 0.2e6,
         "real_time_factor": 1.5},
    ])
    devices = pd.DataFrame([{"device": "tiny", "ram_bytes": 1e6}, {"device": "big", "ram_bytes": 1e9}])
    fit = feasibility(variants, devices).set_index("scheme")
    assert fit.loc["fp32", "footprint_mb"] == 6.0 and not fit.loc["fp32", "tiny"] and fit.loc["fp32", "big"]
    assert fit.loc["weight_int4", "tiny"] and not fit.loc["weight_int4", "real_time_here"]


def test_quantization_stages_through_dvc_on_the_ci_profile(benchmarked):
    """Every (model, scheme) stage, the summary and the notebook, in the benchmark's temporary copy."""
    import json

    from conftest import QUANTIZATION_SCHEMES, QUANTIZED_MODELS, run

    project, _ = benchmarked
    first = run(["dvc", "repro", "quantize_report"], project)
    for model in QUANTIZED_MODELS:
        for scheme in QUANTIZATION_SCHEMES:
            assert f"Running stage 'quantize@{model}-{scheme}'" in first.stdout
    model = QUANTIZED_MODELS[0]
    variant = lambda scheme: json.loads((project / f"results/quantize/{model}/{scheme}/metrics.json").read_text())  # noqa: E731
    assert variant("dynamic_int8") == {"model": model, "scheme": "dynamic_int8", "engine": "torch",
                                       "status": "not_applicable", "reason": variant("dynamic_int8")["reason"]}
    assert "no Linear or recurrent layers" in variant("dynamic_int8")["reason"]
    fp32, static, int4 = variant("fp32"), variant("static_int8"), variant("weight_int4")
    assert fp32["status"] == static["status"] == int4["status"] == "ok"
    assert "FX graph mode" in static["backend"]
    assert fp32["size_bytes"] / static["size_bytes"] > 3.5 and fp32["size_bytes"] / int4["size_bytes"] > 6.0
    assert "snr_to_fp32_db" not in fp32["quality"] and static["quality"]["snr_to_fp32_db"]["mean"] > 5
    assert static["energy_method"]["cpu"] and static["real_time_factor"]["n"] >= 3
    mixed = variant("ort_mixed_int8")
    assert mixed["engine"] == "onnxruntime" and fp32["engine"] == "torch" and mixed["engine_threads"] == 2
    assert "ONNX Runtime" in mixed["backend"] and fp32["size_bytes"] / mixed["size_bytes"] > 3.0
    summary = json.loads((project / "results/quantize_summary/metrics.json").read_text())
    assert summary["variants_measured"] == 4
    assert set(summary["by_scheme"]) == {"static_int8", "weight_int4", "ort_mixed_int8"}
    chosen = summary["mixed_precision"][f"{model}/ort_mixed_int8"]
    curve = pd.read_csv(project / "results/quantize_summary/mixed_precision_curve.csv")
    assert len(curve) >= 3 and curve["chosen"].sum() == 1 and curve["within_budget"].iloc[0]
    assert chosen["ops_quantized"] == int(curve.loc[curve["chosen"], "ops_quantized"].iloc[0])
    damage = pd.read_csv(project / "results/quantize_summary/mixed_precision_damage.csv")
    assert len(damage) >= curve["ops_quantized"].max()
    assert len(damage) == chosen["ops"] and damage["mrstft_per_gmac"].is_monotonic_increasing  # the default order
    assert f"{model}/dynamic_int8" in summary["not_applicable"] and not summary["missing"]
    table = pd.read_csv(project / "results/quantize_summary/variants.csv")
    assert len(table) == len(QUANTIZATION_SCHEMES) * len(QUANTIZED_MODELS)
    html = (project / "reports/quantize.html").read_text()
    assert "Embedded feasibility" in html and "not_applicable" in html and "Mixed precision found by measurement" in html
    assert (project / "results/quantize_summary/figures/pareto.png").read_bytes()[:4] == b"\x89PNG"
    second = run(["dvc", "repro", "quantize_report"], project)
    assert "Running stage" not in second.stdout


def test_static_int8_takes_torchao_pt2e_when_the_x86_quantizer_covers_every_layer():
    from audiofootprint.vocoders.base import Vocoder

    class Framewise(Vocoder):
        """Linear layers only (each mel frame -> hop samples): the x86 quantizer covers them."""

        feature_convention = "hifigan"

        def __init__(self):
            super().__init__(mel=MEL)
            self.hidden = torch.nn.Linear(80, 64)
            self.out = torch.nn.Linear(64, 256)

        def forward(self, mel):
            frames = torch.relu(self.hidden(mel.transpose(1, 2)))
            return torch.tanh(self.out(frames)).reshape(mel.shape[0], -1)

    torch.manual_seed(0)
    model = Framewise().eval()
    calibration = Calibration(mels(model, count=1, frames=40).mels + mels(model, count=1, frames=57).mels)  # lengths differ
    made = apply("static_int8", model, calibration)
    assert made.backend.startswith("torchao pt2e") and not made.notes
    assert close_to_fp32(model, made.model, mels(model, count=1, frames=23).mels[0]) > 15

    class SamplesWithoutGrad(Framewise):
        """Inference wrapped in torch.no_grad (as DiffWave's sampler is): the export hides its layers."""

        @torch.no_grad()
        def forward(self, mel):
            return super().forward(mel)

    torch.manual_seed(0)
    hidden = apply("static_int8", SamplesWithoutGrad().eval(), calibration)  # falls back to FX, saying why
    assert "FX" in hidden.backend and "hides the model's layers" in hidden.notes[0]


def test_ratios_when_no_variant_of_a_model_was_measured():
    table = pd.DataFrame([{"model": "a", "scheme": "fp32", "status": "failed", "reason": "silence"},
                          {"model": "a", "scheme": "bf16", "status": "not_applicable", "reason": "no hardware"}])
    out = against_baseline(table, "fp32", "pesq")
    assert out["size_ratio"].isna().all() and out["delta_pesq"].isna().all()
