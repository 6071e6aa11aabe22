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
# # Quality against energy: the vocoder benchmark
#
# Thesis part 2 weighs the quality of neural vocoders against the energy they use, with
# Pareto optimality, and argues that lighter models can be the better choice. Every vocoder
# of the zoo is measured on this machine: inference energy with the measurement harness, and
# copy-synthesis quality on the test recordings, each model at its own sample rate, scored at
# the corpus' rate. Computed by `audiofootprint benchmark summary`.
#
# **Which quality counts.** Inference cost belongs to the architecture; quality belongs to the
# weights. A measured quality is a finding only for weights that converged: pretrained
# weights, a training that reached its recipe's steps, or a model with nothing to train
# (Griffin-Lim, the floor). Those models, with the recordings as the ceiling, make the
# headline fronts and rankings, scored on the whole test split. Models trained here under the
# profile's budget are costed in their own table, never ranked by quality. Published human
# ratings are an axis of their own, for every model that has one.

# %% tags=["parameters"]
root = ".."  # the project root seen from notebooks/, where JupyterLab starts the kernel

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from audiofootprint.params import load_params
from audiofootprint.quality import METRICS

root = Path(root)
params = load_params(root)
axis = params["benchmark"]["quality_axis"]
summary = json.loads((root / "results/benchmark_summary/metrics.json").read_text())
table = pd.read_csv(root / "results/benchmark_summary/models.csv").set_index("model")
recordings = json.loads((root / "results/recordings/metrics.json").read_text())
figures = root / "results/benchmark_summary/figures"
figures.mkdir(parents=True, exist_ok=True)
SAVE = dict(dpi=110, bbox_inches="tight", metadata={"Software": None})
ok = table[table["status"] == "ok"]
failed = table[table["status"] != "ok"]
headline = ok.loc[summary["headline_models"]]
budget = ok.loc[list(summary["budget_trained"])]
first = json.loads((root / "results/benchmark" / ok.index[0] / "measurement.json").read_text())["measurement"]
display(Markdown(
    f"Profile **{params['profile']['name']}**, measured on {first['hardware']['cpu_model']} "
    f"({first['hardware']['cpu_count']:g} cores, GPU: {first['hardware']['gpu_model'] or 'none'}). Energy: CPU "
    f"{first['methods']['cpu']}; RAM {first['methods']['ram']}; GPU {first['methods']['gpu']}. Quality axis: "
    f"{METRICS[axis]['name']} ({METRICS[axis]['direction']} is better), converged models and the recordings on "
    f"{recordings[axis]['n']} test utterances."
))
if len(failed):
    display(Markdown("**Failed models** (kept out of the analysis; training energy spent until the failure in "
                     "models.csv): " + "; ".join(f"**{name}**: {row['reason']}" for name, row in failed.iterrows())))

# %% [markdown]
# ## Converged models: the headline
# `quality_kind`: `pretrained` (published weights, checked by sha256), `training-free`, or
# `recipe` (trained here to the recipe's steps). Quality: mean over test utterances, with its
# 95% confidence interval.

# %%
columns = ["family", "quality_kind", "sample_rate", "params", "energy_j_per_audio_s", "real_time_factor",
           *[m for m in params["benchmark"]["metrics"] if m in ok.columns], f"{axis}_ci95",
           *[c for c in ["dnsmos_ovrl", "published_mos_gap"] if c in ok.columns], "test_utterances"]
columns = list(dict.fromkeys(c for c in columns if c in ok.columns))
display(headline[columns].sort_values("energy_j_per_audio_s"))
display(Markdown("Recordings (the ceiling): " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in recordings.items())))

# %% [markdown]
# ## Pareto fronts: measured quality and published ratings against inference energy
# Left: the measured quality of the converged models (error bars: interquartile range of
# energy over measurement windows, 95% confidence interval of quality over test utterances;
# red: on the front; hollow: on the front, but not surely so within the spread). Right: the
# published MOS of each model's architecture relative to the recordings of the same listening
# test (`data/published/mos_ljspeech.csv`), against the same measured inference energy, for
# every model that has one (budget-trained ones too: both the rating and the cost belong to
# the architecture, not to our training).

# %%
def draw_front(ax, rows, x, y, front_column, yerr=None, sure_column=None):
    for name, row in rows.iterrows():
        on = bool(row[front_column])
        sure = bool(row[sure_column]) if sure_column else on
        color = "C3" if on else "C0"
        xerr = [[row[x] - row["energy_q1"]], [row["energy_q3"] - row[x]]] if x == "energy_j_per_audio_s" else None
        ax.errorbar(row[x], row[y], xerr=xerr, yerr=(row.get(yerr) or 0) if yerr else 0, fmt="o", color=color,
                    mfc=color if (sure or not on) else "white", capsize=2)
        ax.annotate(name, (row[x], row[y]), textcoords="offset points", xytext=(5, 3), fontsize=8)
    front = rows[rows[front_column].astype(bool)].sort_values(x)
    ax.step(front[x], front[y], where="post", color="C3", ls="--", lw=1)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())


