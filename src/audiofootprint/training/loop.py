"""Train one zoo vocoder under a budget, with its energy measured and checkpoints to resume from.

:func:`train` runs the model's original objective (:mod:`.objectives`, chosen by the ``training``
section of its YAML file) on random crops of the corpus' training split, with the mel features
computed on the fly from each crop (:func:`audiofootprint.features.mel_spectrogram`, the model's
own mel settings and convention). Outputs in ``out_dir``::

    checkpoint.pt   everything needed to resume (written atomically at every checkpoint)
    generator.pt    the final generator, ``model.state_dict_for_checkpoint()`` (``model.from_checkpoint``)
    training.json   the training record (steps, seconds, energy, learning curve; see below)

Energy: codecarbon's offline tracker (:func:`audiofootprint.energy.tracker.open_tracker`) measures
each stretch of training between two checkpoints or evaluations as one task (CUDA synchronised at
the edges), and each evaluation as a task of its own; energies are summed per part (CPU, GPU,
RAM). ``energy_kwh`` and ``co2e_kg`` of the record are the training steps'; the evaluations' are
reported apart (``evaluation``) and in ``total_energy_kwh``.

Resuming: when ``out_dir/checkpoint.pt`` exists, :func:`train` continues from it - model,
discriminators, optimisers, step count, training time, energy, random states and evaluation
history - so an interrupted run loses at most one checkpoint interval and the budget counts the
time and energy already spent. Batches are a function of the step (:mod:`.batches`) and random
states are restored, so a resumed run ends with the same weights as an uninterrupted one
(bitwise on the CPU; CUDA kernels are not all deterministic). A finished run called again with a
larger budget continues; with the same budget it only rewrites its outputs.

Failure: an error during training (an exception in a step, a non-finite loss, out of memory) is
raised as :class:`TrainingFailed`, which carries the steps, time and energy spent until then (the
failed stretch included); an interruption (KeyboardInterrupt) propagates as it is and the run resumes
from its last checkpoint. The stage records a failure (:mod:`audiofootprint.failures`).

Determinism: ``torch.manual_seed(seed)`` before the discriminators are built; crops and batch
order from generators seeded by ``seed``; evaluations on a forked random state.
"""
from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from audiofootprint import atomic
from audiofootprint.energy.harness import J_PER_KWH
from audiofootprint.energy.tracker import TrackerSettings, hardware_seen, measurement_methods, open_tracker
from audiofootprint.features import convention_of
from audiofootprint.training.batches import BatchStream
from audiofootprint.training.config import Budget, SharedTrainingError, training_section
from audiofootprint.training.evaluation import evaluate, load_eval_set
from audiofootprint.training.objectives import StepContext, build_objective
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder

__all__ = ["CHECKPOINT", "GENERATOR", "RECORD", "NonFiniteLossError", "TrainingFailed", "train"]

CHECKPOINT = "checkpoint.pt"
GENERATOR = "generator.pt"
RECORD = "training.json"
FORMAT = 1
_PARTS = ("cpu", "gpu", "ram")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to_cpu(obj):
    """A (nested) state dict with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


class NonFiniteLossError(FloatingPointError):
    """A training step returned a NaN or infinite loss: the run diverged."""


class TrainingFailed(RuntimeError):
    """Training stopped by an error (not an interruption). ``error`` is the error; ``progress`` what the
    run did until then: steps, seconds, energy with codecarbon's method labels, budget."""

    def __init__(self, error: Exception, progress: dict):
        super().__init__(f"{type(error).__name__}: {error}")
        self.error, self.progress = error, progress


