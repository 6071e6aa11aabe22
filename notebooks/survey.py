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
# # What generative audio papers measure
#
# Thesis part 1 (C. Douwes, *On the environmental impact of deep generative models for
# audio*, 2023) observes that papers on deep generative audio judge their models by quality,
# rarely report computational cost, and almost never report energy. This notebook checks that
# finding on the curated table `data/survey/papers.csv`: one row per paper, one column per
# metric family, each cell `1` (reported), `0` (checked, not reported) or empty (could not tell),
# with the place in the paper where each was found.
#
# The numbers are computed by `audiofootprint survey` (`src/audiofootprint/survey.py`) in the
# DVC stage `survey`; this notebook reads its tables and draws them. Shares are over the
# papers whose cell is known.

# %% tags=["parameters"]
root = ".."  # the project root seen from notebooks/, where JupyterLab starts the kernel

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from audiofootprint.params import load_params
from audiofootprint.survey import METRIC_FAMILIES, SINGLE_THIRD_PARTY_COPY, load_papers

root = Path(root)
params = load_params(root)
results = root / "results" / "survey"
tables = results / "tables"
figures = results / "figures"
figures.mkdir(parents=True, exist_ok=True)
sns.set_theme(style="whitegrid", context="notebook")
SAVE = dict(dpi=110, bbox_inches="tight", metadata={"Software": None})  # no version/date stamps

metrics = json.loads((results / "metrics.json").read_text())
papers = load_papers(root / params["survey"]["papers"])
family_shares = pd.read_csv(tables / "family_shares.csv")
group_shares = pd.read_csv(tables / "group_shares.csv")
by_period = pd.read_csv(tables / "shares_by_period.csv")
by_task = pd.read_csv(tables / "shares_by_task.csv")
quality_cost = pd.read_csv(tables / "quality_cost.csv").set_index("quality")
energy = pd.read_csv(tables / "energy_papers.csv")

# %% [markdown]
# ## The corpus

# %%
corpus = pd.DataFrame({
    "papers": papers.groupby("task_family").size(),
    "first year": papers.groupby("task_family")["year"].min(),
    "last year": papers.groupby("task_family")["year"].max(),
})
checked = papers["checked"].value_counts().rename("papers").to_frame()
display(corpus)
display(checked)
display(Markdown(
    f"{metrics['n_papers']} papers from {papers['year'].min()} to {papers['year'].max()}, "
    f"{metrics['n_checked_full_text']} of them checked against their full text "
    f"(the others against the abstract or official repository, see `checked`). "
    f"{metrics['n_full_text_single_third_party_copy']} of those full texts were read only in one "
    f"third-party conversion (`{SINGLE_THIRD_PARTY_COPY}`; see `text_source`): a single point of failure."
))

# %% [markdown]
# ## Share of papers reporting each metric family

# %%
group_of = {f: g for g, fams in params["survey"]["groups"].items() for f in fams}
plot = family_shares.assign(group=family_shares["family"].map(group_of))
palette = {"quality": "#4C72B0", "computational_cost": "#DD8452", "energy": "#C44E52"}
fig, ax = plt.subplots(figsize=(8, 4.5))
sns.barplot(data=plot, y="label", x="share", hue="group", dodge=False, palette=palette, ax=ax)
for patch, (_, row) in zip(ax.patches, plot.iterrows()):
    ax.text(row["share"] + 0.01, patch.get_y() + patch.get_height() / 2,
            f"{row['reporting']}/{row['known']}", va="center", fontsize=9)
ax.set(xlim=(0, 1.1), xlabel="share of papers reporting it", ylabel="")
ax.legend(title="", loc="upper center", bbox_to_anchor=(0.4, -0.12), ncol=3, frameon=False)
fig.savefig(figures / "family_shares.png", **SAVE)
plt.show()

# %%
display(group_shares.style.format({"share": "{:.0%}"}).set_uuid("group_shares"))  # fixed id: stable bytes

# %% [markdown]
# ## Over time
# Share of papers reporting each family, by period of publication.

# %%
heat = by_period.pivot(index="label", columns="period", values="share").reindex(
    [METRIC_FAMILIES[f] for f in METRIC_FAMILIES])
counts = by_period.groupby("period")["n_papers"].first()
heat.columns = [f"{p}\n(n={counts[p]})" for p in heat.columns]
fig, ax = plt.subplots(figsize=(7.5, 5))
sns.heatmap(heat, annot=True, fmt=".0%", cmap="mako_r", vmin=0, vmax=1, cbar_kws={"label": "share"}, ax=ax)
ax.set(xlabel="", ylabel="")
fig.savefig(figures / "shares_by_period.png", **SAVE)
plt.show()

# %% [markdown]
# ## By task family

# %%
heat = by_task.pivot(index="label", columns="task_family", values="share").reindex(
    [METRIC_FAMILIES[f] for f in METRIC_FAMILIES])
counts = by_task.groupby("task_family")["n_papers"].first()
heat.columns = [f"{t}\n(n={counts[t]})" for t in heat.columns]
fig, ax = plt.subplots(figsize=(9, 5))
sns.heatmap(heat, annot=True, fmt=".0%", cmap="mako_r", vmin=0, vmax=1, cbar_kws={"label": "share"}, ax=ax)
ax.set(xlabel="", ylabel="")
plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
fig.savefig(figures / "shares_by_task.png", **SAVE)
plt.show()

# %% [markdown]
# ## Quality against cost
# Papers counted by whether they report any quality metric (human ratings, distribution,
# signal or likelihood metrics) and any computational-cost figure (parameters, FLOPs, speed,
# training time or hardware).

# %%
display(quality_cost)

# %% [markdown]
# ## The papers that report energy or CO2

# %%
display(energy)

# %% [markdown]
# ## Finding

# %%
share = metrics["share_by_group"]
fam = metrics["share_by_family"]
holds = share["quality"] > share["computational_cost"] > share["energy"] and share["energy"] < 0.1
verdict = ("Quality dominates, cost is reported less, energy almost never: the thesis' observation "
           "holds on this corpus." if holds else
           "On this corpus the ordering quality > cost > energy (with energy under 10%) does not hold: "
           "the thesis' observation is not reproduced here.")
top_quality = max(params["survey"]["groups"]["quality"], key=lambda f: fam[f])
n_quality_no_cost = int(quality_cost.loc["reports quality", "no cost"]) if (
    "reports quality" in quality_cost.index and "no cost" in quality_cost.columns) else 0
display(Markdown(
    f"Of {metrics['n_papers']} papers, **{share['quality']:.0%} report at least one quality metric** "
    f"(most often {METRIC_FAMILIES[top_quality].lower()}: {fam[top_quality]:.0%}), "
    f"{share['computational_cost']:.0%} report at least one computational-cost figure, and "
    f"**{share['energy']:.0%} ({metrics['n_reporting_energy']} papers) report energy or CO2**. "
    f"FLOPs appear in {fam['flops']:.0%} of papers and training time in {fam['training_time']:.0%}; "
    f"{n_quality_no_cost} papers report quality with no cost figure at all. "
    + verdict
))
