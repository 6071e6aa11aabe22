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
import torchaudio.functional as AF

from audiofootprint import atomic, failures, quality
from audiofootprint.corpus import iter_utterances
from audiofootprint.energy import MeasureSettings, TrackerSettings
from audiofootprint.energy.cost import measure_vocoder
from audiofootprint.features import features_for
from audiofootprint.pareto import front_survives_spread, pareto_mask
from audiofootprint.training.stage import CORPUS_DIR, MODELS_DIR
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder
from audiofootprint.vocoders.weights import CheckpointError

BENCHMARK_DIR = Path("results/benchmark")
SUMMARY_DIR = Path("results/benchmark_summary")
RECORDINGS_DIR = Path("results/recordings")
#: The training-carbon study's estimates of published runs (pretrained models' training energy).
CARBON_ESTIMATES = Path("results/carbon/tables/estimates.csv")


def load_trained(model: Vocoder, training_dir: Path, entry: zoo.ZooEntry | None = None, root: Path = Path(".")) -> dict:
    """Load the weights a training stage recorded into ``model`` and return its record.

    Trained models load the ``generator.pt`` the stage wrote; a pretrained model (``entry`` with
    a ``weights`` section) loads its configured file, whose sha256 is checked again.
    """
    record_path = training_dir / "training.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: run the training stage first (dvc repro train@...)")
    record = json.loads(record_path.read_text())
    if failures.failed(record):
        raise failures.FailedTrainingError(f"{record_path} records a failed training ({failures.reason(record)}): "
                                           "no weights to load")
    if record.get("objective") == "pretrained":
        if entry is None or entry.weights is None:
            raise FileNotFoundError(f"{record_path} records pretrained weights, but the config names none")
        model.from_checkpoint(entry.weights.file(root), sha256=entry.weights.sha256)
        return record
    weights = training_dir / "generator.pt"
    if weights.is_file():
        model.from_checkpoint(weights)
    elif record.get("objective", "none") != "none":
        raise FileNotFoundError(f"{weights} not found although {record_path} records a training run")
    return record


def quality_status(record: dict, owner: zoo.ZooEntry) -> dict:
    """Whether a model's measured quality is a finding: its weights converged, or it has none to train.

    ``kind`` is ``pretrained`` (published weights), ``training-free`` (no learned weights),
    ``recipe`` (trained here to its recipe's ``recipe_steps``) or ``budget`` (trained here for
    fewer steps: costed, never ranked by quality). ``owner`` is the config whose training the
    model uses (DiffWave-50 samples DiffWave-6's network).
    """
    objective = record.get("objective", "none")
    steps = int(record.get("steps", 0) or 0)
    recipe = zoo.section(owner, "training").get("recipe_steps")
    if objective == "pretrained":
        kind = "pretrained"
    elif objective == "none":
        kind = "training-free"
    else:
        kind = "recipe" if recipe and steps >= int(recipe) else "budget"
    status = {"kind": kind, "converged": kind != "budget", "steps": steps,
              "recipe_steps": int(recipe) if recipe else None}
    if kind == "budget":
        status["label"] = f"after {steps} steps of the recipe's {int(recipe):,}" if recipe else f"after {steps} steps"
    return status


def test_utterances(corpus_dir: Path, count: int | None, max_seconds: float | None) -> list[tuple[str, torch.Tensor, int]]:
    """The first ``count`` test utterances (by id), stopping before ``max_seconds`` of audio in all
    (``None``: no limit, i.e. the whole test split)."""
    chosen, total = [], 0.0
    for utt_id, wave, rate in sorted(iter_utterances(corpus_dir, "test"), key=lambda u: u[0]):
        seconds = wave.shape[-1] / rate
        if chosen and ((count is not None and len(chosen) >= count)
                       or (max_seconds is not None and total + seconds > max_seconds)):
            break
        chosen.append((utt_id, wave, rate))
        total += seconds
    if not chosen:
        raise FileNotFoundError(f"{corpus_dir} has no test utterances: build the corpus first (dvc repro corpus)")
    return chosen


