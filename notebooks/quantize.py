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
# notable gain in model size, and asks what that means for embedded use. Here every trained
# vocoder of the benchmark runs under every quantization scheme: size on disk and in memory,
# the harness' energy and speed, quality against the recordings and distance to the float32
# output of the same model. Computed by `audiofootprint quantize summary`.

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
ok = variants[variants["status"] == "ok"]
quantized = ok[ok["scheme"] != baseline]
measurements = [*sorted((root / "results/quantize").glob("*/*/variant/measurement.json")),
                *sorted((root / "results/benchmark").glob("*/measurement.json"))]
first = json.loads(measurements[0].read_text())["measurement"]
display(Markdown(
    f"Profile **{params['profile']['name']}**; measured on {first['hardware']['cpu_model']} "
    f"({first['hardware']['cpu_count']:g} cores, GPU: {first['hardware']['gpu_model'] or 'none'}), "
    f"{params['profile']['torch_threads']} torch threads. Energy: CPU {first['methods']['cpu']}; RAM "
    f"{first['methods']['ram']}. {summary['variants_measured']} variants measured over "
    f"{variants['model'].nunique()} models and {variants['scheme'].nunique()} schemes; quality axis "
    f"{METRICS[axis]['name']}."
))

# %% [markdown]
# ## Every variant beside its float32 model
# Ratios: `size_ratio` = float32 size / variant size, `speedup` = float32 RTF / variant RTF,
# `energy_ratio` = variant energy / float32 energy (per second of audio), `delta` = variant
# quality - float32 quality. `snr_to_fp32_db` and `mrstft_to_fp32` compare the variant's output
# with the float32 model's output for the same input.

# %%
columns = ["model", "scheme", "backend", "size_bytes", "size_ratio", "weight_ratio", "speedup", "energy_ratio",
           "real_time_factor", axis, f"delta_{axis}", "snr_to_fp32_db", "mrstft_to_fp32"]
shown = ok[[c for c in columns if c in ok.columns]].copy()
shown["size_mb"] = shown.pop("size_bytes") / 1e6
display(shown.set_index(["model", "scheme"]).round(3))

# %% [markdown]
# ## Where a scheme does not apply, or fails
# Recorded as results, with the reason (a variant whose output cannot be scored, e.g. silence, failed).

# %%
skipped = variants[variants["status"] != "ok"][["model", "scheme", "status", "reason"]]
display(skipped.set_index(["model", "scheme"]) if len(skipped) else Markdown("Every scheme applied to every model."))

# %% [markdown]
# ## Size, speed, energy and quality per scheme

# %%
schemes = [s for s in settings["schemes"] if s in set(quantized["scheme"])]
if not schemes:
    display(Markdown("No quantized variant was measured: nothing to compare with float32."))
fig, axes = plt.subplots(1, 4, figsize=(17, 4.5), sharey=True)
for ax, column, label in zip(axes, ["size_ratio", "speedup", "energy_ratio", f"delta_{axis}"],
                             ["size reduction (x)", "speed-up (x)", "energy / float32 energy",
                              f"{METRICS[axis]['name']} change"]):
    pivot = quantized.pivot(index="model", columns="scheme", values=column).reindex(columns=schemes)
    if schemes:
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
front = ok[ok["pareto_inference"]]
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
    chosen = fit[fit[device["device"]]]
    realtime = chosen[chosen["real_time_here"]]
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
