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
# # One vocoder: what it sounds like and what it costs
#
# Copy-synthesis on the test set of the corpus: the recording's mel-spectrogram goes in, the
# vocoder's waveform comes out. Computed by `audiofootprint benchmark MODEL`
# (`src/audiofootprint/benchmark.py`); this notebook shows its results.

# %% tags=["parameters"]
root = ".."  # the project root seen from notebooks/, where JupyterLab starts the kernel
model = "griffinlim_32"

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import soundfile as sf
import torch
from IPython.display import Audio, Markdown, display

from audiofootprint.features import mel_spectrogram
from audiofootprint.paths import BENCHMARK_DIR
from audiofootprint.quality import METRICS
from audiofootprint.records import ModelMetrics
from audiofootprint.vocoders.base import MelSettings

root = Path(root)
out = root / BENCHMARK_DIR / model
metrics = ModelMetrics.read(out / "metrics.json")
measurement = json.loads((out / "measurement.json").read_text())
utterances = pd.read_csv(out / "utterances.csv")
summary = measurement["measurement"]["summary"]
display(Markdown(f"## `{model}` ({metrics.family}, {metrics.params:,} parameters, {metrics.size_mb:.1f} MB)"))
status = metrics.quality_status
weights = metrics.training.get("weights")
if weights:
    display(Markdown(f"**Pretrained weights** ({weights['source']}, sha256 `{weights['sha256'][:16]}...` verified), "
                     f"trained on {weights['dataset']}; {weights['license']}. Provenance: {weights['provenance']} "
                     f"It runs at its native {metrics.sample_rate} Hz; scored at {metrics.scored_at}."))
elif not status["converged"]:
    display(Markdown(f"**Budget-trained** ({status['label']}): its quality below is that of an unconverged network, "
                     "shown for inspection, not a finding; its costs are the architecture's own."))

# %% [markdown]
# ## Listen and look
# Recording (left) and synthesis (right), log-mel spectrograms on the same scale.

# %%
clips = sorted(out.glob("audio/*.synthesis.wav"))
for clip in clips:
    utt = clip.name.split(".")[0]
    recording, rate = sf.read(out / "audio" / f"{utt}.recording.wav", dtype="float32")
    synthesis, _ = sf.read(clip, dtype="float32")
    display_mel = MelSettings(sample_rate=rate, n_fft=1024, win_length=1024, hop_length=256, n_mels=80,
                              f_min=0.0, f_max=rate / 2)  # one neutral analysis for both
    fig, axes = plt.subplots(1, 2, figsize=(11, 3), sharey=True)
    for ax, (title, audio) in zip(axes, [("recording", recording), ("synthesis", synthesis)]):
        spec = mel_spectrogram(torch.from_numpy(audio), display_mel, "hifigan")[0]
        ax.imshow(spec.numpy(), origin="lower", aspect="auto", vmin=-11, vmax=2, cmap="magma")
        ax.set(title=f"{utt}: {title}", xlabel="frame")
    axes[0].set_ylabel("mel band")
    plt.show()
    display(Markdown(f"**{utt}**: recording, then synthesis"))
    display(Audio(recording, rate=rate, normalize=False))
    display(Audio(synthesis, rate=rate, normalize=False))

# %% [markdown]
# ## Quality on the test set
# Mean over the test utterances with a 95% confidence interval; higher or lower is better as
# the direction column says.

# %%
rows = []
for metric, stats in metrics.quality.items():
    info = METRICS.get(metric, {})
    rows.append({"metric": info.get("name", metric), "mean": stats["mean"], "ci95": stats["ci95"],
                 "n": stats["n"], "better": info.get("direction", "")})
display(pd.DataFrame(rows))
display(utterances)

# %% [markdown]
# ## What it costs

# %%
hw = measurement["measurement"]["hardware"]
methods = measurement["measurement"]["methods"]
cost = pd.DataFrame([
    ("energy per second of audio (J)", summary["energy_j_per_audio_s"]["median"],
     f"IQR {summary['energy_j_per_audio_s']['q1']:.4g} to {summary['energy_j_per_audio_s']['q3']:.4g}"),
    ("energy net of idle (J per audio s)", summary["net_energy_j_per_audio_s"]["median"], ""),
    ("real-time factor", summary["real_time_factor"]["median"],
     f"IQR {summary['real_time_factor']['q1']:.4g} to {summary['real_time_factor']['q3']:.4g}"),
    ("GFLOPs per second of audio", measurement["flops_per_audio_s"] / 1e9, measurement["flops_method"]),
    ("peak memory (MB)", (measurement["peak_memory"]["bytes"] or 0) / 1e6, measurement["peak_memory"]["method"]),
    ("training energy here (kWh)", metrics.training.get("energy_kwh", 0.0),
     (f"pretrained: not trained here (the published run {metrics.training['published_training']['run']} is "
      "estimated in the training-carbon study)") if weights else
     f"{metrics.training.get('steps', 0)} steps in {metrics.training.get('seconds', 0):.0f} s, "
     f"trained as {metrics.training['trained_by']}"),
], columns=["figure", "value", "note"])
display(cost)
display(Markdown(
    f"Measured on {hw['cpu_model']} ({hw['cpu_count']:g} cores, GPU: {hw['gpu_model'] or 'none'}) with codecarbon "
    f"{hw['codecarbon_version']}'s offline tracker ({hw['country_iso3']}, PUE {hw['pue']:g}). Energy method: CPU "
    f"{methods['cpu']}; RAM {methods['ram']}; GPU {methods['gpu']}. "
    f"{len(measurement['measurement']['windows'])} measurement windows, "
    f"{sum(w['calls'] for w in measurement['measurement']['windows'])} calls in all."
))
