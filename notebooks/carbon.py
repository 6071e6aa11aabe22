# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: audiofootprint (.venv)
#     language: python
#     name: audiofootprint
# ---

# %% [markdown]
# # The carbon cost of training published generative audio models
#
# Thesis part 1 estimates what training published generative audio models cost in energy and
# CO2e, from the hardware and training time their papers report, and sets it beside everyday
# carbon costs. Its companion paper (Douwes, Esling, Briot, arXiv:2107.02621) puts quality
# and training energy side by side as a multi-objective problem.
#
# **These are estimates, not measurements**: energy = devices x board power x hours x
# utilisation x PUE; CO2e = energy x grid carbon intensity. Papers state the hardware and
# duration (`data/carbon/training_runs.csv`, each row with its source); they almost never
# state utilisation, data-centre PUE or location, so every run is estimated under a low,
# central and high scenario (`conf/carbon/default.yaml`, each assumption cited). Carbon
# intensities come from codecarbon's bundled energy-mix table. The numbers are computed by
# `audiofootprint training-carbon` (`src/audiofootprint/carbon.py`).

# %% tags=["parameters"]
root = ".."  # the project root seen from notebooks/, where JupyterLab starts the kernel

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from audiofootprint.params import load_params

root = Path(root)
params = load_params(root)
cfg = params["carbon"]
results = root / "results" / "carbon"
tables = results / "tables"
figures = results / "figures"
figures.mkdir(parents=True, exist_ok=True)
sns.set_theme(style="whitegrid", context="notebook")
SAVE = dict(dpi=110, bbox_inches="tight", metadata={"Software": None})

metrics = json.loads((results / "metrics.json").read_text())
estimates = pd.read_csv(tables / "estimates.csv")
by_year = pd.read_csv(tables / "by_year.csv")
comparisons = pd.read_csv(tables / "comparisons.csv")
grid = pd.read_csv(tables / "sensitivity.csv")
quality = pd.read_csv(tables / "quality_energy.csv")
runs = pd.read_csv(root / cfg["training_runs"])

# %% [markdown]
# ## The assumptions

# %%
display(pd.DataFrame(cfg["scenarios"]).T)
display(Markdown(
    f"{metrics['n_runs_curated']} training runs are curated; {metrics['n_runs_estimated']} report a duration "
    "(hours, device-hours, or steps with time per step) and an accelerator, and are estimated below. "
    "The others state hardware or steps but no duration: they are listed at the end, not guessed."
))

# %% [markdown]
# ## Energy and CO2e per run

# %%
table = estimates.sort_values("co2e_kg_central", ascending=False)[[
    "model", "year", "accelerator", "device_hours", "energy_kwh_low", "energy_kwh_central", "energy_kwh_high",
    "co2e_kg_low", "co2e_kg_central", "co2e_kg_high"]]
# set_uuid: a fixed table id (pandas draws a random one), so that the rendered report has stable bytes
display(table.style.format({c: "{:,.1f}" for c in table.columns if c.startswith(("energy", "co2e", "device"))})
        .hide(axis="index").set_uuid("estimates"))

# %% [markdown]
# ## Against everyday carbon costs
# Bars: central estimate; whiskers: low to high scenario. Vertical lines: everyday carbon
# costs from `data/carbon/equivalents.csv` (each with its source). Log scale.

# %%
order = estimates.sort_values("co2e_kg_central")
families = sorted(order["task_family"].unique())
family_color = dict(zip(families, sns.color_palette("Set2", len(families))))
fig, ax = plt.subplots(figsize=(9, 0.32 * len(order) + 2))
y = np.arange(len(order))
ax.barh(y, order["co2e_kg_central"], color=[family_color[t] for t in order["task_family"]])
ax.errorbar(order["co2e_kg_central"], y, xerr=[order["co2e_kg_central"] - order["co2e_kg_low"],
                                               order["co2e_kg_high"] - order["co2e_kg_central"]],
            fmt="none", ecolor="black", capsize=2, lw=1)
ax.set_yticks(y, order["model"], fontsize=8)
ax.set_xscale("log")
ax.set_xlabel("estimated training CO2e (kg, log scale)")
handles = [plt.Rectangle((0, 0), 1, 1, color=family_color[f], label=f) for f in families]
styles = ["-", "--", "-.", ":", (0, (5, 1))]
for (_, row), style in zip(comparisons.iterrows(), styles * 3):
    handles.append(ax.axvline(row["co2e_kg"], color="dimgrey", ls=style, lw=1.2,
                              label=f"{row['item'].replace('_', ' ')} ({row['co2e_kg']:,.3g} kg)"))
ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.35, -0.08), ncol=2, frameon=False)
fig.savefig(figures / "training_co2e.png", **SAVE)
plt.show()

