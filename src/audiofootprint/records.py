"""The typed records stages hand each other, each owned by one class here: its fields, its atomic
write, its validated read (a :class:`RecordError` naming the file and the field) and its row in
a summary table.

:class:`TrainingRecord` is ``results/models/NAME/training.json``, written by ``train@NAME`` (a run
measured here, a model with nothing to learn, checked pretrained weights, or a failure) and read by
the benchmark, the quantization study and the model card.

:class:`ModelMetrics` is ``results/benchmark/NAME/metrics.json``, written by ``benchmark@NAME``
and read by the benchmark summary, the model card, the front page, the model report and its
notebooks. Its ``status`` is explicit: ``ok`` (measured) or ``failed`` (and why).

:class:`VariantMetrics` is ``results/quantize/MODEL/SCHEME/metrics.json``, written by
``quantize@MODEL-SCHEME`` and read by the quantization summary: ``ok``, ``not_applicable`` or
``failed``, with the reason.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from audiofootprint import atomic, failures
from audiofootprint.paths import MODELS_DIR

OK = "ok"
STATUSES = (OK, failures.FAILED)
#: The keys of a spread measured by the harness (median and quartiles over windows or calls).
SPREAD_KEYS = ("median", "q1", "q3")


class RecordError(ValueError):
    """A result file that does not hold the record it should; the message names the file and field."""


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_object(path: Path, how: str) -> dict:
    """The JSON object in ``path``; FileNotFoundError or :class:`RecordError` saying ``how`` to make it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {how}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordError(f"{path} is not valid JSON ({error}): {how} again") from error
    if not isinstance(data, dict):
        raise RecordError(f"{path} holds {type(data).__name__}, not an object of fields: {how} again")
    return data


