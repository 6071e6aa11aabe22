"""The typed record of results/benchmark/NAME/metrics.json: its write, its checked read, its table row."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from audiofootprint.failures import benchmark_failure
from audiofootprint.records import NOT_APPLICABLE, ModelMetrics, RecordError, TrainingRecord, VariantMetrics
from conftest import measured_metrics


@pytest.fixture
def path(tmp_path):
    return tmp_path / "results/benchmark/hifigan_v3/metrics.json"


def test_a_measured_record_round_trips_with_an_explicit_status(path):
    record = measured_metrics("HiFi-GAN", 1.5, 2.75, trained_by="hifigan_v3")
    record.write(path)
    assert json.loads(path.read_text())["status"] == "ok"
    assert ModelMetrics.read(path) == record and record.ok and record.converged
    assert not [p for p in path.parent.iterdir() if p.name != "metrics.json"]  # written atomically


def test_the_table_row_flattens_medians_and_means(path):
    row = measured_metrics("HiFi-GAN", 1.5, 2.75, q1=1.25, q3=2.0, trained_by="hifigan_v3").table_row("hifigan_v3")
    assert row["status"] == "ok" and row["energy_j_per_audio_s"] == 1.5
    assert (row["energy_q1"], row["energy_q3"], row["net_energy_j_per_audio_s"]) == (1.25, 2.0, 0.75)
    assert row["pesq"] == 2.75 and row["pesq_ci95"] == 0.05 and row["real_time_factor"] == 0.5
    assert row["training_energy_method"] == "none (no learned weights)" and row["trained_by"] == "hifigan_v3"
    assert row["converged"] is True and row["quality_kind"] == "training-free"


def test_a_failed_record_is_read_as_the_stage_wrote_it(path):
    benchmark_failure(path.parent, "hifigan_v3", "HiFi-GAN", "hifigan_v3", {"objective": "hifigan", "steps": 2},
                      RuntimeError("out of memory"))
    record = ModelMetrics.read(path)
    assert not record.ok and record.failed_stage == "benchmark" and record.error_type == "RuntimeError"
    row = record.table_row("hifigan_v3")
    assert row["status"] == "failed" and row["reason"] == "benchmark@hifigan_v3 failed (RuntimeError: out of memory)"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("status"), "has no field 'status'"),
    (lambda d: d.update(status="done"), "field 'status' is 'done', not one of ok, failed"),
    (lambda d: d.update(energy_j_per_audio_s=1.5), "field 'energy_j_per_audio_s' is not a spread"),
    (lambda d: d.pop("quality"), "field 'quality' is missing"),
    (lambda d: d.update(params="many"), "field 'params' is 'many', not a number"),
    (lambda d: d.update(quality={"pesq": {"ci95": 0.1}}), "field 'quality.pesq' has no numeric mean"),
    (lambda d: d.update(speed=3), "unknown field 'speed'"),
    (lambda d: d["training"].pop("trained_by"), "field 'training.trained_by' is missing"),
])
def test_a_bad_record_names_the_file_the_field_and_the_stage(path, edit, message):
    data = measured_metrics("HiFi-GAN", 1.5, 2.75).as_dict()
    edit(data)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError) as error:
        ModelMetrics.read(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "dvc repro benchmark@hifigan_v3" in str(error.value)


def test_a_file_that_is_not_a_record(path):
    with pytest.raises(FileNotFoundError, match="metrics.json not found: run `dvc repro benchmark@hifigan_v3`"):
        ModelMetrics.read(path)
    path.parent.mkdir(parents=True)
    path.write_text('{"status": "ok",')
    with pytest.raises(RecordError, match="is not valid JSON"):
        ModelMetrics.read(path)
    path.write_text("[1, 2]")
    with pytest.raises(RecordError, match="holds list, not an object"):
        ModelMetrics.read(path)


def test_an_incomplete_record_is_not_written(path):
    with pytest.raises(RecordError, match="field 'real_time_factor' is missing"):
        replace(measured_metrics("HiFi-GAN", 1.5, 2.75), real_time_factor=None).write(path)
    assert not path.exists()
    with pytest.raises(RecordError, match="field 'failed_stage' is missing from a failed record"):
        ModelMetrics(status="failed", family="HiFi-GAN", training={}, reason="why").write(path)


# ------------------------------------------------------------------ the training record


def test_training_records_of_every_kind_round_trip(tmp_path):
    from audiofootprint.failures import training_failure

    folder = tmp_path / "results/models/melgan"
    path = TrainingRecord.path_of(tmp_path, "melgan")
    assert path == folder / "training.json"
    trained = TrainingRecord({"objective": "melgan", "steps": 12, "seconds": 25.1, "energy_kwh": 1e-4,
                              "co2e_kg": 5e-6, "curve": []})
    nothing = TrainingRecord.nothing_to_learn("griffinlim_32")
    pretrained = TrainingRecord({"objective": "pretrained", "steps": 0, "seconds": 0.0, "energy_kwh": 0.0,
                                 "co2e_kg": 0.0, "weights": {"sha256": "ab"}})
    failed = TrainingRecord(training_failure("melgan", FloatingPointError("the loss is nan"),
                                             {"objective": "melgan", "steps": 3, "seconds": 1.5}))
    for record, kind in ((trained, "trained"), (nothing, "none"), (pretrained, "pretrained"), (failed, "failed")):
        record.write(path)
        again = TrainingRecord.read(path)
        assert again.kind == kind and again.as_dict() == record.as_dict() and again.path == path
    assert failed.failed and failed["steps"] == 3 and failed["reason"] == "training failed after 3 steps"
    assert dict(nothing)["energy_kwh"] == 0.0 and nothing["note"].startswith("griffinlim_32 has no trainable")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("steps"), "has no field 'steps'"),
    (lambda d: d.pop("objective"), "has no field 'objective'"),
    (lambda d: d.update(energy_kwh=-1.0), "field 'energy_kwh' is -1.0, not a number >= 0"),
    (lambda d: d.update(seconds="long"), "field 'seconds' is 'long', not a number >= 0"),
    (lambda d: d.update(status="done"), "field 'status' is 'done', not one of ok, failed"),
    (lambda d: d.update(status="failed"), "has no field 'error_type'"),
])
def test_a_bad_training_record_names_the_file_the_field_and_the_stage(tmp_path, edit, message):
    data = {"objective": "melgan", "steps": 12, "seconds": 25.1, "energy_kwh": 1e-4, "co2e_kg": 5e-6}
    edit(data)
    path = TrainingRecord.path_of(tmp_path, "melgan")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError) as error:
        TrainingRecord.read(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "dvc repro train@melgan" in str(error.value)
    with pytest.raises(RecordError):  # nor is one written
        TrainingRecord(data).write(tmp_path / "other.json")
    assert not (tmp_path / "other.json").exists()


def test_a_missing_training_record_says_which_stage_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="training.json not found: run `dvc repro train@wavernn`"):
        TrainingRecord.read(TrainingRecord.path_of(tmp_path, "wavernn"))


# ------------------------------------------------------------------ the quantized variant


def _variant(**changes) -> VariantMetrics:
    spread = lambda median: {"median": median, "q1": median * 0.9, "q3": median * 1.1, "n": 5}  # noqa: E731
    fields = dict(engine="torch", backend="weight-only int8 (packed)", notes=["Conv1d x 12"], family="HiFi-GAN",
                  size_bytes=400_000, weight_bytes=390_000, peak_memory_bytes=2_000_000,
                  energy_j_per_audio_s=spread(2.0), net_energy_j_per_audio_s=spread(1.5),
                  real_time_factor=spread(0.25), energy_method={"cpu": "codecarbon RAPL"}, hardware="CPU A",
                  torch_threads=2, engine_threads=2, test_utterances=2,
                  quality={"pesq": {"mean": 3.1, "ci95": 0.2, "n": 2}})
    return VariantMetrics(**({"model": "hifigan_v3", "scheme": "weight_int8", "status": "ok"} | fields | changes))


def test_variant_records_round_trip_and_give_their_summary_row(tmp_path):
    path = tmp_path / "results/quantize/hifigan_v3/weight_int8/metrics.json"
    _variant().write(path)
    variant = VariantMetrics.read(path)
    assert variant == _variant() and variant.ok
    row = variant.table_row()
    assert row["energy_j_per_audio_s"] == 2.0 and row["energy_q1"] == pytest.approx(1.8)
    assert row["rtf_q3"] == pytest.approx(0.275) and row["pesq"] == 3.1 and row["pesq_ci95"] == 0.2
    assert row["windows"] == 5 and row["energy_method_cpu"] == "codecarbon RAPL" and row["reason"] == ""
    skipped = VariantMetrics("hifigan_v3", "dynamic_int8", NOT_APPLICABLE, "no Linear or recurrent layers", engine="torch")
    skipped.write(path)
    assert VariantMetrics.read(path).table_row() == {"model": "hifigan_v3", "scheme": "dynamic_int8", "engine": "torch",
                                                    "status": NOT_APPLICABLE, "reason": "no Linear or recurrent layers"}


@pytest.mark.parametrize("variant, message", [
    (_variant(status="done"), "field 'status' is 'done', not one of ok, not_applicable, failed"),
    (_variant(quality={}), "field 'quality' holds no metric"),
    (_variant(size_bytes="big"), "field 'size_bytes' is 'big', not a number"),
    (_variant(real_time_factor={"median": 1.0}), "field 'real_time_factor' is not a spread"),
    (_variant(hardware=None), "field 'hardware' is missing"),
    (VariantMetrics("hifigan_v3", "weight_int8", "failed"), "field 'reason' is missing from a failed record"),
])
def test_a_bad_variant_record_is_neither_written_nor_read(tmp_path, variant, message):
    path = tmp_path / "results/quantize/hifigan_v3/weight_int8/metrics.json"
    with pytest.raises(RecordError, match=message):
        variant.write(path)
    assert not path.exists()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(variant.as_dict()))
    with pytest.raises(RecordError) as error:
        VariantMetrics.read(path)
    assert message in str(error.value) and "dvc repro quantize@hifigan_v3-weight_int8" in str(error.value)
