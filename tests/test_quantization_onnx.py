"""The onnxruntime engine and its quantization schemes on small vocoders: export parity, what each
scheme changes in the graph, closeness to float32, the mixed-precision search keeping a layer that
int8 would break in float, and the models that cannot run on the engine recorded with their reason."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from audiofootprint.engines import ExportError, OnnxVocoder, export_onnx, on_onnxruntime
from audiofootprint.evaluate import snr_db
from audiofootprint.quantization.base import Calibration, MixedBudget, NotApplicable
from audiofootprint.quantization.onnx_schemes import add_while_within, int8_weights, op_macs
from audiofootprint.quantization.registry import SCHEMES, apply
from audiofootprint.vocoders.base import Vocoder
from test_quantization import mels, small_hifigan

MEL = {"sample_rate": 16000, "n_fft": 1024, "win_length": 1024, "hop_length": 256, "n_mels": 80, "f_max": 8000.0}


def graph_of(model: OnnxVocoder) -> onnx.GraphProto:
    return onnx.load_from_string(model.graph).graph


def snr_to(model, other, mel) -> float:
    with torch.inference_mode():
        return snr_db(model(mel).double().numpy(), other(mel).double().numpy())


def test_export_matches_torch_at_any_length():
    model = small_hifigan()
    calibration = mels(model, count=1, frames=40)
    runner, difference = on_onnxruntime(model, calibration.mels[0])
    assert difference < 1e-4 and runner.engine == "onnxruntime" and model.engine == "torch"
    longer = torch.randn(2, 80, 75) - 4.0  # another batch size and length than the export example
    with torch.inference_mode():
        assert runner(longer).shape == (2, 75 * 256)
        assert float((runner(longer) - model(longer)).abs().max()) < 1e-4
    assert runner.num_params() == pytest.approx(model.num_params(), rel=0.01)
    assert runner.weight_bytes() == pytest.approx(model.weight_bytes(), rel=0.01)
    assert runner.artifact_bytes() == len(runner.graph) == pytest.approx(model.artifact_bytes(), rel=0.05)


def test_each_scheme_changes_what_it_should():
    model = small_hifigan()
    calibration = mels(model)
    mel = calibration.mels[0]
    fp32 = apply("ort_fp32", model, calibration)
    assert "max |ONNX Runtime - torch|" in fp32.notes[0] and SCHEMES["ort_fp32"].engine == "onnxruntime"
    float_weights = [t for t in graph_of(fp32.model).initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 3]

    weight = apply("ort_weight_int8", model, calibration)
    kinds = {n.op_type for n in graph_of(weight.model).node}
    int8 = [t for t in graph_of(weight.model).initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 3]
    assert "DequantizeLinear" in kinds and "QuantizeLinear" not in kinds  # weights only: activations stay float
    assert len(int8) == len(float_weights) and not [t for t in graph_of(weight.model).initializer
                                                     if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 3]
    assert fp32.model.artifact_bytes() / weight.model.artifact_bytes() > 3.0  # biases, scales stay float
    assert snr_to(model, weight.model, mel) > 25

    static = apply("ort_static_int8_minmax", model, calibration)
    kinds = {n.op_type for n in graph_of(static.model).node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= kinds  # activations quantized too
    assert fp32.model.artifact_bytes() / static.model.artifact_bytes() > 2.5  # the QDQ nodes take room
    assert fp32.model.weight_bytes() / static.model.weight_bytes() > 3.0
    assert snr_to(model, static.model, mel) > 5
    assert "MinMax calibration" in static.backend and "calibrated on 3 training-split mels of 40 frames" in static.notes


def test_entropy_calibration_chooses_narrower_ranges_than_minmax():
    """With 2048 histogram bins, Entropy clips rare extremes: some activation range is narrower than the
    min-max range of the same tensor (with quantize_static's own 128 bins, both were equal)."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    from audiofootprint.quantization import onnx_schemes
    from audiofootprint.vocoders.hifigan import HiFiGAN

    torch.manual_seed(0)  # a HiFi-GAN of 8 weighted ops: Entropy's search over 2048 bins is per tensor
    model = HiFiGAN(resblock="2", upsample_rates=(16, 16), upsample_kernel_sizes=(32, 32), upsample_initial_channel=32,
                    resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 2),), mel=MEL).for_inference()
    calibration = mels(model)
    with onnx_schemes._graphs(model, calibration, "cpu") as graphs:
        assert len(graphs.weighted_nodes()) == 8
        before = graphs.fp32.read_bytes()
        entropy = graphs.ranges("entropy", calibration)
        assert graphs.fp32.read_bytes() == before  # the float graph is read, not changed
        ranges = graphs.ranges("minmax", calibration)
        assert load_tensors_data(graphs.folder / "calibration_minmax.json").data.keys() == ranges.data.keys()
    widths = {name: (float(np.ptp(np.asarray(entropy[name].range_value))),
                     float(np.ptp(np.asarray(ranges[name].range_value)))) for name in ranges.data}
    assert set(widths) == set(entropy.data)
    assert all(e <= m * (1 + 1e-6) for e, m in widths.values())
    assert any(e < 0.9 * m for e, m in widths.values())
    made = apply("ort_static_int8_entropy", model, calibration)
    assert "Entropy calibration" in made.backend and snr_to(model, made.model, calibration.mels[0]) > 0


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_in_memory_quantization_is_quantize_static(method, tmp_path):
    """The search quantizes in memory (ONNX Runtime's QDQ quantizer on the shape-inferred graph, the
    calibration ranges computed once): the same bytes as ``quantize_static`` with the same settings,
    for one op and for all of them."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from audiofootprint.quantization import onnx_schemes
    from audiofootprint.quantization.base import CALIBRATION_METHODS

    model = small_hifigan()
    calibration = mels(model)
    with onnx_schemes._graphs(model, calibration, "cpu") as graphs, onnx_schemes._quiet_onnxruntime():
        nodes = graphs.weighted_nodes()
        for chosen in (nodes[1:2], nodes):
            out = tmp_path / "static.onnx"
            quantize_static(str(graphs.fp32), str(out), onnx_schemes._Reader(calibration.mels),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            op_types_to_quantize=list(onnx_schemes.WEIGHTED_OPS), nodes_to_quantize=chosen,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[method]))
            in_memory = onnx_schemes._quantize_static(graphs, calibration, method, chosen)
            assert in_memory.SerializeToString() == out.read_bytes()


def test_histogram_calibration_takes_mels_of_different_lengths():
    model = small_hifigan()
    calibration = Calibration(mels(model, count=1, frames=40).mels + mels(model, count=1, frames=57).mels)
    made = apply("ort_static_int8_percentile", model, calibration)
    assert "Percentile" in made.backend and snr_to(model, made.model, calibration.mels[0]) > 5


def test_int8_weights_by_hand():
    """Each output channel of a conv weight: int8 codes and one scale, within half a step of the original."""
    weight = np.array([[[0.5, -1.0, 0.25]], [[2.0, 0.0, -0.1]]], dtype=np.float32)  # [out 2, in 1, k 3]
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 5])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 3])],
        [numpy_helper.from_array(weight, "w")])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    assert int8_weights(model) == 1
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["DequantizeLinear", "Conv"]
    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_allclose(stored["w_scale"], [1.0 / 127, 2.0 / 127], rtol=1e-6)
    np.testing.assert_array_equal(stored["w_int8"][0, 0], [64, -127, 32])  # 0.5 * 127 = 63.5 rounds to even 64
    np.testing.assert_array_equal(stored["w_int8"][1, 0], [127, 0, -6])  # -0.1 * 63.5 = -6.35
    step = stored["w_scale"].reshape(2, 1, 1)
    assert np.all(np.abs(stored["w_int8"] * step - weight) <= step / 2 + 1e-7)


class Sensitive(Vocoder):
    """Three convolutions; the middle one reads a constant channel of 1000 beside the signal, so
    that int8 activations (a step of about 4) erase the signal it carries. Its weights ignore that
    channel, so in float it changes nothing."""

    def __init__(self):
        super().__init__(mel=MEL)
        torch.manual_seed(0)
        self.first = nn.Conv1d(80, 16, 3, padding=1)
        self.sensitive = nn.Conv1d(17, 16, 3, padding=1)
        self.last = nn.Conv1d(16, 256, 1)
        with torch.no_grad():
            self.sensitive.weight[:, 16] = 0.0
        self.feature_convention = "hifigan"

    def forward(self, mel):
        x = torch.tanh(self.first(mel + 4.0))
        x = torch.cat([x, torch.ones_like(x[:, :1]) * 1000.0], dim=1)
        x = torch.tanh(self.sensitive(x))
        return torch.tanh(self.last(x)).transpose(1, 2).reshape(mel.shape[0], -1) * 0.5


def test_mixed_precision_keeps_the_sensitive_layer_in_float():
    model = Sensitive().eval()
    calibration = mels(model, count=3, frames=64)
    with torch.inference_mode():  # the "recordings": the float model's own output
        waves = [model(mel)[0] for mel in calibration.mels]
    budget = MixedBudget(metric="mrstft", max_drop=0.5, search_utterances=2, damage_seconds=0.5, block=1,
                         order="damage")
    made = apply("ort_mixed_int8", model, Calibration(calibration.mels, waves, budget))
    search = made.details["mixed_precision"]
    assert [row["op"] for row in search["damage"]][-1] == "/sensitive/Conv"  # the most damaging alone
    assert search["chosen_ops"] == 2 and "/sensitive/Conv" not in search["order"][:2]
    assert [point["ops_quantized"] for point in search["curve"]] == [0, 1, 2, 3]
    assert [point["within_budget"] for point in search["curve"]] == [True, True, True, False]
    assert search["curve"][-1]["delta_mrstft"] > 0.5 > search["curve"][2]["delta_mrstft"]
    assert [point["chosen"] for point in search["curve"]] == [False, False, True, False]
    # the time of one call is measured along the search's path, not for the candidates it rejects
    assert search["curve"][-1]["seconds_per_call"] is None and search["curve"][2]["seconds_per_call"] > 0
    assert "2 of 3 weighted ops in int8" in made.notes[1]
    assert snr_to(model, made.model, calibration.mels[0]) > 10  # the full int8 graph: about 3.7 dB


class Upsampler(Vocoder):
    """A transposed convolution (x8) then a convolution, as HiFi-GAN's first stage."""

    def __init__(self):
        super().__init__(mel={**MEL, "hop_length": 8})
        self.up = nn.ConvTranspose1d(80, 8, 16, stride=8, padding=4)
        self.out = nn.Conv1d(8, 1, 7, padding=3)
        self.feature_convention = "hifigan"

    def forward(self, mel):
        return torch.tanh(self.out(self.up(mel))).reshape(mel.shape[0], -1)


