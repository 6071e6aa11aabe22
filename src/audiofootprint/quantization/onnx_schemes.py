"""Quantization schemes on ONNX Runtime: the model exported to ONNX, quantized with ONNX Runtime's
own tools (``onnxruntime.quantization``), and run by ONNX Runtime (:class:`~audiofootprint.engines.OnnxVocoder`).
Every scheme starts from the same float32 graph, whose 1-D ConvTranspose ops are rewritten as the
equivalent polyphase Conv (:mod:`audiofootprint.quantization.polyphase`), for which ONNX Runtime has
int8 kernels; the float graph's difference to torch's output is recorded in each variant's notes.

* ``ort_fp32``: the exported float32 graph; its largest difference to torch's output is recorded.
* ``ort_weight_int8``: every weighted op's weights stored in int8 (one scale per output channel)
  behind a DequantizeLinear, the op computing in float (W8A32): smaller, not faster.
* ``ort_dynamic_int8``: ``quantize_dynamic`` on MatMul and Gemm (int8 weights, activations
  quantized per call); not applicable to a model without them.
* ``ort_static_int8_minmax`` / ``_entropy`` / ``_percentile``: ``quantize_static`` in QDQ format,
  int8 weights with one scale per output channel, uint8 activations calibrated with that method of
  ONNX Runtime on training-split mels (Entropy over 2048 histogram bins, :data:`ENTROPY_BINS`); the
  weighted ops (Conv, ConvTranspose, MatMul, Gemm) are quantized, the rest stays float.
* ``ort_mixed_int8``: mixed precision found by measurement (:func:`mixed_precision_search`): each
  weighted op quantized alone and its damage measured, then ops added to int8 in order of increasing
  damage (or damage per multiply-accumulate), each one that takes the quality beyond the budget
  (:class:`~audiofootprint.quantization.base.MixedBudget`) kept in float.

uint8 activations with int8 weights (U8S8) are what ONNX Runtime's x86 int8 kernels are fastest
with; on a CPU with AVX2 but no VNNI they can saturate, which the quality measurement would show.
"""
from __future__ import annotations

import copy
import functools
import logging
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import torch

from audiofootprint import quality
from audiofootprint.engines import OPSET, ExportError, OnnxVocoder, export_onnx, max_abs_difference
from audiofootprint.evaluate import snr_db
from audiofootprint.failures import first_line
from audiofootprint.features import convention_of
from audiofootprint.quantization.base import CALIBRATION_METHODS, Calibration, Make, MixedBudget, NotApplicable, Quantized
from audiofootprint.quantization.polyphase import rewrite_transposed_convs
from audiofootprint.vocoders.base import Vocoder

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


class _Graphs:
    """A scratch folder holding the model's exported float32 graph, pre-processed for quantization,
    with what every quantization of it shares: the graph with its shapes inferred and the activation
    ranges of each calibration method (:meth:`ranges`)."""

    def __init__(self, folder: Path, model: Vocoder, calibration: Calibration, device: str):
        from onnxruntime.quantization import quant_pre_process

        self.folder, self.model, self.device = folder, model, device
        self._ranges: dict = {}  # calibration method -> its TensorsData (ranges)
        try:
            graph = export_onnx(model, calibration.mels[0])
        except ExportError as error:
            raise NotApplicable(str(error)) from error
        exported = folder / "exported.onnx"
        rewritten = onnx.load_from_string(graph)
        self.polyphase = rewrite_transposed_convs(rewritten)
        onnx.save(rewritten, str(exported))
        self.fp32 = folder / "fp32.onnx"
        try:
            quant_pre_process(str(exported), str(self.fp32), skip_symbolic_shape=True)
        except Exception as error:  # noqa: BLE001 - a graph ONNX Runtime cannot optimise is not quantizable
            raise NotApplicable(f"onnxruntime's quant_pre_process fails on the exported graph "
                                f"({type(error).__name__}: {first_line(error)})") from error
        self.fp32_runner = self.runner(self.fp32)
        self.parity = max_abs_difference(model, self.fp32_runner, calibration.mels[0])

    def runner(self, graph: Path | onnx.ModelProto) -> OnnxVocoder:
        """ONNX Runtime running ``graph`` (a file, or a graph in memory)."""
        data = graph.read_bytes() if isinstance(graph, Path) else graph.SerializeToString()
        return OnnxVocoder(data, self.model.mel, convention_of(self.model), device=self.device)

    def float_graph(self) -> onnx.ModelProto:
        """A copy of the float32 graph."""
        return onnx.load(str(self.fp32))

    @functools.cached_property
    def inferred(self) -> onnx.ModelProto:
        """The float32 graph with ONNX's shape inference applied, as ``quantize_static`` loads it."""
        from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

        return load_model_with_shape_infer(self.fp32)

    def ranges(self, method: str, calibration: Calibration):
        """The activation ranges of ``method`` (ONNX Runtime's ``TensorsData``) on the calibration
        mels: computed on the first call, kept in the scratch folder's calibration cache and in memory."""
        from onnxruntime.quantization import CalibrationMethod
        from onnxruntime.quantization.calibrate import create_calibrator, load_tensors_data, save_tensors_data

        if method in self._ranges:
            return self._ranges[method]
        cache = self.folder / f"calibration_{method}.json"
        if not cache.is_file():
            options = {"num_bins": ENTROPY_BINS} if method == "entropy" else {}
            calibrator = create_calibrator(self.fp32, list(WEIGHTED_OPS),
                                           augmented_model_path=str(self.folder / "augmented.onnx"),
                                           calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[method]),
                                           extra_options=options)
            calibrator.collect_data(_Reader(calibration.mels))
            save_tensors_data(calibrator.compute_data(), cache)
        self._ranges[method] = load_tensors_data(cache)
        return self._ranges[method]

    def weighted_nodes(self) -> list[str]:
        """Names of the graph's weighted ops (:data:`WEIGHTED_OPS`), in graph order."""
        graph = onnx.load(str(self.fp32), load_external_data=False).graph
        return [node.name for node in graph.node if node.op_type in WEIGHTED_OPS]

    def parity_note(self) -> str:
        rewritten = (f", its {self.polyphase} ConvTranspose ops rewritten as polyphase Conv (quantization.polyphase)"
                     if self.polyphase else "")
        return (f"exported with torch.onnx (opset {OPSET}){rewritten}; max |ONNX Runtime - torch| = "
                f"{self.parity:.2e} on a training mel")