def scoring_limits(profile: dict, entry: zoo.ZooEntry | None, converged: bool) -> dict:
    """How much of the test split a model is scored on: ``{test_utterances, max_test_seconds}``.

    Converged models, the floor and the recordings: ``profile.benchmark.converged`` (``null`` =
    no limit: the whole split); budget-trained ones: ``profile.benchmark``'s own limits. A
    model's ``benchmark`` section (slow samplers) overrides both.
    """
    budget = profile["benchmark"]
    source = budget["converged"] if converged else budget
    limits = {key: source.get(key) for key in ("test_utterances", "max_test_seconds")}
    own = zoo.section(entry, "benchmark") if entry is not None else {}
    return {**limits, **{key: own[key] for key in limits if key in own}}


def utterances_within(corpus_dir: Path, limits: dict) -> list[tuple[str, torch.Tensor, int]]:
    """:func:`test_utterances` under ``limits`` (see :func:`scoring_limits`)."""
    count, seconds = limits["test_utterances"], limits["max_test_seconds"]
    return test_utterances(corpus_dir, None if count is None else int(count),
                           None if seconds is None else float(seconds))


def at_model_rate(model: Vocoder, wave: torch.Tensor, rate: int) -> torch.Tensor:
    """``wave`` (at ``rate``) resampled to the rate of the model's mel analysis (unchanged if equal)."""
    native = int(model.mel.sample_rate)
    wave = wave.reshape(-1)
    return wave if native == rate else AF.resample(wave, rate, native)


