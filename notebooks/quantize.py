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
# # Lighter vocoders: what quantization saves and what it costs
#
# Thesis part 3 quantizes deep generative audio models to cut their inference cost, reports a
# notable gain in model size, and asks what that means for embedded use. Here the vocoders of
# `quantize.models` (by default those with published, converged weights, so that every change of
# quality is a finding) run under every quantization scheme, on two inference engines: torch
# eager, and ONNX Runtime on the model exported to ONNX (schemes `ort_*`). Per variant: size on
# disk and in memory, the harness' energy and speed, quality against the recordings and distance
# to the float32 output of the same model. Computed by `audiofootprint quantize summary`.

# %% tags=["parameters"]
root = ".."  # the project root seen from notebooks/, where JupyterLab starts the kernel

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from audiofootprint.params import load_params
from audiofootprint.paths import MIXED_PRECISION_CURVE_CSV, MIXED_PRECISION_DAMAGE_CSV
from audiofootprint.quality import METRICS
from audiofootprint.quantization.devices import feasibility, load_devices

root = Path(root)
params = load_params(root)
settings = params["quantize"]
axis = params["benchmark"]["quality_axis"]
baseline = settings["baseline"]
summary = json.loads((root / "results/quantize_summary/metrics.json").read_text())
variants = pd.read_csv(root / "results/quantize_summary/variants.csv")
benchmark = pd.read_csv(root / "results/benchmark_summary/models.csv").set_index("model")
devices = load_devices(root / settings["devices"])
figures = root / "results/quantize_summary/figures"
figures.mkdir(parents=True, exist_ok=True)
SAVE = dict(dpi=110, bbox_inches="tight", metadata={"Software": None})
converged = benchmark["converged"].fillna(False).astype(bool) if "converged" in benchmark else pd.Series(dtype=bool)
variants["converged"] = variants["model"].map(converged).fillna(False).astype(bool)
ok = variants[variants["status"] == "ok"]
quantized = ok[ok["scheme"] != baseline]
curve = pd.read_csv(root / MIXED_PRECISION_CURVE_CSV)
damage = pd.read_csv(root / MIXED_PRECISION_DAMAGE_CSV)
measurements = [*sorted((root / "results/quantize").glob("*/*/variant/measurement.json")),
                *sorted((root / "results/benchmark").glob("*/measurement.json"))]
first = json.loads(measurements[0].read_text())["measurement"]
if not summary["models"]:
    display(Markdown("**No model was selected for quantization in this run** (`quantize.models` is empty: the "
                     "default takes the benchmarked models with pretrained weights, and this run benchmarks none). "
                     "The tables below are empty."))
display(Markdown(
    f"Profile **{params['profile']['name']}**; measured on {first['hardware']['cpu_model']} "
    f"({first['hardware']['cpu_count']:g} cores, GPU: {first['hardware']['gpu_model'] or 'none'}), "
    f"{params['profile']['torch_threads']} threads (torch's, and ONNX Runtime's intra-op threads). Energy: CPU "
    f"{first['methods']['cpu']}; RAM "
    f"{first['methods']['ram']}. {summary['variants_measured']} variants measured over "
    f"{variants['model'].nunique()} models and {variants['scheme'].nunique()} schemes; quality axis "
    f"{METRICS[axis]['name']}. Models with converged weights: "
    f"{', '.join(sorted(variants.loc[variants['converged'], 'model'].unique())) or 'none'}; the others "
    f"(trained here on a budget) are a cost-only comparison: their change of quality is not a finding."
))

# %% [markdown]
# ## Every variant beside its float32 model
# Ratios: `size_ratio` = float32 size / variant size, `speedup` = float32 RTF / variant RTF,
# `energy_ratio` = variant energy / float32 energy (per second of audio), `delta` = variant
# quality - float32 quality. `snr_to_fp32_db` and `mrstft_to_fp32` compare the variant's output
# with the float32 model's output for the same input.

# %%
columns = ["model", "scheme", "engine", "backend", "size_bytes", "size_ratio", "weight_ratio", "speedup", "energy_ratio",
           "real_time_factor", axis, f"delta_{axis}", "snr_to_fp32_db", "mrstft_to_fp32"]
shown = ok[[c for c in columns if c in ok.columns]].copy()
shown["size_mb"] = shown.pop("size_bytes") / 1e6
display(shown.set_index(["model", "scheme"]).round(3))

# %% [markdown]
# ## Engines: torch against ONNX Runtime
# The same float32 weights on each engine (`fp32`, and `ort_fp32` where the run has it, as profile
# `full` does: the exported graph's largest difference to torch's output is in the variant's
# notes), then the best int8 variant of each
# engine within 0.1 of float32's quality (converged models only). Speed-ups and energy ratios are
# against torch float32; both engines ran with the profile's threads.

