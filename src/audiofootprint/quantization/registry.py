"""Every quantization scheme by name, with the engine its variant runs on."""
from __future__ import annotations

from dataclasses import dataclass

from audiofootprint.quantization.base import Calibration, Make, Quantized
from audiofootprint.quantization.onnx_schemes import ONNX_SCHEMES
from audiofootprint.quantization.schemes import TORCH_SCHEMES
from audiofootprint.vocoders.base import Vocoder


@dataclass(frozen=True)
class Scheme:
    """A quantization scheme: the engine its variant runs on (a key of
    :data:`audiofootprint.engines.ENGINES`) and the function that makes the variant."""

    engine: str
    make: Make


SCHEMES: dict[str, Scheme] = {
    **{name: Scheme("torch", make) for name, make in TORCH_SCHEMES.items()},
    **{name: Scheme("onnxruntime", make) for name, make in ONNX_SCHEMES.items()},
}


def scheme(name: str) -> Scheme:
    """The scheme called ``name``; an unknown name raises KeyError listing the known ones."""
    if name not in SCHEMES:
        raise KeyError(f"unknown quantization scheme {name!r}; known: {', '.join(SCHEMES)}")
    return SCHEMES[name]


def select_schemes(names: str | list[str]) -> list[str]:
    """The schemes ``names`` selects: ``"all"`` (every scheme, in :data:`SCHEMES`' order) or a list of
    names, each known (a ValueError names the first unknown one and lists the known ones)."""
    if names == "all":
        return list(SCHEMES)
    if isinstance(names, str):
        names = [names]
    unknown = [name for name in names if name not in SCHEMES]
    if unknown:
        raise ValueError(f"quantize.schemes names {unknown[0]!r}, not a scheme; use all or names of: {', '.join(SCHEMES)}")
    return list(names)


def apply(name: str, model: Vocoder, calibration: Calibration, device: str = "cpu") -> Quantized:
    """Quantize ``model`` with the scheme ``name``; raises :class:`~audiofootprint.quantization.base.NotApplicable`."""
    return scheme(name).make(model.for_inference(), calibration, device)