@contextmanager
def _graphs(model: Vocoder, calibration: Calibration, device: str):
    with tempfile.TemporaryDirectory(prefix="audiofootprint-onnx-") as folder:
        yield _Graphs(Path(folder), model, calibration, device)


@contextmanager
def _quiet_onnxruntime():
    """ONNX Runtime's quantization tools log every skipped tensor at INFO/WARNING: errors only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def ort_fp32(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
    """The float32 model exported to ONNX, run by ONNX Runtime."""
    with _graphs(model, calibration, device) as graphs:
        return Quantized(graphs.fp32_runner, graphs.fp32_runner.description(), [graphs.parity_note()])


def ort_dynamic_int8(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
    """int8 MatMul and Gemm weights; activations quantized on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _graphs(model, calibration, device) as graphs, _quiet_onnxruntime():
        kinds = _op_types(graphs.fp32)
        if not kinds & {"MatMul", "Gemm"}:
            raise NotApplicable("no MatMul or Gemm in the exported graph: ONNX Runtime's dynamic int8 acts on "
                                "those (the model's weights are in convolutions)")
        out = graphs.folder / "dynamic.onnx"
        quantize_dynamic(str(graphs.fp32), str(out), op_types_to_quantize=["MatMul", "Gemm"], per_channel=True,
                         weight_type=QuantType.QInt8)
        runner = graphs.runner(out)
        return Quantized(runner, f"onnxruntime.quantization.quantize_dynamic (MatMul, Gemm); {runner.description()}",
                         [graphs.parity_note()])