rated = ok[ok["published_mos_gap"].notna()] if "published_mos_gap" in ok.columns else ok.iloc[:0]
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
draw_front(left, headline, "energy_j_per_audio_s", axis, "pareto_inference", f"{axis}_ci95",
           "pareto_inference_survives_spread")
left.axhline(recordings[axis]["mean"], color="grey", ls=":", lw=1)
left.text(left.get_xlim()[0], recordings[axis]["mean"], " recordings", va="bottom", fontsize=8, color="grey")
left.set(xlabel="energy per second of audio (J, log)", title="measured quality, converged models",
         ylabel=f"{METRICS[axis]['name']} ({METRICS[axis]['direction']} is better)")
if len(rated):
    draw_front(right, rated, "energy_j_per_audio_s", "published_mos_gap", "pareto_published_mos")
    right.axhline(0.0, color="grey", ls=":", lw=1)
right.set(xlabel="energy per second of audio here (J, log)", ylabel="published MOS minus the recordings' MOS",
          title="published human ratings")
fig.savefig(figures / "pareto_inference.png", **SAVE)
plt.show()
display(Markdown(
    f"Measured-quality front: **{', '.join(summary['pareto_inference'])}** (still on it whatever the spread: "
    f"{', '.join(summary['pareto_inference_survives_spread']) or 'none'}). Published-MOS front: **"
    f"{', '.join(summary.get('pareto_published_mos', [])) or 'no rated model'}** (rated: "
    f"{', '.join(summary.get('published_mos_models', [])) or 'none'})."
))
if len(rated):
    display(rated[["family", "published_mos_gap", "published_mos_tests", "published_mos_test_ids",
                   "energy_j_per_audio_s", "pareto_published_mos"]].sort_values("energy_j_per_audio_s"))

# %% [markdown]
# ## Efficiency
# **Definition.** With the floor $Q_f$ (a model that needs no training: Griffin-Lim) and the
# ceiling $Q_c$ (the recordings themselves), a model's quality $Q$ closes a share
# $q = (Q - Q_f) / (Q_c - Q_f)$ of the gap, and its efficiency is that share per joule spent per
# second of audio: $\eta = \max(q, 0) / E$. It is zero for the floor and for anything no better
# (such a model buys nothing with its energy; ties are ranked by energy, the cheaper first), and
# grows when quality rises or energy falls: a model twice as frugal for the same quality is
# twice as efficient. With published ratings, $Q$ is the MOS gap to the recordings of the same
# test ($Q_c = 0$) and the floor is Griffin-Lim's published gap.

# %%
ranking = headline[["family", axis, "energy_j_per_audio_s", "efficiency", "rank_by_quality", "rank_by_efficiency"]]
display(ranking.sort_values("rank_by_efficiency"))
fig, ax = plt.subplots(figsize=(6, 5))
ax.scatter(headline["rank_by_quality"], headline["rank_by_efficiency"])
for name, row in headline.iterrows():
    ax.annotate(name, (row["rank_by_quality"], row["rank_by_efficiency"]), textcoords="offset points",
                xytext=(4, 2), fontsize=8)
ax.plot([1, len(headline)], [1, len(headline)], color="grey", ls=":")
ax.set(xlabel="rank by measured quality alone", ylabel="rank by efficiency", title="how the ranking moves")
ax.invert_xaxis(), ax.invert_yaxis()
fig.savefig(figures / "ranks.png", **SAVE)
plt.show()
correlation = summary["rank_correlation_quality_efficiency"]
display(Markdown(
    f"Best measured quality: **{summary['best_quality']}**; most efficient: **{summary['most_efficient']}**"
    + (f" (Spearman correlation of the two rankings {correlation:.2f})." if correlation is not None else ".")
))
if "rank_by_efficiency_published_mos" in ok.columns:
    by_mos = ok[ok["rank_by_efficiency_published_mos"].notna()]
    display(by_mos[["family", "published_mos_gap", "energy_j_per_audio_s", "efficiency_published_mos",
                    "rank_by_efficiency_published_mos"]].sort_values("rank_by_efficiency_published_mos"))
    display(Markdown(
        f"With published ratings, the most efficient is **{summary['most_efficient_published_mos']}** "
        f"(floor: {summary['published_mos_floor']['model']}, gap {summary['published_mos_floor']['mos_gap']:+.2f})."
    ))

