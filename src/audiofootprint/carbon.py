"""Energy and CO2e of a training run, estimated from the hardware and time a paper reports.

    energy (kWh)  = devices x power (W) x hours x utilisation x PUE / 1000
    CO2e (kg)     = energy (kWh) x carbon intensity (g/kWh) / 1000

Every estimate carries the assumptions it used. Carbon intensity by country comes from
codecarbon's bundled energy-mix table (never retyped here); accelerator power from
data/carbon/hardware.csv; PUE scenarios from data/carbon/pue.csv. Where a paper does not say
where it trained, at what utilisation or in what data centre, the study gives low / central /
high scenarios (conf/carbon).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from codecarbon import __version__ as codecarbon_version
from codecarbon.input import DataSource
from pandera.typing import Series

from audiofootprint.data import read_table
from audiofootprint.paths import CARBON_DIR
from audiofootprint.survey import TASK_FAMILIES

SCENARIOS = ("low", "central", "high")


class UnknownNameError(KeyError):
    """An accelerator or country the tables do not know; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Estimate:
    """An energy and emissions estimate with every assumption behind it."""

    energy_kwh: float
    co2e_kg: float
    hours: float
    count: float
    power_w: float
    utilization: float
    pue: float
    intensity_g_per_kwh: float
    sources: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def estimate(hours: float, power_w: float, count: float = 1, utilization: float = 1.0, pue: float = 1.0,
             intensity_g_per_kwh: float = 0.0, sources: dict | None = None) -> Estimate:
    """Estimate energy and CO2e of ``count`` devices drawing ``power_w`` each for ``hours``."""
    for name, value in {"hours": hours, "power_w": power_w, "count": count}.items():
        if value is None or not 0 < value < math.inf:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if intensity_g_per_kwh is None or not 0 <= intensity_g_per_kwh < math.inf:
        raise ValueError(f"intensity_g_per_kwh must be a non-negative number, got {intensity_g_per_kwh!r}")
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be in (0, 1], got {utilization!r}")
    if not pue >= 1:
        raise ValueError(f"pue must be at least 1 (facility energy / IT energy), got {pue!r}")
    energy_kwh = count * power_w * hours * utilization * pue / 1000
    return Estimate(
        energy_kwh=energy_kwh, co2e_kg=energy_kwh * intensity_g_per_kwh / 1000, hours=hours, count=count,
        power_w=power_w, utilization=utilization, pue=pue, intensity_g_per_kwh=intensity_g_per_kwh,
        sources=dict(sources or {}),
    )


# --- carbon intensity (codecarbon's data) ---------------------------------------------------

def country_intensities() -> dict[str, dict]:
    """codecarbon's bundled energy mix by ISO3 code: {code: {name, g_per_kwh, year}}."""
    mix = DataSource().get_global_energy_mix_data()
    return {code: {"name": row["country_name"], "g_per_kwh": float(row["carbon_intensity"]),
                   "year": row.get("year")} for code, row in mix.items()}


def world_average_intensity() -> tuple[float, str]:
    """codecarbon's world-average carbon intensity (g/kWh) and the source it cites."""
    data = DataSource().get_carbon_intensity_per_source_data()
    return float(data["world_average"]), f"codecarbon {codecarbon_version} world average ({data['world_average_source']})"


def intensity_for(location: str) -> tuple[float, str]:
    """Carbon intensity (g/kWh) and its source for an ISO3 country code, or ``world``."""
    if location.lower() == "world":
        return world_average_intensity()
    table = country_intensities()
    code = location.upper()
    if code not in table:
        raise UnknownNameError(
            f"unknown country {location!r}: use 'world' or an ISO 3166 alpha-3 code from codecarbon's "
            f"energy-mix table: {', '.join(sorted(table))}"
        )
    row = table[code]
    return row["g_per_kwh"], f"codecarbon {codecarbon_version} energy mix, {row['name']} ({code}), {row['year']}"