# %%
rows = []
for model, group in ok.groupby("model"):
    by_scheme = group.set_index("scheme")
    if baseline not in by_scheme.index:
        continue
    entries = [("torch float32", baseline), ("onnxruntime float32", "ort_fp32")]
    for engine in ("torch", "onnxruntime"):
        candidates = group[(group["engine"] == engine) & group["scheme"].str.contains("int8")]
        if variants.loc[variants["model"] == model, "converged"].any():
            candidates = candidates[candidates[f"delta_{axis}"].abs() <= 0.1]
        if len(candidates):
            entries.append((f"{engine} int8 (fastest within 0.1)", candidates.sort_values("speedup").iloc[-1]["scheme"]))
    for label, scheme in entries:
        if scheme in by_scheme.index:
            row = by_scheme.loc[scheme]
            rows.append({"model": model, "variant": label, "scheme": scheme, "size_mb": row["size_bytes"] / 1e6,
                         "size_ratio": row["size_ratio"], "speedup": row["speedup"], "energy_ratio": row["energy_ratio"],
                         "real_time_factor": row["real_time_factor"], f"delta_{axis}": row[f"delta_{axis}"],
                         **{f"delta_{m}": row[m] - by_scheme.loc[baseline, m] for m in ("stoi", "mcd") if m in row}})
display(pd.DataFrame(rows).set_index(["model", "variant"]).round(3) if rows
        else Markdown("No model ran on both engines."))

# %% [markdown]
# ## Mixed precision found by measurement
# `ort_mixed_int8` quantizes one weighted op at a time and measures its damage (multi-resolution
# STFT distance and SNR to the float32 output on training utterances), then adds the ops to int8 in
# order of increasing damage, a block at a time, keeping in float each op whose addition takes the
# quality beyond the budget; those ops compute in float from int8-stored weights. Each point below
# is one candidate the search measured on its search utterances (training split): joined, the
# candidates it kept; crosses, those beyond the budget. The ringed point is the variant chosen,
# measured on the test set in the tables above.

# %%
if curve.empty:
    display(Markdown("No mixed-precision variant was measured (add `ort_mixed_int8` to `quantize.schemes`)."))
