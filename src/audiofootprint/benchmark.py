"""The vocoder benchmark (thesis part 2): inference cost and quality of each trained vocoder on
the test set (stage ``benchmark@NAME``), and the recordings' own scores (stage ``recordings``).

Per model::

    results/benchmark/NAME/metrics.json      headline numbers (DVC metrics)
    results/benchmark/NAME/utterances.csv    quality of every test utterance
    results/benchmark/NAME/measurement.json  the harness' full measurement
    results/benchmark/NAME/audio/*.wav       a few syntheses and their recordings, to listen to

A model whose training or benchmark failed has the same files saying ``status: failed`` and why
(:mod:`audiofootprint.failures`); the summary (:mod:`audiofootprint.benchmark_summary`) lists it
as failed and goes on with the others.
"""
from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd

from audiofootprint import atomic, evaluate, failures, quality, runtime
from audiofootprint.energy.tracker import hardware_label
from audiofootprint.paths import BENCHMARK_DIR, CORPUS_DIR, MODELS_DIR, RECORDINGS_DIR
from audiofootprint.records import OK, ModelMetrics, TrainingRecord
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.weights import CheckpointError


def run_model(root: str | Path, name: str, params: dict, progress: bool = True) -> ModelMetrics:
    """Benchmark one model: quality on the test set, then the harness on one test utterance."""
    root = Path(root)
    profile, bench = params["profile"], params["benchmark"]
    plan = bench["models"][name]
    entries = zoo.load_zoo(root)
    entry = entries[name]
    sample_rate = int(params["corpus"]["sample_rate"])
    setup = runtime.set_up(root, params)
    model = zoo.build_for_corpus(entry, sample_rate)
    record = evaluate.load_trained(model, root / MODELS_DIR / plan["trained_by"], entry, root)
    status = evaluate.quality_status(record, entries[plan["trained_by"]])
    model = model.for_inference()
    utterances = evaluate.utterances_within(root / CORPUS_DIR,
                                            evaluate.scoring_limits(profile, entry, status["converged"]))
    out = root / BENCHMARK_DIR / name
    table = evaluate.score(model, utterances, tuple(bench["metrics"]), setup.seed, listen_dir=out / "audio",
                           listen=int(profile["benchmark"]["listen"]), progress=name if progress else None)
    atomic.write_csv(out / "utterances.csv", table)
    cost = evaluate.measure_on_utterance(model, utterances[0], setup, profile, entry, label=name)
    atomic.write_json(out / "measurement.json", cost)

    training = {key: record[key] for key in ("objective", "steps", "seconds", "energy_kwh", "co2e_kg") if key in record}
    trained_on = record.get("hardware") or {}
    training |= {"trained_by": plan["trained_by"], "hardware": hardware_label(trained_on) if trained_on.get("cpu_model") else None}
    for key in ("weights", "published_training"):
        if key in record:
            training[key] = record[key]
    metrics = ModelMetrics(
        status=OK, family=entry.family, training=training,
        params=cost["params"], size_mb=round(cost["size_bytes"] / 1e6, 3),
        gflops_per_audio_s=round(cost["flops_per_audio_s"] / 1e9, 4),
        **evaluate.cost_summary(cost),
        host=socket.gethostname(),  # results of several machines merge (audiofootprint merge): each keeps its own
        quality_status=status, sample_rate=int(model.mel.sample_rate),
        scored_at=f"{sample_rate} Hz (the corpus' rate; PESQ and DNSMOS resample to 16 kHz, STOI to 10 kHz)",
        test_utterances=len(table), test_seconds=round(float(table["seconds"].sum()), 3),
        quality=evaluate.quality_summary(table))
    metrics.write(out / "metrics.json")
    return metrics


def benchmark_model(root: str | Path, name: str, params: dict, progress: bool = True) -> ModelMetrics:
    """Stage ``benchmark@NAME``: :func:`run_model`, or the record of a failure that lets the pipeline go on.

    A model whose training failed, or whose benchmark raises, gets ``status: failed`` outputs
    (:func:`audiofootprint.failures.benchmark_failure`). A configuration error, or a training
    record that is missing (the training stage has not run), still raises.
    """
    root = Path(root)
    trained_by = params["benchmark"]["models"][name]["trained_by"]
    record = TrainingRecord.read(TrainingRecord.path_of(root, trained_by))
    family = zoo.load_zoo(root)[name].family
    out = root / BENCHMARK_DIR / name
    if record.failed:
        return ModelMetrics(**failures.benchmark_failure(out, name, family, trained_by, record))
    try:
        return run_model(root, name, params, progress)
    except (zoo.ConfigError, CheckpointError):  # the user's configuration or file: stop and say what is wrong
        raise
    except Exception as error:  # synthesis, scoring or measurement: recorded, the others go on
        return ModelMetrics(**failures.benchmark_failure(out, name, family, trained_by, record, error))


def score_recordings(root: str | Path, params: dict) -> dict:
    """The ceiling: the test recordings scored against themselves (DNSMOS is the informative one),
    on the test set of the converged models (:func:`audiofootprint.evaluate.scoring_limits`)."""
    root = Path(root)
    rows = []
    limits = evaluate.scoring_limits(params["profile"], None, True)
    for utt_id, wave, rate in evaluate.utterances_within(root / CORPUS_DIR, limits):
        audio = wave.reshape(-1).numpy()
        rows.append({"id": utt_id, **quality.score(audio, audio, rate, metrics=tuple(params["benchmark"]["metrics"]))})
    metrics = evaluate.quality_summary(pd.DataFrame(rows))
    atomic.write_json(root / RECORDINGS_DIR / "metrics.json", metrics)
    return metrics
