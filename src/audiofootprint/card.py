"""The energy card of one benchmarked vocoder: a short statement to quote in a paper.

Built only from what the pipeline wrote (nothing is measured or guessed here)::

    results/benchmark/NAME/metrics.json        headline numbers (stage benchmark@NAME)
    results/benchmark/NAME/measurement.json    the harness' full record (same stage)
    results/models/TRAINED_BY/training.json    the training run (stage train@TRAINED_BY)
    results/benchmark_summary/{models.csv,metrics.json}   the fronts and ranks, when present
    params.yaml                                profile name, benchmark models, energy location

:func:`build_card` returns a dict (printed by ``audiofootprint card NAME --json``) with the keys
``model, status, family, profile, sources, notes`` and, for a model benchmarked successfully,
``static, inference, method, hardware, training, quality, pareto``; for a failed model
``failure`` instead. :func:`render_markdown` turns it into the Markdown statement.

Energy is labelled with how codecarbon obtained it: ``measured`` only when every part it counts
comes from an energy counter (RAPL, NVML), ``estimate`` when every part is estimated (CPU load x
TDP, RAM power model), ``partly estimated`` when both are mixed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from audiofootprint import failures
from audiofootprint import params as params_module
from audiofootprint.paths import BENCHMARK_DIR, BENCHMARK_SUMMARY_DIR
from audiofootprint.records import ModelMetrics, TrainingRecord
from audiofootprint.energy.harness import J_PER_KWH
from audiofootprint.energy.tracker import hardware_label, method_kind, overall_method

#: Relative tolerance when checking that two copies of one recorded number agree.
SAME_NUMBER_RTOL = 1e-6
#: Relative tolerance when checking CO2e / energy against the grid intensity codecarbon tabulates.
INTENSITY_RTOL = 1e-3
#: Unit conversions.
G_PER_KG = 1000
BYTES_PER_MB = 1e6
def _read_json(path: Path, how_to_make: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {how_to_make}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): {how_to_make} again") from error


def _spread(stats: dict) -> dict:
    return {key: stats[key] for key in ("median", "q1", "q3", "n") if key in stats}


def build_card(root: str | Path, name: str) -> dict:
    """The card of benchmarked model ``name`` under ``root``, from the pipeline's outputs only."""
    root = Path(root)
    params = params_module.load_params(root)
    models = params["benchmark"]["models"]
    if name not in models:
        stale = (root / BENCHMARK_DIR / name).is_dir()
        raise KeyError(f"unknown model {name!r}: not in benchmark.models of {root / 'params.yaml'}"
                       + (f" ({root / BENCHMARK_DIR / name} is left over from an earlier configuration)"
                          if stale else "")
                       + f". Benchmarked models: {', '.join(models)}")
    stage = f"run `dvc repro benchmark@{name}`"
    metrics_path = root / BENCHMARK_DIR / name / "metrics.json"
    metrics = ModelMetrics.read(metrics_path)
    trained_by = (models[name] or {}).get("trained_by", name)
    card = {"model": name, "status": metrics.status, "family": metrics.family,
            "profile": params["profile"]["name"], "sources": [str(metrics_path.relative_to(root))], "notes": []}
    if not metrics.ok:
        card["failure"] = _failure(root, metrics, trained_by, card)
        return card

    measurement_path = root / BENCHMARK_DIR / name / "measurement.json"
    measurement = _read_json(measurement_path, stage)
    card["sources"].append(str(measurement_path.relative_to(root)))
    m = measurement["measurement"]
    card["static"] = {
        "params": metrics.params, "size_mb": metrics.size_mb,
        "gflops_per_audio_s": metrics.gflops_per_audio_s, "flops_method": measurement["flops_method"],
        "flops_lower_bound": "lower bound" in measurement["flops_method"],
        "peak_memory_mb": measurement["peak_memory"]["bytes"] / BYTES_PER_MB,
        "peak_memory_method": measurement["peak_memory"]["method"],
    }
    card["inference"] = {
        "energy_j_per_audio_s": _spread(metrics.energy_j_per_audio_s),
        "net_energy_j_per_audio_s": _spread(metrics.net_energy_j_per_audio_s),
        "real_time_factor": _spread(metrics.real_time_factor),
        "windows": len(m["windows"]), "calls": sum(w["calls"] for w in m["windows"]),
        "idle_windows": len(m["idle"]), "warmup_calls": m["settings"]["warmup"],
        "min_window_s": m["settings"]["min_window_s"], "audio_seconds_per_call": m["audio_seconds"],
        "input": measurement.get("input"),
    }
    methods = metrics.energy_method
    card["method"] = {"label": overall_method(methods),
                      "parts": {part: {"method": label, "kind": method_kind(label)} for part, label in methods.items()}}
    hw = m["hardware"]
    card["hardware"] = {"cpu_model": hw["cpu_model"], "cpu_signature": hw.get("cpu_signature"),
                        "cpu_count": hw["cpu_count"], "gpu_model": hw["gpu_model"],
                        "gpu_count": hw.get("gpu_count", 0), "ram_total_gb": hw["ram_total_gb"], "os": hw.get("os"),
                        "device": m["device"], "torch_threads": measurement["torch_threads"],
                        "codecarbon_version": hw["codecarbon_version"], "tracking_mode": hw["tracking_mode"]}
    card["training"] = _training(root, metrics, trained_by, params, card)
    axis, direction, summary = _summary_axis(root, params, card)
    if axis not in metrics.quality:
        raise KeyError(f"{metrics_path} has no quality metric {axis!r} (the quality axis): it has "
                       f"{', '.join(metrics.quality)}; {stage} with benchmark.metrics including it")
    from audiofootprint import quality

    card["quality"] = {"axis": axis, "name": quality.METRICS[axis]["name"], "unit": quality.METRICS[axis]["unit"],
                       "direction": direction, **metrics.quality[axis], "all": metrics.quality,
                       "test_utterances": metrics.test_utterances, "test_seconds": metrics.test_seconds}
    card["pareto"] = _pareto(root, name, metrics, axis, direction, summary, card)
    return card