def synthesize(model: Vocoder, wave: torch.Tensor, rate: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy-synthesis of a recording at ``rate``: the model runs at its own rate, and both signals
    come back at ``rate``, of equal length (the recording cut to the synthesised whole frames)."""
    hop, native = model.hop_length, int(model.mel.sample_rate)
    native_wave = at_model_rate(model, wave, rate)
    frames = native_wave.shape[-1] // hop
    torch.manual_seed(seed)
    with torch.inference_mode():
        synthesis = model(features_for(model, native_wave[: frames * hop].reshape(1, -1)))[0].clamp(-1.0, 1.0)
    if native == rate:
        return wave.reshape(-1)[: frames * hop], synthesis
    synthesis = AF.resample(synthesis, native, rate)
    length = min(synthesis.shape[-1], wave.shape[-1], math.floor(frames * hop * rate / native))
    return wave.reshape(-1)[:length], synthesis[:length]


def measurement_mel(model: Vocoder, wave: torch.Tensor, rate: int, seconds: float) -> torch.Tensor:
    """The model's features of the first ``seconds`` of ``wave`` (at least one frame), at its own rate."""
    native_wave = at_model_rate(model, wave, rate)
    native = int(model.mel.sample_rate)
    frames = max(1, min(native_wave.shape[-1] // model.hop_length, math.ceil(seconds * native / model.hop_length)))
    return features_for(model, native_wave[: frames * model.hop_length].reshape(1, -1))


def run_model(root: str | Path, name: str, params: dict, progress: bool = True) -> dict:
    """Benchmark one model: quality on the test set, then the harness on one test utterance."""
    root = Path(root)
    profile, bench = params["profile"], params["benchmark"]
    plan = bench["models"][name]
    entries = zoo.load_zoo(root)
    entry = entries[name]
    sample_rate = int(params["corpus"]["sample_rate"])
    torch.manual_seed(profile["seed"])
    torch.set_num_threads(int(profile["torch_threads"]))
    model = zoo.build_for_corpus(entry, sample_rate)
    record = load_trained(model, root / MODELS_DIR / plan["trained_by"], entry, root)
    status = quality_status(record, entries[plan["trained_by"]])
    model = model.for_inference()
    limits = scoring_limits(profile, entry, status["converged"])
    utterances = utterances_within(root / CORPUS_DIR, limits)
    listen = int(profile["benchmark"]["listen"])
    out = root / BENCHMARK_DIR / name
    rows = []
    for index, (utt_id, wave, rate) in enumerate(utterances):
        reference, synthesis = synthesize(model, wave, rate, profile["seed"])
        scores = quality.score(reference.numpy(), synthesis.numpy(), rate, metrics=tuple(bench["metrics"]))
        rows.append({"id": utt_id, "seconds": reference.shape[-1] / rate, **scores})
        if index < listen:
            for kind, audio in (("synthesis", synthesis), ("recording", reference)):
                with atomic.atomic_path(out / "audio" / f"{utt_id}.{kind}.wav") as tmp:
                    sf.write(tmp, audio.numpy(), rate, subtype="PCM_16", format="WAV")
        if progress:
            print(f"  {name}: {utt_id} " + " ".join(f"{k}={v:.3f}" for k, v in scores.items()), flush=True)
    table = pd.DataFrame(rows)
    atomic.write_csv(out / "utterances.csv", table)

    measure_cfg = {**profile["measure"], **zoo.section(entry, "measure")}
    seconds = float(measure_cfg.pop("audio_seconds"))
    mel = measurement_mel(model, utterances[0][1], sample_rate, seconds)
    energy = params["energy"]
    tracker = TrackerSettings(**{**energy, "output_dir": str(root / energy["output_dir"])})
    device = profile["device"] if (profile["device"] == "cpu" or torch.cuda.is_available()) else "cpu"
    cost = measure_vocoder(model, mel, label=name, settings=MeasureSettings(**measure_cfg),
                           tracker_settings=tracker, device=device, seed=profile["seed"])
    cost["input"] = f"mel of test utterance {utterances[0][0]} ({mel.shape[-1]} frames)"
    atomic.write_json(out / "measurement.json", cost)

    summary = cost["measurement"]["summary"]
    training = {key: record[key] for key in ("objective", "steps", "seconds", "energy_kwh", "co2e_kg") if key in record}
    training |= {"trained_by": plan["trained_by"], "hardware": (record.get("hardware") or {}).get("cpu_model")}
    for key in ("weights", "published_training"):
        if key in record:
            training[key] = record[key]
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
        "quality_status": status,
        "sample_rate": int(model.mel.sample_rate),
        "scored_at": f"{sample_rate} Hz (the corpus' rate; PESQ and DNSMOS resample to 16 kHz, STOI to 10 kHz)",
        "test_utterances": len(table),
        "test_seconds": round(float(table["seconds"].sum()), 3),
        "quality": {metric: mean_ci(table[metric]) for metric in table.columns if metric not in ("id", "seconds")},
        "training": training,
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
    except (zoo.ConfigError, CheckpointError):  # the user's configuration or file: stop and say what is wrong
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
    """The ceiling: the test recordings scored against themselves (DNSMOS is the informative one),
    on the test set of the converged models (:func:`scoring_limits`)."""
    root = Path(root)
    rows = []
    for utt_id, wave, rate in utterances_within(root / CORPUS_DIR, scoring_limits(params["profile"], None, True)):
        audio = wave.reshape(-1).numpy()
        rows.append({"id": utt_id, **quality.score(audio, audio, rate, metrics=tuple(params["benchmark"]["metrics"]))})
    table = pd.DataFrame(rows)
    metrics = {metric: mean_ci(table[metric]) for metric in table.columns if metric != "id"}
    atomic.write_json(root / RECORDINGS_DIR / "metrics.json", metrics)
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
        status = m["quality_status"]
        row = {"model": name, "status": "ok", "family": m["family"], "params": m["params"], "size_mb": m["size_mb"],
               "quality_kind": status["kind"], "converged": bool(status["converged"]),
               "quality_label": status.get("label", status["kind"]), "recipe_steps": status.get("recipe_steps"),
               "sample_rate": m["sample_rate"], "test_utterances": m["test_utterances"],
               "gflops_per_audio_s": m["gflops_per_audio_s"],
               "energy_j_per_audio_s": m["energy_j_per_audio_s"]["median"],
               "energy_q1": m["energy_j_per_audio_s"]["q1"], "energy_q3": m["energy_j_per_audio_s"]["q3"],
               "net_energy_j_per_audio_s": m["net_energy_j_per_audio_s"]["median"],
               "real_time_factor": m["real_time_factor"]["median"],
               "training_energy_kwh": m["training"].get("energy_kwh", 0.0) or 0.0,
               "training_energy_method": ("measured here" if m["training"].get("objective") not in ("none", "pretrained")
                                          else "none (no learned weights)"),
               "training_steps": m["training"].get("steps", 0) or 0,
               "training_seconds": m["training"].get("seconds", 0.0) or 0.0,
               "trained_by": m["training"]["trained_by"], "hardware": m["hardware"], "host": m.get("host"),
               "training_hardware": m["training"].get("hardware"), "energy_method_cpu": m["energy_method"]["cpu"]}
        published = m["training"].get("published_training")
        if published:
            row.update({"published_training_run": published["run"],
                        "published_training_note": published.get("note")})
        for metric, stats in m["quality"].items():
            row[metric] = stats["mean"]
            row[f"{metric}_ci95"] = stats["ci95"]
        rows.append(row)
    return pd.DataFrame(rows)


def published_training_energy(table: pd.DataFrame, estimates_path: Path) -> pd.DataFrame:
    """Pretrained models' training energy: the training-carbon study's estimate of the published run
    named in their config (central scenario, with the low and high ones), labelled as such."""
    if "published_training_run" not in table or not table["published_training_run"].notna().any():
        return table
    if not estimates_path.is_file():
        raise FileNotFoundError(f"{estimates_path} not found: run the training-carbon stage (dvc repro training_carbon)")
    estimates = pd.read_csv(estimates_path).set_index("model_id")
    table = table.copy()
    for index, run in table["published_training_run"].dropna().items():
        if run not in estimates.index:
            table.loc[index, "training_energy_kwh"] = math.nan
            table.loc[index, "training_energy_method"] = (f"not estimated: run {run} of data/carbon/training_runs.csv "
                                                          "has no estimate (no duration or hardware stated)")
            continue
        note = table.loc[index, "published_training_note"]
        for scenario, column in (("central", "training_energy_kwh"), ("low", "training_energy_low_kwh"),
                                 ("high", "training_energy_high_kwh")):
            table.loc[index, column] = float(estimates.loc[run, f"energy_kwh_{scenario}"])
        table.loc[index, "training_energy_method"] = (
            f"estimate of the published run {run} (someone else's; training-carbon study, central scenario)"
            + (f"; {note}" if isinstance(note, str) and note else ""))
    return table


def efficiency(table: pd.DataFrame, axis: str, floor: float, ceiling: float, direction: str | None = None) -> pd.Series:
    """Quality bought per joule: the share of the floor-to-ceiling quality gap a model closes,
    divided by its energy per second of audio (J). Oriented so that higher is better.

        q = (Q - Q_floor) / (Q_ceiling - Q_floor)   (1 = as good as the recordings, 0 = the floor)
        efficiency = max(q, 0) / E                  (per J per second of audio)

    A model no better than the floor buys nothing with its energy: its efficiency is 0 (a
    negative share divided by energy would reward burning more). ``direction`` defaults to the
    metric's own (quality.METRICS).
    """
    direction = direction or quality.METRICS[axis]["direction"]
    gap = (table[axis] - floor) if direction == "max" else (floor - table[axis])
    span = (ceiling - floor) if direction == "max" else (floor - ceiling)
    if span == 0:
        raise ValueError(f"the floor and the ceiling of {axis} are equal ({floor}): no room to rank by efficiency")
    return (gap / span).clip(lower=0.0) / table["energy_j_per_audio_s"]


def ranked(score: pd.Series, energy: pd.Series) -> pd.Series:
    """Ranks 1..N by ``score`` (higher first); equal scores: the one using less energy first."""
    order = pd.DataFrame({"score": score, "energy": energy}).sort_values(["score", "energy"],
                                                                         ascending=[False, True]).index
    return pd.Series(range(1, len(order) + 1), index=order).reindex(score.index)


def measured_on(rows: pd.DataFrame, column: str = "hardware") -> dict:
    """The hardware (and hosts) behind the energies in ``column`` of ``rows``: they compare only on one hardware."""
    hardware = sorted({str(value) for value in rows[column].dropna()})
    hosts = sorted({str(value) for value in rows["host"].dropna()}) if "host" in rows else []
    return {"hardware": hardware, "hosts": hosts, "comparable": len(hardware) <= 1}


def published_mos_axis(ok: pd.DataFrame, params: dict, root: Path) -> pd.DataFrame:
    """Per model linked in ``benchmark.published_mos``: its published MOS minus the recordings' MOS
    of the same listening test (median over tests), for every benchmarked model that has one,
    converged here or not (inference cost is the architecture's, the rating is the paper's)."""
    from audiofootprint.carbon import linkable_mos, load_published_mos, relative_mos

    links = {k: v for k, v in (params["benchmark"].get("published_mos") or {}).items() if k in ok.index}
    if not links:
        return pd.DataFrame(columns=["published_mos_gap", "published_mos_tests"])
    published = load_published_mos(root / params["carbon"]["published_mos"])
    rated = set(published.loc[published["mos"].notna(), "model"])
    unknown = sorted(v for v in links.values() if v not in rated)
    if unknown:
        raise KeyError(f"benchmark.published_mos in conf/benchmark: {unknown} have no rating in "
                       f"{params['carbon']['published_mos']}")
    # only ratings from a listening test that also rated its recordings go on the common scale
    referenced = set(linkable_mos(published)["model"])
    links = {k: v for k, v in links.items() if v in referenced}
    if not links:
        return pd.DataFrame(columns=["published_mos_gap", "published_mos_tests", "published_mos_test_ids"])
    # several zoo models may share one rating (HiFi-GAN V1 trained here and pretrained): one row each
    by_rating = relative_mos(published, {rating: rating for rating in set(links.values())}).set_index("model")
    gaps = by_rating.loc[list(links.values())].set_axis(list(links), axis=0)
    return gaps[["mos_gap", "n_tests", "tests"]].rename(columns={"mos_gap": "published_mos_gap",
                                                                 "n_tests": "published_mos_tests",
                                                                 "tests": "published_mos_test_ids"})


def summarise(root: str | Path, params: dict) -> dict:
    """Pareto fronts, their robustness to the measured spread, and the efficiency rankings.

    The measured-quality fronts and rankings hold only models whose quality is a finding
    (:func:`quality_status`: pretrained, training-free, trained to the recipe), with the floor
    and the recordings' ceiling; budget-trained models are listed apart, never ranked by
    quality. The published-MOS front and ranking take every model with a published rating.
    """
    root = Path(root)
    bench = params["benchmark"]
    axis = bench["quality_axis"]
    direction = quality.METRICS[axis]["direction"]
    table = model_table(root, params)
    if (table["status"] == "ok").any():
        table = published_training_energy(table, root / CARBON_ESTIMATES)
    ok = table[table["status"] == "ok"].copy().set_index("model")
    ok["converged"] = ok["converged"].astype(bool)
    recordings = json.loads((root / RECORDINGS_DIR / "metrics.json").read_text())
    ceiling = recordings[axis]["mean"]
    if bench["floor"] not in ok.index:
        raise KeyError(f"benchmark.floor {bench['floor']!r} was not benchmarked (models: {list(ok.index)})")
    if not ok.loc[bench["floor"], "converged"]:
        raise KeyError(f"benchmark.floor {bench['floor']!r} must be a training-free or converged model")
    floor = ok.loc[bench["floor"], axis]
    headline = ok[ok["converged"]].copy()

    inference = {"energy_j_per_audio_s": "min", axis: direction}
    headline["pareto_inference"] = pareto_mask(headline, inference)
    with_training = headline[headline["training_energy_kwh"].notna()]
    training = {"training_energy_kwh": "min", axis: direction}
    headline["pareto_training"] = pareto_mask(with_training, training).reindex(headline.index, fill_value=False)
    ci = headline[f"{axis}_ci95"].fillna(0.0)
    headline["q_low"], headline["q_high"] = headline[axis] - ci, headline[axis] + ci
    headline["pareto_inference_survives_spread"] = front_survives_spread(
        headline, inference, {"energy_j_per_audio_s": ("energy_q1", "energy_q3"), axis: ("q_low", "q_high")})
    headline["efficiency"] = efficiency(headline, axis, floor, ceiling)
    headline["rank_by_quality"] = headline[axis].rank(ascending=(direction == "min"), method="min").astype(int)
    headline["rank_by_efficiency"] = ranked(headline["efficiency"], headline["energy_j_per_audio_s"])
    for column in headline.columns.difference(ok.columns):
        ok[column] = headline[column]
    for column in ("pareto_inference", "pareto_training", "pareto_inference_survives_spread"):
        ok[column] = ok[column].fillna(False).astype(bool)

    rated = ok.join(published_mos_axis(ok, params, root), how="inner")
    mos_metrics = {}
    if len(rated):
        for column in rated.columns.difference(ok.columns):
            ok[column] = rated[column]
        floor_model = bench.get("published_mos_floor")
        mos_floor = rated.loc[[floor_model], "published_mos_gap"] if floor_model in rated.index else pd.Series()
        rated["pareto_published_mos"] = pareto_mask(rated, {"energy_j_per_audio_s": "min", "published_mos_gap": "max"})
        ok["pareto_published_mos"] = rated["pareto_published_mos"].reindex(ok.index, fill_value=False).astype(bool)
        mos_metrics = {"published_mos_models": sorted(rated.index),
                       "pareto_published_mos": sorted(rated.index[rated["pareto_published_mos"]])}
        if len(mos_floor):
            rated["efficiency_published_mos"] = efficiency(rated, "published_mos_gap", float(mos_floor.iloc[0]), 0.0,
                                                           direction="max")
            ok["efficiency_published_mos"] = rated["efficiency_published_mos"]
            ok["rank_by_efficiency_published_mos"] = ranked(rated["efficiency_published_mos"],
                                                            rated["energy_j_per_audio_s"])
            order = ok["rank_by_efficiency_published_mos"].dropna().sort_values().index
            mos_metrics |= {"published_mos_floor": {"model": str(mos_floor.index[0]),
                                                    "mos_gap": round(float(mos_floor.iloc[0]), 4)},
                            "most_efficient_published_mos": str(order[0]),
                            "ranking_published_mos": [str(name) for name in order]}

    table = table.set_index("model")
    for column in ok.columns.difference(table.columns):
        table[column] = ok[column]
    out = root / SUMMARY_DIR
    atomic.write_csv(out / "models.csv", table.reset_index())
    budget = ok[~ok["converged"]]
    metrics = {
        "quality_axis": axis, "floor": {"model": bench["floor"], axis: round(float(floor), 4)},
        "ceiling_recordings": {axis: ceiling, "test_utterances": recordings[axis]["n"]},
        "headline_models": sorted(headline.index),
        "pareto_inference": sorted(headline.index[headline["pareto_inference"]]),
        "pareto_inference_survives_spread": sorted(headline.index[headline["pareto_inference_survives_spread"]]),
        "pareto_training": sorted(headline.index[headline["pareto_training"]]),
        "most_efficient": str(headline["rank_by_efficiency"].idxmin()),
        "best_quality": str(headline[axis].idxmax() if direction == "max" else headline[axis].idxmin()),
        "rank_correlation_quality_efficiency": (round(float(headline["rank_by_quality"].corr(
            headline["rank_by_efficiency"], method="spearman")), 4) if len(headline) > 2 else None),
        "budget_trained": {str(name): str(budget.loc[name, "quality_label"]) for name in sorted(budget.index)},
        **mos_metrics,
        "failed": sorted(table.index[table["status"] != "ok"]),
        "failed_reasons": {name: str(table.loc[name, "reason"]) for name in sorted(table.index[table["status"] != "ok"])},
        # every model is a point of both fronts: energies measured on different hardware do not compare
        "pareto_inference_measured_on": measured_on(headline),
        "pareto_training_measured_on": measured_on(with_training[with_training["training_energy_method"]
                                                                 == "measured here"], "training_hardware"),
    }
    for front in ("inference", "training"):
        seen = metrics[f"pareto_{front}_measured_on"]
        if not seen["comparable"]:
            metrics[f"pareto_{front}_warning"] = (
                f"{front} energies were measured on {len(seen['hardware'])} kinds of hardware "
                f"({'; '.join(seen['hardware'])}): they are not comparable, nor is this front")
    atomic.write_json(out / "metrics.json", metrics)
    return metrics