# %% [markdown]
# ## Training energy of the converged models
# A pretrained model was not trained here: its training energy is the training-carbon
# study's estimate of the published run that made it (someone else's run, central scenario;
# `training_energy_method` says which run and what is assumed). Models without training spent
# none and are drawn at the left edge.

# %%
trained = headline[headline["training_energy_kwh"].notna()]
trained = trained.assign(training_energy_kwh=trained["training_energy_kwh"].clip(lower=1e-7))
fig, ax = plt.subplots(figsize=(8, 5))
draw_front(ax, trained, "training_energy_kwh", axis, "pareto_training", f"{axis}_ci95")
ax.set(xlabel="training energy (kWh, log)", ylabel=f"{METRICS[axis]['name']}")
fig.savefig(figures / "pareto_training.png", **SAVE)
plt.show()
display(headline[["training_energy_kwh", *[c for c in ("training_energy_low_kwh", "training_energy_high_kwh")
                                           if c in headline.columns], "training_energy_method"]])

# %% [markdown]
# ## Budget-trained models: costed, not ranked
# These were trained on this machine under the profile's budget, far from their recipes'
# steps: their costs (energy per second of audio, real-time factor, FLOPs, size) are the
# architecture's own and compare with the models above; their quality is that of an
# unconverged network and is shown for inspection only.

# %%
costs = ok.sort_values("energy_j_per_audio_s")
fig, ax = plt.subplots(figsize=(8, 0.35 * len(costs) + 1.5))
ax.barh(costs.index, costs["energy_j_per_audio_s"],
        xerr=[costs["energy_j_per_audio_s"] - costs["energy_q1"], costs["energy_q3"] - costs["energy_j_per_audio_s"]],
        color=["C0" if converged else "C7" for converged in costs["converged"].astype(bool)])
ax.set(xscale="log", xlabel="energy per second of audio (J, log; IQR over windows)",
       title="inference cost of every architecture (blue: converged weights; grey: budget-trained)")
fig.savefig(figures / "inference_costs.png", **SAVE)
plt.show()
if len(budget):
    display(budget[["family", "quality_label", "params", "gflops_per_audio_s", "energy_j_per_audio_s",
                    "real_time_factor", "training_energy_kwh", axis]].sort_values("energy_j_per_audio_s"))
else:
    display(Markdown("No budget-trained model in this run."))

# %% [markdown]
# ## Design grids: each family from small to large
# A grid is a set of configurations that vary one family's size (a config's `grid:` key). The
# thesis' grid has six families in three sizes (`conf/vocoder/thesis_*.yaml`, all at 16 kHz on
# the thesis' features); `make repro PARAMS_OVERRIDES="benchmark.models=[griffinlim_32,thesis]"`
# runs it. For each family: how the inference energy per second of audio (median over
# measurement windows, interquartile range in brackets) moves from its smallest size to its
# largest, against its parameters and its GFLOPs. Quality enters only for members whose
# quality is a finding (converged weights); a grid trained here under the profile's budget is
# costed, not ranked.

# %%
grids = summary.get("grids", {})
if not grids:
    display(Markdown("No design grid in this run. The thesis' grid runs with "
                     "`make repro PARAMS_OVERRIDES=\"benchmark.models=[griffinlim_32,thesis]\"`."))
