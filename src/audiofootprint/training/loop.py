"""Train one zoo vocoder under a budget, with its energy measured and checkpoints to resume from.

:func:`train` runs the model's original objective (:mod:`.objectives`, chosen by the ``training``
section of its YAML file) on random crops of the corpus' training split, with the mel features
computed on the fly from each crop (:func:`audiofootprint.features.mel_spectrogram`, the model's
own mel settings and convention). Outputs in ``out_dir``::

    checkpoint.pt   everything needed to resume (written atomically at every checkpoint)
    generator.pt    the final generator, ``model.state_dict_for_checkpoint()`` (``model.from_checkpoint``)
    training.json   the training record (records.TrainingRecord: steps, seconds, energy, learning curve)

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
from dataclasses import dataclass, field
from pathlib import Path

import torch

from audiofootprint import atomic
from audiofootprint.records import TrainingRecord
from audiofootprint.energy.harness import J_PER_KWH
from audiofootprint.energy.tracker import TrackerSettings, hardware_seen, measurement_methods, open_tracker
from audiofootprint.features import convention_of
from audiofootprint.training.batches import BatchStream
from audiofootprint.training.config import Budget, SharedTrainingError, training_section
from audiofootprint.training.evaluation import evaluate, load_eval_set
from audiofootprint.training.objectives import StepContext, build_objective
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder

__all__ = ["CHECKPOINT", "GENERATOR", "EnergyTotal", "NonFiniteLossError", "RunState", "TrainingFailed",
           "TrainingRun", "train"]

CHECKPOINT = "checkpoint.pt"
GENERATOR = "generator.pt"
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


class EnergyTotal:
    """Energy summed over codecarbon tasks, per part, in joules (codecarbon reports kWh: converted
    once, here), with the CO2e and the number of tasks."""

    def __init__(self, state: Mapping | None = None):
        state = dict(state or {})
        self.joules = {part: float(state.get(f"{part}_j", 0.0)) for part in _PARTS}
        self.co2e_kg = float(state.get("co2e_kg", 0.0))
        self.tasks = int(state.get("tasks", 0))

    def add(self, data) -> None:
        """Add one codecarbon task's ``EmissionsData``."""
        self.joules["cpu"] += float(data.cpu_energy) * J_PER_KWH
        self.joules["gpu"] += float(data.gpu_energy) * J_PER_KWH
        self.joules["ram"] += float(data.ram_energy) * J_PER_KWH
        self.co2e_kg += float(data.emissions)
        self.tasks += 1

    @property
    def total_j(self) -> float:
        return sum(self.joules.values())

    @property
    def total_kwh(self) -> float:
        return self.total_j / J_PER_KWH

    def as_dict(self) -> dict:
        out = {f"{part}_j": j for part, j in self.joules.items()}
        out.update({f"{part}_kwh": j / J_PER_KWH for part, j in self.joules.items()})
        out.update(total_j=self.total_j, total_kwh=self.total_kwh, co2e_kg=self.co2e_kg, tasks=self.tasks)
        return out


@dataclass
class RunState:
    """What a run has done so far. Its checkpoint holds it (:meth:`as_checkpoint`); a resumed run starts
    from it (:meth:`from_checkpoint`)."""

    step: int = 0
    seconds: float = 0.0  # training time: the budget's clock (evaluations and checkpoints excluded)
    eval_seconds: float = 0.0
    energy: EnergyTotal = field(default_factory=EnergyTotal)  # the training steps'
    eval_energy: EnergyTotal = field(default_factory=EnergyTotal)
    history: list[dict] = field(default_factory=list)  # evaluation points
    evals_done: int = 0  # intermediate evaluation points passed (k / eval_points, k < eval_points)
    loss_sum: float = 0.0  # since the last evaluation point
    loss_count: int = 0
    last_losses: dict = field(default_factory=dict)
    seen: dict = field(default_factory=dict)  # methods and hardware codecarbon reported
    resumes: int = 0
    wall_before: float = 0.0  # wall time of the calls before this one

    def as_checkpoint(self) -> dict:
        return {"step": self.step, "seconds": self.seconds, "eval_seconds": self.eval_seconds,
                "energy": self.energy.as_dict(), "eval_energy": self.eval_energy.as_dict(),
                "history": self.history, "evals_done": self.evals_done, "loss_sum": self.loss_sum,
                "loss_count": self.loss_count, "last_losses": self.last_losses, "seen": self.seen,
                "resumes": self.resumes}

    @classmethod
    def from_checkpoint(cls, state: Mapping) -> RunState:
        return cls(step=int(state["step"]), seconds=float(state["seconds"]),
                   eval_seconds=float(state.get("eval_seconds", 0.0)),
                   energy=EnergyTotal(state["energy"]), eval_energy=EnergyTotal(state["eval_energy"]),
                   history=list(state["history"]), evals_done=int(state["evals_done"]),
                   loss_sum=float(state["loss_sum"]), loss_count=int(state["loss_count"]),
                   last_losses=dict(state.get("last_losses", {})), seen=dict(state.get("seen", {})),
                   resumes=int(state.get("resumes", 0)) + 1, wall_before=float(state.get("wall_seconds", 0.0)))

    def curve(self) -> list[dict]:
        """The learning curve: the evaluation points without their per-utterance scores."""
        return [{k: v for k, v in point.items() if k != "per_utterance"} for point in self.history]

    def spent(self) -> dict:
        """Training and evaluation time and energy, as the record and a failure give them."""
        return {"steps": self.step, "seconds": self.seconds, "energy_j": self.energy.total_j,
                "energy_kwh": self.energy.total_kwh, "co2e_kg": self.energy.co2e_kg,
                "energy": self.energy.as_dict()}


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


