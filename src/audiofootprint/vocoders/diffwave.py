"""DiffWave (Kong, Ping, Huang, Zhao & Catanzaro, arXiv 2009.09761).

A denoising-diffusion vocoder: a non-causal WaveNet-like network (residual layers with
dilation cycling 1..512, a sinusoidal diffusion-step embedding passed through two SiLU
MLP layers, mel conditioning per layer) predicts the noise added to the waveform; the
waveform is produced by running the reverse process from Gaussian noise. The mel is
upsampled by two ``ConvTranspose2d`` layers of stride 16 along time (16 x 16 = hop 256)
with leaky ReLU(0.4).

Official configuration reproduced (the constructor's defaults; the zoo entries, with the official
parameter count and its source, are ``conf/vocoder/diffwave_6.yaml`` and ``diffwave_50.yaml``):
lmnt-com/diffwave ``src/diffwave/params.py`` (residual_layers 30, residual_channels 64, dilation_cycle_length 10, training noise
schedule ``linspace(1e-4, 0.05, 50)``, fast inference schedule
``[1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5]``; 22.05 kHz, FFT 1024, hop 256, 80 mels).
``inference_steps=50`` runs the full 50-step reverse process of the training schedule;
``inference_steps=6`` runs the repository's fast-sampling algorithm (its README: "based
on v3 of the DiffWave paper"; ``inference.py`` ``predict(fast_sampling=True)``): each of the 6 inference noise levels is mapped to a fractional training step
``t + twiddle`` where the cumulative signal level matches, and the step embedding is
interpolated linearly between table rows. Each reverse step clamps audio to [-1, 1], as
the repository's ``predict`` does.

Input convention (lmnt-com/diffwave ``preprocess.py``): torchaudio ``MelSpectrogram``
(power 1, ``normalized=True``, HTK mel, 20 Hz to sr/2, win = 4 x hop), then
``20*log10(clamp(mel, 1e-5)) - 20`` mapped to [0, 1] by ``clamp((db + 100) / 100, 0, 1)``.

Official checkpoints (lmnt-com/diffwave ``learner.py``, ``model.py``; read at commit
0594106093b8d8c444de8bd8cd26482f653c569f): the file is ``{"step", "model", "optimizer",
"params", "scaler"}`` with ``model`` the bare ``DiffWave.state_dict()``, whose names are ours
(``input_projection``, ``diffusion_embedding.projection1/2``, ``spectrogram_upsampler.conv1/2``,
``residual_layers.N.{dilated_conv, diffusion_projection, conditioner_projection,
output_projection}``, ``skip_projection``, ``output_projection``). :meth:`DiffWave.load_checkpoint_state`
reads it and checks the saved ``params`` (see :meth:`DiffWave.check_official_params`). The
published LJSpeech model (README: ``diffwave-ljspeech-22kHz-1000578.pt``, sha256
``d415d2117bb0bba3999afabdd67ed11d9e43400af26193a451d112e2560821a8``) has the default
configuration, so a zoo config for it is ``diffwave_6.yaml``'s ``model`` section plus::

    weights:
      path: /path/to/diffwave-ljspeech-22kHz-1000578.pt
      sha256: d415d2117bb0bba3999afabdd67ed11d9e43400af26193a451d112e2560821a8
      format: lmnt-diffwave
      mel: {sample_rate: 22050, n_fft: 1024, win_length: 1024, hop_length: 256, n_mels: 80,
            f_min: 20.0, f_max: 11025.0}
      # dataset, license, provenance, published_training: see audiofootprint.vocoders.weights
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import unwrap_checkpoint

DIFFWAVE_MEL = MelSettings(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256,
                           n_mels=80, f_min=20.0, f_max=11025.0)

#: lmnt-com/diffwave ``params.py``: the training noise schedule (T = 50) ...
DIFFWAVE_NOISE_SCHEDULE: tuple[float, ...] = tuple(np.linspace(1e-4, 0.05, 50).tolist())
#: ... and the fast-sampling inference schedule (6 steps).
DIFFWAVE_INFERENCE_NOISE_SCHEDULE: tuple[float, ...] = (0.0001, 0.001, 0.01, 0.05, 0.2, 0.5)


class _StepEmbedding(nn.Module):
    """Sinusoidal embedding of the (possibly fractional) diffusion step + 2-layer MLP."""

    def __init__(self, max_steps: int, dim: int = 128, hidden: int = 512):
        super().__init__()
        half = dim // 2
        steps = torch.arange(max_steps, dtype=torch.float32).unsqueeze(1)
        freqs = 10.0 ** (torch.arange(half, dtype=torch.float32) * 4.0 / (half - 1))
        angles = steps * freqs.unsqueeze(0)
        self.register_buffer("embedding", torch.cat([angles.sin(), angles.cos()], dim=1),
                             persistent=False)
        self.projection1 = nn.Linear(dim, hidden)
        self.projection2 = nn.Linear(hidden, hidden)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        lo = t.floor().long()
        hi = t.ceil().long()
        frac = (t - lo.to(t.dtype)).unsqueeze(-1)
        e = self.embedding[lo] + (self.embedding[hi] - self.embedding[lo]) * frac
        return F.silu(self.projection2(F.silu(self.projection1(e))))


class _MelUpsampler(nn.Module):
    """Two time-strided ConvTranspose2d layers (x16 each) on the [B, 1, n_mels, T] image."""

    def __init__(self, strides: tuple[int, int] = (16, 16)):
        super().__init__()
        s1, s2 = strides
        self.conv1 = nn.ConvTranspose2d(1, 1, (3, 2 * s1), stride=(1, s1), padding=(1, s1 // 2))
        self.conv2 = nn.ConvTranspose2d(1, 1, (3, 2 * s2), stride=(1, s2), padding=(1, s2 // 2))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(mel.unsqueeze(1)), 0.4)
        x = F.leaky_relu(self.conv2(x), 0.4)
        return x.squeeze(1)


class _ResidualLayer(nn.Module):
    def __init__(self, n_mels: int, channels: int, dilation: int, emb_dim: int = 512):
        super().__init__()
        self.dilated_conv = nn.Conv1d(channels, 2 * channels, 3, padding=dilation,
                                      dilation=dilation)
        self.diffusion_projection = nn.Linear(emb_dim, channels)
        self.conditioner_projection = nn.Conv1d(n_mels, 2 * channels, 1)
        self.output_projection = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x, step_emb, cond):
        y = x + self.diffusion_projection(step_emb).unsqueeze(-1)
        y = self.dilated_conv(y) + self.conditioner_projection(cond)
        gate, filt = y.chunk(2, dim=1)
        y = self.output_projection(torch.sigmoid(gate) * torch.tanh(filt))
        residual, skip = y.chunk(2, dim=1)
        return (x + residual) * (1.0 / math.sqrt(2.0)), skip


class DiffWave(Vocoder):
    """DiffWave vocoder; :meth:`forward` runs ``inference_steps`` reverse steps (under
    ``torch.no_grad``: it is a sampler; :meth:`denoise` is the differentiable network)."""

    feature_convention = "diffwave"  # (20*log10(clamp(mel, 1e-5)) - 20 + 100) / 100, clamped to [0, 1]

    def __init__(
        self,
        residual_layers: int = 30,
        residual_channels: int = 64,
        dilation_cycle_length: int = 10,
        noise_schedule: Sequence[float] | None = None,
        inference_noise_schedule: Sequence[float] | None = None,
        inference_steps: int = 6,
        upsample_strides: list[int] | tuple[int, int] = (16, 16),
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, DIFFWAVE_MEL))
        if math.prod(upsample_strides) != self.hop_length:
            raise ValueError("prod(upsample_strides) must equal hop_length")
        # The zoo's YAML files omit the schedules: the defaults are the official ones.
        if noise_schedule is None:
            noise_schedule = DIFFWAVE_NOISE_SCHEDULE
        if inference_noise_schedule is None:
            inference_noise_schedule = DIFFWAVE_INFERENCE_NOISE_SCHEDULE
        self.noise_schedule = [float(b) for b in noise_schedule]
        self.inference_noise_schedule = [float(b) for b in inference_noise_schedule]
        if inference_steps == len(self.noise_schedule):
            self.sampling_schedule = self.noise_schedule
        elif inference_steps == len(self.inference_noise_schedule):
            self.sampling_schedule = self.inference_noise_schedule
        else:
            raise ValueError(
                f"inference_steps must be {len(self.noise_schedule)} (full reverse process) or"
                f" {len(self.inference_noise_schedule)} (fast sampling schedule)")
        self.inference_steps = inference_steps
        n_mels = self.mel.n_mels
        self.input_projection = nn.Conv1d(1, residual_channels, 1)
        self.diffusion_embedding = _StepEmbedding(len(self.noise_schedule))
        self.spectrogram_upsampler = _MelUpsampler(tuple(upsample_strides))
        self.residual_layers = nn.ModuleList(
            _ResidualLayer(n_mels, residual_channels, 2 ** (i % dilation_cycle_length))
            for i in range(residual_layers)
        )
        self.skip_projection = nn.Conv1d(residual_channels, residual_channels, 1)
        self.output_projection = nn.Conv1d(residual_channels, 1, 1)
        self._coefficients = self._sampling_coefficients()

    # -- network ------------------------------------------------------------------
    def denoise(self, audio: torch.Tensor, step: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Noise prediction eps(audio, step | upsampled mel): [B, T] -> [B, T]."""
        x = F.relu(self.input_projection(audio.unsqueeze(1)))
        emb = self.diffusion_embedding(step)
        skip = None
        for layer in self.residual_layers:
            x, s = layer(x, emb, cond)
            skip = s if skip is None else skip + s
        x = skip * (1.0 / math.sqrt(len(self.residual_layers)))
        x = F.relu(self.skip_projection(x))
        return self.output_projection(x).squeeze(1)

    # -- sampling -------------------------------------------------------------------
    def _sampling_coefficients(self) -> list[tuple[float, float, float, float]]:
        """Per reverse step n: (fractional training step, 1/sqrt(alpha), eps weight, sigma)."""
        train_beta = np.asarray(self.noise_schedule, dtype=np.float64)
        train_cum = np.cumprod(1.0 - train_beta)
        beta = np.asarray(self.sampling_schedule, dtype=np.float64)
        alpha = 1.0 - beta
        alpha_cum = np.cumprod(alpha)
        steps = []
        for s in range(len(beta)):
            # training step interval whose cumulative signal level brackets alpha_cum[s]
            for t in range(len(train_beta) - 1):
                if train_cum[t + 1] <= alpha_cum[s] <= train_cum[t]:
                    hi, lo = math.sqrt(train_cum[t]), math.sqrt(train_cum[t + 1])
                    steps.append(t + (hi - math.sqrt(alpha_cum[s])) / (hi - lo))
                    break
            else:
                raise ValueError("inference schedule outside the training noise range")
        coeffs = []
        for n in range(len(beta)):
            c1 = 1.0 / math.sqrt(alpha[n])
            c2 = beta[n] / math.sqrt(1.0 - alpha_cum[n])
            sigma = (math.sqrt((1.0 - alpha_cum[n - 1]) / (1.0 - alpha_cum[n]) * beta[n])
                     if n > 0 else 0.0)
            coeffs.append((float(steps[n]), c1, c2, sigma))
        return coeffs

    @torch.no_grad()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        cond = self.spectrogram_upsampler(mel)
        batch = mel.shape[0]
        audio = torch.randn(batch, cond.shape[-1], device=mel.device, dtype=mel.dtype)
        for n in reversed(range(len(self._coefficients))):
            t, c1, c2, sigma = self._coefficients[n]
            step = torch.full((batch,), t, device=mel.device, dtype=mel.dtype)
            audio = c1 * (audio - c2 * self.denoise(audio, step, cond))
            if n > 0:
                audio = audio + sigma * torch.randn_like(audio)
            audio = audio.clamp(-1.0, 1.0)
        return audio

    def load_checkpoint_state(self, state: dict) -> None:
        """Load our state dict or an lmnt-com/diffwave checkpoint.

        The official file (``learner.py`` ``state_dict()``) is ``{"step", "model", "optimizer",
        "params", "scaler"}``; only ``model`` is read, after :meth:`check_official_params` has
        compared the ``params`` it was trained with against this model. A ``module.`` prefix
        (a model saved while wrapped in ``DataParallel``) is removed. The step-embedding table
        ``diffusion_embedding.embedding`` is a non-persistent buffer in lmnt's code as in ours
        (it is rebuilt from the number of training steps); a file that carries it anyway has it
        checked for that length and dropped.
        """
        params = state.get("params") if isinstance(state.get("params"), Mapping) else None
        weights = _strip_prefix(dict(unwrap_checkpoint(state, ("model",))), "module.")
        if params is not None:
            self.check_official_params(params)
        table = weights.pop("diffusion_embedding.embedding", None)
        if table is not None and table.shape[0] != len(self.noise_schedule):
            raise ValueError(
                f"the checkpoint's diffusion-step embedding has {table.shape[0]} rows (training steps), this model "
                f"{len(self.noise_schedule)}: set noise_schedule to the schedule it was trained with")
        if weights and not any(key.startswith("spectrogram_upsampler.") for key in weights):
            raise ValueError("the checkpoint has no spectrogram_upsampler: it is an unconditional DiffWave "
                             "(params.unconditional), which generates audio without a mel and is no vocoder")
        self.load_state_dict(weights)

    def check_official_params(self, params: Mapping) -> None:
        """Compare lmnt-com's ``params`` (``params.py`` keys, as saved in its checkpoints) with
        this model; a difference the weights alone cannot reveal (dilation cycle, training noise
        schedule) or that would load wrongly raises :class:`ValueError` naming our YAML key."""
        if params.get("unconditional"):
            raise ValueError("the checkpoint's params say unconditional=True: an unconditional DiffWave "
                             "generates audio without a mel and is no vocoder")
        ours = {
            "residual_layers": ("residual_layers", len(self.residual_layers)),
            "residual_channels": ("residual_channels", self.input_projection.out_channels),
            "n_mels": ("mel.n_mels", self.mel.n_mels),
            "hop_samples": ("mel.hop_length", self.hop_length),
            "sample_rate": ("mel.sample_rate", self.mel.sample_rate),
        }
        for key, (yaml_key, value) in ours.items():
            if key in params and params[key] is not None and int(params[key]) != int(value):
                raise ValueError(f"the checkpoint was trained with {key}={params[key]}, this model has "
                                 f"{yaml_key}={value}: build it with {yaml_key}: {params[key]}")
        cycle = params.get("dilation_cycle_length")
        if cycle is not None:
            dilations = [layer.dilated_conv.dilation[0] for layer in self.residual_layers]
            if dilations != [2 ** (i % int(cycle)) for i in range(len(dilations))]:
                raise ValueError(f"the checkpoint was trained with dilation_cycle_length={cycle}, this model's "
                                 f"dilations are {dilations[:12]}...: build it with dilation_cycle_length: {cycle}")
        schedule = params.get("noise_schedule")
        if schedule is not None:
            theirs = np.asarray(list(schedule), dtype=np.float64)
            if theirs.shape != (len(self.noise_schedule),) or not np.allclose(theirs, self.noise_schedule,
                                                                               rtol=1e-6, atol=1e-9):
                raise ValueError(
                    f"the checkpoint was trained with a {theirs.size}-step noise_schedule "
                    f"({theirs[0]:g} .. {theirs[-1]:g}), this model has {len(self.noise_schedule)} steps "
                    f"({self.noise_schedule[0]:g} .. {self.noise_schedule[-1]:g}): set noise_schedule to the "
                    "checkpoint's")


def _strip_prefix(state: dict, prefix: str) -> dict:
    """``state`` without ``prefix`` on its keys, if every key has it (a ``DataParallel`` save)."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return state