# --- curated tables -------------------------------------------------------------------------

#: Whether an accelerator's power was read in the vendor's own datasheet or product brief, or
#: only in a third-party table that cites it.
HARDWARE_SOURCE_KINDS = ["vendor", "secondary"]


class HardwareSchema(pa.DataFrameModel):
    """data/carbon/hardware.csv: power of each accelerator, with its source."""

    accelerator: Series[str] = pa.Field(unique=True)
    vendor: Series[str]
    power_w: Series[float] = pa.Field(gt=0, le=2000)
    power_kind: Series[str]
    source_url: Series[str] = pa.Field(str_matches=r"^(https?://|arXiv:)")
    notes: Series[str] = pa.Field(nullable=True)
    source_kind: Series[str] = pa.Field(isin=HARDWARE_SOURCE_KINDS)

    class Config:
        strict = True
        coerce = True


class TrainingRunSchema(pa.DataFrameModel):
    """data/carbon/training_runs.csv: reported training hardware and duration per model."""

    model_id: Series[str] = pa.Field(unique=True, str_matches=r"^[a-z0-9][a-z0-9_]*$")
    model: Series[str]
    year: Series[int] = pa.Field(ge=2010, le=2030)
    task_family: Series[str] = pa.Field(isin=TASK_FAMILIES)
    source: Series[str] = pa.Field(str_matches=r"^(arXiv:\d{4}\.\d{4,5}|10\.\d{4,9}/|https?://)")
    accelerator: Series[str] = pa.Field(nullable=True)
    accelerator_count: Series[float] = pa.Field(gt=0, nullable=True)
    training_hours: Series[float] = pa.Field(gt=0, nullable=True)
    device_hours: Series[float] = pa.Field(gt=0, nullable=True)
    training_steps: Series[float] = pa.Field(gt=0, nullable=True)
    seconds_per_step: Series[float] = pa.Field(gt=0, nullable=True)
    where_stated: Series[str]
    location_iso3: Series[str] = pa.Field(nullable=True, str_matches=r"^[A-Z]{3}$")
    notes: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(error="leaves a field empty without a note saying why")
    def gaps_explained(cls, frame: pd.DataFrame) -> Series[bool]:
        gaps = frame[["accelerator", "accelerator_count", "training_hours", "device_hours"]].isna().any(axis=1)
        return ~gaps | frame["notes"].notna()

    class Config:
        strict = True
        coerce = True


class PueSchema(pa.DataFrameModel):
    """data/carbon/pue.csv: power usage effectiveness scenarios, each cited."""

    scenario: Series[str] = pa.Field(unique=True)
    pue: Series[float] = pa.Field(ge=1, le=3)
    source: Series[str]
    where_stated: Series[str]
    notes: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = True


class EquivalentSchema(pa.DataFrameModel):
    """data/carbon/equivalents.csv: everyday carbon costs to compare with."""

    item: Series[str] = pa.Field(unique=True)
    co2e_kg: Series[float] = pa.Field(gt=0)
    unit: Series[str]
    source: Series[str]
    where_stated: Series[str]
    notes: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = True


class ReferenceCalculationSchema(pa.DataFrameModel):
    """data/carbon/reference_calculations.csv: published calculations the estimator must reproduce."""

    case: Series[str] = pa.Field(unique=True)
    source: Series[str]
    where_stated: Series[str]
    accelerator: Series[str] = pa.Field(nullable=True)
    count: Series[float] = pa.Field(gt=0, nullable=True)
    hours: Series[float] = pa.Field(gt=0, nullable=True)
    power_w: Series[float] = pa.Field(gt=0, nullable=True)
    pue: Series[float] = pa.Field(ge=1, nullable=True)
    intensity_g_per_kwh: Series[float] = pa.Field(ge=0, nullable=True)
    energy_kwh: Series[float] = pa.Field(gt=0, nullable=True)
    co2e_kg: Series[float] = pa.Field(gt=0, nullable=True)
    notes: Series[str] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = True


