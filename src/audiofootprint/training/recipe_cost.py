"""What training a model to its recipe would cost: training steps measured at the recipe's batch
size and crop length, extrapolated to the recipe's step count, and that figure under the counting
conventions of carbontracker (the tool behind the thesis' training figures).

Measurement: the model's own objective (:mod:`.objectives`) runs steps on the corpus' training
split with the recipe's ``batch_size`` and ``segment_samples`` (not the profile's budget), through
the energy harness (:func:`audiofootprint.energy.harness.measure`: warm-up steps, then windows of
steps, each one codecarbon task; per-step time and energy with their spread). A recipe that trains
the generator alone before its discriminators join (``discriminator_start``, a fraction of the
recipe) has both phases measured and weighted by their share of the steps.

Extrapolation: ``steps x measured seconds (or joules) per step``, for the median and the quartiles
of the per-step figures, labelled "extrapolated from N measured steps" with the energy method of
the measurement (a codecarbon estimate or an energy counter). A recipe without a step count
(``recipe_steps: null``) gets the per-step cost only. The thesis capped every run at 5 days
(:data:`THESIS_CAP_S`): :func:`within_cap` gives the energy of that cap at the measured power and
the steps it reaches.

carbontracker's conventions (:data:`CARBONTRACKER`), as the thesis' code pins them (carbontracker
1.1.6): the predicted energy is the measured one times PUE 1.59, and its CO2e uses the EU-28 2017
average intensity, the default wherever no live intensity is fetched (outside Denmark and Great
Britain). Applied to our measured energy (codecarbon's CPU, RAM and GPU), without our own PUE.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch

from audiofootprint.energy.harness import J_PER_KWH, MeasureSettings, measure
from audiofootprint.energy.tracker import TrackerSettings, overall_method
from audiofootprint.training.batches import BatchStream
from audiofootprint.training.config import training_section
from audiofootprint.training.objectives import StepContext, build_objective
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder

__all__ = ["CARBONTRACKER", "THESIS_CAP_S", "Phase", "extrapolate", "measure_recipe_steps", "trains_itself",
           "under_carbontracker", "within_cap"]

#: carbontracker 1.1.6 (lfwa/carbontracker, the version pinned by ConstanceDws/neural-audio-energy
#: requirements.txt): ``constants.PUE`` (Uptime Institute 2020 survey) and
#: ``constants.EU_28_2017_CARBON_INTENSITY`` (EEA), its default intensity in gCO2/kWh.
CARBONTRACKER = {"version": "1.1.6", "pue": 1.59, "intensity_g_per_kwh": 294.2060978,
                 "source": "lfwa/carbontracker v1.1.6 carbontracker/constants.py (PUE, EU_28_2017_CARBON_INTENSITY); "
                           "predictor.py: energy of the monitored epoch(s) x epochs"}
#: ConstanceDws/neural-audio-energy train.py: pytorch-lightning Trainer(max_time="05:00:00:00").
THESIS_CAP_S = 5 * 24 * 3600.0
_STATS = ("median", "q1", "q3")


@dataclass(frozen=True)
class Phase:
    """One phase of a recipe: its share of the steps and the per-step figures measured for it."""

    name: str
    share: float
    seconds_per_step: Mapping[str, float]   # spread (median, q1, q3, min, max, n) of wall seconds per step
    joules_per_step: Mapping[str, float]    # spread of energy per step (J)
    mean_power_w: float
    steps_measured: int

    def as_dict(self) -> dict:
        return {"name": self.name, "share": self.share, "seconds_per_step": dict(self.seconds_per_step),
                "joules_per_step": dict(self.joules_per_step), "mean_power_w": self.mean_power_w,
                "steps_measured": self.steps_measured}


def trains_itself(entry: zoo.ZooEntry) -> bool:
    """Whether ``entry`` trains here with an objective of its own (not pretrained, training-free or shared)."""
    section = training_section(entry)
    return entry.weights is None and section.get("objective", "none") != "none" and "shares_training_with" not in section


def _phases(section: Mapping) -> list[tuple[str, float, float]]:
    """(name, share of the steps, budget fraction a step of it runs at) for each phase of a recipe."""
    start = float(section.get("discriminator_start") or 0.0)
    if not 0.0 <= start < 1.0:
        raise zoo.ConfigError(f"training.discriminator_start must be a fraction in [0, 1), got {start}")
    if start == 0.0:
        return [("every step", 1.0, 0.0)]
    return [("generator alone", start, 0.0), ("with discriminators", 1.0 - start, start)]


def measure_recipe_steps(entry: zoo.ZooEntry, model: Vocoder, corpus_dir, settings: MeasureSettings,
                         tracker: TrackerSettings, device: str = "cpu", seed: int = 0) -> dict:
    """Measure training steps of ``model`` at its recipe's batch size and crop length (module docstring).

    Returns the recipe's shape (batch, crop, steps), each :class:`Phase` as a dict, the energy method
    and the hardware of the measurement."""
    if not trains_itself(entry):
        raise zoo.ConfigError(f"{entry.path}: no training of its own (pretrained, training.objective none, or a "
                              "shared training run): nothing to measure")
    section = training_section(entry)
    batch, segment = section.get("batch_size"), section.get("segment_samples")
    if not batch or not segment:
        raise zoo.ConfigError(f"{entry.path}: training.batch_size and training.segment_samples are needed to "
                              "measure the recipe's steps")
    model.to(device).train()
    torch.manual_seed(seed)
    objective = build_objective(section["objective"], model, section, device)
    crop = objective.crop_samples(int(segment))
    stream = BatchStream(corpus_dir, crop, int(batch), seed)
    phases, methods, hardware = [], {}, {}
    for name, share, progress in _phases(section):
        step = iter(range(10 ** 9))

        def one_step(progress=progress):
            index = next(step)
            context = StepContext(step=index, epoch=stream.epoch_of(index), progress=progress)
            objective.step(stream.batch(index).to(device), context)

        seconds_of_audio = int(batch) * crop / stream.sample_rate
        measured = measure(one_step, label=f"{entry.name}-recipe-step", audio_seconds=seconds_of_audio,
                           samples=int(batch) * crop, settings=settings, tracker_settings=tracker, device=device)
        summary = measured.summary()
        phases.append(Phase(name, share, summary["per_call"]["wall_s"], summary["per_call"]["energy_j"],
                            summary["mean_power_w"], len(measured.call_times_s)))
        methods, hardware = measured.methods, measured.hardware
    return {"model": entry.name, "objective": section["objective"], "recipe": section.get("recipe"),
            "recipe_steps": section.get("recipe_steps"), "batch_size": int(batch), "crop_samples": crop,
            "phases": [phase.as_dict() for phase in phases], "energy_method": overall_method(methods),
            "methods": methods, "hardware": hardware,
            "device": device, "measure_settings": asdict(settings)}


def _phases_of(record: Mapping) -> list[Phase]:
    return [Phase(**p) for p in record["phases"]]


def extrapolate(record: Mapping, steps: int | None) -> dict | None:
    """Seconds and kWh of ``steps`` training steps at the measured per-step cost of ``record``
    (:func:`measure_recipe_steps`): for the median and each quartile, the phases weighted by their
    share; None without a step count."""
    if steps is None:
        return None
    if not steps > 0:
        raise ValueError(f"steps must be positive, got {steps}")
    phases = _phases_of(record)
    seconds = {s: sum(p.share * steps * p.seconds_per_step[s] for p in phases) for s in _STATS}
    kwh = {s: sum(p.share * steps * p.joules_per_step[s] for p in phases) / J_PER_KWH for s in _STATS}
    measured = sum(p.steps_measured for p in phases)
    return {"steps": int(steps), "seconds": seconds, "energy_kwh": kwh,
            "label": f"extrapolated from {measured} measured steps ({record['energy_method']})"}


def within_cap(record: Mapping, cap_s: float = THESIS_CAP_S) -> dict:
    """A run capped at ``cap_s`` seconds on the measured machine: the steps it reaches (median step time)
    and its energy at the measured mean power (kWh)."""
    phases = _phases_of(record)
    seconds_per_step = sum(p.share * p.seconds_per_step["median"] for p in phases)
    power_w = sum(p.share * p.mean_power_w for p in phases)
    return {"cap_s": cap_s, "steps": int(cap_s // seconds_per_step), "energy_kwh": power_w * cap_s / J_PER_KWH}


def under_carbontracker(energy_kwh: float, our_pue: float = 1.0) -> dict:
    """Our measured ``energy_kwh`` (which includes ``our_pue``) counted as carbontracker 1.1.6 counts:
    the energy without our PUE, times its PUE; CO2e at its default intensity (kg)."""
    if not our_pue >= 1:
        raise ValueError(f"our_pue must be at least 1, got {our_pue}")
    energy = energy_kwh / our_pue * CARBONTRACKER["pue"]
    return {"energy_kwh": energy, "co2e_kg": energy * CARBONTRACKER["intensity_g_per_kwh"] / 1000.0,
            "pue": CARBONTRACKER["pue"], "intensity_g_per_kwh": CARBONTRACKER["intensity_g_per_kwh"]}
