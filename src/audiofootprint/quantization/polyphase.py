"""Transposed convolutions rewritten as polyphase convolutions, so that int8 kernels apply to them.

ONNX Runtime's CPU provider has int8 kernels for Conv but none for ConvTranspose: a quantized
ConvTranspose is dequantized and computed in float between a DequantizeLinear and a QuantizeLinear.
A 1-D transposed convolution of stride ``s`` and kernel ``K`` is the same function as one ordinary
convolution with ``s`` times the output channels, one group per phase of the output (its polyphase
form), followed by interleaving the phases and cropping the padding:

    y[co, m*s + r] = sum_j sum_ci W[ci, co, j*s + r] * x[ci, m - j]          (before cropping)

is, for each phase ``r``, a convolution of ``x`` with the kernel taps ``W[:, :, r], W[:, :, s + r], ...``
(``ceil(K / s)`` taps, reversed because Conv correlates). Per output frame the rewrite does
``s * ceil(K / s)`` multiply-accumulates per input and output channel where the transposed
convolution does ``K`` (the same when ``K`` is a multiple of ``s``, as in HiFi-GAN and MelGAN), over
``ceil(K / s) - 1`` more frames at the edge, which the crop drops.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: The end index of an open-ended ONNX Slice.
SLICE_TO_END = np.iinfo(np.int64).max


def _attributes(node: onnx.NodeProto) -> dict:
    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


def rewritable(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> bool:
    """Whether ``node`` is a 1-D ConvTranspose this rewrite handles: weight a 3-D initializer, one
    group, no dilation, explicit padding (no ``auto_pad``, no ``output_shape``)."""
    if node.op_type != "ConvTranspose" or len(node.input) < 2 or node.input[1] not in initializers:
        return False
    attributes = _attributes(node)
    auto_pad = attributes.get("auto_pad", b"NOTSET")
    return (len(initializers[node.input[1]].dims) == 3 and attributes.get("group", 1) == 1
            and list(attributes.get("dilations", [1])) == [1] and "output_shape" not in attributes
            and auto_pad in (b"NOTSET", "NOTSET"))


def polyphase_weight(weight: np.ndarray, stride: int) -> np.ndarray:
    """The Conv weight ``[stride * out, in, ceil(K / stride)]`` of a ConvTranspose weight ``[in, out, K]``:
    output channel ``r * out + co`` holds phase ``r`` of output channel ``co``, its taps reversed."""
    channels_in, channels_out, kernel = weight.shape
    taps = math.ceil(kernel / stride)
    padded = np.pad(weight, ((0, 0), (0, 0), (0, taps * stride - kernel)))
    phases = padded.reshape(channels_in, channels_out, taps, stride)[:, :, ::-1, :]  # [in, out, tap, phase]
    return np.ascontiguousarray(phases.transpose(3, 1, 0, 2).reshape(stride * channels_out, channels_in, taps))


def rewrite_transposed_convs(model: onnx.ModelProto) -> int:
    """Replace, in place, every :func:`rewritable` ConvTranspose of ``model`` by its polyphase form
    (Conv, Reshape, Transpose, Reshape, Slice; the new Conv is named after the node it replaces with
    ``_polyphase``) and return how many were replaced."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    rewritten, nodes = 0, []
    for node in graph.node:
        if not rewritable(node, initializers):
            nodes.append(node)
            continue
        nodes.extend(_polyphase_nodes(graph, node, initializers))
        rewritten += 1
    if rewritten:
        used = {name for node in nodes for name in node.input}
        del graph.node[:]
        graph.node.extend(nodes)
        for tensor in [t for t in graph.initializer if t.name not in used]:
            graph.initializer.remove(tensor)
    return rewritten


def _polyphase_nodes(graph: onnx.GraphProto, node: onnx.NodeProto,
                     initializers: dict[str, onnx.TensorProto]) -> list[onnx.NodeProto]:
    attributes = _attributes(node)
    weight = numpy_helper.to_array(initializers[node.input[1]])
    channels_out, kernel = weight.shape[1], weight.shape[2]
    stride = int(attributes.get("strides", [1])[0])
    begin, end = (int(p) for p in attributes.get("pads", [0, 0]))
    output_padding = int(attributes.get("output_padding", [0])[0])
    taps = math.ceil(kernel / stride)
    # the phases give (frames + taps - 1) * stride samples; the transposed convolution keeps
    # stride * (frames - 1) + output_padding + kernel - begin - end of them, from ``begin`` on
    tail = taps * stride - kernel - output_padding + end
    extra = math.ceil(max(0, -tail) / stride)  # frames of zeros on the right when output padding reaches past
    tail += extra * stride
    name = f"{node.name or node.output[0]}_polyphase"
    graph.initializer.append(numpy_helper.from_array(polyphase_weight(weight, stride), f"{name}.weight"))
    inputs = [node.input[0], f"{name}.weight"]
    if len(node.input) > 2 and node.input[2]:
        bias = numpy_helper.to_array(initializers[node.input[2]])
        graph.initializer.append(numpy_helper.from_array(np.tile(bias, stride), f"{name}.bias"))
        inputs.append(f"{name}.bias")
    constants = {"phases_shape": [0, stride, channels_out, -1], "samples_shape": [0, channels_out, -1],
                 "starts": [begin], "ends": [-tail if tail else SLICE_TO_END], "axes": [2]}
    for key, values in constants.items():
        graph.initializer.append(numpy_helper.from_array(np.array(values, dtype=np.int64), f"{name}.{key}"))
    return [
        helper.make_node("Conv", inputs, [f"{name}.phases"], name=name, kernel_shape=[taps],
                         pads=[taps - 1, taps - 1 + extra], strides=[1], dilations=[1], group=1),
        helper.make_node("Reshape", [f"{name}.phases", f"{name}.phases_shape"], [f"{name}.split"], name=f"{name}/split"),
        helper.make_node("Transpose", [f"{name}.split"], [f"{name}.interleaved"], name=f"{name}/interleave",
                         perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", [f"{name}.interleaved", f"{name}.samples_shape"], [f"{name}.full"],
                         name=f"{name}/merge"),
        helper.make_node("Slice", [f"{name}.full", f"{name}.starts", f"{name}.ends", f"{name}.axes"],
                         list(node.output), name=f"{name}/crop"),
    ]