def _failure(root: Path, metrics: ModelMetrics, trained_by: str, card: dict) -> dict:
    """What a failed model's records say: its status, the reason, and the training's own record."""
    failure = {"status": metrics.status, "reason": failures.reason(metrics.as_dict()), "training": None}
    path = TrainingRecord.path_of(root, trained_by)
    if path.is_file():
        record = TrainingRecord.read(path)
        card["sources"].append(str(path.relative_to(root)))
        failure["training"] = {"status": record.get("status", "ok"), "reason": failures.reason(record),
                               **{key: record[key] for key in ("steps", "seconds", "energy_kwh", "co2e_kg")
                                  if key in record}}
    return failure


def _training(root: Path, metrics: ModelMetrics, trained_by: str, params: dict, card: dict) -> dict:
    """Training energy and CO2e with the assumptions behind them (grid intensity, PUE, budget)."""
    from audiofootprint.carbon import intensity_for

    path = TrainingRecord.path_of(root, trained_by)
    if path.is_file():
        record = TrainingRecord.read(path)
        card["sources"].append(str(path.relative_to(root)))
    else:
        record = dict(metrics.training)
        card["notes"].append(f"{path} not found (run `dvc repro train@{trained_by}`): training figures are "
                             f"the copy in metrics.json, without their method and location")
    training = {"trained_by": trained_by, "shared": trained_by != card["model"],
                **{key: record.get(key) for key in ("objective", "steps", "seconds", "energy_kwh", "co2e_kg",
                                                    "total_energy_kwh", "total_co2e_kg", "recipe", "recipe_steps",
                                                    "stopped_by", "resumes", "note")}}
    if record.get("objective") == "pretrained":
        training["weights"] = record.get("weights")
        training["published_training"] = record.get("published_training")
    budget = record.get("budget") or {}
    training["budget"] = {key: budget[key] for key in ("max_steps", "max_seconds") if key in budget}
    methods = record.get("methods")
    training["method"] = ({"label": overall_method(methods), "parts": methods} if methods
                          else {"label": "not recorded", "parts": {}})
    for key in ("energy_kwh", "co2e_kg"):
        copied = metrics.training.get(key)
        if copied is not None and training[key] is not None and not math.isclose(
                copied, training[key], rel_tol=SAME_NUMBER_RTOL, abs_tol=0.0):
            card["notes"].append(f"training {key} in metrics.json ({copied:.6g}) differs from {path} "
                                 f"({training[key]:.6g}): run `dvc repro benchmark@{card['model']}`")
    if not training["energy_kwh"]:
        training["assumptions"] = None
        return training
    recorded = record.get("hardware") or {}
    configured = params["energy"]
    country = recorded.get("country_iso3") or configured["country_iso3"]
    pue = recorded.get("pue", configured["pue"])
    intensity, source = intensity_for(country)
    implied = training["co2e_kg"] * G_PER_KG / training["energy_kwh"] if training["co2e_kg"] is not None else None
    consistent = implied is not None and math.isclose(implied, intensity, rel_tol=INTENSITY_RTOL)
    training["assumptions"] = {"country_iso3": country, "grid_g_per_kwh": intensity, "grid_source": source,
                               "pue": pue, "implied_g_per_kwh": implied, "consistent": consistent,
                               "from": "training record" if recorded else "params.yaml energy"}
    if implied is not None and not consistent:
        card["notes"].append(f"training CO2e / energy = {implied:.4g} g/kWh, not the {intensity:.4g} g/kWh of "
                             f"{country} in codecarbon's table: the run used another location or codecarbon version")
    if (country, pue) != (configured["country_iso3"], configured["pue"]):
        card["notes"].append(f"the training ran with {country}, PUE {pue:g}; params.yaml now says "
                             f"{configured['country_iso3']}, PUE {configured['pue']:g}: "
                             f"run `dvc repro train@{trained_by}` to use the new location")
    return training