def test_multiply_accumulates_of_each_weighted_op_by_hand(tmp_path):
    frames = 64
    for model, expected in [
        (Sensitive(), {"/first/Conv": 16 * frames * 80 * 3, "/sensitive/Conv": 16 * frames * 17 * 3,
                       "/last/Conv": 256 * frames * 16}),
        # ConvTranspose: every input element meets out-channels x kernel weights; the conv runs at 8x the rate
        (Upsampler(), {"/up/ConvTranspose": 80 * frames * 8 * 16, "/out/Conv": 1 * 8 * frames * 8 * 7}),
        (Dense(), {"/proj/MatMul": frames * 80 * 256}),
    ]:
        path = tmp_path / f"{type(model).__name__}.onnx"
        path.write_bytes(export_onnx(model.eval(), torch.randn(1, 80, 20)))  # exported at another length
        assert op_macs(path, frames) == expected


def test_mixed_precision_ordered_by_damage_per_multiply_accumulate():
    model = Sensitive().eval()
    calibration = mels(model, count=3, frames=64)
    with torch.inference_mode():
        waves = [model(mel)[0] for mel in calibration.mels]
    budget = MixedBudget(metric="mrstft", max_drop=0.5, search_utterances=2, damage_seconds=0.5, block=1,
                         order="damage_per_mac")
    made = apply("ort_mixed_int8", model, Calibration(calibration.mels, waves, budget))
    search = made.details["mixed_precision"]
    per_gmac = [row["mrstft_per_gmac"] for row in search["damage"]]
    assert per_gmac == sorted(per_gmac) and search["order"][-1] == "/sensitive/Conv"
    frames = round(0.5 * 16000 / 256)  # damage_seconds of mel
    assert {row["op"]: row["macs"] for row in search["damage"]}["/last/Conv"] == 256 * frames * 16
    assert search["chosen_ops"] == 2 and "per multiply-accumulate" in search["budget"]


