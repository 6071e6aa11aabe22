"""The vocoder benchmark (thesis part 2): inference cost and quality of each trained vocoder
on the test set, then Pareto fronts and an efficiency ranking over all of them.

Per model (stage ``benchmark@NAME``)::

    results/benchmark/NAME/metrics.json      headline numbers (DVC metrics)
    results/benchmark/NAME/utterances.csv    quality of every test utterance
    results/benchmark/NAME/measurement.json  the harness' full measurement
    results/benchmark/NAME/audio/*.wav       a few syntheses and their recordings, to listen to

A model whose training or benchmark failed has the same files saying ``status: failed`` and why
(:mod:`audiofootprint.failures`); the summary lists it as failed and goes on with the others.

Summary (stage ``benchmark_summary``): results/benchmark_summary/{models.csv, metrics.json}.
"""
from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import pandas as pd
import soundfile as sf
import torch

from audiofootprint import atomic, failures, quality
from audiofootprint.corpus import iter_utterances
from audiofootprint.energy import MeasureSettings, TrackerSettings
from audiofootprint.energy.cost import measure_vocoder
from audiofootprint.features import features_for
from audiofootprint.pareto import front_survives_spread, pareto_mask
from audiofootprint.training.stage import CORPUS_DIR, MODELS_DIR
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder

BENCHMARK_DIR = Path("results/benchmark")
SUMMARY_DIR = Path("results/benchmark_summary")


def load_trained(model: Vocoder, training_dir: Path) -> dict:
    """Load the generator a training stage wrote (if the model trains) and return its record."""
    record_path = training_dir / "training.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: run the training stage first (dvc repro train@...)")
    record = json.loads(record_path.read_text())
    if failures.failed(record):
        raise failures.FailedTrainingError(f"{record_path} records a failed training ({failures.reason(record)}): "
                                           "no weights to load")
    weights = training_dir / "generator.pt"
    if weights.is_file():
        model.from_checkpoint(weights)
    elif record.get("objective", "none") != "none":
        raise FileNotFoundError(f"{weights} not found although {record_path} records a training run")
    return record


def test_utterances(corpus_dir: Path, count: int, max_seconds: float) -> list[tuple[str, torch.Tensor, int]]:
    """The first ``count`` test utterances (by id), stopping before ``max_seconds`` of audio in all."""
    chosen, total = [], 0.0
    for utt_id, wave, rate in sorted(iter_utterances(corpus_dir, "test"), key=lambda u: u[0]):
        seconds = wave.shape[-1] / rate
        if chosen and (len(chosen) >= count or total + seconds > max_seconds):
            break
        chosen.append((utt_id, wave, rate))
        total += seconds
    if not chosen:
        raise FileNotFoundError(f"{corpus_dir} has no test utterances: build the corpus first (dvc repro corpus)")
    return chosen


