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
# of the zoo was trained on this machine under the profile's budget (its energy counted), then
# measured on the test set: quality against the recordings, and inference energy with the
# measurement harness. Computed by `audiofootprint benchmark summary`.

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
first = json.loads((root / "results/benchmark" / ok.index[0] / "measurement.json").read_text())["measurement"]
display(Markdown(
    f"Profile **{params['profile']['name']}**: training budget {params['profile']['train']['max_seconds']} s per "
    f"model, measured on {first['hardware']['cpu_model']} ({first['hardware']['cpu_count']:g} cores, GPU: "
    f"{first['hardware']['gpu_model'] or 'none'}). Energy: CPU {first['methods']['cpu']}; RAM {first['methods']['ram']}; "
    f"GPU {first['methods']['gpu']}. Quality axis: {METRICS[axis]['name']} ({METRICS[axis]['direction']} is better)."
))
if len(failed):
    display(Markdown("**Failed models** (kept out of the analysis; training energy spent until the failure in "
                     "models.csv): " + "; ".join(f"**{name}**: {row['reason']}" for name, row in failed.iterrows())))

# %% [markdown]
# ## All models

# %%
columns = ["family", "params", "gflops_per_audio_s", "energy_j_per_audio_s", "real_time_factor", "training_energy_kwh",
           *[m for m in params["benchmark"]["metrics"] if m in ok.columns],
           *[c for c in ["dnsmos_ovrl", "published_mos_gap"] if c in ok.columns]]
columns = list(dict.fromkeys(c for c in columns if c in ok.columns))
display(ok[columns].sort_values("energy_j_per_audio_s"))
display(Markdown("Recordings (the ceiling): " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in recordings.items())))

# %% [markdown]
# ## Pareto front: quality against inference energy
# Error bars: interquartile range of energy over measurement windows, 95% confidence interval of
# quality over test utterances. Red: on the front; a hollow marker: on the front, but not
# surely so once the spread is taken into account.

# %%
def front_plot(x, xerr, title, path, xlabel):
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, row in ok.iterrows():
        on = bool(row[f"pareto_{title}"])
        sure = bool(row.get("pareto_inference_survives_spread", on)) if title == "inference" else on
        color = "C3" if on else "C0"
        ax.errorbar(row[x], row[axis], xerr=xerr(row), yerr=row.get(f"{axis}_ci95") or 0, fmt="o", color=color,
                    mfc=color if (sure or not on) else "white", capsize=2)
        ax.annotate(name, (row[x], row[axis]), textcoords="offset points", xytext=(5, 3), fontsize=8)
    front = ok[ok[f"pareto_{title}"]].sort_values(x)
    ax.step(front[x], front[axis], where="post", color="C3", ls="--", lw=1)
    ax.axhline(recordings[axis]["mean"], color="grey", ls=":", lw=1)
    ax.text(ax.get_xlim()[0], recordings[axis]["mean"], " recordings", va="bottom", fontsize=8, color="grey")
    ax.set(xscale="log", xlabel=xlabel, ylabel=f"{METRICS[axis]['name']} ({METRICS[axis]['direction']} is better)")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    fig.savefig(figures / path, **SAVE)
    plt.show()


front_plot("energy_j_per_audio_s",
           lambda r: [[r["energy_j_per_audio_s"] - r["energy_q1"]], [r["energy_q3"] - r["energy_j_per_audio_s"]]],
           "inference", "pareto_inference.png", "energy per second of audio (J, log)")
display(Markdown(
    f"On the front: {', '.join(summary['pareto_inference'])}. Still on it whatever the spread: "
    f"{', '.join(summary['pareto_inference_survives_spread']) or 'none'}."
))

# %% [markdown]
# ## Pareto front: quality against training energy
# Training energy is what this machine spent under the profile's budget (models without
# training, such as Griffin-Lim, spent none; they are drawn at the left edge).

# %%
ok = ok.assign(training_energy_kwh=ok["training_energy_kwh"].clip(lower=1e-7))
front_plot("training_energy_kwh", lambda r: 0, "training", "pareto_training.png", "training energy (kWh, log)")

# %% [markdown]
# ## Published human ratings beside the measured quality
# MOS reported by the papers on LJSpeech, relative to each listening test's recordings
# (`data/published/mos_ljspeech.csv`): what the models reach with their full training budget,
# against the inference energy measured here.

# %%
if "published_mos_gap" in ok.columns and ok["published_mos_gap"].notna().any():
    rated = ok[ok["published_mos_gap"].notna()]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(rated["energy_j_per_audio_s"], rated["published_mos_gap"], color="C2")
    for name, row in rated.iterrows():
        ax.annotate(name, (row["energy_j_per_audio_s"], row["published_mos_gap"]), textcoords="offset points",
                    xytext=(5, 3), fontsize=8)
    ax.set(xscale="log", xlabel="energy per second of audio here (J, log)", ylabel="published MOS minus ground truth")
    fig.savefig(figures / "published_mos.png", **SAVE)
    plt.show()
    display(rated[["published_mos_gap", "published_mos_tests", "energy_j_per_audio_s", axis]])

# %% [markdown]
# ## Efficiency
# **Definition.** With the floor $Q_f$ (a model that needs no training: Griffin-Lim) and the
# ceiling $Q_c$ (the recordings themselves), a model's quality $Q$ closes a share
# $q = (Q - Q_f) / (Q_c - Q_f)$ of the gap, and its efficiency is that share per joule spent per
# second of audio: $\eta = \max(q, 0) / E$. It is zero for the floor and for anything no better
# (such a model buys nothing with its energy; ties are ranked by energy, the cheaper first), and
# grows when quality rises or energy falls: a model twice as frugal for the same quality is
# twice as efficient. Unlike a single Pareto front it gives a ranking, and unlike
# quality alone it charges every model for what it burns.

# %%
ranking = ok[["family", axis, "energy_j_per_audio_s", "efficiency", "rank_by_quality", "rank_by_efficiency"]]
display(ranking.sort_values("rank_by_efficiency"))
fig, ax = plt.subplots(figsize=(6, 5))
ax.scatter(ok["rank_by_quality"], ok["rank_by_efficiency"])
for name, row in ok.iterrows():
    ax.annotate(name, (row["rank_by_quality"], row["rank_by_efficiency"]), textcoords="offset points", xytext=(4, 2),
                fontsize=8)
ax.plot([1, len(ok)], [1, len(ok)], color="grey", ls=":")
ax.set(xlabel="rank by quality alone", ylabel="rank by efficiency", title="how the ranking moves")
ax.invert_xaxis(), ax.invert_yaxis()
fig.savefig(figures / "ranks.png", **SAVE)
plt.show()
moved = (ok["rank_by_quality"] - ok["rank_by_efficiency"]).abs()
display(Markdown(
    f"Best quality: **{summary['best_quality']}**; most efficient: **{summary['most_efficient']}**. The two rankings "
    f"agree with a Spearman correlation of {summary['rank_correlation_quality_efficiency']:.2f}; models move by "
    f"{moved.mean():.1f} places on average, at most {int(moved.max())} ({moved.idxmax()})."
))

# %% [markdown]
# ## What these numbers mean at this budget
# Under the `default` profile every neural vocoder trains for well under a minute on a CPU,
# against days on GPUs in the original recipes: their quality here is that of barely-trained
# networks, often below the Griffin-Lim floor. The costs (energy per second of audio,
# real-time factor, FLOPs) do not depend on training and are the models' own; the quality
# axis ranks what each architecture learns in the same small budget. The `paper` profile runs
# the original budgets on a GPU.