# The published MOS table (data/published/mos_ljspeech.csv). A rating is only put on a common
# scale as its gap to the recordings (Ground Truth) rated in the same listening test (`test`);
# only LJSpeech copy-synthesis tests are linked to models.
GROUND_TRUTH = "Ground Truth"
COPY_SYNTHESIS = "copy-synthesis from ground-truth mel-spectrograms"
MOS_DATASETS = ("LJSpeech", "LibriTTS train-clean-360 + LJSpeech fine-tuning (24 kHz)")
LINKED_DATASET = "LJSpeech"


class PublishedMosSchema(pa.DataFrameModel):
    """data/published/mos_ljspeech.csv: MOS reported by papers, one row per model per listening test.

    ``test`` names the listening test (the paper's arXiv id, then the table or part of it), so that
    a rating is compared with the ground truth of its own test, never with another test of the
    same paper.
    """

    model: Series[str]
    mos: Series[float] = pa.Field(ge=1, le=5, nullable=True)
    ci95: Series[float] = pa.Field(ge=0, nullable=True)
    dataset: Series[str] = pa.Field(isin=list(MOS_DATASETS))
    test_condition: Series[str]
    source: Series[str] = pa.Field(str_matches=r"^arXiv:\d{4}\.\d{4,5}$")
    test: Series[str] = pa.Field(str_matches=r"^arXiv:\d{4}\.\d{4,5} \S")
    where_stated: Series[str]
    notes: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(error="repeats a (test, model) pair: one row per model per listening test")
    def one_row_per_model_and_test(cls, frame: pd.DataFrame) -> Series[bool]:
        return ~frame.duplicated(["test", "model"], keep=False)

    @pa.dataframe_check(error="has a test id that does not start with its source (the paper's arXiv id)")
    def test_of_source(cls, frame: pd.DataFrame) -> Series[bool]:
        starts = [not isinstance(t, str) or t.startswith(f"{s} ") for t, s in zip(frame["test"], frame["source"])]
        return pd.Series(starts, index=frame.index)

    @pa.dataframe_check(error="is in a test whose rows name more than one dataset or test condition")
    def one_condition_per_test(cls, frame: pd.DataFrame) -> Series[bool]:
        kinds = frame.groupby("test")[["dataset", "test_condition"]].transform("nunique")
        return (kinds <= 1).all(axis=1) | frame["test"].isna()

    class Config:
        strict = True
        coerce = True


def load_hardware(path: str | Path) -> pd.DataFrame:
    return read_table(path, HardwareSchema, id_column="accelerator")


