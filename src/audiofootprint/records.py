"""The typed records stages hand each other, each owned by one class here: its fields, its atomic
write, its validated read (a :class:`RecordError` naming the file and the field) and its row in
a summary table.

:class:`ModelMetrics` is ``results/benchmark/NAME/metrics.json``, written by ``benchmark@NAME``
and read by the benchmark summary, the model card, the front page, the model report and its
notebooks. Its ``status`` is explicit: ``ok`` (measured) or ``failed`` (and why).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from audiofootprint import atomic, failures

OK = "ok"
STATUSES = (OK, failures.FAILED)
#: The keys of a spread measured by the harness (median and quartiles over windows or calls).
SPREAD_KEYS = ("median", "q1", "q3")


class RecordError(ValueError):
    """A result file that does not hold the record it should; the message names the file and field."""


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelMetrics:
    """The headline numbers of one benchmarked model (``results/benchmark/NAME/metrics.json``).

    A measured model (``status`` ok) has every field of :data:`MEASURED`; a failed one has
    ``failed_stage`` and ``reason`` (with the error's type and message) instead. ``training`` is
    what its training spent and where its weights came from, in both cases.
    """

    status: str
    family: str
    training: dict
    params: int | None = None
    size_mb: float | None = None
    gflops_per_audio_s: float | None = None
    energy_j_per_audio_s: dict | None = None  # spread: median, q1, q3, n...
    net_energy_j_per_audio_s: dict | None = None
    real_time_factor: dict | None = None
    energy_method: dict | None = None  # how each part's energy was obtained (cpu, gpu, ram)
    hardware: str | None = None
    host: str | None = None
    quality_status: dict | None = None  # evaluate.quality_status: kind, converged, steps...
    sample_rate: int | None = None
    scored_at: str | None = None
    test_utterances: int | None = None
    test_seconds: float | None = None
    quality: dict | None = None  # metric -> {mean, ci95, n}
    model: str | None = None
    failed_stage: str | None = None
    error_type: str | None = None
    message: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the model was measured."""
        return self.status == OK

    @property
    def converged(self) -> bool:
        """Whether its measured quality is a finding (pretrained, training-free, trained to the recipe)."""
        return bool((self.quality_status or {}).get("converged"))

    def as_dict(self) -> dict:
        """The JSON form: every field that is set."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def write(self, path: str | Path) -> None:
        """Write atomically, after the same checks a read makes."""
        self.check(Path(path))
        atomic.write_json(path, self.as_dict())

    @classmethod
    def read(cls, path: str | Path) -> ModelMetrics:
        """Read and check ``path``: a missing file is a FileNotFoundError, a malformed or incomplete one
        a :class:`RecordError`; both say which stage to run."""
        path = Path(path)
        how = f"run `dvc repro benchmark@{path.parent.name}`"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {how}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise RecordError(f"{path} is not valid JSON ({error}): {how} again") from error
        if not isinstance(data, dict):
            raise RecordError(f"{path} holds {type(data).__name__}, not an object of fields: {how} again")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecordError(f"{path}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(known))}): "
                              f"written by another version of audiofootprint? {how} again")
        for key in ("status", "family", "training"):
            if key not in data:
                raise RecordError(f"{path} has no field {key!r}: {how} again")
        record = cls(**data)
        record.check(path)
        return record

    def check(self, path: Path) -> None:
        """Raise :class:`RecordError` (naming ``path`` and the field) unless the record is complete."""
        how = f"run `dvc repro benchmark@{path.parent.name}` again"

        def fail(field: str, problem: str):
            raise RecordError(f"{path}: field {field!r} {problem}: {how}")

        if self.status not in STATUSES:
            fail("status", f"is {self.status!r}, not one of {', '.join(STATUSES)}")
        if not isinstance(self.training, dict):
            fail("training", "is not an object")
        if not self.ok:
            for key in ("failed_stage", "reason"):
                if not getattr(self, key):
                    fail(key, "is missing from a failed record")
            return
        for key in MEASURED:
            if getattr(self, key) is None:
                fail(key, "is missing")
        for key in ("params", "size_mb", "gflops_per_audio_s", "sample_rate", "test_utterances", "test_seconds"):
            if not _number(getattr(self, key)):
                fail(key, f"is {getattr(self, key)!r}, not a number")
        for key in ("energy_j_per_audio_s", "net_energy_j_per_audio_s", "real_time_factor"):
            spread = getattr(self, key)
            if not isinstance(spread, dict) or not all(_number(spread.get(k)) for k in SPREAD_KEYS):
                fail(key, f"is not a spread with numbers {', '.join(SPREAD_KEYS)}")
        if not isinstance(self.quality, dict) or not self.quality:
            fail("quality", "holds no metric")
        for metric, stats in self.quality.items():
            if not isinstance(stats, dict) or not _number(stats.get("mean")):
                fail(f"quality.{metric}", "has no numeric mean")
        if not isinstance(self.quality_status, dict) or not {"kind", "converged"} <= set(self.quality_status):
            fail("quality_status", "lacks kind or converged")
        if "trained_by" not in self.training:
            fail("training.trained_by", "is missing")

    def table_row(self, name: str) -> dict:
        """The model's row of the benchmark summary (results/benchmark_summary/models.csv)."""
        if not self.ok:
            return failures.table_row(name, self.as_dict())
        status, training = self.quality_status, self.training
        objective = training.get("objective")
        row = {"model": name, "status": OK, "family": self.family, "params": self.params, "size_mb": self.size_mb,
               "quality_kind": status["kind"], "converged": bool(status["converged"]),
               "quality_label": status.get("label", status["kind"]), "recipe_steps": status.get("recipe_steps"),
               "sample_rate": self.sample_rate, "test_utterances": self.test_utterances,
               "gflops_per_audio_s": self.gflops_per_audio_s,
               "energy_j_per_audio_s": self.energy_j_per_audio_s["median"],
               "energy_q1": self.energy_j_per_audio_s["q1"], "energy_q3": self.energy_j_per_audio_s["q3"],
               "net_energy_j_per_audio_s": self.net_energy_j_per_audio_s["median"],
               "real_time_factor": self.real_time_factor["median"],
               "training_energy_kwh": training.get("energy_kwh", 0.0) or 0.0,
               "training_energy_method": ("measured here" if objective not in ("none", "pretrained")
                                          else "none (no learned weights)"),
               "training_steps": training.get("steps", 0) or 0,
               "training_seconds": training.get("seconds", 0.0) or 0.0,
               "trained_by": training["trained_by"], "hardware": self.hardware, "host": self.host,
               "training_hardware": training.get("hardware"), "energy_method_cpu": (self.energy_method or {}).get("cpu")}
        published = training.get("published_training")
        if published:
            row.update({"published_training_run": published["run"], "published_training_note": published.get("note")})
        for metric, stats in self.quality.items():
            row[metric] = stats["mean"]
            row[f"{metric}_ci95"] = stats.get("ci95")
        return row


#: The fields every measured model has.
MEASURED = ("params", "size_mb", "gflops_per_audio_s", "energy_j_per_audio_s", "net_energy_j_per_audio_s",
            "real_time_factor", "energy_method", "hardware", "quality_status", "sample_rate", "test_utterances",
            "test_seconds", "quality")