def _summary_axis(root: Path, params: dict, card: dict) -> tuple[str, str, dict | None]:
    """The quality axis (the summary's, else params.yaml's), its direction and the summary metrics."""
    from audiofootprint import quality

    path = root / BENCHMARK_SUMMARY_DIR / "metrics.json"
    summary = _read_json(path, "run `dvc repro benchmark_summary`") if path.is_file() else None
    axis = summary["quality_axis"] if summary else params["benchmark"]["quality_axis"]
    if axis not in quality.METRICS:
        raise KeyError(f"quality axis {axis!r} (from {path if summary else 'params.yaml benchmark.quality_axis'}) "
                       f"is not a known metric: {', '.join(quality.METRICS)}")
    if summary:
        card["sources"].append(str(path.relative_to(root)))
    return axis, quality.METRICS[axis]["direction"], summary


def _pareto(root: Path, name: str, metrics: ModelMetrics, axis: str, direction: str, summary: dict | None,
            card: dict) -> dict:
    """Where the model sits against the front of quality vs inference energy, and its efficiency rank."""
    from audiofootprint.pareto import dominated_by

    path = root / BENCHMARK_SUMMARY_DIR / "models.csv"
    redo = "run `dvc repro benchmark_summary`"
    if summary is None or not path.is_file():
        return {"computed": False, "note": f"the Pareto front is not computed yet: {redo}"}
    table = pd.read_csv(path)
    card["sources"].append(str(path.relative_to(root)))
    for column in ("model", "status", "energy_j_per_audio_s", axis, "pareto_inference", "rank_by_efficiency"):
        if column not in table.columns:
            raise KeyError(f"{path} has no column {column!r}: {redo}")
    ok = table[table["status"] == "ok"].set_index("model")
    if name not in ok.index:
        return {"computed": False, "note": f"{name} is not in {path} yet: {redo}"}
    row = ok.loc[name]
    headline = summary.get("headline_models")
    if headline is not None and name not in headline:
        label = (summary.get("budget_trained") or {}).get(name, "budget-trained")
        return {"computed": False, "note": f"budget-trained ({label}): its quality is not a finding, so it is on "
                                           "no quality front and not ranked by efficiency (its costs stand)"}
    if headline is not None:
        ok = ok.loc[[model for model in headline if model in ok.index]]
    stale = not (math.isclose(row["energy_j_per_audio_s"], metrics.energy_j_per_audio_s["median"],
                              rel_tol=SAME_NUMBER_RTOL)
                 and math.isclose(row[axis], metrics.quality[axis]["mean"], rel_tol=SAME_NUMBER_RTOL))
    if stale:
        card["notes"].append(f"{path} was made from older results of {name}: {redo}")
    objectives = {"energy_j_per_audio_s": "min", axis: direction}
    dominators = dict(zip(ok.index, dominated_by(ok, objectives)))[name]
    on_front = bool(row["pareto_inference"])
    if on_front == bool(dominators):
        card["notes"].append(f"{path} marks {name} {'on' if on_front else 'off'} the front but its numbers "
                             f"say otherwise: {redo}")

    def value(column: str, kind: type) -> bool | float | None:
        present = column in ok.columns and pd.notna(row[column]) and math.isfinite(float(row[column]))
        return kind(row[column]) if present else None

    return {"computed": True, "stale": stale, "objectives": objectives, "on_front": not dominators,
            "dominated_by": sorted(dominators), "front": summary["pareto_inference"],
            "survives_spread": value("pareto_inference_survives_spread", bool),
            "on_training_front": value("pareto_training", bool), "efficiency": value("efficiency", float),
            "rank_by_efficiency": int(row["rank_by_efficiency"]),
            "n_ranked": int(ok["rank_by_efficiency"].notna().sum()),
            "most_efficient": summary.get("most_efficient"), "floor": summary.get("floor"),
            "ceiling": summary.get("ceiling_recordings"), "failed": summary.get("failed", [])}