def load_training_runs(path: str | Path, hardware: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read training runs; with ``hardware``, also check that every accelerator is known."""
    runs = read_table(path, TrainingRunSchema, id_column="model_id")
    if hardware is not None:
        unknown = runs["accelerator"].notna() & ~runs["accelerator"].isin(hardware["accelerator"])
        if unknown.any():
            lines = [f"{path}, line {i + 2} (model_id={row.model_id!r}), column 'accelerator': "
                     f"{row.accelerator!r} is not in hardware.csv" for i, row in runs[unknown].iterrows()]
            from audiofootprint.data import TableError

            raise TableError("\n".join(lines) + f"\nKnown accelerators: {', '.join(hardware['accelerator'])}")
    return runs


def load_pue(path: str | Path) -> pd.DataFrame:
    return read_table(path, PueSchema, id_column="scenario")


def load_equivalents(path: str | Path) -> pd.DataFrame:
    return read_table(path, EquivalentSchema, id_column="item")


def load_reference_calculations(path: str | Path) -> pd.DataFrame:
    return read_table(path, ReferenceCalculationSchema, id_column="case")


def load_published_mos(path: str | Path) -> pd.DataFrame:
    return read_table(path, PublishedMosSchema, id_column="model")


def accelerator_power(hardware: pd.DataFrame, name: str) -> tuple[float, str]:
    """Power (W) of accelerator ``name`` and its source; a clear error lists the known names."""
    match = hardware[hardware["accelerator"].str.lower() == name.lower()]
    if match.empty:
        raise UnknownNameError(
            f"unknown accelerator {name!r}; known: {', '.join(hardware['accelerator'])} "
            "(add it to data/carbon/hardware.csv with its spec sheet, or pass --power-w)"
        )
    row = match.iloc[0]
    return float(row["power_w"]), f"{row['accelerator']} {row['power_kind']} {row['power_w']:g} W ({row['source_url']})"


# --- training runs --------------------------------------------------------------------------

def device_hours(run: pd.Series) -> tuple[float | None, str]:
    """Device-hours of a run and how they were obtained (reported or derived), or None."""
    count = run["accelerator_count"]
    if pd.notna(run["device_hours"]):
        return float(run["device_hours"]), "device-hours as reported"
    if pd.notna(run["training_hours"]) and pd.notna(count):
        return float(run["training_hours"] * count), "reported hours x device count"
    if pd.notna(run["training_steps"]) and pd.notna(run["seconds_per_step"]) and pd.notna(count):
        hours = run["training_steps"] * run["seconds_per_step"] / 3600
        return float(hours * count), "steps x seconds per step / 3600 x device count"
    return None, "duration not reported"


def run_scenarios(run: pd.Series, hardware: pd.DataFrame, pue: pd.DataFrame, assumptions: dict) -> dict[str, Estimate]:
    """Low / central / high estimates for one run (``assumptions``: conf/carbon ``scenarios``).

    A location the source states overrides the scenario's intensity; utilisation and PUE are
    never reported by papers, so they always come from the scenarios.
    """
    hours, how = device_hours(run)
    if hours is None or pd.isna(run["accelerator"]):
        return {}
    power, power_source = accelerator_power(hardware, run["accelerator"])
    result = {}
    for name in SCENARIOS:
        scenario = assumptions[name]
        pue_row = pue.set_index("scenario").loc[scenario["pue"]]
        location = run["location_iso3"] if pd.notna(run["location_iso3"]) else scenario["location"]
        intensity, intensity_source = intensity_for(location)
        result[name] = estimate(
            hours=hours, power_w=power, count=1, utilization=scenario["utilization"], pue=float(pue_row["pue"]),
            intensity_g_per_kwh=intensity,
            sources={"device_hours": how, "power": power_source,
                     "pue": f"{scenario['pue']} ({pue_row['source']}, {pue_row['where_stated']})",
                     "intensity": intensity_source + ("" if pd.notna(run["location_iso3"]) else " (assumed)"),
                     "utilization": scenario["utilization_source"]},
        )
    return result


def estimate_runs(runs: pd.DataFrame, hardware: pd.DataFrame, pue: pd.DataFrame, assumptions: dict) -> pd.DataFrame:
    """One row per run with a usable duration: device-hours and energy / CO2e per scenario."""
    rows = []
    for _, run in runs.iterrows():
        scenarios = run_scenarios(run, hardware, pue, assumptions)
        if not scenarios:
            continue
        row = {"model_id": run["model_id"], "model": run["model"], "year": int(run["year"]),
               "task_family": run["task_family"], "accelerator": run["accelerator"],
               "device_hours": scenarios["central"].hours, "source": run["source"],
               "duration_from": scenarios["central"].sources["device_hours"]}
        for name, est in scenarios.items():
            row[f"energy_kwh_{name}"] = est.energy_kwh
            row[f"co2e_kg_{name}"] = est.co2e_kg
        rows.append(row)
    return pd.DataFrame(rows)


def sensitivity(estimates: pd.DataFrame, pue_values: list[float], intensities: dict[str, float],
                central: dict) -> pd.DataFrame:
    """Total CO2e (kg) of all runs on a grid of PUE x carbon intensity, and the top run's id.

    Scales the central estimates: CO2e is linear in PUE and intensity, so
    co2e(p, i) = co2e_central x (p / p_central) x (i / i_central).
    """
    rows = []
    for label, intensity in intensities.items():
        for pue_value in pue_values:
            scale = (pue_value / central["pue"]) * (intensity / central["intensity"])
            co2e = estimates["co2e_kg_central"] * scale
            rows.append({"intensity_label": label, "intensity_g_per_kwh": intensity, "pue": pue_value,
                         "total_co2e_kg": float(co2e.sum()),
                         "top_model": estimates.loc[co2e.idxmax(), "model_id"]})
    return pd.DataFrame(rows)


def linkable_mos(mos: pd.DataFrame) -> pd.DataFrame:
    """The ratings that can be put on a common scale, each with its own test's ground-truth MOS.

    A rating counts if it is an LJSpeech copy-synthesis MOS and the same listening test
    (``test``, never merely the same paper) also rated the recordings (a ``Ground Truth`` row
    with a MOS); the ``Ground Truth`` rows themselves are left out. Adds ``ground_truth_mos``.
    """
    rated = mos[mos["mos"].notna()]
    truth_rows = rated[rated["model"] == GROUND_TRUTH]
    repeated = truth_rows.loc[truth_rows["test"].duplicated(), "test"]
    if len(repeated):
        raise ValueError(f"published MOS: more than one {GROUND_TRUTH!r} row for test(s) {sorted(set(repeated))}")
    truth = truth_rows.set_index("test")["mos"]
    keep = ((rated["model"] != GROUND_TRUTH) & rated["test"].isin(truth.index)
            & (rated["dataset"] == LINKED_DATASET) & (rated["test_condition"] == COPY_SYNTHESIS))
    linked = rated[keep].copy()
    linked["ground_truth_mos"] = truth.loc[linked["test"]].to_numpy()
    return linked


def relative_mos(mos: pd.DataFrame, links: dict[str, str]) -> pd.DataFrame:
    """Per linked model: MOS minus the ground-truth MOS of the same listening test, median over tests.

    MOS from different listening tests are not comparable as such; the gap to the recordings
    rated in the same test is. A rating is matched to the ``Ground Truth`` row of its own
    ``test`` (never to another test of the same paper); a test without one contributes nothing,
    nor does any test other than LJSpeech copy-synthesis (:func:`linkable_mos`). Returns model,
    model_id, n_tests, mos_gap (median), gap_min, gap_max and tests (the test ids, joined by ';').
    """
    linked = linkable_mos(mos)
    rows = []
    for model, model_id in links.items():
        tests = linked[linked["model"] == model]
        if tests.empty:
            raise KeyError(f"quality links (conf/carbon quality_links, conf/benchmark published_mos): no LJSpeech "
                           f"copy-synthesis MOS for {model!r} from a listening test that also rated the recordings "
                           f"({GROUND_TRUTH!r} of the same test) in the published MOS table; models with one: "
                           f"{sorted(linked['model'].unique())}")
        gaps = (tests["mos"] - tests["ground_truth_mos"]).to_numpy()
        rows.append({"model": model, "model_id": model_id, "n_tests": len(gaps),
                     "mos_gap": float(pd.Series(gaps).median()), "gap_min": float(gaps.min()),
                     "gap_max": float(gaps.max()), "tests": ";".join(tests["test"])})
    return pd.DataFrame(rows, columns=["model", "model_id", "n_tests", "mos_gap", "gap_min", "gap_max", "tests"])


def _configured_intensity(key: str, location: str) -> float:
    """The carbon intensity of a location named by ``carbon.KEY`` in conf/carbon (an unknown one names the key)."""
    try:
        return intensity_for(location)[0]
    except UnknownNameError as error:
        raise UnknownNameError(f"carbon.{key} in conf/carbon: {error.args[0]}") from None


def write_results(root: str | Path, params: dict) -> dict:
    """Run the carbon stage: estimates per run, totals, comparisons, sensitivity, quality front."""
    from audiofootprint import atomic
    from audiofootprint.pareto import pareto_mask

    root = Path(root)
    cfg = params["carbon"]
    # Every table is computed before the first is written: a bad input stops the stage with nothing replaced.
    hardware = load_hardware(root / cfg["hardware"])
    runs = load_training_runs(root / cfg["training_runs"], hardware)
    pue = load_pue(root / cfg["pue"])
    equivalents = load_equivalents(root / cfg["equivalents"])
    published_mos = load_published_mos(root / cfg["published_mos"])
    for name in SCENARIOS:
        if cfg["scenarios"][name]["pue"] not in set(pue["scenario"]):
            raise KeyError(f"carbon.scenarios.{name}.pue in conf/carbon: {cfg['scenarios'][name]['pue']!r} "
                           f"is not a scenario of {cfg['pue']}; known: {', '.join(pue['scenario'])}")
    missing = [item for item in cfg["comparisons"] if item not in set(equivalents["item"])]
    if missing:
        raise KeyError(f"carbon.comparisons in conf/carbon names items not in {cfg['equivalents']}: {missing}")
    estimates = estimate_runs(runs, hardware, pue, cfg["scenarios"])
    by_year = estimates.groupby("year")[[f"co2e_kg_{s}" for s in SCENARIOS]].sum().reset_index()
    comparisons = equivalents.set_index("item").loc[cfg["comparisons"]].reset_index()

    central = {"pue": float(pue.set_index("scenario").loc[cfg["scenarios"]["central"]["pue"], "pue"]),
               "intensity": _configured_intensity("scenarios.central.location", cfg["scenarios"]["central"]["location"])}
    intensities = {loc: _configured_intensity("sensitivity.locations", loc) for loc in cfg["sensitivity"]["locations"]}
    grid = sensitivity(estimates, cfg["sensitivity"]["pue"], intensities, central)

    quality = relative_mos(published_mos, cfg["quality_links"])
    quality = quality.merge(estimates[["model_id", "energy_kwh_low", "energy_kwh_central", "energy_kwh_high"]],
                            on="model_id", how="inner")
    quality["pareto"] = pareto_mask(quality, {"energy_kwh_central": "min", "mos_gap": "max"}).to_numpy()

    top = estimates.loc[estimates["co2e_kg_central"].idxmax()]
    totals = {s: round(float(estimates[f"co2e_kg_{s}"].sum()), 1) for s in SCENARIOS}
    flight = comparisons.set_index("item")["co2e_kg"].get("air_travel_1_passenger_Paris_NewYork_roundtrip")
    metrics = {
        "n_runs_curated": int(len(runs)),
        "n_runs_estimated": int(len(estimates)),
        "total_co2e_kg": totals,
        "total_energy_kwh": {s: round(float(estimates[f"energy_kwh_{s}"].sum()), 1) for s in SCENARIOS},
        "median_run_co2e_kg_central": round(float(estimates["co2e_kg_central"].median()), 2),
        "largest_run": {"model_id": top["model_id"], "co2e_kg_central": round(float(top["co2e_kg_central"]), 1)},
        "pareto_quality_training_energy": sorted(quality.loc[quality["pareto"], "model_id"]),
    }
    if flight:
        metrics["total_central_in_paris_newyork_roundtrips"] = round(totals["central"] / float(flight), 2)

    out = root / CARBON_DIR
    tables = {"estimates": estimates, "by_year": by_year, "comparisons": comparisons, "sensitivity": grid,
              "quality_energy": quality}
    for name, table in tables.items():
        atomic.write_csv(out / "tables" / f"{name}.csv", table)
    atomic.write_json(out / "metrics.json", metrics)
    return metrics
