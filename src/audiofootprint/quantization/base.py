"""What every quantization scheme takes and returns, whatever its engine."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

import torch

from audiofootprint import quality
from audiofootprint.vocoders.base import Vocoder


#: ONNX Runtime's activation calibration methods (``onnxruntime.quantization.CalibrationMethod``) by our name.
CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


class NotApplicable(Exception):
    """The scheme does not apply to this model (the message says why)."""


@dataclass
class Quantized:
    """A quantized model, how it was made, and what the making measured (``details``, JSON-ready)."""

    model: Vocoder
    backend: str
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)


#: How a mixed-precision search orders the ops it quantizes.
SEARCH_ORDERS = {"damage": "by increasing damage",
                 "damage_per_mac": "by increasing damage per multiply-accumulate moved to int8"}


@dataclass(frozen=True)
class MixedBudget:
    """How much quality a mixed-precision search may give up, and how it searches
    (``quantize.mixed_precision`` of params.yaml).

    ``metric`` (a key of :data:`audiofootprint.quality.METRICS`) is scored against the recordings on
    the first ``search_utterances`` calibration utterances; a candidate is within budget when its
    score is at most ``max_drop`` worse than the float32 model's. Each op's damage is measured on the
    first ``damage_seconds`` of those utterances; ops are added to int8 ``block`` at a time, a block
    beyond the budget tried again op by op; ``method`` is the activation calibration (minmax,
    entropy, percentile).
    ``order`` is the order in which ops are quantized (:data:`SEARCH_ORDERS`): by increasing damage,
    or by increasing damage per multiply-accumulate (the compute an op moves to int8).
    """

    metric: str = "pesq"
    max_drop: float = 0.1
    search_utterances: int = 4
    damage_seconds: float = 0.5
    block: int = 4
    method: str = "minmax"
    order: str = "damage_per_mac"

    def __post_init__(self):
        if self.metric not in quality.METRICS:
            raise ValueError(f"quantize.mixed_precision.metric {self.metric!r} is not one of {', '.join(quality.METRICS)}")
        if not self.max_drop >= 0:
            raise ValueError(f"quantize.mixed_precision.max_drop must be at least 0, not {self.max_drop!r}")
        if self.search_utterances < 1 or self.block < 1:
            raise ValueError("quantize.mixed_precision.search_utterances and block must be at least 1")
        if not self.damage_seconds > 0:
            raise ValueError(f"quantize.mixed_precision.damage_seconds must be above 0, not {self.damage_seconds!r}")
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"quantize.mixed_precision.method {self.method!r} is not one of {', '.join(CALIBRATION_METHODS)}")
        if self.order not in SEARCH_ORDERS:
            raise ValueError(f"quantize.mixed_precision.order {self.order!r} is not one of {', '.join(SEARCH_ORDERS)}")

    @classmethod
    def from_params(cls, settings: dict) -> "MixedBudget":
        """The budget of params.yaml's ``quantize.mixed_precision`` (an unknown key is an error naming it)."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"quantize.mixed_precision.{unknown[0]} is not a setting of the mixed-precision search "
                             f"(known: {', '.join(sorted(known))})")
        return cls(**settings)

    def allows(self, delta: float) -> bool:
        """Whether a change of the metric (variant - float32) is within the budget."""
        worse = -delta if quality.METRICS[self.metric]["direction"] == "max" else delta
        return worse <= self.max_drop

    def describe(self) -> str:
        return (f"{self.metric} at most {self.max_drop:g} worse than float32 on {self.search_utterances} "
                f"training utterances, ops taken {SEARCH_ORDERS[self.order]}")


@dataclass(frozen=True)
class Calibration:
    """Training-split audio a scheme calibrates on: each utterance's features (``mels``) and, for
    schemes that score candidates, its waveform at the model's rate (``waves``, same order); and the
    quality budget of a mixed-precision search."""

    mels: list[torch.Tensor]
    waves: list[torch.Tensor] = field(default_factory=list)
    budget: MixedBudget | None = None

    def __post_init__(self):
        if not self.mels:
            raise ValueError("calibration needs at least one mel-spectrogram")


Make = Callable[[Vocoder, Calibration, str], Quantized]
"""A scheme: (float32 model, calibration, device) -> :class:`Quantized`, or :class:`NotApplicable`."""
