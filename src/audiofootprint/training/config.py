"""The ``training`` section of a vocoder's YAML file, and the budget of a training run.

Every file of conf/vocoder/ carries a top-level ``training:`` section (read with
:func:`audiofootprint.vocoders.zoo.section`; :func:`~audiofootprint.vocoders.zoo.load_entry`
ignores it)::

    training:
      objective: hifigan          # a name of audiofootprint.training.objectives.OBJECTIVES, or none
      recipe: jik876/hifi-gan config_v1.json, train.py
      recipe_steps: 2500000       # the recipe's length (documentation; fractions below are of the budget)
      batch_size: 16              # the recipe's (a smaller Budget batch_size caps it)
      segment_samples: 8192       # samples per training crop, a multiple of the hop
      generator: {optimizer: adamw, lr: 2.0e-4, betas: [0.8, 0.99], ...}
      discriminator: {...}
      loss: {mel: 45, feature_matching: 2, mel_full_band: true}

The section is the one home of the recipe's values: an objective reads each value it needs from it
and refuses a section that lacks one, naming the key (``Objective.recipe``). The loss keys by
objective: ``mel``, ``feature_matching``, ``mel_full_band`` (hifigan, bigvgan, vocos; vocos also
``discriminator_weights``); ``feature_matching`` (melgan); ``adversarial``, ``stft_resolutions``
(parallel_wavegan; multiband_melgan also ``subband_stft_resolutions``); ``stft``, ``stft_resolutions``
(univnet).

Optional keys: ``discriminator_start`` (the recipe's generator-only warm-up, as a fraction of the
budget), ``discriminator_channel_mult`` (discriminator widths times this; 1 in every recipe, smaller
for fast tests), ``eval_max_seconds`` (a cap on the evaluation clips, for slow samplers). Required
besides: ``sigma`` (waveglow, waveflow) and ``seq_len_factor`` (wavernn).
Learning-rate schedules: ``{type: exponential, gamma, every: epoch|step}``, ``{type: multistep, gamma,
milestones: [budget fractions]}``, ``{type: cosine}`` or ``{type: constant}``.

A configuration that is the same trained network sampled differently (DiffWave with 50 instead
of 6 reverse steps) says ``training: {shares_training_with: diffwave_6}`` and is never trained
itself: :func:`audiofootprint.vocoders.zoo.plan_models` names the entry whose run it uses
(``trained_by``), and training it raises :class:`SharedTrainingError`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from audiofootprint.vocoders import zoo

__all__ = [
    "Budget",
    "SharedTrainingError",
    "training_section",
]


class ObjectiveError(ValueError):
    """An objective that cannot be set up as configured."""


class SharedTrainingError(ValueError):
    """The entry shares another entry's training run and must not be trained itself."""


def training_section(entry: zoo.ZooEntry) -> dict:
    """The ``training`` section of ``entry``'s file (``{"objective": "none"}`` when absent)."""
    section = zoo.section(entry, "training")
    return section if section else {"objective": "none"}


@dataclass(frozen=True)
class Budget:
    """How long to train and how to watch it.

    Training stops at ``max_steps`` or after ``max_seconds`` of training time (the time of the
    training steps, not of evaluation or checkpoint writing), whichever comes first; the budget
    fraction reached, ``max(step / max_steps, seconds / max_seconds)``, places the recipes'
    warm-ups and learning-rate milestones. ``eval_points`` evaluations of the quality (``eval_metrics``
    of :func:`audiofootprint.quality.score` on ``eval_utterances`` validation utterances cut to
    ``eval_max_seconds``) are spread evenly over the budget, the last at the end; ``eval_at_start``
    adds one before the first step. A checkpoint is written every ``checkpoint_every`` steps and/or
    ``checkpoint_every_s`` seconds of training, at every evaluation and at the end.
    ``batch_size`` and ``segment_samples`` (``None``: no limit) cap the recipe's (the model's ``training``
    section): the smaller wins, as everywhere a profile meets a model (:func:`audiofootprint.vocoders.zoo.within_limits`).
    """

    max_steps: int = 1000
    max_seconds: float = math.inf
    batch_size: int | None = None
    segment_samples: int | None = None
    eval_points: int = 3
    eval_utterances: int = 3
    eval_max_seconds: float = 3.0
    eval_metrics: tuple[str, ...] = ("mrstft", "mcd", "pesq")
    eval_at_start: bool = False
    checkpoint_every: int | None = None
    checkpoint_every_s: float | None = 600.0

    def __post_init__(self):
        if int(self.max_steps) < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        if not float(self.max_seconds) > 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if int(self.eval_points) < 0 or int(self.eval_utterances) < 0:
            raise ValueError("eval_points and eval_utterances must be >= 0")
        if self.checkpoint_every is not None and int(self.checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1 step, got {self.checkpoint_every}")
        if self.checkpoint_every_s is not None and not float(self.checkpoint_every_s) > 0:
            raise ValueError(f"checkpoint_every_s must be > 0, got {self.checkpoint_every_s}")
        object.__setattr__(self, "eval_metrics", tuple(self.eval_metrics))

    @classmethod
    def coerce(cls, budget: "Budget | Mapping") -> "Budget":
        """A :class:`Budget` from itself or a mapping (e.g. a profile's ``train`` section)."""
        if isinstance(budget, Budget):
            return budget
        if not isinstance(budget, Mapping):
            raise TypeError(f"budget must be a Budget or a mapping, not {type(budget).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(budget) - known)
        if unknown:
            raise ValueError(f"unknown budget key(s) {unknown}; known: {sorted(known)}")
        values = dict(budget)
        if values.get("max_seconds") is None:
            values.pop("max_seconds", None)
        return cls(**values)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["eval_metrics"] = list(self.eval_metrics)
        if math.isinf(out["max_seconds"]):
            out["max_seconds"] = None  # JSON has no infinity
        return out

    def progress(self, step: int, seconds: float) -> float:
        """The budget fraction reached after ``step`` steps and ``seconds`` of training."""
        by_steps = step / self.max_steps if self.max_steps > 0 else 1.0
        return max(by_steps, seconds / self.max_seconds)
