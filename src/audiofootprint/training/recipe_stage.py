"""The stage ``recipe_cost``: what training each selected model to its recipe would cost on this
machine (:mod:`.recipe_cost`), one record per model and the table beside the published runs.

``profile.recipe_cost.models`` selects the models: ``all`` (every model of ``benchmark.training``
with a training objective of its own) or a list of config names; ``warmup`` and ``steps`` are the
steps run before measuring and the measured steps of each phase. Outputs
(:data:`audiofootprint.paths.RECIPE_COST_DIR`): ``NAME.json`` (the measurement, the extrapolation,
carbontracker's count and, for a grid model, the thesis' 5-day cap) and ``costs.csv`` (a row per
model). A model whose steps fail (out of memory at the recipe's batch, a diverging step) is recorded
with ``status: failed`` and its reason, and the others are measured: each model is measured under
:func:`audiofootprint.runtime.memory_ceiling`, so a batch too large for the machine's memory fails as
an error rather than getting the whole stage killed. The benchmark notebook sets them beside the
published runs of the same recipes (``carbon.recipe_runs``).
"""
from __future__ import annotations

import gc
from pathlib import Path

import pandas as pd

from audiofootprint import atomic, failures, runtime
from audiofootprint.energy.harness import MeasureSettings
from audiofootprint.energy.static import release_free_heap
from audiofootprint.energy.tracker import hardware_label
from audiofootprint.paths import CORPUS_DIR, RECIPE_COST_CSV, RECIPE_COST_DIR
from audiofootprint.training import recipe_cost
from audiofootprint.vocoders import zoo

__all__ = ["COLUMNS", "cost_row", "costed_record", "measure_model", "selected_models", "write_results"]

#: The columns of costs.csv, in order.
COLUMNS = ("model", "status", "family", "grid_size", "objective", "batch_size", "crop_samples", "steps_measured",
           "seconds_per_step", "seconds_per_step_q1", "seconds_per_step_q3", "joules_per_step", "mean_power_w",
           "recipe_steps", "recipe_days", "recipe_kwh", "recipe_kwh_q1", "recipe_kwh_q3", "carbontracker_kwh",
           "carbontracker_co2e_kg", "cap_steps", "cap_kwh", "energy_method", "hardware", "label")


def selected_models(entries: dict[str, zoo.ZooEntry], models, training_plan) -> list[str]:
    """The models ``profile.recipe_cost.models`` selects (``all``: those of ``training_plan`` that train
    themselves); a named model that is not configured or has no training of its own is refused."""
    if models == "all":
        return [name for name in training_plan if name in entries and recipe_cost.trains_itself(entries[name])]
    unknown = [name for name in models if name not in entries]
    if unknown:
        raise zoo.ConfigError(f"profile.recipe_cost.models names {unknown}, not in conf/vocoder/")
    untrained = [name for name in models if not recipe_cost.trains_itself(entries[name])]
    if untrained:
        raise zoo.ConfigError(f"profile.recipe_cost.models names {untrained}: pretrained, training-free or sharing "
                              "another model's training; name models that train themselves")
    return list(models)


def costed_record(entry: zoo.ZooEntry, measured: dict, our_pue: float) -> dict:
    """A measurement of :func:`recipe_cost.measure_recipe_steps` with what follows from it: the
    extrapolation to the recipe (and carbontracker's count of it) and the cap of a grid model."""
    record = dict(measured)
    record["to_recipe"] = recipe_cost.extrapolate(record, record["recipe_steps"])
    if record["to_recipe"]:
        record["to_recipe"]["under_carbontracker"] = recipe_cost.under_carbontracker(
            record["to_recipe"]["energy_kwh"]["median"], our_pue)
    record["thesis_cap"] = recipe_cost.within_cap(record) if entry.grid is not None else None
    return record