def synthesize(model: Vocoder, wave: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy-synthesis: the recording cut to whole frames, and the model's synthesis of its mel."""
    hop = model.hop_length
    frames = wave.shape[-1] // hop
    reference = wave[..., : frames * hop].reshape(1, -1)
    torch.manual_seed(seed)
    with torch.inference_mode():
        synthesis = model(features_for(model, reference))
    return reference[0], synthesis[0].clamp(-1.0, 1.0)


def run_model(root: str | Path, name: str, params: dict, progress: bool = True) -> dict:
    """Benchmark one model: quality on the test set, then the harness on one test utterance."""
    root = Path(root)
    profile, bench = params["profile"], params["benchmark"]
    plan = bench["models"][name]
    entry = zoo.load_zoo(root)[name]
    sample_rate = int(params["corpus"]["sample_rate"])
    torch.manual_seed(profile["seed"])
    torch.set_num_threads(int(profile["torch_threads"]))
    model = zoo.build_for_corpus(entry, sample_rate)
    record = load_trained(model, root / MODELS_DIR / plan["trained_by"])
    model = model.for_inference()
    overrides = zoo.section(entry, "benchmark")
    limits = {**profile["benchmark"], **overrides}
    utterances = test_utterances(root / CORPUS_DIR, int(limits["test_utterances"]), float(limits["max_test_seconds"]))
    out = root / BENCHMARK_DIR / name
    rows, listened = [], 0
    for utt_id, wave, rate in utterances:
        reference, synthesis = synthesize(model, wave, profile["seed"])
        scores = quality.score(reference.numpy(), synthesis.numpy(), rate, metrics=tuple(bench["metrics"]))
        rows.append({"id": utt_id, "seconds": reference.shape[-1] / rate, **scores})
        if listened < int(limits["listen"]):
            for kind, audio in (("synthesis", synthesis), ("recording", reference)):
                with atomic.atomic_path(out / "audio" / f"{utt_id}.{kind}.wav") as tmp:
                    sf.write(tmp, audio.numpy(), rate, subtype="PCM_16", format="WAV")
            listened += 1
        if progress:
            print(f"  {name}: {utt_id} " + " ".join(f"{k}={v:.3f}" for k, v in scores.items()), flush=True)
    table = pd.DataFrame(rows)
    atomic.write_csv(out / "utterances.csv", table)

    measure_cfg = {**profile["measure"], **zoo.section(entry, "measure")}
    seconds = float(measure_cfg.pop("audio_seconds"))
    _, first, _ = utterances[0]
    frames = max(1, min(first.shape[-1] // model.hop_length, math.ceil(seconds * sample_rate / model.hop_length)))
    mel = features_for(model, first[: frames * model.hop_length].reshape(1, -1))
    energy = params["energy"]
    tracker = TrackerSettings(**{**energy, "output_dir": str(root / energy["output_dir"])})
    device = profile["device"] if (profile["device"] == "cpu" or torch.cuda.is_available()) else "cpu"
    cost = measure_vocoder(model, mel, label=name, settings=MeasureSettings(**measure_cfg),
                           tracker_settings=tracker, device=device, seed=profile["seed"])
    cost["input"] = f"mel of test utterance {utterances[0][0]} ({mel.shape[-1]} frames)"
    atomic.write_json(out / "measurement.json", cost)

    summary = cost["measurement"]["summary"]
    metrics = {
        "family": entry.family,
        "params": cost["params"],
        "size_mb": round(cost["size_bytes"] / 1e6, 3),
        "gflops_per_audio_s": round(cost["flops_per_audio_s"] / 1e9, 4),
        "energy_j_per_audio_s": rounded_stats(summary["energy_j_per_audio_s"]),
        "net_energy_j_per_audio_s": rounded_stats(summary["net_energy_j_per_audio_s"]),
        "real_time_factor": rounded_stats(summary["real_time_factor"]),
        "energy_method": cost["measurement"]["methods"],
        "hardware": cost["measurement"]["hardware"]["cpu_model"],
        "host": socket.gethostname(),  # results of several machines merge (audiofootprint merge): each keeps its own
        "test_utterances": len(table),
        "test_seconds": round(float(table["seconds"].sum()), 3),
        "quality": {metric: mean_ci(table[metric]) for metric in table.columns if metric not in ("id", "seconds")},
        "training": {key: record[key] for key in ("objective", "steps", "seconds", "energy_kwh", "co2e_kg")
                     if key in record} | {"trained_by": plan["trained_by"],
                                          "hardware": (record.get("hardware") or {}).get("cpu_model")},
    }
    atomic.write_json(out / "metrics.json", metrics)
    return metrics


def benchmark_model(root: str | Path, name: str, params: dict, progress: bool = True) -> dict:
    """Stage ``benchmark@NAME``: :func:`run_model`, or the record of a failure that lets the pipeline go on.

    A model whose training failed, or whose benchmark raises, gets ``status: failed`` outputs
    (:func:`audiofootprint.failures.benchmark_failure`). A configuration error, or a training
    record that is missing (the training stage has not run), still raises.
    """
    root = Path(root)
    trained_by = params["benchmark"]["models"][name]["trained_by"]
    record_path = root / MODELS_DIR / trained_by / "training.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: run the training stage first (dvc repro train@{trained_by})")
    record = json.loads(record_path.read_text())
    family = zoo.load_zoo(root)[name].family
    out = root / BENCHMARK_DIR / name
    if failures.failed(record):
        return failures.benchmark_failure(out, name, family, trained_by, record)
    try:
        return run_model(root, name, params, progress)
    except zoo.ConfigError:
        raise
    except Exception as error:  # synthesis, scoring or measurement: recorded, the others go on
        return failures.benchmark_failure(out, name, family, trained_by, record, error)


def rounded_stats(stats: dict) -> dict:
    """A harness spread (median, quartiles...) with its floats rounded to 6 decimals."""
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in stats.items()}


def mean_ci(values: pd.Series) -> dict:
    """Mean of a metric over utterances with a 95% confidence interval (normal approximation)."""
    values = values.dropna().astype(float)
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": round(mean, 4), "ci95": round(half, 4) if not math.isnan(half) else None, "n": int(len(values))}


def score_recordings(root: str | Path, params: dict) -> dict:
    """The ceiling: the test recordings scored against themselves (DNSMOS is the informative one)."""
    root = Path(root)
    limits = params["profile"]["benchmark"]
    rows = []
    for utt_id, wave, rate in test_utterances(root / CORPUS_DIR, int(limits["test_utterances"]),
                                              float(limits["max_test_seconds"])):
        audio = wave.reshape(-1).numpy()
        rows.append({"id": utt_id, **quality.score(audio, audio, rate, metrics=tuple(params["benchmark"]["metrics"]))})
    table = pd.DataFrame(rows)
    metrics = {metric: mean_ci(table[metric]) for metric in table.columns if metric != "id"}
    atomic.write_json(root / "results" / "recordings" / "metrics.json", metrics)
    return metrics


def model_table(root: str | Path, params: dict) -> pd.DataFrame:
    """One row per benchmarked model, from each model's metrics.json."""
    root = Path(root)
    rows = []
    for name in params["benchmark"]["models"]:
        path = root / BENCHMARK_DIR / name / "metrics.json"
        if not path.is_file():
            rows.append({"model": name, "status": failures.FAILED, "failed_stage": "benchmark",
                         "reason": f"{path} missing: run `dvc repro benchmark@{name}`"})
            continue
        m = json.loads(path.read_text())
        if failures.failed(m):
            rows.append(failures.table_row(name, m))
            continue
        row = {"model": name, "status": "ok", "family": m["family"], "params": m["params"], "size_mb": m["size_mb"],
               "gflops_per_audio_s": m["gflops_per_audio_s"],
               "energy_j_per_audio_s": m["energy_j_per_audio_s"]["median"],
               "energy_q1": m["energy_j_per_audio_s"]["q1"], "energy_q3": m["energy_j_per_audio_s"]["q3"],
               "net_energy_j_per_audio_s": m["net_energy_j_per_audio_s"]["median"],
               "real_time_factor": m["real_time_factor"]["median"],
               "training_energy_kwh": m["training"].get("energy_kwh", 0.0) or 0.0,
               "training_steps": m["training"].get("steps", 0) or 0,
               "training_seconds": m["training"].get("seconds", 0.0) or 0.0,
               "trained_by": m["training"]["trained_by"], "hardware": m["hardware"], "host": m.get("host"),
               "training_hardware": m["training"].get("hardware"), "energy_method_cpu": m["energy_method"]["cpu"]}
        for metric, stats in m["quality"].items():
            row[metric] = stats["mean"]
            row[f"{metric}_ci95"] = stats["ci95"]
        rows.append(row)
    return pd.DataFrame(rows)


def efficiency(table: pd.DataFrame, axis: str, floor: float, ceiling: float) -> pd.Series:
    """Quality bought per joule: the share of the floor-to-ceiling quality gap a model closes,
    divided by its energy per second of audio (J). Oriented so that higher is better.

        q = (Q - Q_floor) / (Q_ceiling - Q_floor)   (1 = as good as the recordings, 0 = the floor)
        efficiency = max(q, 0) / E                  (per J per second of audio)

    A model no better than the floor buys nothing with its energy: its efficiency is 0 (a
    negative share divided by energy would reward burning more).
    """
    direction = quality.METRICS[axis]["direction"]
    gap = (table[axis] - floor) if direction == "max" else (floor - table[axis])
    span = (ceiling - floor) if direction == "max" else (floor - ceiling)
    if span == 0:
        raise ValueError(f"the floor and the ceiling of {axis} are equal ({floor}): no room to rank by efficiency")
    return (gap / span).clip(lower=0.0) / table["energy_j_per_audio_s"]


def measured_on(rows: pd.DataFrame, column: str = "hardware") -> dict:
    """The hardware (and hosts) behind the energies in ``column`` of ``rows``: they compare only on one hardware."""
    hardware = sorted({str(value) for value in rows[column].dropna()})
    hosts = sorted({str(value) for value in rows["host"].dropna()}) if "host" in rows else []
    return {"hardware": hardware, "hosts": hosts, "comparable": len(hardware) <= 1}


def summarise(root: str | Path, params: dict) -> dict:
    """Pareto fronts, their robustness to the measured spread, and the efficiency ranking."""
    from audiofootprint.carbon import load_published_mos, relative_mos

    root = Path(root)
    bench = params["benchmark"]
    axis = bench["quality_axis"]
    direction = quality.METRICS[axis]["direction"]
    table = model_table(root, params)
    ok = table[table["status"] == "ok"].copy().set_index("model")
    recordings = json.loads((root / "results" / "recordings" / "metrics.json").read_text())
    ceiling = recordings[axis]["mean"]
    if bench["floor"] not in ok.index:
        raise KeyError(f"benchmark.floor {bench['floor']!r} was not benchmarked (models: {list(ok.index)})")
    floor = ok.loc[bench["floor"], axis]

    inference = {"energy_j_per_audio_s": "min", axis: direction}
    ok["pareto_inference"] = pareto_mask(ok, inference)
    training = {"training_energy_kwh": "min", axis: direction}
    ok["pareto_training"] = pareto_mask(ok, training)
    ci = ok[f"{axis}_ci95"].fillna(0.0)
    ok["q_low"], ok["q_high"] = ok[axis] - ci, ok[axis] + ci
    ok["pareto_inference_survives_spread"] = front_survives_spread(
        ok, inference, {"energy_j_per_audio_s": ("energy_q1", "energy_q3"), axis: ("q_low", "q_high")})
    ok["efficiency"] = efficiency(ok, axis, floor, ceiling)
    ok["rank_by_quality"] = ok[axis].rank(ascending=(direction == "min"), method="min").astype(int)
    # equal efficiency (all models at or below the floor score 0): the one using less energy ranks first
    order = ok.sort_values(["efficiency", "energy_j_per_audio_s"], ascending=[False, True]).index
    ok["rank_by_efficiency"] = pd.Series(range(1, len(order) + 1), index=order)

    mos_links = {k: v for k, v in (bench.get("published_mos") or {}).items() if k in ok.index}
    if mos_links:
        published = load_published_mos(root / params["carbon"]["published_mos"])
        # only MOS from listening tests that also rated the recordings can be put on one scale
        truth = set(published.loc[published["model"] == "Ground Truth", "source"])
        rated = published[published["mos"].notna() & published["source"].isin(truth)]
        linkable = {k: v for k, v in mos_links.items() if v in set(rated["model"])}
        gaps = relative_mos(published, {v: k for k, v in linkable.items()}) if linkable else pd.DataFrame()
        if len(gaps):
            ok = ok.join(gaps.set_index("model_id")[["mos_gap", "n_tests"]].rename(
                columns={"mos_gap": "published_mos_gap", "n_tests": "published_mos_tests"}))
    table = table.set_index("model")
    for column in ok.columns.difference(table.columns):
        table[column] = ok[column]
    out = root / SUMMARY_DIR
    atomic.write_csv(out / "models.csv", table.reset_index())
    front = sorted(ok.index[ok["pareto_inference"]])
    metrics = {
        "quality_axis": axis, "floor": {"model": bench["floor"], axis: round(float(floor), 4)},
        "ceiling_recordings": {axis: ceiling},
        "pareto_inference": front,
        "pareto_inference_survives_spread": sorted(ok.index[ok["pareto_inference_survives_spread"]]),
        "pareto_training": sorted(ok.index[ok["pareto_training"]]),
        "most_efficient": str(ok["rank_by_efficiency"].idxmin()),
        "best_quality": str(ok[axis].idxmax() if direction == "max" else ok[axis].idxmin()),
        "failed": sorted(table.index[table["status"] != "ok"]),
        "failed_reasons": {name: str(table.loc[name, "reason"]) for name in sorted(table.index[table["status"] != "ok"])},
        "rank_correlation_quality_efficiency": round(float(ok["rank_by_quality"].corr(ok["rank_by_efficiency"],
                                                                                          method="spearman")), 4),
        # every model is a point of both fronts: energies measured on different hardware do not compare
        "pareto_inference_measured_on": measured_on(ok),
        "pareto_training_measured_on": measured_on(ok[ok["training_energy_kwh"] > 0], "training_hardware"),
    }
    for front in ("inference", "training"):
        seen = metrics[f"pareto_{front}_measured_on"]
        if not seen["comparable"]:
            metrics[f"pareto_{front}_warning"] = (
                f"{front} energies were measured on {len(seen['hardware'])} kinds of hardware "
                f"({'; '.join(seen['hardware'])}): they are not comparable, nor is this front")
    atomic.write_json(out / "metrics.json", metrics)
    return metrics
