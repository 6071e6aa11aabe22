"""Quantization schemes in torch: each turns a float32 vocoder into a lighter one, or says why it cannot.

Schemes (``TORCH_SCHEMES``; every scheme by name: :mod:`audiofootprint.quantization.registry`):

* ``fp32``: the trained model as is (the baseline).
* ``dynamic_int8``: ``torch.ao`` dynamic quantization of Linear and recurrent layers (int8
  weights, activations quantized on the fly). Convolutions are left in float32.
* ``static_int8``: post-training static int8 (weights and activations), calibrated on mels
  of training audio. torchao's pt2e flow with its x86 quantizer when that quantizer covers
  every convolution and linear layer of the model; otherwise ``torch.ao`` FX graph mode
  (the x86 quantizer annotates conv2d and linear, and conv1d only before a ReLU: vocoders
  are conv1d networks). The record says which backend ran and why.
* ``weight_int8`` / ``weight_int4``: weight-only quantization for size: conv and linear
  weights stored as int8 (or two int4 values per byte) with one scale per output slice,
  dequantized layer by layer during a call. torchao's weight-only configs take 2-d and 4-d
  weights only (linear, conv2d), not the 3-d weights of conv1d, hence this small module.
* ``fp16`` / ``bf16``: half precision, only where the hardware computes it (a CUDA device,
  or a CPU with AVX512-FP16/AMX-FP16 resp. AVX512-BF16/AMX-BF16); elsewhere it is emulated
  and slower, and the scheme is recorded as not applicable.

A scheme that does not apply raises :class:`NotApplicable` with the reason; the stage
records it as a result.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from audiofootprint.failures import first_line
from audiofootprint.quantization.base import Calibration, Make, NotApplicable, Quantized
from audiofootprint.vocoders.base import Vocoder, parameter_count


class QuantizedVocoder(Vocoder):
    """A converted network (e.g. an FX ``GraphModule``) behind the zoo's vocoder interface."""

    def __init__(self, network: nn.Module, original: Vocoder):
        super().__init__(mel=original.mel)
        self.network = network
        self.feature_convention = _convention(original)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.network(mel)

    def for_inference(self) -> "QuantizedVocoder":
        return self.eval()


def _convention(model: Vocoder) -> str:
    from audiofootprint.features import convention_of

    return convention_of(model)


# --------------------------------------------------------------------------- fp32, half