def test_ops_added_block_by_block_past_the_ones_that_break_the_budget():
    tried = []

    def within(ops):  # "c" and "f" break the budget, whatever else is in int8
        tried.append("".join(ops))
        return not {"c", "f"} & set(ops)

    assert add_while_within(list("abcdefg"), 3, within) == list("abdeg")
    # a block beyond the budget is tried again op by op; a block within it is taken whole
    assert tried == ["abc", "a", "ab", "abc", "abdef", "abd", "abde", "abdef", "abdeg"]
    tried.clear()
    assert add_while_within(list("abcdefg"), 1, within) == list("abdeg") and len(tried) == 7
    assert add_while_within([], 4, within) == []


def test_mixed_precision_needs_a_budget_and_the_recordings():
    model = small_hifigan()
    with pytest.raises(ValueError, match="quantize.mixed_precision"):
        apply("ort_mixed_int8", model, mels(model))
    with pytest.raises(ValueError, match="waveforms"):
        apply("ort_mixed_int8", model, Calibration(mels(model).mels, budget=MixedBudget()))
    with pytest.raises(ValueError, match="quantize.mixed_precision.metric 'loudness'"):
        MixedBudget(metric="loudness")
    with pytest.raises(ValueError, match="method 'kl'"):
        MixedBudget(method="kl")
    with pytest.raises(ValueError, match="order 'random' is not one of damage, damage_per_mac"):
        MixedBudget(order="random")
    with pytest.raises(ValueError, match=r"quantize.mixed_precision.grid is not a setting .*known: block"):
        MixedBudget.from_params({"metric": "pesq", "grid": 8})
    assert MixedBudget.from_params({"block": 2}).block == 2