for grid_name, grid in grids.items():
    members = ok[ok["grid"] == grid_name]
    cell = members.apply(lambda row: f"{row['energy_j_per_audio_s']:.3g} [{row['energy_q1']:.3g}, "
                                     f"{row['energy_q3']:.3g}]", axis=1)
    by_size = members.assign(cell=cell).pivot(index="family", columns="grid_size", values=["cell", "params",
                                                                                           "real_time_factor"])
    display(Markdown(f"### Grid `{grid_name}`: energy per second of audio (J), parameters and real-time factor"))
    display(by_size.reindex(columns=grid["sizes"], level=1))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for index, (family, rows) in enumerate(members.groupby("family")):
        rows = rows.set_index("grid_size").reindex([size for size in grid["sizes"] if size in set(rows["grid_size"])])
        for ax, x in zip(axes, ("params", "gflops_per_audio_s")):
            ax.errorbar(rows[x], rows["energy_j_per_audio_s"], yerr=[rows["energy_j_per_audio_s"] - rows["energy_q1"],
                        rows["energy_q3"] - rows["energy_j_per_audio_s"]], fmt="-o", color=f"C{index}", label=family,
                        capsize=2)
            for size, row in rows.iterrows():
                ax.annotate(size[0].upper(), (row[x], row["energy_j_per_audio_s"]), textcoords="offset points",
                            xytext=(4, 2), fontsize=8, color=f"C{index}")
    axes[0].set(xscale="log", yscale="log", xlabel="parameters (log)", ylabel="energy per second of audio (J, log)",
                title=f"grid {grid_name}: energy by size (S, M, L), IQR over windows")
    axes[1].set(xscale="log", xlabel="GFLOPs per second of audio (log)", title="against compute")
    axes[0].legend(fontsize=8)
    fig.savefig(figures / f"grid_{grid_name}.png", **SAVE)
    plt.show()
    lines = [f"- **{family}**: from {f['smallest']} to {f['largest']}, energy x{f['energy_largest_over_smallest']:.3g} "
             f"for x{f['params_largest_over_smallest']:.3g} parameters"
             + ("" if f["energy_order_follows_params"] else " (its energy does not rise with its parameters)")
             for family, f in grid["families"].items()]
    lines.append(f"- Quality: {grid['quality_note']}"
                 + (f"; measured-quality front over the grid: **{', '.join(grid['pareto_inference'])}**"
                    if grid["pareto_inference"] else "") + ".")
    if grid["failed"]:
        lines.append(f"- Failed (see above): {', '.join(grid['failed'])}.")
    display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Training to the recipe on this machine, beside the published runs
# Stage `recipe_cost` (`src/audiofootprint/training/recipe_cost.py`) runs training steps of each
# selected model at its recipe's batch size and crop length on this machine, after warm-up, and
# multiplies the per-step time and energy by the recipe's step count (the quartiles of the
# per-step figures give the range). **An extrapolation from a few measured steps**, with the
# energy method of the measurement (on a machine without an energy counter, codecarbon's
# estimate). The published run of the same recipe (`conf/carbon` `recipe_runs`) is the
# training-carbon study's estimate (`reports/carbon.html`). carbontracker's count (the tool of the thesis' training figures, version 1.1.6:
# PUE 1.59, EU-28 2017 intensity 294.2 gCO2/kWh) is applied to the same measured energy.

# %%
costs = pd.read_csv(root / "results" / "recipe_cost" / "costs.csv")
if costs.empty:
    display(Markdown(
        "No model was measured in this run (`profile.recipe_cost.models` is empty). Measure every model that "
        "trains with `make repro PARAMS_OVERRIDES=\"profile.recipe_cost.models=all\"`."))
else:
    links = pd.Series(params["carbon"].get("recipe_runs") or {}, name="published_run")
    costs = costs.join(links, on="model")
    estimates = pd.read_csv(root / "results" / "carbon" / "tables" / "estimates.csv")
    published = estimates.set_index("model_id")[["accelerator", "device_hours", "energy_kwh_central"]]
    costs = costs.join(published.add_prefix("published_"), on="published_run")
    shown = costs[["model", "status", "batch_size", "steps_measured", "seconds_per_step", "joules_per_step", "recipe_steps",
                   "recipe_days", "recipe_kwh", "recipe_kwh_q1", "recipe_kwh_q3", "carbontracker_kwh",
                   "carbontracker_co2e_kg", "published_run", "published_accelerator", "published_device_hours",
                   "published_energy_kwh_central", "energy_method", "hardware"]]
    display(shown.style.hide(axis="index").format(precision=3, na_rep="-").set_uuid("recipe_cost"))
    lines = [f"- **{row.model}**: not measured: {row.label}." for row in costs[costs["status"] != "ok"].itertuples()]
    for row in costs[costs["status"] == "ok"].itertuples():
        if pd.isna(row.recipe_kwh):
            lines.append(f"- **{row.model}**: {row.seconds_per_step:.3g} s and {row.joules_per_step:.3g} J per step at "
                         f"batch {row.batch_size}; its recipe gives no step count, so no total.")
            continue
        beside = (f"; the published run ({row.published_run}, {row.published_accelerator}) is estimated at "
                  f"{row.published_energy_kwh_central:,.0f} kWh" if pd.notna(row.published_energy_kwh_central)
                  else f"; the published run ({row.published_run}) states no duration, so it has no estimate"
                  if pd.notna(row.published_run) else "")
        lines.append(f"- **{row.model}**: {row.recipe_steps:,.0f} steps would take {row.recipe_days:,.0f} days and "
                     f"{row.recipe_kwh:,.0f} kWh here ({row.label}){beside}; carbontracker would count "
                     f"{row.carbontracker_kwh:,.0f} kWh and {row.carbontracker_co2e_kg:,.0f} kg CO2e.")
    display(Markdown("\n".join(lines)))