class _Energy:
    """Energy summed over codecarbon tasks, per part, with the CO2e and the number of tasks."""

    def __init__(self, state: Mapping | None = None):
        state = dict(state or {})
        self.joules = {part: float(state.get(f"{part}_j", 0.0)) for part in _PARTS}
        self.co2e_kg = float(state.get("co2e_kg", 0.0))
        self.tasks = int(state.get("tasks", 0))

    def add(self, data) -> None:
        self.joules["cpu"] += float(data.cpu_energy) * J_PER_KWH
        self.joules["gpu"] += float(data.gpu_energy) * J_PER_KWH
        self.joules["ram"] += float(data.ram_energy) * J_PER_KWH
        self.co2e_kg += float(data.emissions)
        self.tasks += 1

    @property
    def total_j(self) -> float:
        return sum(self.joules.values())

    def as_dict(self) -> dict:
        out = {f"{part}_j": j for part, j in self.joules.items()}
        out.update({f"{part}_kwh": j / J_PER_KWH for part, j in self.joules.items()})
        out.update(total_j=self.total_j, total_kwh=self.total_j / J_PER_KWH, co2e_kg=self.co2e_kg, tasks=self.tasks)
        return out


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _task_name(kind: str, step: int) -> str:
    """A codecarbon task name unique within the tracker (it may be shared between runs)."""
    return f"{kind}-{step}-{time.time_ns()}"


def _no_training(entry: zoo.ZooEntry, model: Vocoder, out_dir: Path, section: Mapping) -> dict:
    atomic.write_torch(out_dir / GENERATOR, _to_cpu(model.state_dict_for_checkpoint()))
    record = {"format": FORMAT, "model": entry.name, "family": entry.family, "objective": "none",
              "steps": 0, "seconds": 0.0, "energy_j": 0.0, "energy_kwh": 0.0, "co2e_kg": 0.0,
              "total_energy_kwh": 0.0, "curve": [],
              "note": f"{entry.name} has no trainable weights: no training, no training energy"}
    atomic.write_json(out_dir / RECORD, record)
    return record


