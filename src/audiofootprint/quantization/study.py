"""The quantization study (thesis part 3): every trained vocoder under every scheme.

Per (model, scheme) (stage ``quantize@MODEL-SCHEME``)::

    results/quantize/MODEL/SCHEME/metrics.json           headline numbers, or why the scheme does not apply
    results/quantize/MODEL/SCHEME/variant/record.json    how the variant was made, per-utterance scores
    results/quantize/MODEL/SCHEME/variant/measurement.json  the harness' full measurement
    results/quantize/MODEL/SCHEME/variant/*.wav          one synthesis to listen to

Summary (stage ``quantize_summary``): results/quantize_summary/{variants.csv, metrics.json}.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from audiofootprint import atomic, quality
from audiofootprint.benchmark import (
    CORPUS_DIR,
    MODELS_DIR,
    load_trained,
    mean_ci,
    measurement_mel,
    rounded_stats,
    synthesize,
    test_utterances,
)
from audiofootprint.corpus import iter_utterances
from audiofootprint.energy import MeasureSettings, TrackerSettings
from audiofootprint.failures import FailedTrainingError
from audiofootprint.energy.cost import measure_vocoder
from audiofootprint.energy.static import serialized_bytes
from audiofootprint.quantization.schemes import NotApplicable, apply, storage_bytes
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder

QUANTIZE_DIR = Path("results/quantize")
SUMMARY_DIR = Path("results/quantize_summary")


def calibration_mels(model: Vocoder, corpus_dir: Path, count: int, seconds: float) -> list[torch.Tensor]:
    """Mels of the first ``count`` training utterances (by id), each cut to at most ``seconds``."""
    mels = []
    for _, wave, rate in iter_utterances(corpus_dir, "train"):
        if wave.shape[-1] >= model.hop_length * rate / model.mel.sample_rate:
            mels.append(measurement_mel(model, wave, rate, seconds))
        if len(mels) >= count:
            break
    if not mels:
        raise FileNotFoundError(f"{corpus_dir} has no training utterances: build the corpus first (dvc repro corpus)")
    return mels


def quantization_test_set(profile: dict, entry: zoo.ZooEntry) -> dict:
    """Test utterances and seconds per variant: the profile's ``quantize`` budget, or the model's
    own ``benchmark`` limits where those are smaller (slow samplers)."""
    budget = {**profile["benchmark"], **profile["quantize"]}
    own = zoo.section(entry, "benchmark")
    return {key: min(budget[key], own.get(key, budget[key])) for key in ("test_utterances", "max_test_seconds")}


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-noise ratio of ``estimate`` against ``reference`` in dB (inf when identical)."""
    noise = float(np.sum((reference - estimate) ** 2))
    signal = float(np.sum(reference ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def score_variant(baseline: Vocoder | None, variant: Vocoder, utterances: list, metrics: tuple[str, ...],
                  seed: int, progress: str | None = None) -> pd.DataFrame:
    """Per test utterance: quality against the recording and, unless ``baseline`` is None (the
    variant is the baseline), the distance to the baseline's output for the same input."""
    rows = []
    for utt_id, wave, rate in utterances:
        reference, out = synthesize(variant, wave, rate, seed)
        row = {"id": utt_id, "seconds": reference.shape[-1] / rate,
               **quality.score(reference.numpy(), out.numpy(), rate, metrics=metrics)}
        if baseline is not None:
            _, fp32_out = synthesize(baseline, wave, rate, seed)
            row["snr_to_fp32_db"] = snr_db(fp32_out.numpy().astype(np.float64), out.numpy().astype(np.float64))
            row["mrstft_to_fp32"] = quality.mrstft(fp32_out.numpy(), out.numpy(), rate)
        rows.append(row)
        if progress:
            print(f"  {progress}: {utt_id} " + " ".join(f"{k}={v:.3f}" for k, v in row.items()
                                                         if isinstance(v, float)), flush=True)
    return pd.DataFrame(rows)


def run_variant(root: str | Path, name: str, scheme: str, params: dict, progress: bool = True) -> dict:
    """Quantize one trained model with one scheme, then measure and score it (stage ``quantize@``)."""
    root = Path(root)
    profile, bench, settings = params["profile"], params["benchmark"], params["quantize"]
    if name not in settings["models"]:
        raise KeyError(f"{name!r} is not in quantize.models of params.yaml ({', '.join(settings['models'])})")
    if scheme not in settings["schemes"]:
        raise KeyError(f"{scheme!r} is not in quantize.schemes of params.yaml ({', '.join(settings['schemes'])})")
    out = root / QUANTIZE_DIR / name / scheme
    entry = zoo.load_zoo(root)[name]
    sample_rate = int(params["corpus"]["sample_rate"])
    torch.manual_seed(profile["seed"])
    torch.set_num_threads(int(profile["torch_threads"]))
    device = profile["device"] if (profile["device"] == "cpu" or torch.cuda.is_available()) else "cpu"
    baseline = zoo.build_for_corpus(entry, sample_rate)
    try:
        load_trained(baseline, root / MODELS_DIR / name, entry, root)
    except FailedTrainingError as error:  # recorded by train@NAME: no weights to quantize, the pipeline goes on
        record = {"model": name, "scheme": scheme, "status": "not_applicable", "reason": str(error)}
        atomic.write_json(out / "variant" / "record.json", record)
        atomic.write_json(out / "metrics.json", record)
        return record
    baseline = baseline.for_inference()
    calibration = calibration_mels(baseline, root / CORPUS_DIR, int(settings["calibration_utterances"]),
                                   float(settings["calibration_seconds"]))
    label = f"{name}/{scheme}"
    started = time.perf_counter()
    try:
        made = apply(scheme, baseline, calibration, device)
        limits = quantization_test_set(profile, entry)
        utterances = test_utterances(root / CORPUS_DIR, int(limits["test_utterances"]), float(limits["max_test_seconds"]))
        # a quantized graph that cannot run on real input is as inapplicable as one that cannot be built
        try:
            synthesize(made.model, utterances[0][1][: 4 * baseline.hop_length], sample_rate, profile["seed"])
        except Exception as error:  # noqa: BLE001 - recorded with its type and message
            raise NotApplicable(f"{made.backend}: the quantized model fails to run "
                                f"({type(error).__name__}: {str(error).splitlines()[0][:300]})") from error
    except NotApplicable as reason:
        return _record_outcome(out, label, {"model": name, "scheme": scheme, "status": "not_applicable",
                                            "reason": str(reason)}, progress)
    quantize_seconds = time.perf_counter() - started
    if progress:
        print(f"  {label}: {made.backend} in {quantize_seconds:.1f} s; scoring {len(utterances)} test utterances",
              flush=True)
    try:
        table = score_variant(None if scheme == settings["baseline"] else baseline, made.model, utterances,
                              tuple(bench["metrics"]), profile["seed"], progress=label if progress else None)
    except ValueError as error:  # e.g. quantization collapsed the output to silence: a result, not a crash
        return _record_outcome(out, label, {
            "model": name, "scheme": scheme, "status": "failed", "backend": made.backend,
            "size_bytes": serialized_bytes(made.model), "reason": f"its output cannot be scored: {error}"}, progress)
    _, synthesis = synthesize(made.model, utterances[0][1], sample_rate, profile["seed"])
    with atomic.atomic_path(out / "variant" / f"{utterances[0][0]}.synthesis.wav") as tmp:
        sf.write(tmp, synthesis.numpy(), utterances[0][2], subtype="PCM_16", format="WAV")

    measure_cfg = {**profile["measure"], **zoo.section(entry, "measure")}
    seconds = float(measure_cfg.pop("audio_seconds"))
    mel = measurement_mel(baseline, utterances[0][1], sample_rate, seconds)
    energy = params["energy"]
    tracker = TrackerSettings(**{**energy, "output_dir": str(root / energy["output_dir"])})
    if progress:
        print(f"  {label}: measuring ({measure_cfg['windows']} windows of >= {measure_cfg['min_window_s']} s)",
              flush=True)
    cost = measure_vocoder(made.model, mel, label=label, settings=MeasureSettings(**measure_cfg),
                           tracker_settings=tracker, device=device, seed=profile["seed"])
    cost["input"] = f"mel of test utterance {utterances[0][0]} ({mel.shape[-1]} frames)"
    atomic.write_json(out / "variant" / "measurement.json", cost)
    atomic.write_json(out / "variant" / "record.json", {
        "model": name, "scheme": scheme, "backend": made.backend, "notes": made.notes,
        "calibration": f"{len(calibration)} training utterances, <= {settings['calibration_seconds']} s each",
        "quantize_seconds": round(quantize_seconds, 3), "utterances": table.to_dict(orient="records")})

    summary = cost["measurement"]["summary"]
    metrics = {
        "model": name, "scheme": scheme, "status": "ok", "backend": made.backend, "notes": made.notes,
        "family": entry.family,
        "size_bytes": cost["size_bytes"],
        "weight_bytes": storage_bytes(made.model),
        "peak_memory_bytes": cost["peak_memory"]["bytes"],
        "energy_j_per_audio_s": rounded_stats(summary["energy_j_per_audio_s"]),
        "net_energy_j_per_audio_s": rounded_stats(summary["net_energy_j_per_audio_s"]),
        "real_time_factor": rounded_stats(summary["real_time_factor"]),
        "energy_method": cost["measurement"]["methods"],
        "hardware": cost["measurement"]["hardware"]["cpu_model"],
        "torch_threads": cost["torch_threads"],
        "test_utterances": len(table),
        "quality": {m: mean_ci(table[m]) for m in table.columns if m not in ("id", "seconds")},
    }
    atomic.write_json(out / "metrics.json", metrics)
    return metrics


def _record_outcome(out: Path, label: str, record: dict, progress: bool) -> dict:
    """Write the record of a variant that was not measured (not applicable, or failed) and return it."""
    if progress:
        print(f"  {label}: {record['status'].replace('_', ' ')}: {record['reason']}", flush=True)
    atomic.write_json(out / "variant" / "record.json", record)
    atomic.write_json(out / "metrics.json", record)
    return record


def variant_table(root: str | Path, params: dict) -> pd.DataFrame:
    """One row per (model, scheme) of params.yaml, from each variant's metrics.json."""
    root = Path(root)
    rows = []
    for name in params["quantize"]["models"]:
        for scheme in params["quantize"]["schemes"]:
            path = root / QUANTIZE_DIR / name / scheme / "metrics.json"
            if not path.is_file():
                rows.append({"model": name, "scheme": scheme, "status": "missing", "reason": f"{path} missing"})
                continue
            m = json.loads(path.read_text())
            row = {"model": name, "scheme": scheme, "status": m["status"], "reason": m.get("reason", "")}
            if m["status"] == "ok":
                row.update({
                    "backend": m["backend"], "family": m["family"], "size_bytes": m["size_bytes"],
                    "weight_bytes": m["weight_bytes"], "peak_memory_bytes": m["peak_memory_bytes"],
                    "energy_j_per_audio_s": m["energy_j_per_audio_s"]["median"],
                    "energy_q1": m["energy_j_per_audio_s"]["q1"], "energy_q3": m["energy_j_per_audio_s"]["q3"],
                    "real_time_factor": m["real_time_factor"]["median"],
                    "rtf_q1": m["real_time_factor"]["q1"], "rtf_q3": m["real_time_factor"]["q3"],
                    "windows": m["energy_j_per_audio_s"]["n"], "timed_calls": m["real_time_factor"]["n"],
                    "hardware": m["hardware"], "energy_method_cpu": m["energy_method"]["cpu"],
                })
                for metric, stats in m["quality"].items():
                    row[metric] = stats["mean"]
                    row[f"{metric}_ci95"] = stats["ci95"]
            rows.append(row)
    return pd.DataFrame(rows)


def against_baseline(table: pd.DataFrame, baseline: str, axis: str) -> pd.DataFrame:
    """Each measured variant beside its model's baseline scheme:

        size_ratio = baseline size / variant size        (> 1: smaller)
        speedup = baseline RTF / variant RTF             (> 1: faster)
        energy_ratio = variant energy / baseline energy  (< 1: saves energy)
        delta_AXIS = variant AXIS - baseline AXIS
    """
    measured = ["size_bytes", "weight_bytes", "real_time_factor", "energy_j_per_audio_s", axis]
    out = table.reindex(columns=list(dict.fromkeys([*table.columns, *measured])))  # no variant measured: NaN
    ok = out[out["status"] == "ok"]
    base = ok[ok["scheme"] == baseline].set_index("model")
    joined = out["model"].map
    out["size_ratio"] = joined(base["size_bytes"]) / out["size_bytes"]
    out["weight_ratio"] = joined(base["weight_bytes"]) / out["weight_bytes"]
    out["speedup"] = joined(base["real_time_factor"]) / out["real_time_factor"]
    out["energy_ratio"] = out["energy_j_per_audio_s"] / joined(base["energy_j_per_audio_s"])
    out[f"delta_{axis}"] = out[axis] - joined(base[axis])
    return out


def load_devices(path: str | Path) -> pd.DataFrame:
    """The small-device table (data/quantize/devices.csv), validated."""
    from audiofootprint.data import read_table
    from audiofootprint.quantization.devices import DeviceSchema

    return read_table(path, DeviceSchema, id_column="device")


def feasibility(table: pd.DataFrame, devices: pd.DataFrame) -> pd.DataFrame:
    """Which measured variants fit each device's RAM: weights at rest plus the peak memory one call
    of about the measured audio length added (measured here), against the device's total RAM."""
    ok = table[table["status"] == "ok"].copy()
    ok["footprint_bytes"] = ok["weight_bytes"] + ok["peak_memory_bytes"].fillna(0)
    rows = []
    for _, variant in ok.iterrows():
        row = {"model": variant["model"], "scheme": variant["scheme"],
               "footprint_mb": variant["footprint_bytes"] / 1e6, "weights_mb": variant["weight_bytes"] / 1e6,
               "real_time_here": bool(variant["real_time_factor"] < 1.0)}
        for _, device in devices.iterrows():
            row[device["device"]] = bool(variant["footprint_bytes"] <= device["ram_bytes"])
        rows.append(row)
    columns = ["model", "scheme", "footprint_mb", "weights_mb", "real_time_here", *devices["device"]]
    return pd.DataFrame(rows, columns=columns)


def summarise(root: str | Path, params: dict) -> dict:
    """Ratios against float32, the quality lost, and the Pareto front with the variants added."""
    from audiofootprint.pareto import pareto_mask

    root = Path(root)
    settings = params["quantize"]
    axis = params["benchmark"]["quality_axis"]
    direction = quality.METRICS[axis]["direction"]
    table = against_baseline(variant_table(root, params), settings["baseline"], axis)
    ok = table["status"] == "ok"
    front = pd.Series(False, index=table.index)
    front[ok] = pareto_mask(table[ok], {"energy_j_per_audio_s": "min", axis: direction})
    table["pareto_inference"] = front
    out = root / SUMMARY_DIR
    atomic.write_csv(out / "variants.csv", table)

    measured = table[ok & (table["scheme"] != settings["baseline"])]
    by_scheme = {}
    for scheme, group in measured.groupby("scheme"):
        by_scheme[scheme] = {
            "models": int(len(group)),
            "size_ratio_median": round(float(group["size_ratio"].median()), 3),
            "size_ratio_range": [round(float(group["size_ratio"].min()), 3), round(float(group["size_ratio"].max()), 3)],
            "speedup_median": round(float(group["speedup"].median()), 3),
            "energy_ratio_median": round(float(group["energy_ratio"].median()), 3),
            f"delta_{axis}_median": round(float(group[f"delta_{axis}"].median()), 4),
        }
    skipped = table[table["status"] == "not_applicable"]
    metrics = {
        "quality_axis": axis, "baseline": settings["baseline"],
        "variants_measured": int(ok.sum()),
        "not_applicable": {f"{r.model}/{r.scheme}": r.reason for r in skipped.itertuples()},
        "failed": {f"{r.model}/{r.scheme}": r.reason for r in table[table["status"] == "failed"].itertuples()},
        "missing": sorted(f"{r.model}/{r.scheme}" for r in table[table["status"] == "missing"].itertuples()),
        "by_scheme": by_scheme,
        "largest_size_reduction": _best(measured, "size_ratio"),
        "pareto_inference": sorted(f"{r.model}/{r.scheme}" for r in table[front].itertuples()),
    }
    atomic.write_json(out / "metrics.json", metrics)
    return metrics


def _best(table: pd.DataFrame, column: str) -> dict | None:
    if table.empty:
        return None
    row = table.loc[table[column].idxmax()]
    return {"model": row["model"], "scheme": row["scheme"], column: round(float(row[column]), 3)}