def ort_weight_int8(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
    """Every weighted op computing in float from int8-stored weights (W8A32): smaller, not faster."""
    with _graphs(model, calibration, device) as graphs, _quiet_onnxruntime():
        graph = graphs.float_graph()
        converted = int8_weights(graph)
        if not converted:
            raise NotApplicable("no float Conv, ConvTranspose or MatMul weight in the exported graph")
        runner = graphs.runner(graph)
        return Quantized(runner, f"int8 weights behind DequantizeLinear, float compute (audiofootprint."
                                 f"quantization.onnx_schemes.int8_weights); {runner.description()}",
                         [graphs.parity_note(), f"{converted} weights stored in int8, one scale per output channel"])


def _static(method: str):
    def scheme(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
        with _graphs(model, calibration, device) as graphs, _quiet_onnxruntime():
            nodes = graphs.weighted_nodes()
            runner = graphs.runner(_quantize_static(graphs, calibration, method, nodes))
            return Quantized(runner, f"onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights, "
                                     f"uint8 activations, {CALIBRATION_METHODS[method]} calibration); "
                                     f"{runner.description()}",
                             [graphs.parity_note(), f"{len(nodes)} weighted ops quantized, the others in float",
                              _calibration_note(calibration)])

    scheme.__doc__ = f"Static int8 (QDQ) of the weighted ops, activations calibrated with {CALIBRATION_METHODS[method]}."
    return scheme


def _quantize_static(graphs: _Graphs, calibration: Calibration, method: str, nodes: list[str]) -> onnx.ModelProto:
    """``nodes`` of the float graph quantized as ``quantize_static`` does (QDQ, per-channel int8
    weights, uint8 activations, the ranges of ``method``), in memory: ONNX Runtime's own QDQ
    quantizer on a copy of the shape-inferred graph, so that the graph is not loaded, inferred and
    saved again for each of the search's many variants (tests check the bytes against
    ``quantize_static``'s)."""
    from onnxruntime.quantization import QDQQuantizer, QuantType

    if not nodes:
        raise NotApplicable(f"no weighted op ({', '.join(WEIGHTED_OPS)}) in the exported graph")
    quantizer = QDQQuantizer(copy.deepcopy(graphs.inferred), per_channel=True, reduce_range=False,
                             weight_qType=QuantType.QInt8, activation_qType=QuantType.QUInt8,
                             tensors_range=graphs.ranges(method, calibration), nodes_to_quantize=list(nodes),
                             nodes_to_exclude=[], op_types_to_quantize=list(WEIGHTED_OPS), extra_options={})
    quantizer.quantize_model()
    quantizer.model.topological_sort()  # as quantize_static's save does
    return quantizer.model.model


#: Histogram bins of the Entropy calibrator (TensorRT's entropy calibration uses 2048). quantize_static
#: passes no bin count to its calibrator, whose default (128 bins, 128 quantized bins) leaves nothing to
#: choose: Entropy then returns the min-max range. Its ranges are therefore computed with these bins.
ENTROPY_BINS = 2048


class _Reader:
    """ONNX Runtime's calibration data reader over mels cut to one length (its histogram
    calibrators stack every tensor of a kind, so the inputs must agree in shape)."""

    def __init__(self, mels: list[torch.Tensor]):
        frames = min(mel.shape[-1] for mel in mels)
        self._feeds = iter([{"mel": mel[..., :frames].contiguous().numpy()} for mel in mels])

    def get_next(self):
        return next(self._feeds, None)


def _calibration_note(calibration: Calibration) -> str:
    frames = min(mel.shape[-1] for mel in calibration.mels)
    return f"calibrated on {len(calibration.mels)} training-split mels of {frames} frames"


def _op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}


# --------------------------------------------------------------------------- weights of float ops

#: Weighted ops whose float weights :func:`int8_weights` stores in int8, and the weight axis of their
#: output channels (Conv: [out, in, k]; ConvTranspose: [in, out, k]; MatMul: [in, out]).
WEIGHT_OUTPUT_AXIS = {"Conv": 0, "ConvTranspose": 1, "MatMul": 1}


def int8_weights(model: onnx.ModelProto) -> int:
    """Store the float weights of ``model``'s weighted ops as int8 (symmetric, one scale per output
    channel) behind a DequantizeLinear, so the op itself still computes in float (W8A32); the graph
    is changed in place. Returns how many weights were converted; weights already quantized are left."""
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    dequantize, converted = [], 0
    for node in graph.node:
        axis = WEIGHT_OUTPUT_AXIS.get(node.op_type)
        weight = node.input[1] if axis is not None and len(node.input) > 1 else None
        if weight not in initializers or uses[weight] != 1:
            continue
        values = numpy_helper.to_array(initializers[weight])
        if values.dtype != np.float32 or values.ndim <= axis:
            continue
        moved = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        scale = np.maximum(np.abs(moved).max(axis=1), np.finfo(np.float32).tiny) / 127.0
        shape = [1] * values.ndim
        shape[axis] = -1
        codes = np.clip(np.round(values / scale.reshape(shape)), -127, 127).astype(np.int8)
        graph.initializer.remove(initializers[weight])
        graph.initializer.extend([numpy_helper.from_array(codes, f"{weight}_int8"),
                                  numpy_helper.from_array(scale.astype(np.float32), f"{weight}_scale"),
                                  numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{weight}_zero")])
        dequantize.append(helper.make_node("DequantizeLinear", [f"{weight}_int8", f"{weight}_scale", f"{weight}_zero"],
                                           [weight], name=f"{weight}_dequantize", axis=axis))
        converted += 1
    for position, node in enumerate(dequantize):
        graph.node.insert(position, node)
    return converted


# --------------------------------------------------------------------------- mixed precision


def op_macs(path: Path, frames: int) -> dict[str, int]:
    """Multiply-accumulates of each weighted op of the graph at ``path`` on one mel of ``frames``
    frames, from ONNX's shape inference with the input's free dimensions fixed (the last to
    ``frames``, the others to 1). Conv: output elements x weight elements per output channel;
    ConvTranspose: input elements x weight elements per input channel; MatMul and Gemm: input
    elements x output columns."""
    from onnx import shape_inference

    model = onnx.load(str(path))
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        for position, dim in enumerate(dims):
            if not dim.HasField("dim_value"):
                dim.dim_value = frames if position == len(dims) - 1 else 1
    inferred = shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {value.name: [dim.dim_value if dim.HasField("dim_value") else 0 for dim in value.type.tensor_type.shape.dim]
              for value in (*inferred.input, *inferred.value_info, *inferred.output)}
    shapes |= {tensor.name: list(tensor.dims) for tensor in model.graph.initializer}
    macs = {}
    for node in inferred.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        data, weight = (shapes.get(name, []) for name in node.input[:2])
        if not data or not weight or 0 in data + weight:
            raise ValueError(f"{path.name}: the shapes of {node.name} ({node.op_type}) are not known after ONNX shape "
                             "inference; order the mixed-precision search by damage (quantize.mixed_precision.order)")
        if node.op_type == "Conv":
            macs[node.name] = int(np.prod(shapes[node.output[0]])) * int(np.prod(weight[1:]))
        elif node.op_type == "ConvTranspose":
            macs[node.name] = int(np.prod(data)) * int(np.prod(weight[1:]))
        else:
            transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
            macs[node.name] = int(np.prod(data)) * (weight[0] if transposed else weight[-1])
    return macs



def ort_mixed_int8(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
    """Mixed precision: the least damaging weighted ops in int8, within the calibration's quality budget."""
    budget = calibration.budget
    if budget is None:
        raise ValueError("ort_mixed_int8 needs a quality budget: give quantize.mixed_precision in params.yaml")
    if len(calibration.waves) < len(calibration.mels):
        raise ValueError("ort_mixed_int8 scores candidates against the recordings: the calibration needs their waveforms")
    with _graphs(model, calibration, device) as graphs, _quiet_onnxruntime():
        search = mixed_precision_search(graphs, calibration, budget)
        chosen = search["chosen"]
        runner = graphs.runner(_mixed_graph(graphs, calibration, budget.method, chosen))
        kept = len(search["order"]) - len(chosen)
        return Quantized(runner, f"mixed int8 (onnxruntime QDQ, {CALIBRATION_METHODS[budget.method]} calibration, "
                                 f"ops chosen by measured damage); {runner.description()}",
                         [graphs.parity_note(), f"{len(chosen)} of {len(search['order'])} weighted ops in int8 "
                          f"(weights and activations), {kept} computing in float from int8-stored weights: "
                          f"{budget.describe()}", _calibration_note(calibration)],
                         details={"mixed_precision": search})


def mixed_precision_search(graphs: _Graphs, calibration: Calibration, budget: MixedBudget) -> dict:
    """Order the weighted ops by the damage each does alone, then add them to int8 in that order,
    keeping in float each one whose addition takes the quality beyond ``budget``.

    Damage of one op: its int8 graph's mean multi-resolution STFT distance to the float32 graph's
    output on the first ``budget.damage_seconds`` of the search mels (SNR beside it); ops are taken by
    increasing distance, or by increasing distance per multiply-accumulate (:func:`op_macs`) when
    ``budget.order`` says so: the ops that move most compute to int8 for least damage first. Along
    that order, ``budget.block`` ops at a time are added to the int8 set and the quality
    (``budget.metric`` against the recordings, on the search utterances) measured; a block that goes
    beyond the budget is tried again one op at a time, and each op that still goes beyond it stays
    in float. Damage does not add up op by op, so this keeps going past an op that breaks the
    budget where stopping at the first one would leave the rest of the order in float. Returns the
    damage table, the curve (every candidate tried: ops quantized, size, quality; the time of one
    call for those within budget) and the ops chosen (``chosen``, in the order they were added).
    """
    search = _search_set(calibration, budget)
    rate = graphs.model.mel.sample_rate
    frames = max(1, round(budget.damage_seconds * rate / graphs.model.hop_length))
    probes = [mel[..., :frames] for mel, _ in search]
    float_outputs = [_waveform(graphs.fp32_runner, mel) for mel in probes]
    damage = []
    for node in graphs.weighted_nodes():
        runner = graphs.runner(_quantize_static(graphs, calibration, budget.method, [node]))
        outputs = [_waveform(runner, mel) for mel in probes]
        damage.append({"op": node,
                       "mrstft_to_fp32": float(np.mean([quality.mrstft(f, o, rate) for f, o in zip(float_outputs, outputs)])),
                       "snr_to_fp32_db": float(np.mean([snr_db(f.astype(np.float64), o.astype(np.float64))
                                                        for f, o in zip(float_outputs, outputs)]))})
    if budget.order == "damage_per_mac":
        macs = op_macs(graphs.fp32, frames)
        for row in damage:
            row["macs"] = macs[row["op"]]
            row["mrstft_per_gmac"] = row["mrstft_to_fp32"] / (macs[row["op"]] / 1e9)
        damage.sort(key=lambda row: row["mrstft_per_gmac"])
    else:
        damage.sort(key=lambda row: (row["mrstft_to_fp32"], -row["snr_to_fp32_db"]))
    order = [row["op"] for row in damage]
    reference = _quality(graphs.fp32_runner, search, budget.metric, rate)
    curve: list[dict] = []

    def within(ops: list[str]) -> bool:
        runner = graphs.runner(_mixed_graph(graphs, calibration, budget.method, ops))
        score = _quality(runner, search, budget.metric, rate)
        point = {"ops_quantized": len(ops), "size_bytes": runner.artifact_bytes(), budget.metric: score,
                 f"delta_{budget.metric}": score - reference, "within_budget": budget.allows(score - reference)}
        point["seconds_per_call"] = _median_call_seconds(runner, search[0][0]) if point["within_budget"] else None
        curve.append(point)
        return point["within_budget"]

    within([])  # no op in int8: every weight stored in int8, computing in float
    chosen = add_while_within(order, budget.block, within)
    last = max(i for i, point in enumerate(curve) if point["within_budget"] or i == 0)
    for i, point in enumerate(curve):
        point["chosen"] = i == last
    return {"budget": budget.describe(), "search_utterances": len(search), "reference": reference,
            "damage": damage, "order": order, "curve": curve, "chosen": chosen, "chosen_ops": len(chosen)}


def add_while_within(order: list[str], block: int, within: Callable[[list[str]], bool]) -> list[str]:
    """The ops of ``order`` added, ``block`` at a time, to a set that ``within`` accepts: a block that
    ``within`` rejects is tried again one op at a time, and an op rejected alone is left out. Returns
    the accepted ops in the order they were added."""
    chosen: list[str] = []
    for start in range(0, len(order), block):
        ops = order[start:start + block]
        if within(chosen + ops):
            chosen += ops
        elif len(ops) > 1:
            for op in ops:
                if within(chosen + [op]):
                    chosen.append(op)
    return chosen


def _mixed_graph(graphs: _Graphs, calibration: Calibration, method: str, ops: list[str]) -> onnx.ModelProto:
    """``ops`` in static int8 (weights and activations), every other weighted op computing in float
    from int8-stored weights (:func:`int8_weights`)."""
    graph = _quantize_static(graphs, calibration, method, ops) if ops else graphs.float_graph()
    int8_weights(graph)
    return graph


def _search_set(calibration: Calibration, budget: MixedBudget) -> list[tuple[torch.Tensor, np.ndarray]]:
    """The first ``budget.search_utterances`` calibration mels with their recordings."""
    pairs = list(zip(calibration.mels, calibration.waves))[: budget.search_utterances]
    return [(mel, wave.reshape(-1).numpy()) for mel, wave in pairs]


def _waveform(model: Vocoder, mel: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model(mel)[0].clamp(-1.0, 1.0).numpy()


def _quality(model: Vocoder, search: list, metric: str, rate: int) -> float:
    scores = []
    for mel, wave in search:
        synthesis = _waveform(model, mel)
        length = min(len(synthesis), len(wave))
        scores.append(quality.score(wave[:length], synthesis[:length], rate, metrics=(metric,))[metric])
    return float(np.mean(scores))


def _median_call_seconds(model: Vocoder, mel: torch.Tensor, calls: int = 3) -> float:
    """Median wall time of a few calls on one mel (the curve's rough speed; the harness measures the chosen one)."""
    _waveform(model, mel)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        _waveform(model, mel)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


ONNX_SCHEMES: dict[str, Make] = {
    "ort_fp32": ort_fp32,
    "ort_dynamic_int8": ort_dynamic_int8,
    "ort_weight_int8": ort_weight_int8,
    **{f"ort_static_int8_{method}": _static(method) for method in CALIBRATION_METHODS},
    "ort_mixed_int8": ort_mixed_int8,
}