# %%
flight = comparisons.set_index("item")["co2e_kg"].get("air_travel_1_passenger_Paris_NewYork_roundtrip")
car_km = comparisons.set_index("item")["co2e_kg"].get("passenger_car_1km_EU_greenalgorithms")
top = metrics["largest_run"]
display(Markdown(
    f"Together the {metrics['n_runs_estimated']} estimated runs emitted **{metrics['total_co2e_kg']['central']:,.0f} kg "
    f"CO2e** in the central scenario (from {metrics['total_co2e_kg']['low']:,.0f} to "
    f"{metrics['total_co2e_kg']['high']:,.0f} kg), for {metrics['total_energy_kwh']['central']:,.0f} kWh. "
    f"The median run emitted {metrics['median_run_co2e_kg_central']:,.1f} kg, about "
    f"{metrics['median_run_co2e_kg_central'] / car_km:,.0f} km in an average EU car; the largest, `{top['model_id']}`, "
    f"{top['co2e_kg_central']:,.0f} kg, or {top['co2e_kg_central'] / flight:.1f} passenger round trips Paris-New York. "
    "A single published run is small next to a person's yearly footprint, but these are only the final runs "
    "that papers report: tuning, failed runs and replications are not in any paper."
))

# %% [markdown]
# ## By year

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(by_year["year"].astype(str), by_year["co2e_kg_central"], color=sns.color_palette()[2])
ax.errorbar(by_year["year"].astype(str), by_year["co2e_kg_central"],
            yerr=[by_year["co2e_kg_central"] - by_year["co2e_kg_low"], by_year["co2e_kg_high"] - by_year["co2e_kg_central"]],
            fmt="none", ecolor="black", capsize=3)
ax.set(yscale="log", ylabel="estimated CO2e (kg, log)", xlabel="year of the model")
fig.savefig(figures / "co2e_by_year.png", **SAVE)
plt.show()

# %% [markdown]
# ## Quality against training energy
# Published MOS on LJSpeech copy-synthesis, taken relative to each listening test's
# ground-truth recordings (MOS from different tests are not comparable as such), median over
# the tests that include the model (`data/published/mos_ljspeech.csv`). The Pareto front
# (least training energy, smallest gap to the recordings) is marked.

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
for _, row in quality.iterrows():
    color = "C3" if row["pareto"] else "C0"
    ax.errorbar(row["energy_kwh_central"], row["mos_gap"],
                xerr=[[row["energy_kwh_central"] - row["energy_kwh_low"]], [row["energy_kwh_high"] - row["energy_kwh_central"]]],
                yerr=[[row["mos_gap"] - row["gap_min"]], [row["gap_max"] - row["mos_gap"]]],
                fmt="o", color=color, capsize=3)
    ax.annotate(f"{row['model']} ({row['n_tests']} test{'s' if row['n_tests'] > 1 else ''})",
                (row["energy_kwh_central"], row["mos_gap"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
front = quality[quality["pareto"]].sort_values("energy_kwh_central")
ax.step(front["energy_kwh_central"], front["mos_gap"], where="post", color="C3", lw=1, ls="--", label="Pareto front")
ax.set(xscale="log", xlabel="estimated training energy (kWh, log)", ylabel="MOS minus ground-truth MOS")
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.legend()
fig.savefig(figures / "quality_training_energy.png", **SAVE)
plt.show()
display(quality[["model", "model_id", "n_tests", "mos_gap", "energy_kwh_central", "pareto"]])

# %% [markdown]
# ## Sensitivity to PUE and grid carbon intensity
# Total CO2e of all estimated runs when every run shares one PUE and one grid. Because the
# estimate is linear in both, the ranking of runs does not move under shared assumptions; it
# moves only when runs differ in where they trained, which papers do not say. The low-high
# whiskers above show how far apart two runs must be for their order to be certain.

# %%
heat = grid.pivot(index="intensity_label", columns="pue", values="total_co2e_kg")
heat = heat.loc[grid.drop_duplicates("intensity_label").sort_values("intensity_g_per_kwh")["intensity_label"]]
heat.index = [f"{label} ({grid.set_index('intensity_label').loc[label, 'intensity_g_per_kwh'].iloc[0]:.0f} g/kWh)"
              for label in heat.index]
fig, ax = plt.subplots(figsize=(7, 3.5))
sns.heatmap(heat, annot=True, fmt=",.0f", cmap="rocket_r", cbar_kws={"label": "total kg CO2e"}, ax=ax)
ax.set(xlabel="PUE", ylabel="grid")
fig.savefig(figures / "sensitivity.png", **SAVE)
plt.show()
low, high = heat.to_numpy().min(), heat.to_numpy().max()
overlapping = sum(
    1 for i, a in estimates.iterrows() for j, b in estimates.iterrows()
    if i < j and a["co2e_kg_low"] <= b["co2e_kg_high"] and b["co2e_kg_low"] <= a["co2e_kg_high"])
pairs = len(estimates) * (len(estimates) - 1) // 2
display(Markdown(
    f"Over this grid the total ranges from {low:,.0f} to {high:,.0f} kg CO2e, a factor of {high / low:.0f}: "
    f"where a model was trained matters more than how it was trained. {overlapping} of {pairs} pairs of runs have "
    "overlapping low-high ranges, so their order is not certain without knowing where they ran."
))

# %% [markdown]
# ## Runs that report no duration
# Hardware or steps are stated, but no training time: they are not estimated.

# %%
missing = runs[~runs["model_id"].isin(estimates["model_id"])][
    ["model", "year", "accelerator", "accelerator_count", "training_steps", "source", "notes"]]
display(missing.style.hide(axis="index").set_uuid("not_estimated"))
