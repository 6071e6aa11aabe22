"""The base of every training recipe: what an :class:`Objective` owns and the step it runs.

A recipe (:mod:`.objectives` for the adversarial ones, :mod:`.density_objectives` for those trained
by likelihood or denoising) subclasses :class:`Objective`; :data:`.objectives.OBJECTIVES` names them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from audiofootprint.features import convention_of, mel_spectrogram
from audiofootprint.training.config import ObjectiveError
from audiofootprint.training.optimisation import ScheduledOptimizer, StepContext
from audiofootprint.vocoders.base import Vocoder, parameter_count

__all__ = ["Objective", "loss_value"]


def loss_value(x) -> float:
    """A loss as a plain float (no autograd warning)."""
    return x.detach().item() if isinstance(x, torch.Tensor) else float(x)


class Objective:
    """Base class: the training step of one family. Subclasses set ``name``. ``settings`` is the
    ``training`` section of the model's YAML file, the one home of the recipe's values (each with its
    source there): a value the step needs and the section lacks is an :class:`ObjectiveError`."""

    name = "base"

    def __init__(self, model: Vocoder, settings: Mapping | None = None, device: str | torch.device = "cpu"):
        self.model = model
        self.settings = dict(settings or {})
        self.device = torch.device(device)
        self.convention = convention_of(model)
        self.discriminators = nn.ModuleDict()
        self.optims: dict[str, ScheduledOptimizer] = {}
        self.adversarial_from: int | None = None  # step at which the adversarial phase began
        #: discriminator widths times this (BigVGAN's ``discriminator_channel_mult``; 1 in every recipe)
        self.width = float(self.settings.get("discriminator_channel_mult", 1.0))

    # -- set-up helpers ---------------------------------------------------------------
    def recipe(self, *keys: str):
        """The recipe's value at ``training.KEY.SUBKEY...``; an :class:`ObjectiveError` naming the key
        when the section lacks it."""
        value = self.settings
        for depth, key in enumerate(keys):
            if not isinstance(value, Mapping) or key not in value:
                raise ObjectiveError(
                    f"{self.name}: training.{'.'.join(keys[: depth + 1])} is missing: give the recipe's value "
                    f"(the zoo configs with objective: {self.name} in conf/vocoder/ hold theirs, with sources)")
            value = value[key]
        return value

    def _add_optim(self, key: str, params: Iterable[nn.Parameter], settings_key: str | None = None) -> None:
        settings = self.settings.get(settings_key or key)
        if not isinstance(settings, Mapping) or "lr" not in settings:
            raise ObjectiveError(f"{self.name}: training.{settings_key or key} needs an optimizer and an lr")
        self.optims[key] = ScheduledOptimizer([p for p in params if p.requires_grad], settings)

    def finish_setup(self) -> "Objective":
        self.discriminators.to(self.device)
        self.discriminators.train()
        return self

    # -- data ---------------------------------------------------------------------------
    def crop_samples(self, segment_samples: int) -> int:
        """Samples per training example for a nominal segment (a multiple of the hop)."""
        return int(segment_samples)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """The generator's input for ``wave`` (no gradient)."""
        with torch.no_grad():
            return mel_spectrogram(wave, self.model.mel, self.convention)

    # -- phases ---------------------------------------------------------------------------
    def adversarial(self, ctx: StepContext) -> bool:
        """Whether the discriminators play at this step (after the warm-up, then for good)."""
        if self.adversarial_from is not None:
            return True
        start = float(self.settings.get("discriminator_start", 0.0) or 0.0)
        if ctx.progress >= start:
            self.adversarial_from = ctx.step
            return True
        return False

    def step(self, wave: torch.Tensor, ctx: StepContext) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- bookkeeping ----------------------------------------------------------------------
    def learning_rates(self) -> dict[str, float]:
        return {key: o.optimizer.param_groups[0]["lr"] for key, o in self.optims.items()}

    def parameter_counts(self) -> dict[str, int]:
        return {"generator": parameter_count(self.model), "discriminators": parameter_count(self.discriminators)}

    def state_dict(self) -> dict:
        return {"discriminators": self.discriminators.state_dict(),
                "optimizers": {key: o.state_dict() for key, o in self.optims.items()},
                "adversarial_from": self.adversarial_from}

    def load_state_dict(self, state: Mapping) -> None:
        self.discriminators.load_state_dict(state["discriminators"])
        for key, o in self.optims.items():
            o.load_state_dict(state["optimizers"][key])
        self.adversarial_from = state.get("adversarial_from")

    def describe(self) -> dict:
        """The settings in force (for the training record)."""
        return {"objective": self.name, **self.settings}


