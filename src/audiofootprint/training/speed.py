"""How long one training step of a zoo model takes here, to choose a budget.

:func:`step_time` builds the model for the corpus' sample rate (the same adaptation as the
benchmark: the model's own mel analysis with the corpus' rate and ``f_max`` capped at Nyquist),
sets up its objective exactly as :func:`audiofootprint.training.loop.train` would, and times
``steps`` training steps on real crops of the corpus after ``warmup`` untimed ones (no energy
tracker, no checkpoint, no evaluation). Time per step is the median over the timed steps.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from audiofootprint.training.batches import BatchStream
from audiofootprint.training.config import training_section
from audiofootprint.training.objectives import StepContext, build_objective
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder

__all__ = ["build_for_rate", "step_time"]


def build_for_rate(entry: zoo.ZooEntry, sample_rate: int, **overrides) -> Vocoder:
    """``entry``'s model with its mel analysis moved to ``sample_rate`` (f_max capped at Nyquist)."""
    mel = zoo.build(entry).mel.as_dict()
    mel["sample_rate"] = int(sample_rate)
    nyquist = sample_rate / 2
    mel["f_max"] = nyquist if mel["f_max"] is None else min(mel["f_max"], nyquist)
    return zoo.build(entry, **({"mel": mel} | overrides))


def step_time(entry: zoo.ZooEntry, corpus_dir: str | Path, batch_size: int = 1, steps: int = 5,
              warmup: int = 1, segment_samples: int | None = None, device: str = "cpu", seed: int = 0,
              adversarial: bool = True, training: Mapping | None = None) -> dict:
    """Seconds per training step of ``entry`` at its recipe's segment (or ``segment_samples``).

    ``adversarial``: time the full step (discriminators included) even where the recipe starts
    with generator-only steps. Returns ``{"model", "objective", "batch_size", "segment_samples",
    "crop_samples", "step_s", "step_s_all", "steps_per_minute", "parameters"}``.
    """
    section = dict(training) if training is not None else training_section(entry)
    name = section.get("objective", "none")
    if name == "none" or section.get("shares_training_with"):
        raise ValueError(f"{entry.name} has no training of its own")
    device = torch.device(device)
    stream_probe = BatchStream(corpus_dir, 1, 1, seed)
    torch.manual_seed(seed)
    model = build_for_rate(entry, stream_probe.sample_rate).to(device).train()
    if adversarial:
        section = section | {"discriminator_start": 0.0}
    objective = build_objective(name, model, section, device)
    segment = int(segment_samples or section.get("segment_samples", 8192))
    crop = objective.crop_samples(segment)
    stream = BatchStream(corpus_dir, crop, batch_size, seed)
    times = []
    for step in range(warmup + steps):
        wave = stream.batch(step).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        objective.step(wave, StepContext(step=step, epoch=stream.epoch_of(step), progress=0.5))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - began)
    median = statistics.median(times)
    return {"model": entry.name, "objective": name, "batch_size": int(batch_size), "segment_samples": segment,
            "crop_samples": crop, "step_s": median, "step_s_all": times, "steps_per_minute": 60.0 / median,
            "parameters": objective.parameter_counts()}