def fp32(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
    """The baseline: the trained float32 model."""
    return Quantized(model, "float32")


_HALF_FLAGS = {torch.float16: ("avx512_fp16", "amx_fp16"), torch.bfloat16: ("avx512_bf16", "amx_bf16")}


def cpu_flags(path: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty when unknown."""
    if not path.is_file():
        return set()
    for line in path.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _half(dtype: torch.dtype) -> Make:
    name = str(dtype).removeprefix("torch.")

    def scheme(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
        if not device.startswith("cuda"):
            wanted = _HALF_FLAGS[dtype]
            if not cpu_flags() & set(wanted):
                raise NotApplicable(f"this CPU computes {name} without hardware support (no {' or '.join(wanted)} "
                                    f"flag): it would be emulated, slower than float32")
        return Quantized(HalfVocoder(model, dtype), name)

    scheme.__doc__ = f"Weights and activations in {name}, input and output in float32."
    return scheme


class HalfVocoder(Vocoder):
    """A vocoder run in half precision; takes and returns float32."""

    def __init__(self, original: Vocoder, dtype: torch.dtype):
        super().__init__(mel=original.mel)
        self.network = copy.deepcopy(original).to(dtype)
        self.dtype = dtype
        self.feature_convention = _convention(original)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.network(mel.to(self.dtype)).float()

    def for_inference(self) -> "HalfVocoder":
        return self.eval()


# --------------------------------------------------------------------------- dynamic int8

DYNAMIC_LAYERS = (nn.Linear, nn.GRU, nn.LSTM, nn.GRUCell, nn.LSTMCell)


def dynamic_int8(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
    """int8 weights for Linear and recurrent layers, activations quantized per call."""
    _cpu_only(device, "dynamic int8")
    found = [type(m).__name__ for m in model.modules() if isinstance(m, DYNAMIC_LAYERS)]
    if not found:
        raise NotApplicable("no Linear or recurrent layers: dynamic quantization acts on those only "
                            "(the model's weights are in convolutions)")
    share = _weight_share(model, DYNAMIC_LAYERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notice
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), set(DYNAMIC_LAYERS),
                                                           dtype=torch.qint8)
    return Quantized(quantized, "torch.ao.quantization.quantize_dynamic (fbgemm/x86)",
                     [f"{len(found)} layers ({', '.join(sorted(set(found)))}) hold {share:.1%} of the weights"])


# --------------------------------------------------------------------------- static int8

EXPORT_FRAMES = 8
WEIGHTED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)


def static_int8(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
    """Post-training static int8, calibrated on ``calibration`` mels (pt2e, else FX graph mode)."""
    _cpu_only(device, "static int8")
    if not any(isinstance(m, WEIGHTED_LAYERS) for m in model.modules()):
        raise NotApplicable("no convolution or linear layers to quantize")
    _use_x86_engine()
    # exported on a few frames: the length is a dynamic dimension, and an autoregressive model's
    # sample loop (WaveRNN) would otherwise be traced once per sample of a whole utterance
    prepared, reason = _pt2e_prepared(model, calibration.mels[0][..., :EXPORT_FRAMES].contiguous())
    if reason is None:
        return _static_pt2e(model, prepared, calibration.mels)
    return _static_fx(model, calibration.mels, reason)


def _pt2e_prepared(model: Vocoder, example: torch.Tensor) -> tuple[torch.fx.GraphModule | None, str | None]:
    """The model prepared by pt2e with the x86 quantizer, and None; or None and why pt2e is not
    used (the export fails, or the quantizer leaves a weighted op unannotated)."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    frames = torch.export.Dim("frames", min=2)  # any number of mel frames, not the example's
    try:
        exported = torch.export.export(copy.deepcopy(model).eval(), (example,),
                                       dynamic_shapes=({2: frames},)).module()
    except Exception as error:  # noqa: BLE001 - any export failure means pt2e cannot run
        return None, f"torch.export failed ({type(error).__name__}: {first_line(error)})"
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    weighted = [n for n in prepared.graph.nodes if n.op == "call_function" and n.target in _WEIGHTED_OPS]
    if not weighted:
        return None, ("torch.export hides the model's layers from the quantizer (no convolution or linear op at "
                      "the top level of the exported graph, e.g. inference wrapped in torch.no_grad)")
    missed = sorted({str(n.target).split(".")[1] for n in weighted if not _observed(prepared, n.args[1])})
    if missed:
        return None, (f"torchao's X86InductorQuantizer leaves {', '.join(missed)} unquantized "
                      "(it annotates conv2d and linear, conv1d only before a ReLU)")
    return prepared, None


def _observed(prepared: torch.fx.GraphModule, weight: torch.fx.Node) -> bool:
    """Whether pt2e put an observer on this weight (the quantizer annotated its op)."""
    return (isinstance(weight, torch.fx.Node) and weight.op == "call_module"
            and "observer" in type(getattr(prepared, weight.target)).__name__.lower())


_WEIGHTED_OPS = {torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default, torch.ops.aten.linear.default,
                 torch.ops.aten.conv_transpose1d.default, torch.ops.aten.conv_transpose2d.input}


def _static_pt2e(model: Vocoder, prepared: torch.fx.GraphModule, calibration: list[torch.Tensor]) -> Quantized:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    with torch.no_grad():
        for mel in calibration:
            prepared(mel)
    # Not lowered: torchao's lower_pt2e_quantized_to_x86 re-exports at the example's length, and on
    # this CPU it leaves the same quantize/dequantize graph (fused int8 kernels need torch.compile).
    converted = convert_pt2e(prepared)
    return Quantized(QuantizedVocoder(converted, model),
                     "torchao pt2e, X86InductorQuantizer (int8 weights; quantize/dequantize graph run eagerly)")


def _static_fx(model: Vocoder, calibration: list[torch.Tensor], why_not_pt2e: str) -> Quantized:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notice
        try:
            mapping = _float_waveform(get_default_qconfig_mapping("x86"), model)
            prepared = prepare_fx(copy.deepcopy(model).eval(), mapping, (calibration[0],))
        except Exception as error:  # noqa: BLE001 - a model FX cannot trace is a result, not a crash
            raise NotApplicable(f"{why_not_pt2e}; FX graph mode cannot trace the model "
                                f"({type(error).__name__}: {first_line(error)})") from error
        try:
            with torch.no_grad():
                for mel in calibration:
                    prepared(mel)
            converted = convert_fx(prepared)
        except Exception as error:  # noqa: BLE001 - e.g. an observer placed on a value that is not a tensor
            raise NotApplicable(f"{why_not_pt2e}; FX graph mode traces the model but its calibration or "
                                f"conversion fails ({type(error).__name__}: {first_line(error)})") from error
    return Quantized(QuantizedVocoder(converted, model),
                     "torch.ao FX graph mode, x86 qconfig mapping; output layer and tanh in float",
                     [f"pt2e not used: {why_not_pt2e}"])


def _float_waveform(mapping, model: Vocoder):
    """The mapping with the output layer and tanh left in float. torch.ao gives tanh fixed qparams
    (a step of 2/256), so a waveform quieter than half a step comes out as silence (a barely trained
    MelGAN does), and any waveform as 8-bit audio. The other layers stay int8."""
    output_layer = [name for name, module in model.named_modules() if isinstance(module, WEIGHTED_LAYERS)][-1]
    mapping.set_module_name(output_layer, None)
    for tanh in (torch.tanh, nn.Tanh, "tanh"):
        mapping.set_object_type(tanh, None)
    return mapping


# --------------------------------------------------------------------------- weight-only


class WeightOnlyQuantized(nn.Module):
    """A conv or linear layer whose weight is stored as ``bits``-bit integers with one float32
    scale per slice of dimension 0 (symmetric), and dequantized for each call."""

    def __init__(self, layer: nn.Module, bits: int):
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"bits must be 4 or 8, not {bits}")
        weight = layer.weight.detach()
        self.bits, self.shape = bits, tuple(weight.shape)
        limit = 2 ** (bits - 1) - 1  # 127 or 7: symmetric range, zero exact
        flat = weight.reshape(weight.shape[0], -1)
        scale = flat.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / limit
        codes = torch.round(flat / scale[:, None]).clamp(-limit, limit).to(torch.int8)
        self.row_length = flat.shape[1]
        self.register_buffer("scale", scale.float())
        self.register_buffer("codes", pack_int4(codes) if bits == 4 else codes)
        self.layer = copy.deepcopy(layer)
        del self.layer.weight  # the weight lives in codes and scale only

    def dequantized_weight(self) -> torch.Tensor:
        codes = unpack_int4(self.codes, self.row_length) if self.bits == 4 else self.codes
        return (codes.float() * self.scale[:, None]).reshape(self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.layer.weight = self.dequantized_weight()
        try:
            return self.layer(x)
        finally:
            del self.layer.weight


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Pack int8 codes in [-8, 7] (shape ``[rows, n]``) two per byte: ``[rows, ceil(n/2)]`` uint8."""
    rows, n = codes.shape
    nibbles = (codes.to(torch.int16) & 0xF).to(torch.uint8)
    if n % 2:
        nibbles = torch.cat([nibbles, torch.zeros(rows, 1, dtype=torch.uint8)], dim=1)
    return nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)


def unpack_int4(packed: torch.Tensor, row_length: int) -> torch.Tensor:
    """Inverse of :func:`pack_int4`: ``[rows, row_length]`` int8 (an odd row's padding nibble dropped)."""
    low, high = (packed & 0xF).to(torch.int8), (packed >> 4).to(torch.int8)
    nibbles = torch.stack([low, high], dim=2).reshape(packed.shape[0], -1)[:, :row_length]
    return torch.where(nibbles > 7, nibbles - 16, nibbles)


def _weight_only(bits: int) -> Make:
    def scheme(model: Vocoder, calibration: Calibration, device: str) -> Quantized:
        quantized = copy.deepcopy(model)
        count = 0
        for parent in list(quantized.modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, WEIGHTED_LAYERS) and getattr(child, "weight", None) is not None:
                    setattr(parent, child_name, WeightOnlyQuantized(child, bits))
                    count += 1
        if not count:
            raise NotApplicable("no convolution or linear weights to store in fewer bits")
        share = _weight_share(model, WEIGHTED_LAYERS)
        return Quantized(quantized, f"weight-only int{bits} (audiofootprint.quantization.schemes)",
                         [f"{count} layers holding {share:.1%} of the weights; dequantized per call"])

    scheme.__doc__ = f"Conv and linear weights stored in int{bits}, one scale per output slice."
    return scheme


# --------------------------------------------------------------------------- helpers


def _cpu_only(device: str, name: str) -> None:
    if device.startswith("cuda"):
        raise NotApplicable(f"{name} kernels of torch.ao/torchao run on the CPU only (fbgemm/x86)")


def _use_x86_engine() -> None:
    engines = torch.backends.quantized.supported_engines
    engine = "x86" if "x86" in engines else "fbgemm"
    if engine not in engines:
        raise NotApplicable(f"torch has no x86/fbgemm quantized engine here (engines: {engines})")
    torch.backends.quantized.engine = engine


def _weight_share(model: nn.Module, kinds: tuple[type, ...]) -> float:
    total = parameter_count(model)
    inside = sum(p.numel() for m in model.modules() if isinstance(m, kinds) for p in m.parameters(recurse=False))
    return inside / total if total else 0.0


TORCH_SCHEMES: dict[str, Make] = {
    "fp32": fp32,
    "dynamic_int8": dynamic_int8,
    "static_int8": static_int8,
    "weight_int8": _weight_only(8),
    "weight_int4": _weight_only(4),
    "fp16": _half(torch.float16),
    "bf16": _half(torch.bfloat16),
}
