"""How every stage that runs a model sets up: seed, torch threads, device and energy tracker."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from audiofootprint.energy import TrackerSettings


@dataclass(frozen=True)
class StageSetup:
    """What every measuring stage sets up the same way: seed, threads, device and tracker."""

    seed: int
    threads: int
    device: str
    tracker: TrackerSettings


def set_up(root: str | Path, params: dict) -> StageSetup:
    """Seed torch and set its threads from the profile; the device falls back to the CPU when the
    profile asks for CUDA and none is present; the tracker writes under ``energy.output_dir``."""
    profile, energy = params["profile"], params["energy"]
    seed, threads = int(profile["seed"]), int(profile["torch_threads"])
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    device = profile["device"] if (profile["device"] == "cpu" or torch.cuda.is_available()) else "cpu"
    tracker = TrackerSettings(**{**energy, "output_dir": str(Path(root) / energy["output_dir"])})
    return StageSetup(seed=seed, threads=threads, device=device, tracker=tracker)
