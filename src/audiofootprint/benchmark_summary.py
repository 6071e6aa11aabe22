"""The benchmark summary (stage ``benchmark_summary``): every model's metrics in one table, Pareto
fronts of quality against energy, their robustness to the measured spread, the efficiency
rankings, and each design grid's families across their sizes. Writes
results/benchmark_summary/{models.csv, metrics.json}.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from audiofootprint import atomic, failures, quality
from audiofootprint.pareto import front_survives_spread, pareto_mask
from audiofootprint.paths import BENCHMARK_DIR, BENCHMARK_SUMMARY_DIR, CARBON_ESTIMATES, RECORDINGS_DIR
from audiofootprint.records import ModelMetrics
from audiofootprint.vocoders import zoo


def model_table(root: str | Path, params: dict) -> pd.DataFrame:
    """One row per benchmarked model, from each model's metrics.json (:class:`~audiofootprint.records.ModelMetrics`)."""
    root = Path(root)
    rows = []
    for name in params["benchmark"]["models"]:
        path = root / BENCHMARK_DIR / name / "metrics.json"
        if not path.is_file():
            rows.append({"model": name, "status": failures.FAILED, "failed_stage": "benchmark",
                         "reason": f"{path} missing: run `dvc repro benchmark@{name}`"})
            continue
        rows.append(ModelMetrics.read(path).table_row(name))
    return pd.DataFrame(rows).join(grid_places(root, [row["model"] for row in rows]), on="model")


def grid_places(root: str | Path, names: list[str]) -> pd.DataFrame:
    """Each model's place in a design grid (its config's ``grid`` key, :class:`~audiofootprint.vocoders.zoo.GridPlace`):
    columns ``grid`` and ``grid_size``, empty for a model outside any grid (or without a config here)."""
    try:
        paths = zoo.config_paths(root)
    except FileNotFoundError:  # a results tree without its conf/ (a copy of results, a test's tree)
        paths = {}
    places = {name: zoo.load_entry(paths[name]).grid if name in paths else None for name in names}
    return pd.DataFrame({"grid": [p.name if p else None for p in places.values()],
                         "grid_size": [p.size if p else None for p in places.values()]}, index=list(places), dtype=object)


def grid_summary(table: pd.DataFrame, ok: pd.DataFrame, axis: str) -> dict:
    """Per design grid of the run: each family across its sizes (energy per second of audio with its
    interquartile range, real-time factor, GFLOPs, parameters; the quality only where it is a finding),
    how energy and size grow from the grid's smallest size to its largest, and the grid's
    measured-quality front over its converged members (none when no member converged).

    A grid's sizes are ordered by the median over families of their parameter counts (small,
    medium, large for the thesis' grid), since a family may name them otherwise (the thesis'
    "medium" HiFi-GAN is narrower than its "small").
    """
    direction = quality.METRICS[axis]["direction"]
    grids = {}
    for grid, members in table[table["grid"].notna()].groupby("grid"):
        measured = ok[ok.index.isin(members["model"])]
        sizes = list(measured.groupby("grid_size")["params"].median().sort_values().index)
        families = {}
        for family, rows in measured.groupby("family"):
            by_size = rows.reset_index().set_index("grid_size")
            cells = {size: _grid_cell(by_size.loc[size], axis) for size in sizes if size in by_size.index}
            smallest, largest = list(cells)[0], list(cells)[-1]
            first, last = cells[smallest], cells[largest]
            families[family] = {"by_size": cells, "smallest": smallest, "largest": largest,
                                "energy_largest_over_smallest": round(last["energy_j_per_audio_s"]
                                                                      / first["energy_j_per_audio_s"], 4),
                                "params_largest_over_smallest": round(last["params"] / first["params"], 4),
                                "energy_order_follows_params": bool(
                                    rows.sort_values("params")["energy_j_per_audio_s"].is_monotonic_increasing)}
        converged = measured[measured["converged"]]
        front = (converged.index[pareto_mask(converged, {"energy_j_per_audio_s": "min", axis: direction})]
                 if len(converged) else [])
        grids[str(grid)] = {
            "sizes": [str(size) for size in sizes], "members": sorted(members["model"]),
            "failed": sorted(set(members["model"]) - set(measured.index)),
            "converged": sorted(converged.index), "pareto_inference": sorted(front),
            "quality_note": (f"{len(converged)} of {len(measured)} measured members converged"
                             + ("" if len(converged) else ": no member's quality is a finding, so the grid has no "
                                "quality front; its energies are the architectures' own and compare")),
            "families": families,
        }
    return grids


def _grid_cell(row: pd.Series, axis: str) -> dict:
    """One (family, size) of a grid: its costs, and its quality where it is a finding."""
    cell = {"model": str(row["model"]), "params": int(row["params"]),
            "energy_j_per_audio_s": float(row["energy_j_per_audio_s"]), "energy_q1": float(row["energy_q1"]),
            "energy_q3": float(row["energy_q3"]), "real_time_factor": float(row["real_time_factor"]),
            "gflops_per_audio_s": float(row["gflops_per_audio_s"]), "quality_label": str(row["quality_label"])}
    cell[axis] = float(row[axis]) if bool(row["converged"]) else None
    return cell


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
    (:func:`audiofootprint.evaluate.quality_status`: pretrained, training-free, trained to the recipe), with the floor
    and the recordings' ceiling; budget-trained models are listed apart, never ranked by
    quality. The published-MOS front and ranking take every model with a published rating.
    """
    root, bench = Path(root), params["benchmark"]
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

    mos_metrics = _published_mos_front(ok, params, root)
    grids = grid_summary(table, ok, axis)

    table = table.set_index("model")
    for column in ok.columns.difference(table.columns):
        table[column] = ok[column]
    out = root / BENCHMARK_SUMMARY_DIR
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
        **({"grids": grids} if grids else {}),
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


def _published_mos_front(ok: pd.DataFrame, params: dict, root: Path) -> dict:
    """The published-MOS front, efficiency and ranking of the models with a published rating: their
    columns added to ``ok``, their summary metrics returned (``{}`` when no model is rated)."""
    bench = params["benchmark"]
    rated = ok.join(published_mos_axis(ok, params, root), how="inner")
    mos_metrics = {}
    if not len(rated):
        return mos_metrics
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
    return mos_metrics
