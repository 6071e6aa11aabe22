"""The quantization summary (stage ``quantize_summary``): every (model, scheme) variant beside its
model's float32 baseline, the quality each scheme costs, the Pareto front with the variants added,
and each mixed-precision search (its curve of ops quantized against size, speed and quality, and
the damage of each op). Writes results/quantize_summary/{variants.csv, mixed_precision_curve.csv,
mixed_precision_damage.csv, metrics.json}.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from audiofootprint import atomic, quality
from audiofootprint.pareto import pareto_mask
from audiofootprint.paths import (
    MIXED_PRECISION_CURVE_CSV,
    MIXED_PRECISION_DAMAGE_CSV,
    QUANTIZE_DIR,
    QUANTIZE_SUMMARY_DIR,
    variant_record,
)
from audiofootprint.records import VariantMetrics


def variant_table(root: str | Path, params: dict) -> pd.DataFrame:
    """One row per (model, scheme) of params.yaml, from each variant's metrics.json (no row when
    ``quantize.models`` is empty, as in a run of a grid without pretrained models)."""
    root = Path(root)
    rows = []
    for name in params["quantize"]["models"]:
        for scheme in params["quantize"]["schemes"]:
            path = root / QUANTIZE_DIR / name / scheme / "metrics.json"
            if not path.is_file():
                rows.append({"model": name, "scheme": scheme, "status": "missing", "reason": f"{path} missing"})
                continue
            rows.append(VariantMetrics.read(path).table_row())
    return pd.DataFrame(rows, columns=None if rows else ["model", "scheme", "status", "reason"])


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


def summarise(root: str | Path, params: dict) -> dict:
    """Ratios against float32, the quality lost, and the Pareto front with the variants added."""
    root = Path(root)
    settings = params["quantize"]
    axis = params["benchmark"]["quality_axis"]
    direction = quality.METRICS[axis]["direction"]
    table = against_baseline(variant_table(root, params), settings["baseline"], axis)
    ok = table["status"] == "ok"
    front = pd.Series(False, index=table.index)
    front[ok] = pareto_mask(table[ok], {"energy_j_per_audio_s": "min", axis: direction})
    table["pareto_inference"] = front
    out = root / QUANTIZE_SUMMARY_DIR
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
    curves = mixed_precision_tables(root, table[ok])
    atomic.write_csv(root / MIXED_PRECISION_CURVE_CSV, curves["curve"])
    atomic.write_csv(root / MIXED_PRECISION_DAMAGE_CSV, curves["damage"])
    skipped = table[table["status"] == "not_applicable"]
    metrics = {
        "quality_axis": axis, "baseline": settings["baseline"], "models": list(settings["models"]),
        "variants_measured": int(ok.sum()),
        "not_applicable": {f"{r.model}/{r.scheme}": r.reason for r in skipped.itertuples()},
        "failed": {f"{r.model}/{r.scheme}": r.reason for r in table[table["status"] == "failed"].itertuples()},
        "missing": sorted(f"{r.model}/{r.scheme}" for r in table[table["status"] == "missing"].itertuples()),
        "by_scheme": by_scheme,
        "largest_size_reduction": _best(measured, "size_ratio"),
        "mixed_precision": _chosen(measured, curves, axis),
        "pareto_inference": sorted(f"{r.model}/{r.scheme}" for r in table[front].itertuples()),
    }
    atomic.write_json(out / "metrics.json", metrics)
    return metrics


def _best(table: pd.DataFrame, column: str) -> dict | None:
    if table.empty:
        return None
    row = table.loc[table[column].idxmax()]
    return {"model": row["model"], "scheme": row["scheme"], column: round(float(row[column]), 3)}


def mixed_precision_tables(root: Path, measured: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The mixed-precision searches of the measured variants (those whose record.json holds one):
    ``curve`` (one row per candidate tried, in the order tried) and ``damage`` (one row per op, in the order the search
    quantizes them)."""
    curves, damages = [], []
    for row in measured.itertuples():
        path = root / variant_record(row.model, row.scheme)
        search = json.loads(path.read_text()).get("mixed_precision") if path.is_file() else None
        if search is None:
            continue
        for point in search["curve"]:
            curves.append({"model": row.model, "scheme": row.scheme, **point})
        for rank, op in enumerate(search["damage"], start=1):
            damages.append({"model": row.model, "scheme": row.scheme, "rank": rank, **op})
    curve_columns = ["model", "scheme", "ops_quantized", "size_bytes", "seconds_per_call", "within_budget", "chosen"]
    return {"curve": pd.DataFrame(curves, columns=None if curves else curve_columns),
            "damage": pd.DataFrame(damages, columns=None if damages else ["model", "scheme", "rank", "op"])}


def _chosen(measured: pd.DataFrame, curves: dict[str, pd.DataFrame], axis: str) -> dict:
    """Per mixed-precision variant: the ops it quantized (of all its weighted ops, one row each in the
    damage table) and its ratios against the float32 baseline."""
    out = {}
    curve, damage = curves["curve"], curves["damage"]
    for row in measured.itertuples():
        points = curve[(curve["model"] == row.model) & (curve["scheme"] == row.scheme)]
        if points.empty:
            continue
        chosen = points[points["chosen"].astype(bool)]
        ops = damage[(damage["model"] == row.model) & (damage["scheme"] == row.scheme)]
        out[f"{row.model}/{row.scheme}"] = {
            "ops_quantized": int(chosen["ops_quantized"].iloc[0]), "ops": int(len(ops)),
            "size_ratio": round(float(row.size_ratio), 3), "speedup": round(float(row.speedup), 3),
            "energy_ratio": round(float(row.energy_ratio), 3),
            f"delta_{axis}": round(float(getattr(row, f"delta_{axis}")), 4)}
    return out