def train(entry: zoo.ZooEntry, model: Vocoder | None, corpus_dir: str | Path, out_dir: str | Path,
          budget: Budget | Mapping, tracker_settings: TrackerSettings | object, device: str = "cpu",
          seed: int = 0, progress: bool = True, training: Mapping | None = None,
          model_overrides: Mapping | None = None) -> dict:
    """Train ``model`` (the zoo ``entry``'s vocoder) on ``corpus_dir``; return the training record.

    ``model`` must have been built with the corpus' sample rate (e.g.
    :func:`audiofootprint.vocoders.zoo.build_for_corpus`); ``None`` builds it with
    ``zoo.build(entry, **model_overrides)`` after ``torch.manual_seed(seed)``. ``budget``: a
    :class:`~audiofootprint.training.config.Budget` or a mapping of its fields (a profile's
    ``train`` section). ``tracker_settings``: :class:`TrackerSettings`, or an open codecarbon
    tracker to reuse. ``training`` replaces the entry's ``training`` section (tests, experiments).

    Raises :class:`~audiofootprint.training.config.SharedTrainingError` for an entry that shares
    another's training (``shares_training_with``), and :class:`~audiofootprint.vocoders.zoo.ConfigError`
    when the model's sample rate differs from the corpus'.
    """
    budget = Budget.coerce(budget)
    section = dict(training) if training is not None else training_section(entry)
    if section.get("shares_training_with"):
        raise SharedTrainingError(
            f"{entry.name} shares the training of {section['shares_training_with']!r} "
            f"(training.shares_training_with in {entry.path}): train that one and load its generator.pt")
    objective_name = section.get("objective", "none")
    device = torch.device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if model is None:
        torch.manual_seed(seed)
        model = zoo.build(entry, **dict(model_overrides or {}))
    if objective_name == "none":
        return _no_training(entry, model, out_dir, section)

    # -- data and model ------------------------------------------------------------------------
    batch_size = int(budget.batch_size or section.get("batch_size", 1))
    segment = int(budget.segment_samples or section.get("segment_samples", 8192))
    hop = model.hop_length
    if segment % hop:
        raise zoo.ConfigError(f"{entry.path}: segment_samples {segment} is not a multiple of the hop ({hop})")
    corpus_rate = BatchStream(corpus_dir, 1, 1, seed).sample_rate
    if corpus_rate != model.mel.sample_rate:
        raise zoo.ConfigError(
            f"{entry.path}: the model's mel analysis is at {model.mel.sample_rate} Hz, the corpus "
            f"{corpus_dir} at {corpus_rate} Hz: build the model for the corpus' rate "
            "(audiofootprint.vocoders.zoo.build_for_corpus)")
    model.to(device).train()
    torch.manual_seed(seed)
    objective = build_objective(objective_name, model, section, device)
    crop = objective.crop_samples(segment)
    stream = BatchStream(corpus_dir, crop, batch_size, seed)
    eval_seconds = min(float(budget.eval_max_seconds), float(section.get("eval_max_seconds", math.inf)))
    eval_set = load_eval_set(corpus_dir, budget.eval_utterances if budget.eval_points or budget.eval_at_start else 0,
                             eval_seconds, hop)

    # -- state: fresh or resumed ------------------------------------------------------------
    step, seconds, eval_seconds_spent, resumes, wall_before = 0, 0.0, 0.0, 0, 0.0
    energy, eval_energy = _Energy(), _Energy()
    history: list[dict] = []
    evals_done = 0  # intermediate evaluation points passed (k / eval_points, k < eval_points)
    loss_sum, loss_count, last_losses = 0.0, 0, {}
    seen: dict = {}  # methods and hardware codecarbon reported (kept for calls that measure nothing)
    checkpoint_path = out_dir / CHECKPOINT
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if state.get("objective") != objective_name or int(state.get("seed", seed)) != int(seed):
            raise ValueError(f"{checkpoint_path} was written by objective {state.get('objective')!r} with seed "
                             f"{state.get('seed')}, not {objective_name!r} with seed {seed}: remove it to start afresh")
        model.load_state_dict(state["model"])
        objective.load_state_dict(state["objective_state"])
        step, seconds = int(state["step"]), float(state["seconds"])
        eval_seconds_spent = float(state.get("eval_seconds", 0.0))
        energy, eval_energy = _Energy(state["energy"]), _Energy(state["eval_energy"])
        history = list(state["history"])
        evals_done = int(state["evals_done"])
        loss_sum, loss_count = float(state["loss_sum"]), int(state["loss_count"])
        last_losses = dict(state.get("last_losses", {}))
        seen = dict(state.get("seen", {}))
        resumes = int(state.get("resumes", 0)) + 1
        wall_before = float(state.get("wall_seconds", 0.0))
        _set_rng_state(state["rng"], device)
    else:
        torch.manual_seed(seed)

    tracker = tracker_settings if hasattr(tracker_settings, "start_task") else open_tracker(tracker_settings)
    wall_start = time.perf_counter()
    dirty = not checkpoint_path.is_file()

    def done() -> bool:
        return step >= budget.max_steps or seconds >= budget.max_seconds

    def intermediate_due(at_seconds: float) -> bool:
        n = budget.eval_points
        return evals_done < n - 1 and budget.progress(step, at_seconds) >= (evals_done + 1) / n

    def measured(data) -> None:
        seen["methods"] = measurement_methods(tracker)
        seen["hardware"] = hardware_seen(tracker, data)

    def run_evaluation() -> None:
        nonlocal eval_seconds_spent, loss_sum, loss_count, dirty
        if not eval_set:
            return
        _synchronize(device)
        task = _task_name("eval", step)
        tracker.start_task(task)
        began = time.perf_counter()
        try:
            scores = evaluate(model, eval_set, budget.eval_metrics, device, seed + 7919 * (len(history) + 1))
            _synchronize(device)
        except BaseException as error:
            data = tracker.stop_task(task)  # leave a shared tracker usable
            if isinstance(error, Exception):  # a failure, not an interruption: its energy was spent
                eval_energy.add(data)
                measured(data)
            raise
        eval_seconds_spent += time.perf_counter() - began
        data = tracker.stop_task(task)
        eval_energy.add(data)
        measured(data)
        point = {"step": step, "seconds": seconds, "energy_j": energy.total_j,
                 "loss": loss_sum / loss_count if loss_count else None, "epoch": stream.epoch_of(step)}
        point.update({m: scores.get(m) for m in budget.eval_metrics})
        point["per_utterance"] = scores["per_utterance"]
        history.append(point)
        loss_sum, loss_count = 0.0, 0
        dirty = True

    def save_checkpoint() -> None:
        nonlocal dirty
        state = {
            "format": FORMAT, "model_name": entry.name, "objective": objective_name, "seed": int(seed),
            "model": model.state_dict(), "objective_state": objective.state_dict(),
            "step": step, "seconds": seconds, "eval_seconds": eval_seconds_spent,
            "energy": energy.as_dict(), "eval_energy": eval_energy.as_dict(),
            "history": history, "evals_done": evals_done,
            "loss_sum": loss_sum, "loss_count": loss_count, "last_losses": last_losses, "seen": seen,
            "resumes": resumes, "rng": _rng_state(device), "budget": budget.as_dict(),
            "wall_seconds": wall_before + time.perf_counter() - wall_start,
        }
        atomic.write_torch(checkpoint_path, state)
        dirty = False

    def postfix(losses: Mapping) -> dict:
        shown = {k: f"{v:.3g}" for k, v in losses.items() if k.startswith("loss")}
        return shown | {"energy": f"{energy.total_j:.0f} J"}

    def train_segment(segment_start: float) -> None:
        """Training steps up to the next checkpoint, evaluation point or the end of the budget."""
        nonlocal step, last_losses, loss_sum, loss_count
        while True:
            ctx = StepContext(step=step, epoch=stream.epoch_of(step), progress=budget.progress(step, seconds))
            wave = stream.batch(step).to(device, non_blocking=True)
            losses = objective.step(wave, ctx)
            if not math.isfinite(losses["loss"]):
                shown = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
                raise NonFiniteLossError(f"the loss is {losses['loss']} at step {step} ({shown}): training diverged")
            step += 1
            last_losses = losses
            loss_sum += losses["loss"]
            loss_count += 1
            seconds_now = seconds + (time.perf_counter() - segment_start)
            # the bar's total is the step budget or, when the time budget binds first, the steps
            # that fit in it at the speed so far: tqdm's time left then means the end of training
            if math.isfinite(budget.max_seconds):
                bar.total = max(step, min(budget.max_steps, int(step / max(seconds_now, 1e-9) * budget.max_seconds)))
            bar.update(1)
            bar.set_postfix(postfix(losses), refresh=False)
            if step >= budget.max_steps or seconds_now >= budget.max_seconds:
                return
            if budget.checkpoint_every and step % budget.checkpoint_every == 0:
                return
            if budget.checkpoint_every_s and seconds_now - seconds >= budget.checkpoint_every_s:
                return
            if intermediate_due(seconds_now):
                return

    from tqdm.auto import tqdm

    bar = tqdm(total=budget.max_steps, initial=min(step, budget.max_steps), disable=not progress,
               desc=f"train {entry.name}", unit="step", dynamic_ncols=True, leave=True)
    try:
        if budget.eval_at_start and step == 0 and not history:
            run_evaluation()
        while not done():
            # one codecarbon task: training steps up to the next checkpoint, evaluation or the end
            _synchronize(device)
            task = _task_name("train", step)
            tracker.start_task(task)
            segment_start = time.perf_counter()
            try:
                train_segment(segment_start)
                _synchronize(device)
            except BaseException as error:
                # interrupted: the steps since the last checkpoint (and their energy) are lost
                data = tracker.stop_task(task)
                if isinstance(error, Exception):  # failed: the run ends here, with what it spent
                    seconds += time.perf_counter() - segment_start
                    energy.add(data)
                    measured(data)
                raise
            seconds += time.perf_counter() - segment_start
            data = tracker.stop_task(task)
            energy.add(data)
            measured(data)
            dirty = True
            bar.set_postfix(postfix(last_losses))
            while intermediate_due(seconds) and not done():
                evals_done += 1
                run_evaluation()
            if not done():
                save_checkpoint()
        # the final evaluation (unless this step was evaluated already)
        if budget.eval_points and (not history or history[-1]["step"] != step):
            run_evaluation()
        if dirty:
            save_checkpoint()
        atomic.write_torch(out_dir / GENERATOR, _to_cpu(model.state_dict_for_checkpoint()))
    except Exception as error:
        raise TrainingFailed(error, {
            "objective": objective_name, "steps": step, "seconds": seconds, "energy_j": energy.total_j,
            "energy_kwh": energy.total_j / J_PER_KWH, "co2e_kg": energy.co2e_kg, "energy": energy.as_dict(),
            "evaluation": {"seconds": eval_seconds_spent, "energy": eval_energy.as_dict()},
            "total_energy_kwh": (energy.total_j + eval_energy.total_j) / J_PER_KWH, "methods": seen.get("methods", {}),
            "hardware": seen.get("hardware", {"os": platform.platform()}), "device": str(device), "seed": int(seed),
            "budget": budget.as_dict(), "resumes": resumes,
            "curve": [{k: v for k, v in point.items() if k != "per_utterance"} for point in history],
        }) from error
    finally:
        bar.close()

    record = _record(entry, model, objective, section, budget, stream, eval_set, corpus_dir, device, seed,
                     step, seconds, eval_seconds_spent, energy, eval_energy, history, last_losses, resumes,
                     seen, wall_before, time.perf_counter() - wall_start, crop, segment, batch_size)
    atomic.write_json(out_dir / RECORD, record)
    return record


