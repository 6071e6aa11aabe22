"""The polyphase rewrite of transposed convolutions: the same function as ONNX Runtime's ConvTranspose
at every length, its multiply-accumulates by hand, the weight layout by hand, the layers it leaves
alone, and the ONNX schemes' graphs without a ConvTranspose left for int8 to skip."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from audiofootprint.quantization.onnx_schemes import op_macs
from audiofootprint.quantization.polyphase import polyphase_weight, rewrite_transposed_convs
from audiofootprint.quantization.registry import apply
from test_quantization import mels, small_hifigan


def exported(layer: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    """``layer`` exported with input ``x`` whose batch and last dimension are dynamic."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(layer.eval(), (example,), buffer, dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch", example.dim() - 1: "frames"}})
    return onnx.load_from_string(buffer.getvalue())


def run(model: onnx.ModelProto, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})[0]


@pytest.mark.parametrize("kernel, stride, padding, output_padding, bias", [
    (16, 8, 4, 0, True),  # HiFi-GAN's x8 stages
    (4, 2, 1, 0, False),  # its x2 stages, without bias
    (7, 3, 1, 1, True),   # a kernel that is not a multiple of the stride, with output padding
    (4, 2, 0, 1, True),   # output padding past the phases' last frame: one frame of zeros added
    (3, 1, 1, 0, True),   # stride 1: one phase
])
def test_the_rewrite_computes_the_transposed_convolution(kernel, stride, padding, output_padding, bias):
    torch.manual_seed(0)
    layer = nn.ConvTranspose1d(6, 4, kernel, stride, padding=padding, output_padding=output_padding, bias=bias)
    graph = exported(layer, torch.randn(1, 6, 5))
    assert rewrite_transposed_convs(graph) == 1
    onnx.checker.check_model(graph)
    assert {node.op_type for node in graph.graph.node} == {"Conv", "Reshape", "Transpose", "Slice"}
    for frames in (1, 5, 23):
        x = torch.randn(2, 6, frames)
        with torch.inference_mode():
            expected = layer(x).numpy()
        got = run(graph, x)
        assert got.shape == expected.shape
        assert float(np.abs(got - expected).max()) < 1e-5


def test_the_rewrites_multiply_accumulates_by_hand(tmp_path):
    frames, layer = 10, nn.ConvTranspose1d(8, 4, 16, 8, padding=4)
    path = tmp_path / "up.onnx"
    path.write_bytes(exported(layer, torch.randn(1, 8, 5)).SerializeToString())
    before = op_macs(path, frames)
    graph = onnx.load(str(path))
    rewrite_transposed_convs(graph)
    onnx.save(graph, str(path))
    after = op_macs(path, frames)  # ONNX shape inference still knows every shape
    # K / stride = 2 taps per phase over frames + 1 positions (the last one only fills the tail)
    assert before == {"/ConvTranspose": 8 * frames * 4 * 16}
    assert after == {"/ConvTranspose_polyphase": 8 * 4 * (frames + 1) * 8 * 2}


def test_polyphase_weight_by_hand():
    weight = np.arange(1 * 2 * 5, dtype=np.float32).reshape(1, 2, 5)  # [in, out, K]: taps 0..4 and 5..9
    phases = polyphase_weight(weight, stride=2)  # ceil(5 / 2) = 3 taps, zero-padded to 6
    assert phases.shape == (4, 1, 3)
    # output channel r * out + co: phase r of channel co, taps j*2 + r reversed
    np.testing.assert_array_equal(phases[:, 0], [[4, 2, 0], [9, 7, 5], [0, 3, 1], [0, 8, 6]])


def test_layers_the_rewrite_leaves_alone():
    for layer, example in [(nn.ConvTranspose1d(4, 4, 4, 2, groups=2), torch.randn(1, 4, 5)),
                           (nn.ConvTranspose1d(4, 2, 3, 2, dilation=2), torch.randn(1, 4, 5)),
                           (nn.ConvTranspose2d(1, 1, (3, 4), stride=(1, 2)), torch.randn(1, 1, 5, 5))]:
        graph = exported(layer, example)
        assert rewrite_transposed_convs(graph) == 0
        assert [node.op_type for node in graph.graph.node] == ["ConvTranspose"]


def test_the_onnx_schemes_quantize_upsampling_as_convolutions():
    model = small_hifigan()  # three ConvTranspose1d upsampling stages
    calibration = mels(model)
    fp32 = apply("ort_fp32", model, calibration)
    static = apply("ort_static_int8_minmax", model, calibration)
    assert "its 3 ConvTranspose ops rewritten as polyphase Conv" in fp32.notes[0]
    for variant in (fp32, static):
        assert "ConvTranspose" not in {node.op_type for node in onnx.load_from_string(variant.model.graph).graph.node}
    with torch.inference_mode():
        longer = torch.randn(1, 80, 57) - 4.0
        assert float((fp32.model(longer) - model(longer)).abs().max()) < 1e-4
    # every weighted op of the int8 graph, upsampling included, reads int8 weights
    weights = [t for t in onnx.load_from_string(static.model.graph).graph.initializer if len(t.dims) == 3]
    assert weights and all(t.data_type == onnx.TensorProto.INT8 for t in weights)
    assert static.model.artifact_bytes() < 0.5 * fp32.model.artifact_bytes()  # biases and the graph stay float