else:
    budget = settings["mixed_precision"]
    metric = budget["metric"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for number, (model, part) in enumerate(curve.groupby("model")):
        kept, beyond = part[part["within_budget"].astype(bool)], part[~part["within_budget"].astype(bool)]
        chosen = part[part["chosen"].astype(bool)]
        for ax, column in zip(axes, [f"delta_{metric}", "seconds_per_call", "size_bytes"]):
            scale = 1e6 if column == "size_bytes" else 1.0
            ax.plot(kept["ops_quantized"], kept[column] / scale, marker="o", ms=3, color=f"C{number}", label=model)
            ax.scatter(beyond["ops_quantized"], beyond[column] / scale, marker="x", s=18, color=f"C{number}", alpha=0.6)
            ax.scatter(chosen["ops_quantized"], chosen[column] / scale, s=120, facecolors="none", edgecolors="C3")
    axes[0].axhline(-budget["max_drop"] if METRICS[metric]["direction"] == "max" else budget["max_drop"],
                    color="C3", ls="--", lw=0.8, label="budget")
    for ax, label in zip(axes, [f"{METRICS[metric]['name']} change (training utterances)",
                                "seconds per call (rough, on one mel)", "size (MB)"]):
        ax.set_xlabel("weighted ops in int8 (added by increasing damage)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("Mixed precision: the whole trade-off, and the variant chosen")
    fig.savefig(figures / "mixed_precision.png", **SAVE)
    plt.show()
    worst = damage.sort_values("rank").groupby("model").tail(5)
    display(Markdown("The five ops each model's search found most damaging alone (kept in float first):"))
    display(worst.set_index(["model", "rank"])[["op", "mrstft_to_fp32", "snr_to_fp32_db"]].round(3))
    display(Markdown("\n".join(f"- **{name}**: {chosen['ops_quantized']} of {chosen['ops']} weighted ops in int8; "
                                f"{chosen['size_ratio']:.2f}x smaller, {chosen['speedup']:.2f}x faster and "
                                f"{chosen['energy_ratio']:.2f}x the energy of torch float32, {METRICS[axis]['name']} "
                                f"{chosen[f'delta_{axis}']:+.3f} on the test set"
                                for name, chosen in summary["mixed_precision"].items())))

# %% [markdown]
# ## Where a scheme does not apply, or fails
# Recorded as results, with the reason (a variant whose output cannot be scored, e.g. silence, failed).

# %%
skipped = variants[variants["status"] != "ok"][["model", "scheme", "status", "reason"]]
display(skipped.set_index(["model", "scheme"]) if len(skipped) else Markdown("Every scheme applied to every model."))

# %% [markdown]
# ## Size, speed, energy and quality per scheme
# Quality change is drawn for models with converged weights only.

# %%
schemes = [s for s in settings["schemes"] if s in set(quantized["scheme"])]
if not schemes:
    display(Markdown("No quantized variant was measured: nothing to compare with float32."))
fig, axes = plt.subplots(1, 4, figsize=(17, 4.5), sharey=True)
for ax, column, label in zip(axes, ["size_ratio", "speedup", "energy_ratio", f"delta_{axis}"],
                             ["size reduction (x)", "speed-up (x)", "energy / float32 energy",
                              f"{METRICS[axis]['name']} change"]):
    shown_part = quantized[quantized["converged"]] if column.startswith("delta") else quantized  # a finding only
    pivot = shown_part.pivot(index="model", columns="scheme", values=column).reindex(columns=schemes)
    if schemes and pivot.notna().any().any():
        pivot.plot.barh(ax=ax, width=0.8, legend=(ax is axes[0]))
    ax.axvline(0 if column.startswith("delta") else 1, color="0.3", lw=0.8)
    ax.set_xlabel(label)
axes[0].set_ylabel("")
if schemes:
    axes[0].legend(title="scheme", fontsize=8)
fig.suptitle(f"Quantized against float32 (measured on {first['hardware']['cpu_model']})")
fig.savefig(figures / "ratios.png", **SAVE)
plt.show()

# %% [markdown]
# ## The Pareto front with the quantized variants
# Float32 models as measured by the benchmark (grey), their quantized variants measured by this
# study (coloured by scheme); red rings: the front of quality against inference energy over all
# variants of this study.

# %%
fig, ax = plt.subplots(figsize=(8.5, 5.5))
bench_ok = benchmark[benchmark["status"] == "ok"]
ax.scatter(bench_ok["energy_j_per_audio_s"], bench_ok[axis], color="0.6", label="benchmark (float32)", zorder=2)
for name, row in bench_ok.iterrows():
    ax.annotate(name, (row["energy_j_per_audio_s"], row[axis]), fontsize=7, color="0.4",
                xytext=(3, -8), textcoords="offset points")
for number, scheme in enumerate(settings["schemes"]):
    part = ok[ok["scheme"] == scheme]
    if len(part):
        ax.scatter(part["energy_j_per_audio_s"], part[axis], s=22, color=f"C{number}", label=scheme, zorder=3)
front = ok[ok["pareto_inference"].astype(bool)]
ax.scatter(front["energy_j_per_audio_s"], front[axis], s=110, facecolors="none", edgecolors="C3", lw=1.5,
           label="front (this study)", zorder=4)
ax.set_xscale("log")
ax.set_xlabel("inference energy per second of audio (J, log scale)")
ax.set_ylabel(METRICS[axis]["name"])
ax.legend(fontsize=8)
fig.savefig(figures / "pareto.png", **SAVE)
plt.show()
display(Markdown("Front (this study): " + ", ".join(summary["pareto_inference"])))

# %% [markdown]
# ## Embedded feasibility
# Footprint = weights at rest + the peak memory one call on about one second of audio added on
# this machine (Linux resident-set high-water mark). A device "fits" a variant when that footprint
# is at most its total RAM (before its operating system takes its share); "real time here" is RTF
# < 1 on this machine's cores, not on the device's, which are slower. Device figures:
# data/quantize/devices.csv, each from its spec sheet.

# %%
fit = feasibility(variants, devices)
display(fit.set_index(["model", "scheme"]).round(2))
smallest = devices.sort_values("ram_bytes")
lines = []
for _, device in smallest.iterrows():
    chosen = fit[fit[device["device"]].astype(bool)]
    realtime = chosen[chosen["real_time_here"].astype(bool)]
    lines.append(f"- **{device['device']}** ({device['ram_bytes'] / 2**20:,.2f} MiB): {len(chosen)} of {len(fit)} "
                 f"variants fit; {len(realtime)} of them are also real-time on this CPU"
                 + (f" (e.g. {', '.join((realtime['model'] + '/' + realtime['scheme']).head(4))})" if len(realtime) else ""))
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## The thesis' claim in numbers
# "Quantization gives a notable gain in model size": the size reduction each scheme achieves here,
# and what it costs.

# %%
lines = []
for scheme, figures_of in summary["by_scheme"].items():
    low, high = figures_of["size_ratio_range"]
    lines.append(
        f"- **{scheme}** ({figures_of['models']} models): {figures_of['size_ratio_median']:.2f}x smaller on disk "
        f"(range {low:.2f}-{high:.2f}x), median speed-up {figures_of['speedup_median']:.2f}x, energy "
        f"{figures_of['energy_ratio_median']:.2f}x of float32, {METRICS[axis]['name']} change "
        f"{figures_of[f'delta_{axis}_median']:+.3f} (median)")
best = summary["largest_size_reduction"]
if best:
    lines.append(f"\nLargest reduction: {best['model']} under {best['scheme']}, {best['size_ratio']:.2f}x smaller.")
lines.append(f"\n{len(summary['not_applicable'])} (model, scheme) pairs do not apply and "
             f"{len(summary['failed'])} failed (reasons above).")
display(Markdown("\n".join(lines)))
