"""Optimisers and learning-rate schedules of the vocoder recipes, from the small mini-language of the
``training`` sections of conf/vocoder/*.yaml (``optimizer``, ``lr``, ``betas``, ``eps``, ``weight_decay``,
``amsgrad``, ``schedule``, ``grad_norm``), and where a step stands in its budget (:class:`StepContext`)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from audiofootprint.training.config import ObjectiveError


@dataclass(frozen=True)
class StepContext:
    """Where a training step stands: its index (0-based), completed epochs, budget fraction."""

    step: int
    epoch: int
    progress: float


def make_optimizer(params, settings: Mapping) -> torch.optim.Optimizer:
    """``{"optimizer": adam|adamw|radam, "lr", "betas", "eps", "weight_decay", "amsgrad"}``."""
    name = str(settings.get("optimizer", "adam")).lower()
    kwargs = {"lr": float(settings["lr"])}
    if "betas" in settings:
        kwargs["betas"] = tuple(float(b) for b in settings["betas"])
    for key in ("eps", "weight_decay"):
        if settings.get(key) is not None:
            kwargs[key] = float(settings[key])
    if name in ("adam", "adamw") and settings.get("amsgrad"):
        kwargs["amsgrad"] = True
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam}
    if name not in classes:
        raise ObjectiveError(f"optimizer must be one of {sorted(classes)}, not {name!r}")
    return classes[name](params, **kwargs)


def lr_factor(schedule: Mapping | None, ctx: StepContext, updates: int) -> float:
    """The learning-rate multiplier of a schedule at a step.

    ``{"type": "constant"}``; ``{"type": "exponential", "gamma": g, "every": "epoch"|"step"}``
    (``g ** epochs`` or ``g ** updates``); ``{"type": "multistep", "gamma": g, "milestones": [f, ...]}``
    (``g ** #{f <= progress}``, milestones as budget fractions); ``{"type": "cosine"}``
    (``(1 + cos(pi * progress)) / 2``, no warm-up).
    """
    schedule = schedule or {"type": "constant"}
    kind = schedule.get("type", "constant")
    if kind == "constant":
        return 1.0
    if kind == "exponential":
        every = schedule.get("every", "epoch")
        count = ctx.epoch if every == "epoch" else updates
        return float(schedule["gamma"]) ** count
    if kind == "multistep":
        passed = sum(1 for m in schedule.get("milestones", []) if ctx.progress >= float(m))
        return float(schedule["gamma"]) ** passed
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(max(ctx.progress, 0.0), 1.0)))
    raise ObjectiveError(f"unknown schedule type {kind!r} (constant, exponential, multistep, cosine)")


class ScheduledOptimizer:
    """An optimiser, its base learning rate, its schedule and its gradient clipping."""

    def __init__(self, params: list[nn.Parameter], settings: Mapping):
        self.params = list(params)
        self.settings = dict(settings)
        self.optimizer = make_optimizer(self.params, settings)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.schedule = settings.get("schedule")
        self.grad_norm = settings.get("grad_norm")
        self.updates = 0

    def set_lr(self, ctx: StepContext) -> float:
        factor = lr_factor(self.schedule, ctx, self.updates)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        return self.base_lrs[0] * factor

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self, ctx: StepContext) -> float:
        """Clip (if configured), step; return the gradient norm before clipping."""
        self.set_lr(ctx)
        max_norm = float(self.grad_norm) if self.grad_norm not in (None, 0) and float(self.grad_norm) > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        self.optimizer.step()
        self.updates += 1
        return float(norm)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Mapping) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        # keep the configured base learning rates (load_state_dict restores the last scheduled ones)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base
