"""A model whose training or benchmark failed: the records that say so, so that the pipeline goes on.

One failing model must neither cost the others their results nor hide its error. Its stage writes
its usual outputs with ``status: failed``, the error's type and message and what was spent until
then, prints the traceback to stderr, and exits 0::

    results/models/NAME/training.json        status, error_type, message, steps, seconds, energy (with
                                             codecarbon's method labels) spent until the failure
    results/benchmark/NAME/metrics.json      status, failed_stage (train or benchmark), reason,
                                             error_type, message, the training spent
    results/benchmark/NAME/measurement.json  the same: nothing was measured
    results/benchmark/NAME/utterances.csv    the header only: no utterance was scored
    results/benchmark/NAME/audio/            empty

The summaries list the model as failed with :func:`reason`. A failed stage stays done for DVC:
fix the configuration (which re-runs it) or force it (``dvc repro -f train@NAME``).
"""
from __future__ import annotations

import shutil
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from audiofootprint import atomic

FAILED = "failed"
#: What a failed training record copies into the benchmark's metrics (the energy spent until the failure).
TRAINING_KEYS = ("status", "objective", "steps", "seconds", "energy_kwh", "co2e_kg", "methods")


class FailedTrainingError(RuntimeError):
    """Weights were asked of a training run that failed."""


def failed(record: Mapping) -> bool:
    """Whether a training record or a benchmark metrics.json records a failure."""
    return record.get("status", "ok") == FAILED


def error_fields(error: BaseException) -> dict:
    """The error's type and message, as recorded."""
    return {"error_type": type(error).__name__, "message": str(error) or repr(error)}


def first_line(error: BaseException) -> str:
    """The first line of an error's message, at most 300 characters; its type's name when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def reason(record: Mapping) -> str:
    """One line saying why a failed record failed: ``REASON (ErrorType: first line of the message)``."""
    message = str(record.get("message", "")).strip().splitlines()
    detail = f"{record.get('error_type', 'error')}: {message[0][:300] if message else 'no message'}"
    return f"{record['reason']} ({detail})" if record.get("reason") else detail


def tell(what: str, error: BaseException | None, record: Mapping) -> None:
    """Print the traceback of ``error`` (if any) and one line saying what failed and that it is recorded."""
    if error is not None:
        traceback.print_exception(error, file=sys.stderr)
    print(f"{what} FAILED: {reason(record)}. Recorded with status 'failed'; the pipeline goes on.",
          file=sys.stderr, flush=True)


def training_failure(name: str, error: BaseException, progress: Mapping | None = None) -> dict:
    """The training record (``training.json``, written by the train stage) of a training of ``name``
    that raised ``error``.

    ``progress``: what the run did until then (steps, seconds, energy, method labels; see
    :class:`audiofootprint.training.loop.TrainingFailed`); empty when it failed before its first step.
    """
    progress = dict(progress or {})
    steps = int(progress.get("steps", 0))
    record = {"status": FAILED, "model": name, "stage": "train", **error_fields(error),
              "reason": f"training failed after {steps} step{'s' if steps != 1 else ''}",
              "steps": 0, "seconds": 0.0, "energy_j": 0.0, "energy_kwh": 0.0, "co2e_kg": 0.0, "methods": {},
              **progress}
    if not progress.get("energy"):
        record["energy_note"] = "failed before its first training step: no energy was measured"
    return record


def benchmark_failure(out_dir: str | Path, name: str, family: str, trained_by: str, training: Mapping,
                      error: BaseException | None = None) -> dict:
    """Write the benchmark outputs of ``name`` for a failure; return its metrics.

    ``error`` is the benchmark's own error; without one, the failure is the training's
    (``training``, the record of ``trained_by``, says why).
    """
    out_dir = Path(out_dir)
    spent = {key: training[key] for key in TRAINING_KEYS if key in training} | {"trained_by": trained_by}
    if error is None:
        cause = {"failed_stage": "train", "error_type": training.get("error_type"), "message": training.get("message"),
                 "reason": f"its training (train@{trained_by}) failed after {training.get('steps', 0)} steps"}
    else:
        cause = {"failed_stage": "benchmark", **error_fields(error), "reason": f"benchmark@{name} failed"}
    metrics = {"status": FAILED, "model": name, "family": family, **cause, "training": spent}
    shutil.rmtree(out_dir / "audio", ignore_errors=True)  # nothing of a failed run is kept
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    atomic.write_csv(out_dir / "utterances.csv", pd.DataFrame(columns=["id", "seconds"]))
    atomic.write_json(out_dir / "measurement.json", {key: value for key, value in metrics.items() if key != "training"}
                      | {"note": "nothing was measured"})
    atomic.write_json(out_dir / "metrics.json", metrics)
    tell(f"benchmark {name}", error, metrics)
    return metrics


def table_row(name: str, metrics: Mapping) -> dict:
    """The row of a failed model in the benchmark summary (models.csv)."""
    training = metrics.get("training") or {}
    return {"model": name, "status": FAILED, "failed_stage": metrics.get("failed_stage"), "reason": reason(metrics),
            "family": metrics.get("family"), "trained_by": training.get("trained_by"),
            "training_energy_kwh": training.get("energy_kwh", 0.0) or 0.0,
            "training_steps": training.get("steps", 0) or 0, "training_seconds": training.get("seconds", 0.0) or 0.0}
