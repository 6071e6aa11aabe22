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
# # One vocoder that failed
#
# Its training or its benchmark raised an error. The pipeline recorded the error and what was
# spent until then, and went on with the other models (`src/audiofootprint/failures.py`). No
# quality or inference figures exist for it; it is kept out of the fronts and the ranking.

# %% tags=["parameters"]
root = ".."  # the project root seen from notebooks/, where JupyterLab starts the kernel
model = "griffinlim_32"

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from audiofootprint.paths import BENCHMARK_DIR
from audiofootprint.records import ModelMetrics

root = Path(root)
metrics = ModelMetrics.read(root / BENCHMARK_DIR / model / "metrics.json")
training = metrics.training
display(Markdown(f"## `{model}` ({metrics.family}): **failed** in stage `{metrics.failed_stage}`"))
display(Markdown(f"{metrics.reason}: `{metrics.error_type}`: {metrics.message}"))

# %% [markdown]
# ## What its training spent
# Energy until the failure, from codecarbon's offline tracker (the method of each part below).

# %%
methods = training.get("methods") or {}
display(pd.DataFrame([
    ("trained by", training["trained_by"]),
    ("training status", training.get("status", "ok")),
    ("objective", training.get("objective")),
    ("steps done", training.get("steps", 0)),
    ("training time (s)", training.get("seconds", 0.0)),
    ("training energy (kWh)", training.get("energy_kwh", 0.0)),
    ("CO2e (kg)", training.get("co2e_kg", 0.0)),
    ("energy method", "; ".join(f"{part.upper()}: {how}" for part, how in methods.items()) or "nothing measured"),
], columns=["", "value"]).set_index(""))
display(Markdown(
    f"The error is in `results/benchmark/{model}/metrics.json` and "
    f"`results/models/{training['trained_by']}/training.json`; the traceback was printed by the stage. "
    "Fix the configuration and run the pipeline again (a changed `conf/vocoder` file re-runs the model), "
    f"or retry as it is with `dvc repro -f train@{training['trained_by']}`."
))