def _record(entry, model, objective, section, budget, stream, eval_set, corpus_dir, device, seed, step, seconds,
            eval_seconds, energy, eval_energy, history, last_losses, resumes, seen, wall_before, wall_s,
            crop, segment, batch_size) -> dict:
    stopped = "max_steps" if step >= budget.max_steps else "max_seconds"
    curve = [{k: v for k, v in point.items() if k != "per_utterance"} for point in history]
    return {
        "format": FORMAT,
        "model": entry.name,
        "family": entry.family,
        "objective": objective.name,
        "recipe": section.get("recipe"),
        "recipe_steps": section.get("recipe_steps"),
        "settings": json.loads(json.dumps(objective.describe(), default=str)),
        "steps": step,
        "epochs": step * batch_size / len(stream),
        "seconds": seconds,
        "steps_per_second": step / seconds if seconds > 0 else None,
        "stopped_by": stopped,
        "energy_j": energy.total_j,
        "energy_kwh": energy.total_j / J_PER_KWH,
        "co2e_kg": energy.co2e_kg,
        "energy": energy.as_dict(),
        "evaluation": {"seconds": eval_seconds, "energy": eval_energy.as_dict(), "split": eval_set.split,
                       "utterances": [utt_id for utt_id, _ in eval_set], "metrics": list(budget.eval_metrics)},
        "total_energy_kwh": (energy.total_j + eval_energy.total_j) / J_PER_KWH,
        "total_co2e_kg": energy.co2e_kg + eval_energy.co2e_kg,
        "methods": seen.get("methods", {}),
        "hardware": seen.get("hardware", {"os": platform.platform()}),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "seed": int(seed),
        "budget": budget.as_dict(),
        "batch_size": batch_size,
        "segment_samples": segment,
        "crop_samples": crop,
        "corpus": {"dir": str(corpus_dir), "sample_rate": stream.sample_rate,
                   "train_utterances": len(stream)},
        "mel": model.mel.as_dict(),
        "convention": convention_of(model),
        "parameters": objective.parameter_counts(),
        "learning_rates": objective.learning_rates(),
        "adversarial_from_step": objective.adversarial_from,
        "final_losses": last_losses,
        "resumes": resumes,
        "wall_seconds": wall_before + wall_s,  # all calls: training, evaluations, checkpoints, set-up
        "wall_seconds_this_call": wall_s,
        "curve": curve,
        "curve_per_utterance": [{"step": p["step"], "scores": p.get("per_utterance", {})} for p in history],
    }
