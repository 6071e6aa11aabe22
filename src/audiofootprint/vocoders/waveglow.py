"""WaveGlow (Prenger, Valle & Catanzaro, arXiv 1811.00002).

A normalising flow over groups of 8 consecutive samples: 12 steps, each an invertible
1x1 convolution followed by an affine coupling layer whose scale/shift come from a
WaveNet-like network (8 non-causal dilated layers, dilation 2**i, no reset) conditioned
on the mel-spectrogram. The mel is upsampled by a ``ConvTranspose1d(80, 80, 1024,
stride=256)`` and folded into 8-sample groups (640 conditioning channels). Every 4 steps
2 channels leave the flow ("early outputs"). Synthesis runs the flow backwards from
Gaussian noise of standard deviation ``sigma`` (0.6 in the official README's inference
command; training uses 1.0).

Official configuration reproduced (the constructor's defaults; the zoo entry, with the official
parameter count and its source, is ``conf/vocoder/waveglow.yaml``): NVIDIA/waveglow ``config.json``
``waveglow_config``: n_flows 12, n_group 8, n_early_every 4, n_early_size 2, WN n_layers 8, n_channels 256,
kernel 3 (the published checkpoint is ``waveglow_256channels``). The paper's "512
channels ... residual, 256 ... skip" describes the same network: the gated dilated convs
output 2 x 256 = 512 channels.

Input convention (Tacotron 2 features, same as HiFi-GAN): natural log of the clamped
mel magnitude, ``log(clamp(mel, 1e-5))``, Slaney mel filters, 22.05 kHz, FFT 1024,
hop 256, 80 bands, 0-8000 Hz.

The module is the inference graph (weight norm folded, as the official
``remove_weightnorm`` does before inference); parameter names follow the official
layout so a converted state dict (``weight_g``/``weight_v`` pairs allowed) loads with
:meth:`WaveGlow.load_checkpoint_state`.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import fold_weight_norm, unwrap_checkpoint

TACOTRON2_MEL = MelSettings(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256,
                            n_mels=80, f_min=0.0, f_max=8000.0)


class _CouplingNet(nn.Module):
    """WaveNet-like net giving (shift, log-scale) for the second half of the channels."""

    def __init__(self, n_in: int, n_cond: int, n_layers: int, n_channels: int,
                 kernel_size: int):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        self.n_layers = n_layers
        self.n_channels = n_channels
        self.start = nn.Conv1d(n_in, n_channels, 1)
        # all layers' conditioning projections in one 1x1 conv
        self.cond_layer = nn.Conv1d(n_cond, 2 * n_channels * n_layers, 1)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            d = 2 ** i
            self.in_layers.append(nn.Conv1d(n_channels, 2 * n_channels, kernel_size,
                                            dilation=d, padding=d * (kernel_size - 1) // 2))
            out = 2 * n_channels if i < n_layers - 1 else n_channels  # last: skip only
            self.res_skip_layers.append(nn.Conv1d(n_channels, out, 1))
        self.end = nn.Conv1d(n_channels, 2 * n_in, 1)
        # the coupling starts as identity (zero shift and log-scale), as in training
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.start(x)
        cond = self.cond_layer(cond).chunk(self.n_layers, dim=1)
        skip = None
        c = self.n_channels
        for i, (conv, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            z = conv(h) + cond[i]
            z = torch.tanh(z[:, :c]) * torch.sigmoid(z[:, c:])
            rs = res_skip(z)
            if i < self.n_layers - 1:
                h = h + rs[:, :c]
                rs = rs[:, c:]
            skip = rs if skip is None else skip + rs
        return self.end(skip)


class _Invertible1x1(nn.Module):
    """Channel-mixing 1x1 convolution, initialised to a random rotation (det +1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 1, bias=False)
        q, _ = torch.linalg.qr(torch.randn(channels, channels))
        if torch.det(q) < 0:
            q[:, 0] = -q[:, 0]
        with torch.no_grad():
            self.conv.weight.copy_(q.unsqueeze(-1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training direction: ``(W x, log|det W| * batch * steps)`` (the official ``log_det_W``)."""
        batch, _, steps = x.shape
        w = self.conv.weight.squeeze(-1)
        log_det = torch.linalg.slogdet(w)[1] * (batch * steps)
        return self.conv(x), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight.squeeze(-1)
        w_inv = torch.linalg.inv(w.double()).to(z.dtype)  # tiny (<= 8x8), fresh each call
        return F.conv1d(z, w_inv.unsqueeze(-1))


class WaveGlow(Vocoder):
    """WaveGlow flow vocoder; :meth:`forward` samples with temperature ``sigma``."""

    feature_convention = "ln(clamp(mel_magnitude, 1e-5)), Slaney mel (Tacotron 2 / HiFi-GAN)"

    def __init__(
        self,
        n_flows: int = 12,
        n_group: int = 8,
        n_early_every: int = 4,
        n_early_size: int = 2,
        wn_layers: int = 8,
        wn_channels: int = 256,
        wn_kernel_size: int = 3,
        upsample_kernel: int = 1024,
        sigma: float = 0.6,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, TACOTRON2_MEL))
        if n_group % 2 or n_early_size % 2:
            raise ValueError("n_group and n_early_size must be even")
        if self.hop_length % n_group:
            raise ValueError("hop_length must be a multiple of n_group")
        n_mels = self.mel.n_mels
        self.n_flows = n_flows
        self.n_group = n_group
        self.n_early_every = n_early_every
        self.n_early_size = n_early_size
        self.sigma = sigma
        self.upsample = nn.ConvTranspose1d(n_mels, n_mels, upsample_kernel,
                                           stride=self.hop_length)
        self.WN = nn.ModuleList()
        self.convinv = nn.ModuleList()
        remaining = n_group
        for k in range(n_flows):
            if k > 0 and k % n_early_every == 0:
                remaining -= n_early_size
            self.convinv.append(_Invertible1x1(remaining))
            self.WN.append(_CouplingNet(remaining // 2, n_mels * n_group, wn_layers,
                                        wn_channels, wn_kernel_size))
        self.n_remaining_channels = remaining

    def _grouped_condition(self, mel: torch.Tensor) -> torch.Tensor:
        """Upsample mel to samples and fold into [B, n_mels*n_group, samples/n_group]."""
        frames = mel.shape[-1]
        c = self.upsample(mel)[..., : frames * self.hop_length]  # drop the kernel overhang
        b, ch, t = c.shape
        g = self.n_group
        # [B, C, T/g, g] -> [B, T/g, C, g] -> [B, C*g (channel-major), T/g]
        c = c.view(b, ch, t // g, g).permute(0, 2, 1, 3).reshape(b, t // g, ch * g)
        return c.transpose(1, 2)

    def forward(self, mel: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        sigma = self.sigma if sigma is None else sigma
        cond = self._grouped_condition(mel)
        b, _, steps = cond.shape
        z = sigma * torch.randn(b, self.n_remaining_channels, steps, device=mel.device,
                                dtype=mel.dtype)
        for k in reversed(range(self.n_flows)):
            half = z.shape[1] // 2
            za, zb = z[:, :half], z[:, half:]
            out = self.WN[k](za, cond)
            shift, log_s = out[:, :half], out[:, half:]
            zb = (zb - shift) * torch.exp(-log_s)
            z = self.convinv[k].inverse(torch.cat([za, zb], dim=1))
            if k > 0 and k % self.n_early_every == 0:
                early = sigma * torch.randn(b, self.n_early_size, steps, device=mel.device,
                                            dtype=mel.dtype)
                z = torch.cat([early, z], dim=1)
        # [B, n_group, T/g] -> [B, T]: sample index = step * n_group + channel
        return z.transpose(1, 2).reshape(b, -1)

    def flow_forward(self, audio: torch.Tensor, mel: torch.Tensor
                     ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The flow in the training direction (NVIDIA/waveglow ``WaveGlow.forward``).

        ``audio [B, T]`` and its ``mel [B, n_mels, frames]`` (``T = frames * hop``; a longer
        ``audio`` is cut to that) give ``(z, log_s_list, log_det_W_list)``: ``z [B, n_group,
        T / n_group]`` (the early outputs first, then the last flow's output), the log-scales of
        every affine coupling and ``log|det W| * B * T / n_group`` of every invertible 1x1
        convolution, from which the negative log-likelihood is
        ``sum(z**2) / (2 sigma**2) - sum(log_s) - sum(log_det_W)`` (training uses sigma 1.0).
        :meth:`forward` (sampling) inverts exactly this map.

        The module is the inference graph, without the weight normalisation the official
        training reparametrises its coupling networks with; training it as it is optimises the
        same function over plain weights (a different parametrisation, not a different model).
        """
        cond = self._grouped_condition(mel)
        b, _, steps = cond.shape
        g = self.n_group
        if audio.shape[-1] < steps * g:
            raise ValueError(f"audio has {audio.shape[-1]} samples, the mel needs {steps * g}")
        # [B, T] -> [B, T/g, g] -> [B, g, T/g]: channel c of step s is sample s * g + c
        x = audio[:, : steps * g].reshape(b, steps, g).transpose(1, 2)
        early: list[torch.Tensor] = []
        log_s_list: list[torch.Tensor] = []
        log_det_list: list[torch.Tensor] = []
        for k in range(self.n_flows):
            if k > 0 and k % self.n_early_every == 0:
                early.append(x[:, : self.n_early_size])
                x = x[:, self.n_early_size:]
            x, log_det = self.convinv[k](x)
            log_det_list.append(log_det)
            half = x.shape[1] // 2
            xa, xb = x[:, :half], x[:, half:]
            out = self.WN[k](xa, cond)
            shift, log_s = out[:, :half], out[:, half:]
            xb = torch.exp(log_s) * xb + shift
            log_s_list.append(log_s)
            x = torch.cat([xa, xb], dim=1)
        return torch.cat(early + [x], dim=1), log_s_list, log_det_list

    def load_checkpoint_state(self, state: dict) -> None:
        """Load our state dict or an official-layout one (weight norm pairs allowed)."""
        state = fold_weight_norm(unwrap_checkpoint(state, ("model",)))
        state = {k.removeprefix("module."): v for k, v in state.items()}
        self.load_state_dict(state)