class Noisy(Vocoder):
    """Draws noise inside its forward, as diffusion and flow samplers do."""

    def __init__(self):
        super().__init__(mel=MEL)
        self.out = nn.Conv1d(80, 256, 1)
        self.feature_convention = "hifigan"

    def forward(self, mel):
        x = self.out(mel) + torch.randn_like(self.out(mel))
        return x.transpose(1, 2).reshape(mel.shape[0], -1)


class Dense(Vocoder):
    """A frame-wise linear vocoder: its weights are in a MatMul."""

    def __init__(self):
        super().__init__(mel=MEL)
        torch.manual_seed(0)
        self.proj = nn.Linear(80, 256)
        self.feature_convention = "hifigan"

    def forward(self, mel):
        return torch.tanh(self.proj(mel.transpose(1, 2) + 4.0)).reshape(mel.shape[0], -1)


def test_not_applicable_with_its_reason():
    noisy = Noisy().eval()
    with pytest.raises(ExportError, match="draws noise inside its graph"):
        export_onnx(noisy, torch.randn(1, 80, 20))
    with pytest.raises(NotApplicable, match="draws noise inside its graph"):
        apply("ort_fp32", noisy, mels(noisy))
    with pytest.raises(NotApplicable, match="no MatMul or Gemm"):
        apply("ort_dynamic_int8", small_hifigan(), mels(small_hifigan()))
    dense = Dense().eval()
    made = apply("ort_dynamic_int8", dense, mels(dense))
    assert "MatMulInteger" in {n.op_type for n in graph_of(made.model).node} or \
        "DynamicQuantizeMatMul" in {n.op_type for n in graph_of(made.model).node}
    assert snr_to(dense, made.model, mels(dense).mels[0]) > 10


def test_measure_a_model_file_on_either_engine(tmp_path, capsys):
    """A researcher's exported vocoder, measured by naming its file and its mel settings."""
    import json

    from audiofootprint import PROJECT_ROOT, cli
    from audiofootprint.vocoders.weights import sha256_of

    model = small_hifigan()
    example = torch.randn(1, 80, 20) - 4.0
    onnx_file, script_file = tmp_path / "mine.onnx", tmp_path / "mine.pt"
    onnx_file.write_bytes(export_onnx(model, example))
    torch.jit.save(torch.jit.trace(model, example), str(script_file))
    base = ["--root", str(PROJECT_ROOT), "measure", "--profile", "ci", "--mel", "sample_rate=16000", "f_max=8000"]
    for path, engine in ((onnx_file, "onnxruntime"), (script_file, "torch")):
        assert cli.main([*base, "--model-file", str(path), "--sha256", sha256_of(path), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["engine"] == engine and result["engine_threads"] >= 1 and result["label"] == path.name
        assert result["mel_settings"]["sample_rate"] == 16000 and "sha256 verified" in result["weights"]
        assert result["measurement"]["summary"]["real_time_factor"]["median"] > 0
    assert cli.main([*base, "--model-file", str(onnx_file)]) == 0
    assert "engine             onnxruntime" in capsys.readouterr().out
    for argv, message in (([*base, "--model-file", str(onnx_file), "--sha256", "0" * 64], "sha256"),
                          ([*base, "--model-file", str(tmp_path / "mine.h5")], "does not exist"),
                          ([*base, "--model-file", str(onnx_file), "--convention", "mine"], "--convention 'mine'"),
                          ([*base[:-3], "--mel", "hop=256", "--model-file", str(onnx_file)], "hop is not a mel setting"),
                          (base[:5], "name a configured vocoder")):
        assert cli.main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1, error


def test_measure_a_configured_vocoder_on_onnxruntime(capsys):
    import json

    from audiofootprint import PROJECT_ROOT, cli

    assert cli.main(["--root", str(PROJECT_ROOT), "measure", "hifigan_v3", "--profile", "ci", "--engine",
                     "onnxruntime", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["engine"] == "onnxruntime" and "exported to ONNX, max |ONNX Runtime - torch|" in result["weights"]
    assert result["flops_per_audio_s"] is None and "outside torch" in result["flops_method"]