def measure_model(entry: zoo.ZooEntry, root: Path, sample_rate: int, settings: MeasureSettings,
                  setup: runtime.StageSetup, our_pue: float) -> dict:
    """One model's record: its recipe's steps measured under the memory ceiling
    (:func:`audiofootprint.runtime.memory_ceiling`) and costed (:func:`costed_record`); a step that fails
    (out of memory at the recipe's batch, a diverging step) gives a record with ``status: failed``
    and its reason instead, told on stderr."""
    model = zoo.build_for_corpus(entry, sample_rate)
    try:
        with runtime.memory_ceiling(setup.device) as ceiling:
            measured = recipe_cost.measure_recipe_steps(entry, model, root / CORPUS_DIR, settings, setup.tracker,
                                                        setup.device, setup.seed)
    except (RuntimeError, MemoryError, FloatingPointError) as error:
        limit = f" (memory ceiling {ceiling / 2**30:.1f} GiB of address space)" if ceiling else ""
        failed = {"model": entry.name, "status": failures.FAILED, **failures.error_fields(error),
                  "reason": f"a training step at the recipe's batch and crop failed{limit}"}
        failures.tell(f"recipe_cost {entry.name}", error, failed)
    else:
        return costed_record(entry, measured, our_pue)
    # the failed step's tensors are free once its traceback is gone: hand their pages back, or the
    # next model's ceiling would start from a machine that looks full
    del model
    gc.collect()
    release_free_heap()
    return failed


def cost_row(entry: zoo.ZooEntry, record: dict) -> dict:
    """The costs.csv row of one model's record (per-step figures weighted over the recipe's phases)."""
    phases = record["phases"]
    weighted = lambda key, stat: sum(p["share"] * p[key][stat] for p in phases)
    to, cap = record["to_recipe"] or {}, record["thesis_cap"] or {}
    counted = to.get("under_carbontracker") or {}
    return {
        "model": entry.name, "status": "ok", "family": entry.family, "grid_size": entry.grid.size if entry.grid else None,
        "objective": record["objective"], "batch_size": record["batch_size"], "crop_samples": record["crop_samples"],
        "steps_measured": sum(p["steps_measured"] for p in phases),
        "seconds_per_step": weighted("seconds_per_step", "median"),
        "seconds_per_step_q1": weighted("seconds_per_step", "q1"),
        "seconds_per_step_q3": weighted("seconds_per_step", "q3"),
        "joules_per_step": weighted("joules_per_step", "median"),
        "mean_power_w": sum(p["share"] * p["mean_power_w"] for p in phases),
        "recipe_steps": record["recipe_steps"],
        "recipe_days": to["seconds"]["median"] / 86400 if to else None,
        "recipe_kwh": to["energy_kwh"]["median"] if to else None,
        "recipe_kwh_q1": to["energy_kwh"]["q1"] if to else None,
        "recipe_kwh_q3": to["energy_kwh"]["q3"] if to else None,
        "carbontracker_kwh": counted.get("energy_kwh"), "carbontracker_co2e_kg": counted.get("co2e_kg"),
        "cap_steps": cap.get("steps"), "cap_kwh": cap.get("energy_kwh"),
        "energy_method": record["energy_method"], "hardware": hardware_label(record["hardware"]),
        "label": to.get("label") or f"per-step cost from {sum(p['steps_measured'] for p in phases)} measured steps "
                                    f"({record['energy_method']}); the recipe gives no step count",
    }


def write_results(root: str | Path, params: dict) -> pd.DataFrame:
    """Measure every selected model (module docstring); write the records and costs.csv; return the table."""
    root = Path(root)
    cfg = params["profile"]["recipe_cost"]
    entries = zoo.load_zoo(root)
    names = selected_models(entries, cfg["models"], params["benchmark"]["training"])
    setup = runtime.set_up(root, params)
    settings = MeasureSettings(warmup=cfg["warmup"], windows=cfg["steps"], min_window_s=1e-3, min_repeats=1,
                               idle_windows=1)
    out = root / RECIPE_COST_DIR
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        entry = entries[name]
        record = measure_model(entry, root, int(params["corpus"]["sample_rate"]), settings, setup,
                               float(params["energy"]["pue"]))
        atomic.write_json(out / f"{name}.json", record)
        if failures.failed(record):
            rows.append({"model": name, "status": failures.FAILED, "family": entry.family,
                         "grid_size": entry.grid.size if entry.grid else None, "label": failures.reason(record)})
            continue
        rows.append(cost_row(entry, record))
        print(f"{name}: {rows[-1]['seconds_per_step']:.3g} s and {rows[-1]['joules_per_step']:.3g} J per step at batch "
              f"{record['batch_size']}; {rows[-1]['label']}", flush=True)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    atomic.write_csv(root / RECIPE_COST_CSV, table)
    return table