# --- Markdown ---------------------------------------------------------------------------------

#: The sentence under the card's title, by overall energy method.
PREAMBLE = {
    "estimate": "Energy figures are **estimates** by codecarbon, not energy-counter readings (see Energy method).",
    "measured": "Energy figures are **measured** with energy counters (see Energy method).",
    "partly estimated": "Energy figures are **partly estimated**: some parts read from energy counters, others "
                        "estimated (see Energy method).",
    "unknown": "Energy figures come from a codecarbon method this card does not recognise (see Energy method): "
               "do not quote them as measurements.",
}
#: How the statement names the method of an energy figure.
METHOD_PHRASE = {"estimate": "a codecarbon estimate", "measured": "read by codecarbon from energy counters",
                 "partly estimated": "partly estimated by codecarbon", "unknown": "codecarbon, method unrecognised"}


def sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, trailing zeros kept; large values in full."""
    if value != 0 and abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:#.{digits}g}".rstrip(".")


def _iqr(stats: dict, unit: str = "") -> str:
    return f"{sig(stats['median'])}{unit} median (IQR {sig(stats['q1'])} to {sig(stats['q3'])}{unit})"


def _parts(parts: dict) -> str:
    return "; ".join(f"{part.upper()}: {entry['method'] if isinstance(entry, dict) else entry}"
                     for part, entry in parts.items())


def render_markdown(card: dict) -> str:
    """The card as Markdown: a heading, a statement to quote, a table of figures with their methods."""
    title = f"### Energy card: {card['model']}" + (f" ({card['family']})" if card.get("family") else "")
    if card["status"] != "ok":
        return _render_failed(card, title)
    s, inf, hw, tr, q, p = (card[k] for k in ("static", "inference", "hardware", "training", "quality", "pareto"))
    flops = f"{sig(s['gflops_per_audio_s'])} GFLOP"
    flops += (f" (lower bound: matmul/conv only; {s['flops_method'].split(' (')[0]})" if s["flops_lower_bound"]
              else f" ({s['flops_method']})")
    gpu = f"{hw['gpu_model']} x{hw['gpu_count']}" if hw["gpu_model"] else "no GPU"
    method = card["method"]["label"]
    rows = [
        ("Parameters", f"{s['params']:,} ({sig(s['size_mb'])} MB on disk)"),
        ("FLOPs per second of audio", flops),
        ("Energy per second of audio", f"{_iqr(inf['energy_j_per_audio_s'], ' J')} over {inf['windows']} windows "
                                       f"of >= {inf['min_window_s']:g} s ({inf['calls']} calls, after "
                                       f"{inf['warmup_calls']} warm-up calls); "
                                       f"{sig(inf['net_energy_j_per_audio_s']['median'])} J net of idle power "
                                       f"({inf['idle_windows']} idle windows)"),
        ("Real-time factor", f"{_iqr(inf['real_time_factor'])} over {inf['real_time_factor']['n']} calls "
                             f"(below 1 is faster than real time)"),
        ("Hardware", f"{hardware_label(hw)} x{hw['cpu_count']:g}, {gpu}, {sig(hw['ram_total_gb'])} GB RAM; "
                     f"device {hw['device']}, torch threads {hw['torch_threads']}"),
        ("Energy method", f"**{method}** ({_parts(card['method']['parts'])}); codecarbon "
                          f"{hw['codecarbon_version']} offline tracker, {hw['tracking_mode']} mode"),
        ("Training", _training_text(tr, card["profile"], card["method"]["parts"])),
    ]
    if tr["assumptions"]:
        a = tr["assumptions"]
        rows.append(("CO2e assumptions", f"grid {a['country_iso3']} {sig(a['grid_g_per_kwh'])} g CO2e/kWh "
                                         f"({a['grid_source']}); PUE {a['pue']:g} (included in the energy); "
                                         f"CO2e = kWh x g/kWh / 1000"))
    rows.append((f"Quality, {q['name']}", _quality_text(q)))
    rows.append(("Pareto front", _pareto_text(p, q)))
    lines = [title, "", f"*From the audiofootprint pipeline (profile `{card['profile']}`). {PREAMBLE[method]}*",
             "", _statement(card), "", "| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows]
    if card["notes"]:
        lines += [""] + [f"- Note: {note}" for note in card["notes"]]
    lines += ["", f"Sources: {', '.join(card['sources'])}."]
    return "\n".join(lines) + "\n"


def _statement(card: dict) -> str:
    """One paragraph to quote: inference cost, its method and spread, training cost and assumptions."""
    s, inf, hw, tr = card["static"], card["inference"], card["hardware"], card["training"]
    energy = inf["energy_j_per_audio_s"]
    gpu = f"{hw['gpu_model']} x{hw['gpu_count']}" if hw["gpu_model"] else "no GPU"
    text = (f"On {hw['cpu_model']} ({hw['cpu_count']:g} CPUs, {gpu}, {hw['torch_threads']} torch threads), "
            f"{card['model']} ({s['params']:,} parameters, "
            f"{'at least ' if s['flops_lower_bound'] else ''}{sig(s['gflops_per_audio_s'])} GFLOP per second of "
            f"audio) used {sig(energy['median'])} J per second of audio (median of {energy['n']} windows, IQR "
            f"{sig(energy['q1'])} to {sig(energy['q3'])} J; {METHOD_PHRASE[card['method']['label']]}) at a real-time "
            f"factor of {sig(inf['real_time_factor']['median'])}.")
    if tr["energy_kwh"]:
        a = tr["assumptions"]
        text += (f" Its training ({tr['steps']:,} steps, {sig(tr['seconds'])} s"
                 + (f", shared with {tr['trained_by']}" if tr["shared"] else "")
                 + f") used {sig(tr['energy_kwh'])} kWh, {sig(tr['co2e_kg'])} kg CO2e "
                 f"({METHOD_PHRASE.get(tr['method']['label'], tr['method']['label'])}; {a['country_iso3']} grid "
                 f"at {sig(a['grid_g_per_kwh'])} g/kWh, PUE {a['pue']:g}).")
    elif tr.get("weights"):
        text += (f" It runs pretrained weights ({tr['weights']['dataset']}): not trained here; their training "
                 f"cost is the estimate of the published run {(tr.get('published_training') or {}).get('run')}.")
    else:
        text += " It has no training cost."
    return text


def _render_failed(card: dict, title: str) -> str:
    failure = card["failure"]
    lines = [title, "", f"**{card['model']} failed** (status `{failure['status']}`): {failure['reason']}.", ""]
    training = failure["training"]
    if training and training["status"] != "ok":
        spent = (f"; {training['steps']} steps and {sig(training['energy_kwh'])} kWh spent before it stopped"
                 if training.get("energy_kwh") is not None and "steps" in training else "")
        lines += [f"Its training failed (status `{training['status']}`): {training['reason']}{spent}.", ""]
    lines += [f"No energy or quality figures are reported for it. Sources: {', '.join(card['sources'])}."]
    return "\n".join(lines) + "\n"


def _training_text(tr: dict, profile: str, inference_parts: dict) -> str:
    by = f"the shared run of {tr['trained_by']}" if tr["shared"] else "its own run"
    if tr.get("weights"):
        w, run = tr["weights"], tr.get("published_training") or {}
        return (f"pretrained, not trained here: {w['source']} (sha256 {w['sha256'][:12]}..., verified), trained on "
                f"{w['dataset']}, {w['license']}; its training energy is the training-carbon study's estimate of the "
                f"published run {run.get('run')} (someone else's run: see results/carbon)"
                + (f"; {run['note']}" if run.get("note") else ""))
    if not tr["energy_kwh"]:
        return f"none ({tr.get('note') or 'no training energy recorded'}; {by})"
    total = (f"; {sig(tr['total_energy_kwh'])} kWh with the in-training quality evaluations"
             if tr.get("total_energy_kwh") else "")
    steps = f"{tr['steps']:,} steps in {sig(tr['seconds'])} s"
    if tr.get("recipe_steps"):
        steps += f" (the recipe runs {tr['recipe_steps']:,})"
    limits = ", ".join(f"{key} {value:g}" for key, value in tr["budget"].items())
    parts = _parts(tr["method"]["parts"])
    if parts == _parts(inference_parts):
        parts = "same method as inference"
    return (f"{sig(tr['energy_kwh'])} kWh ({sig(tr['energy_kwh'] * J_PER_KWH)} J), {sig(tr['co2e_kg'])} kg CO2e, "
            f"**{tr['method']['label']}** ({parts}){total}; {steps}"
            + (f", stopped by {tr['stopped_by']}" if tr.get("stopped_by") else "")
            + f"; profile `{profile}`" + (f" (budget: {limits})" if limits else "") + f"; {by}")


def _quality_text(q: dict) -> str:
    better = "higher" if q["direction"] == "max" else "lower"
    unit = f" {q['unit']}" if q["unit"] else ""
    spread = (f" +/- {q['ci95']:.3f} (95% CI over {q['n']} test utterances)" if q.get("ci95") is not None
              else " (one test utterance: no CI)")
    return f"{q['mean']:.3f}{unit}{spread}; {better} is better"


def _pareto_text(p: dict, q: dict) -> str:
    if not p["computed"]:
        return p["note"]
    where = "on the front" if p["on_front"] else f"dominated by {', '.join(p['dominated_by'])}"
    text = f"{q['name']} vs inference energy: {where} (front: {', '.join(p['front'])})"
    if p["on_front"] and p["survives_spread"] is not None:
        text += (", and stays on it within the measured spread" if p["survives_spread"]
                 else ", but not surely within the measured spread")
    text += f"; efficiency rank {p['rank_by_efficiency']} of {p['n_ranked']}"
    if p["efficiency"] is not None and p["floor"] and p["ceiling"]:
        floor, ceiling, axis = p["floor"], p["ceiling"], q["axis"]
        gap = (f"share of the {q['name']} gap from the floor {floor['model']} ({floor[axis]:.3f}) to the "
               f"recordings ({ceiling[axis]:.3f}) closed, per J per second of audio")
        text += (f" (efficiency {sig(p['efficiency'])}: {gap})" if p["efficiency"] > 0 else
                 f" (efficiency 0: no better than the floor {floor['model']}; models at 0 rank by energy)")
    return text