def _known_fields(cls, data: dict, path: Path, how: str, required: tuple[str, ...]) -> dict:
    """``data`` if it holds only fields of the dataclass ``cls`` and every ``required`` one."""
    known = {field.name for field in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecordError(f"{path}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(known))}): "
                          f"written by another version of audiofootprint? {how} again")
    for key in required:
        if key not in data:
            raise RecordError(f"{path} has no field {key!r}: {how} again")
    return data


def _failer(path: Path, how: str):
    """A function raising :class:`RecordError` for one field of ``path``."""
    def fail(field: str, problem: str):
        raise RecordError(f"{path}: field {field!r} {problem}: {how}")
    return fail


def _check_measured(record, fail, measured: tuple[str, ...], numbers: tuple[str, ...]) -> None:
    """The checks every measured record passes: ``measured`` fields present, ``numbers`` numeric, the
    harness' spreads complete, a numeric mean for each quality metric."""
    for key in measured:
        if getattr(record, key) is None:
            fail(key, "is missing")
    for key in numbers:
        if not _number(getattr(record, key)):
            fail(key, f"is {getattr(record, key)!r}, not a number")
    for key in ("energy_j_per_audio_s", "net_energy_j_per_audio_s", "real_time_factor"):
        spread = getattr(record, key)
        if not isinstance(spread, dict) or not all(_number(spread.get(k)) for k in SPREAD_KEYS):
            fail(key, f"is not a spread with numbers {', '.join(SPREAD_KEYS)}")
    if not isinstance(record.quality, dict) or not record.quality:
        fail("quality", "holds no metric")
    for metric, stats in record.quality.items():
        if not isinstance(stats, dict) or not _number(stats.get("mean")):
            fail(f"quality.{metric}", "has no numeric mean")


class TrainingRecord(Mapping):
    """What ``train@NAME`` hands the later stages (``results/models/NAME/training.json``), read as a
    mapping of its fields.

    Every record has ``steps``, ``seconds``, ``energy_kwh`` and ``co2e_kg`` (zero where nothing was
    trained here). Its :attr:`kind` is ``trained`` (a run measured here: the learning curve, the
    energy with its method, the budget; see :mod:`audiofootprint.training.loop`), ``none`` (nothing to
    learn), ``pretrained`` (checked published weights; its training energy is a published run's
    estimate) or ``failed`` (``status: failed``, the error and what was spent until then).
    """

    FILE = "training.json"
    SPENT = ("steps", "seconds", "energy_kwh", "co2e_kg")

    def __init__(self, fields: Mapping, path: Path | None = None):
        self._fields, self.path = dict(fields), path

    def __getitem__(self, key: str):
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    @classmethod
    def path_of(cls, root: str | Path, name: str) -> Path:
        """Where ``train@NAME`` writes the record of ``name``."""
        return Path(root) / MODELS_DIR / name / cls.FILE

    @classmethod
    def nothing_to_learn(cls, name: str, **extra) -> TrainingRecord:
        """The record of a model without trainable weights: no training, no training energy."""
        return cls({"objective": "none", "model": name, "steps": 0, "seconds": 0.0, "energy_j": 0.0,
                    "energy_kwh": 0.0, "co2e_kg": 0.0, "total_energy_kwh": 0.0, "curve": [],
                    "note": f"{name} has no trainable weights: no training, no training energy", **extra})

    @property
    def failed(self) -> bool:
        return failures.failed(self._fields)

    @property
    def kind(self) -> str:
        """``failed``, ``pretrained``, ``none`` or ``trained``."""
        if self.failed:
            return failures.FAILED
        objective = self._fields.get("objective", "none")
        return objective if objective in ("pretrained", "none") else "trained"

    def as_dict(self) -> dict:
        return dict(self._fields)

    def write(self, path: str | Path) -> None:
        """Write atomically, after the same checks a read makes."""
        path = Path(path)
        self.check(path)
        atomic.write_json(path, self._fields)

    @classmethod
    def read(cls, path: str | Path) -> TrainingRecord:
        """Read and check ``path``: a missing file is a FileNotFoundError, a malformed or incomplete one
        a :class:`RecordError`; both say which stage to run."""
        path = Path(path)
        record = cls(_read_object(path, f"run `dvc repro train@{path.parent.name}`"), path)
        record.check(path)
        return record

    def check(self, path: Path) -> None:
        """Raise :class:`RecordError` (naming ``path`` and the field) unless the record is complete."""
        how = f"run `dvc repro train@{path.parent.name}` again"
        status = self._fields.get("status", OK)
        if status not in STATUSES:
            raise RecordError(f"{path}: field 'status' is {status!r}, not one of {', '.join(STATUSES)}: {how}")
        required = self.SPENT + (("error_type", "message") if self.failed else ("objective",))
        for key in required:
            if key not in self._fields:
                raise RecordError(f"{path} has no field {key!r}: {how}")
        for key in self.SPENT:
            if not _number(self._fields[key]) or self._fields[key] < 0:
                raise RecordError(f"{path}: field {key!r} is {self._fields[key]!r}, not a number >= 0: {how}")


class _MeasuredRecord:
    """What the dataclass records of measured results share: ``ok``, the JSON form, the checked atomic
    write and the checked read (each subclass has ``status``, ``REQUIRED``, ``_how(path)`` and
    ``check(path)``)."""

    @property
    def ok(self) -> bool:
        """Whether it was measured."""
        return self.status == OK

    def as_dict(self) -> dict:
        """The JSON form: every field that is set."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def write(self, path: str | Path) -> None:
        """Write atomically, after the same checks a read makes."""
        self.check(Path(path))
        atomic.write_json(path, self.as_dict())

    @classmethod
    def read(cls, path: str | Path):
        """Read and check ``path``: a missing file is a FileNotFoundError, a malformed or incomplete one
        a :class:`RecordError`; both say which stage to run."""
        path = Path(path)
        how = cls._how(path)
        record = cls(**_known_fields(cls, _read_object(path, how), path, how, cls.REQUIRED))
        record.check(path)
        return record


@dataclass(frozen=True)
class ModelMetrics(_MeasuredRecord):
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
    def converged(self) -> bool:
        """Whether its measured quality is a finding (pretrained, training-free, trained to the recipe)."""
        return bool((self.quality_status or {}).get("converged"))

    REQUIRED = ("status", "family", "training")

    @staticmethod
    def _how(path: Path) -> str:
        return f"run `dvc repro benchmark@{path.parent.name}`"

    def check(self, path: Path) -> None:
        """Raise :class:`RecordError` (naming ``path`` and the field) unless the record is complete."""
        fail = _failer(path, f"{self._how(path)} again")
        if self.status not in STATUSES:
            fail("status", f"is {self.status!r}, not one of {', '.join(STATUSES)}")
        if not isinstance(self.training, dict):
            fail("training", "is not an object")
        if not self.ok:
            for key in ("failed_stage", "reason"):
                if not getattr(self, key):
                    fail(key, "is missing from a failed record")
            return
        _check_measured(self, fail, MEASURED,
                        ("params", "size_mb", "gflops_per_audio_s", "sample_rate", "test_utterances", "test_seconds"))
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


#: A quantized variant's status: measured, the scheme does not apply to the model, or it broke it.
NOT_APPLICABLE = "not_applicable"
VARIANT_STATUSES = (OK, NOT_APPLICABLE, failures.FAILED)


@dataclass(frozen=True)
class VariantMetrics(_MeasuredRecord):
    """The headline numbers of one quantized variant (``results/quantize/MODEL/SCHEME/metrics.json``),
    written by ``quantize@MODEL-SCHEME`` and read by the quantization summary.

    A measured variant (``status`` ok) has every field of :data:`VARIANT_MEASURED`; one that was
    not measured (``not_applicable``: the scheme cannot make it; ``failed``: its output cannot be
    scored) has the ``reason``.
    """

    model: str
    scheme: str
    status: str
    reason: str | None = None
    engine: str | None = None  # audiofootprint.engines.ENGINES
    backend: str | None = None
    notes: list | None = None
    family: str | None = None
    size_bytes: int | None = None
    weight_bytes: int | None = None
    peak_memory_bytes: int | None = None
    energy_j_per_audio_s: dict | None = None  # spread: median, q1, q3, n...
    net_energy_j_per_audio_s: dict | None = None
    real_time_factor: dict | None = None
    energy_method: dict | None = None
    hardware: str | None = None
    torch_threads: int | None = None
    engine_threads: int | None = None
    test_utterances: int | None = None
    quality: dict | None = None  # metric -> {mean, ci95, n}

    REQUIRED = ("model", "scheme", "status")

    @staticmethod
    def _how(path: Path) -> str:
        return f"run `dvc repro quantize@{path.parent.parent.name}-{path.parent.name}`"

    def check(self, path: Path) -> None:
        """Raise :class:`RecordError` (naming ``path`` and the field) unless the record is complete."""
        fail = _failer(path, f"{self._how(path)} again")
        if self.status not in VARIANT_STATUSES:
            fail("status", f"is {self.status!r}, not one of {', '.join(VARIANT_STATUSES)}")
        if not self.ok:
            if not self.reason:
                fail("reason", f"is missing from a {self.status} record")
            return
        _check_measured(self, fail, VARIANT_MEASURED, ("size_bytes", "weight_bytes", "peak_memory_bytes",
                                                       "test_utterances"))

    def table_row(self) -> dict:
        """The variant's row of the quantization summary (results/quantize_summary/variants.csv)."""
        row = {"model": self.model, "scheme": self.scheme, "engine": self.engine, "status": self.status,
               "reason": self.reason or ""}
        if not self.ok:
            return row
        energy, rtf = self.energy_j_per_audio_s, self.real_time_factor
        row.update({
            "backend": self.backend, "engine_threads": self.engine_threads, "family": self.family,
            "size_bytes": self.size_bytes,
            "weight_bytes": self.weight_bytes, "peak_memory_bytes": self.peak_memory_bytes,
            "energy_j_per_audio_s": energy["median"], "energy_q1": energy["q1"], "energy_q3": energy["q3"],
            "real_time_factor": rtf["median"], "rtf_q1": rtf["q1"], "rtf_q3": rtf["q3"],
            "windows": energy.get("n"), "timed_calls": rtf.get("n"),
            "hardware": self.hardware, "energy_method_cpu": (self.energy_method or {}).get("cpu"),
        })
        for metric, stats in self.quality.items():
            row[metric] = stats["mean"]
            row[f"{metric}_ci95"] = stats.get("ci95")
        return row


#: The fields every measured variant has.
VARIANT_MEASURED = ("engine", "backend", "family", "size_bytes", "weight_bytes", "peak_memory_bytes", "energy_j_per_audio_s",
                    "net_energy_j_per_audio_s", "real_time_factor", "energy_method", "hardware", "test_utterances",
                    "quality")