def _no_training(entry: zoo.ZooEntry, model: Vocoder, out_dir: Path) -> dict:
    atomic.write_torch(out_dir / GENERATOR, _to_cpu(model.state_dict_for_checkpoint()))
    record = TrainingRecord.nothing_to_learn(entry.name, format=FORMAT, family=entry.family)
    record.write(out_dir / TrainingRecord.FILE)
    return record.as_dict()


def train(entry: zoo.ZooEntry, model: Vocoder | None, corpus_dir: str | Path, out_dir: str | Path,
          budget: Budget | Mapping, tracker_settings: TrackerSettings | object, device: str = "cpu",
          seed: int = 0, progress: bool = True, training: Mapping | None = None,
          model_overrides: Mapping | None = None, keep_resume_state: bool = True) -> dict:
    """Train ``model`` (the zoo ``entry``'s vocoder) on ``corpus_dir``; return the training record.

    ``model`` must have been built with the corpus' sample rate (e.g.
    :func:`audiofootprint.vocoders.zoo.build_for_corpus`); ``None`` builds it with
    ``zoo.build(entry, **model_overrides)`` after ``torch.manual_seed(seed)``. ``budget``: a
    :class:`~audiofootprint.training.config.Budget` or a mapping of its fields (a profile's
    ``train`` section). ``tracker_settings``: :class:`TrackerSettings`, or an open codecarbon
    tracker to reuse. ``training`` replaces the entry's ``training`` section (tests, experiments).
    ``keep_resume_state=False`` deletes the checkpoint once the budget is spent instead of writing
    the final one (the training stage keeps only the generator and the record).

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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if model is None:
        torch.manual_seed(seed)
        model = zoo.build(entry, **dict(model_overrides or {}))
    if section.get("objective", "none") == "none":
        return _no_training(entry, model, out_dir)
    return TrainingRun(entry, model, corpus_dir, out_dir, budget, section, torch.device(device), seed).run(
        tracker_settings, progress, keep_resume_state)


class TrainingRun:
    """One training run: its data and objective, its state (fresh, or resumed from ``checkpoint.pt``),
    the measured stretches of steps between checkpoints and evaluations, and what it writes (checkpoint,
    generator, record) or raises (:class:`TrainingFailed`)."""

    def __init__(self, entry: zoo.ZooEntry, model: Vocoder, corpus_dir: str | Path, out_dir: Path,
                 budget: Budget, section: Mapping, device: torch.device, seed: int):
        self.entry, self.model, self.corpus_dir, self.out_dir = entry, model, corpus_dir, out_dir
        self.budget, self.section, self.device, self.seed = budget, section, device, int(seed)
        self.objective_name = section["objective"]
        # the profile's budget and the recipe: the smaller wins (zoo.within_limits)
        limits = zoo.within_limits(budget.as_dict(), section, ("batch_size", "segment_samples", "eval_max_seconds"))
        self.batch_size = int(limits["batch_size"] or 1)
        self.segment = int(limits["segment_samples"] or 8192)
        hop = model.hop_length
        if self.segment % hop:
            raise zoo.ConfigError(f"{entry.path}: segment_samples {self.segment} is not a multiple of the hop ({hop})")
        corpus_rate = BatchStream(corpus_dir, 1, 1, seed).sample_rate
        if corpus_rate != model.mel.sample_rate:
            raise zoo.ConfigError(
                f"{entry.path}: the model's mel analysis is at {model.mel.sample_rate} Hz, the corpus "
                f"{corpus_dir} at {corpus_rate} Hz: build the model for the corpus' rate "
                "(audiofootprint.vocoders.zoo.build_for_corpus)")
        model.to(device).train()
        torch.manual_seed(seed)
        self.objective = build_objective(self.objective_name, model, section, device)
        self.crop = self.objective.crop_samples(self.segment)
        self.stream = BatchStream(corpus_dir, self.crop, self.batch_size, seed)
        eval_seconds = float(limits["eval_max_seconds"] if limits["eval_max_seconds"] is not None else math.inf)
        wanted = budget.eval_utterances if budget.eval_points or budget.eval_at_start else 0
        self.eval_set = load_eval_set(corpus_dir, wanted, eval_seconds, hop)
        self.checkpoint_path = out_dir / CHECKPOINT
        if self.checkpoint_path.is_file():
            self.state, self.dirty = self._resumed(), False
        else:
            torch.manual_seed(seed)
            self.state, self.dirty = RunState(), True  # dirty: progress not yet in the checkpoint
        self.checkpointed_at = self.state.seconds  # training seconds when the checkpoint was written

    def _resumed(self) -> RunState:
        saved = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        if saved.get("objective") != self.objective_name or int(saved.get("seed", self.seed)) != self.seed:
            raise ValueError(
                f"{self.checkpoint_path} was written by objective {saved.get('objective')!r} with seed "
                f"{saved.get('seed')}, not {self.objective_name!r} with seed {self.seed}: remove it to start afresh")
        self.model.load_state_dict(saved["model"])
        self.objective.load_state_dict(saved["objective_state"])
        _set_rng_state(saved["rng"], self.device)
        return RunState.from_checkpoint(saved)

    # -- the budget ---------------------------------------------------------------------------
    def done(self) -> bool:
        return self.state.step >= self.budget.max_steps or self.state.seconds >= self.budget.max_seconds

    def _intermediate_due(self, at_seconds: float) -> bool:
        n, state = self.budget.eval_points, self.state
        return state.evals_done < n - 1 and self.budget.progress(state.step, at_seconds) >= (state.evals_done + 1) / n

    def _checkpoint_due(self, seconds_now: float) -> bool:
        """Whether a checkpoint is due: every ``checkpoint_every`` steps, or ``checkpoint_every_s`` seconds
        of training after the last one (an evaluation alone writes none)."""
        budget = self.budget
        return (bool(budget.checkpoint_every and self.state.step % budget.checkpoint_every == 0)
                or bool(budget.checkpoint_every_s and seconds_now - self.checkpointed_at >= budget.checkpoint_every_s))

    def _stretch_ends(self, seconds_now: float) -> bool:
        """Whether the stretch of steps ends here: the budget spent, a checkpoint or an evaluation due."""
        budget = self.budget
        return (self.state.step >= budget.max_steps or seconds_now >= budget.max_seconds
                or self._checkpoint_due(seconds_now) or self._intermediate_due(seconds_now))

    # -- measured work --------------------------------------------------------------------------
    def _measured(self, task: str, work, total: EnergyTotal) -> float:
        """Run ``work()`` as the codecarbon task ``task`` (CUDA synchronised at both ends); add its energy
        to ``total``, also when it fails (an interruption's energy is lost with its steps); return its
        seconds."""
        _synchronize(self.device)
        self.tracker.start_task(task)
        began = time.perf_counter()
        try:
            work()
            _synchronize(self.device)
        except BaseException as error:
            data = self.tracker.stop_task(task)  # leave a shared tracker usable
            if isinstance(error, Exception):  # a failure, not an interruption: the run ends with what it spent
                self._account(data, total, time.perf_counter() - began, total is self.state.energy)
            raise
        seconds = time.perf_counter() - began
        self._account(self.tracker.stop_task(task), total, seconds, total is self.state.energy)
        return seconds

    def _account(self, data, total: EnergyTotal, seconds: float, training: bool) -> None:
        total.add(data)
        self.state.seen["methods"] = measurement_methods(self.tracker)
        self.state.seen["hardware"] = hardware_seen(self.tracker, data)
        if training:
            self.state.seconds += seconds

    def _evaluate(self) -> None:
        if not self.eval_set:
            return
        state, scores = self.state, {}

        def work():
            seed = self.seed + 7919 * (len(state.history) + 1)
            scores.update(evaluate(self.model, self.eval_set, self.budget.eval_metrics, self.device, seed))

        began = time.perf_counter()
        self._measured(_task_name("eval", state.step), work, state.eval_energy)
        state.eval_seconds += time.perf_counter() - began
        point = {"step": state.step, "seconds": state.seconds, "energy_j": state.energy.total_j,
                 "loss": state.loss_sum / state.loss_count if state.loss_count else None,
                 "epoch": self.stream.epoch_of(state.step)}
        point.update({m: scores.get(m) for m in self.budget.eval_metrics})
        point["per_utterance"] = scores["per_utterance"]
        state.history.append(point)
        state.loss_sum, state.loss_count = 0.0, 0
        self.dirty = True

    def _steps(self) -> None:
        """Training steps up to the next checkpoint, evaluation point or the end of the budget."""
        state, budget, started = self.state, self.budget, time.perf_counter()
        while True:
            ctx = StepContext(step=state.step, epoch=self.stream.epoch_of(state.step),
                              progress=budget.progress(state.step, state.seconds))
            wave = self.stream.batch(state.step).to(self.device, non_blocking=True)
            losses = self.objective.step(wave, ctx)
            if not math.isfinite(losses["loss"]):
                shown = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
                raise NonFiniteLossError(
                    f"the loss is {losses['loss']} at step {state.step} ({shown}): training diverged")
            state.step += 1
            state.last_losses = losses
            state.loss_sum += losses["loss"]
            state.loss_count += 1
            seconds_now = state.seconds + (time.perf_counter() - started)
            self._show(losses, seconds_now)
            if self._stretch_ends(seconds_now):
                return

    # -- progress bar ---------------------------------------------------------------------------
    def _postfix(self, losses: Mapping) -> dict:
        shown = {k: f"{v:.3g}" for k, v in losses.items() if k.startswith("loss")}
        return shown | {"energy": f"{self.state.energy.total_j:.0f} J"}

    def _show(self, losses: Mapping, seconds_now: float) -> None:
        # the bar's total is the step budget or, when the time budget binds first, the steps that fit
        # in it at the speed so far: tqdm's time left then means the end of training
        step, budget = self.state.step, self.budget
        if math.isfinite(budget.max_seconds):
            self.bar.total = max(step, min(budget.max_steps, int(step / max(seconds_now, 1e-9) * budget.max_seconds)))
        self.bar.update(1)
        self.bar.set_postfix(self._postfix(losses), refresh=False)

    # -- the run --------------------------------------------------------------------------------
    def run(self, tracker_settings: TrackerSettings | object, progress: bool = True,
            keep_resume_state: bool = True) -> dict:
        """Train until the budget is spent; write the generator and the record (and the final
        checkpoint, or with ``keep_resume_state=False`` delete it); return the record."""
        from tqdm.auto import tqdm

        self.tracker = tracker_settings if hasattr(tracker_settings, "start_task") else open_tracker(tracker_settings)
        self.wall_start = time.perf_counter()
        state, budget = self.state, self.budget
        self.bar = tqdm(total=budget.max_steps, initial=min(state.step, budget.max_steps), disable=not progress,
                        desc=f"train {self.entry.name}", unit="step", dynamic_ncols=True, leave=True)
        try:
            if budget.eval_at_start and state.step == 0 and not state.history:
                self._evaluate()
            while not self.done():
                # one codecarbon task: training steps up to the next checkpoint, evaluation or the end
                self._measured(_task_name("train", state.step), self._steps, state.energy)
                self.dirty = True
                self.bar.set_postfix(self._postfix(state.last_losses))
                while self._intermediate_due(state.seconds) and not self.done():
                    state.evals_done += 1
                    self._evaluate()
                if not self.done() and self._checkpoint_due(state.seconds):
                    self._save_checkpoint()
            # the final evaluation (unless this step was evaluated already)
            if budget.eval_points and (not state.history or state.history[-1]["step"] != state.step):
                self._evaluate()
            if self.dirty and keep_resume_state:
                self._save_checkpoint()
            atomic.write_torch(self.out_dir / GENERATOR, _to_cpu(self.model.state_dict_for_checkpoint()))
        except Exception as error:
            raise TrainingFailed(error, self._failure()) from error
        finally:
            self.bar.close()
        record = self._record()
        TrainingRecord(record).write(self.out_dir / TrainingRecord.FILE)
        if not keep_resume_state:  # only once the generator and the record are written
            self.checkpoint_path.unlink(missing_ok=True)
        return record

    def _wall_seconds(self) -> float:
        return time.perf_counter() - self.wall_start

    def _save_checkpoint(self) -> None:
        saved = {"format": FORMAT, "model_name": self.entry.name, "objective": self.objective_name,
                 "seed": self.seed, "model": self.model.state_dict(), "objective_state": self.objective.state_dict(),
                 **self.state.as_checkpoint(), "rng": _rng_state(self.device), "budget": self.budget.as_dict(),
                 "wall_seconds": self.state.wall_before + self._wall_seconds()}
        atomic.write_torch(self.checkpoint_path, saved)
        self.dirty, self.checkpointed_at = False, self.state.seconds

    def _evaluation_spent(self) -> dict:
        state = self.state
        return {"seconds": state.eval_seconds, "energy": state.eval_energy.as_dict()}

    def _failure(self) -> dict:
        """What the run did until it failed (:class:`TrainingFailed`'s ``progress``)."""
        state = self.state
        return {
            "objective": self.objective_name, **state.spent(), "evaluation": self._evaluation_spent(),
            "total_energy_kwh": (state.energy.total_j + state.eval_energy.total_j) / J_PER_KWH,
            "methods": state.seen.get("methods", {}),
            "hardware": state.seen.get("hardware", {"os": platform.platform()}), "device": str(self.device),
            "seed": self.seed, "budget": self.budget.as_dict(), "resumes": state.resumes, "curve": state.curve(),
        }

    def _record(self) -> dict:
        """The training record (``training.json``) of a run that spent its budget."""
        state, budget, stream, objective = self.state, self.budget, self.stream, self.objective
        wall_s = self._wall_seconds()
        spent = state.spent()
        return {
            "format": FORMAT,
            "model": self.entry.name,
            "family": self.entry.family,
            "objective": objective.name,
            "recipe": self.section.get("recipe"),
            "recipe_steps": self.section.get("recipe_steps"),
            "settings": json.loads(json.dumps(objective.describe(), default=str)),
            "steps": state.step,
            "epochs": state.step * self.batch_size / len(stream),
            "seconds": state.seconds,
            "steps_per_second": state.step / state.seconds if state.seconds > 0 else None,
            "stopped_by": "max_steps" if state.step >= budget.max_steps else "max_seconds",
            "energy_j": spent["energy_j"],
            "energy_kwh": spent["energy_kwh"],
            "co2e_kg": spent["co2e_kg"],
            "energy": spent["energy"],
            "evaluation": self._evaluation_spent() | {
                "split": self.eval_set.split, "utterances": [utt_id for utt_id, _ in self.eval_set],
                "metrics": list(budget.eval_metrics)},
            "total_energy_kwh": (state.energy.total_j + state.eval_energy.total_j) / J_PER_KWH,
            "total_co2e_kg": state.energy.co2e_kg + state.eval_energy.co2e_kg,
            "methods": state.seen.get("methods", {}),
            "hardware": state.seen.get("hardware", {"os": platform.platform()}),
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
            "seed": self.seed,
            "budget": budget.as_dict(),
            "batch_size": self.batch_size,
            "segment_samples": self.segment,
            "crop_samples": self.crop,
            "corpus": {"dir": str(self.corpus_dir), "sample_rate": stream.sample_rate,
                       "train_utterances": len(stream)},
            "mel": self.model.mel.as_dict(),
            "convention": convention_of(self.model),
            "parameters": objective.parameter_counts(),
            "learning_rates": objective.learning_rates(),
            "adversarial_from_step": objective.adversarial_from,
            "final_losses": state.last_losses,
            "resumes": state.resumes,
            "wall_seconds": state.wall_before + wall_s,  # all calls: training, evaluations, checkpoints, set-up
            "wall_seconds_this_call": wall_s,
            "curve": state.curve(),
            "curve_per_utterance": [{"step": p["step"], "scores": p.get("per_utterance", {})} for p in state.history],
        }
