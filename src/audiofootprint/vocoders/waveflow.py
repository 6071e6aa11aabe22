"""WaveFlow (Ping, Peng, Zhao & Song, ICML 2020, arXiv 1912.01219).

A normalising flow over the waveform folded into a 2-D matrix: ``T`` samples become ``n_height``
rows by ``T / n_height`` columns, column ``w`` holding the consecutive samples ``w * h ...
w * h + h - 1``. Each of the ``n_flows`` flows is an affine autoregressive transform along the
height: row 0 is kept and row ``r`` becomes ``x_r * exp(log_s_r) + shift_r``, ``(log_s_r,
shift_r)`` computed from the rows before it by a WaveNet-like 2-D network (a 1x1 input
convolution, ``n_layers`` gated residual layers with (3, 3) kernels causal in height and centred
in width, width dilation ``2**i``, a 1x1 projection of the mel per layer, summed skips, a
zero-initialised 1x1 output convolution). After each flow the rows (of the audio and of the
condition) are permuted: reversed after each flow of the first half; after each of the second
half, with ``bipartize``, reversed within each half of the height (the paper's bipartized
permutation, Parakeet's ``perms``), else reversed again. The log-determinant is the sum of every
``log_s``.

The mel is upsampled to the audio rate by two ``ConvTranspose2d(1, 1, (3, 2s), stride (1, s),
padding (1, s / 2))`` with leaky ReLU(0.4) (s = 16, 16 x 16 = hop 256), which give exactly
``frames * hop`` steps. The official synthesis trims ``s`` steps per layer (the thesis'
``reverse_fast`` 768 in all) and gives fewer samples; we keep the training-time map, so the
output has exactly ``frames * hop_length`` samples.

Synthesis draws ``z ~ N(0, sigma^2)`` (``sigma`` 1.0: the official ``synthesize(mel, sigma=1.0)``
and README command; the thesis code samples with temperature 1.0 too) and inverts the flows
from the last, row by row: ``n_height`` sequential steps per flow, each one network pass over
one row. Every residual layer keeps the last ``2 * dilation_h`` rows of its input (the
convolution queue of the official ``Flow.infer``), so no row is computed twice.

Configurations (the constructor's defaults are the paper's; the zoo entries carry the counts and
sources): ``conf/vocoder/waveflow.yaml``, the paper's small-footprint model (h = 16, 8 flows of
8 layers, 64 residual channels, bipartized permutation), built as the official implementation
builds it (PaddlePaddle/Parakeet v0.1.0, commit 1db01ccc90d11ec7c75d707db4932f9d4c98fcf6,
``parakeet/models/waveflow/waveflow_modules.py``: the last residual layer outputs the skip
only). ``conf/vocoder/thesis_waveflow_*.yaml``: the thesis grid
(ConstanceDws/neural-audio-energy ``src/models/waveflow``, taken from L0SG/WaveFlow):
``bipartize: false`` (every flow reverses the height) and ``last_layer_residual: true`` (its
last layer also computes a residual half, which nothing reads). Height dilations default to the
official table for 8 layers (``HEIGHT_DILATIONS``: none for h = 8 or 16); another depth or height
takes dilation 1.

The model is built in training form, with the weight normalisation of both implementations (the
input, residual-layer, conditioning and upsampling convolutions), so its parameter count is
theirs; :meth:`~.base.Vocoder.for_inference` folds it. :meth:`WaveFlow.load_checkpoint_state`
reads a state dict in either form.

Input convention (Parakeet ``examples/waveflow/data.py``): librosa STFT magnitude, Slaney mel
filters, ``ln(clip(mel, 1e-5))``; 22.05 kHz, FFT 1024, hop 256, 80 bands, 0-8000 Hz (the
``"hifigan"`` convention).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import adapt_weight_norm_state, weight_norm

PAPER_MEL = MelSettings(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256,
                        n_mels=80, f_min=0.0, f_max=8000.0)

#: Height dilations of the 8 residual layers by height (Parakeet ``Flow.dilation_dict``).
HEIGHT_DILATIONS: dict[int, tuple[int, ...]] = {
    8: (1,) * 8, 16: (1,) * 8, 32: (1, 2, 4, 1, 2, 4, 1, 2), 64: (1, 2, 4, 8, 16, 1, 2, 4),
    128: (1, 2, 4, 8, 16, 32, 64, 1),
}
KERNEL = 3  # (height, width) kernel of the residual layers' convolutions


class _ResidualLayer(nn.Module):
    """Gated 2-D layer: a (3, 3) convolution causal in height, centred in width, plus the mel's 1x1
    projection; a 1x1 convolution gives (residual, skip), or the skip alone."""

    def __init__(self, channels: int, n_mels: int, dilation_h: int, dilation_w: int, residual: bool):
        super().__init__()
        self.channels = channels
        self.residual = residual
        self.conv = weight_norm(nn.Conv2d(channels, 2 * channels, KERNEL, dilation=(dilation_h, dilation_w)))
        self.cond = weight_norm(nn.Conv2d(n_mels, 2 * channels, 1))
        self.out = weight_norm(nn.Conv2d(channels, 2 * channels if residual else channels, 1))
        self.history = (KERNEL - 1) * dilation_h  # earlier rows the convolution sees
        self.pad_w = (KERNEL - 1) * dilation_w // 2

    def _gate(self, h: torch.Tensor, conv: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = (conv + self.cond(cond)).chunk(2, dim=1)
        out = self.out(torch.tanh(a) * torch.sigmoid(b))
        c = self.channels
        if self.residual:
            return h + out[:, :c], out[:, c:]
        return h, out

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        conv = self.conv(F.pad(h, (self.pad_w, self.pad_w, self.history, 0)))
        return self._gate(h, conv, cond)

    def step(self, row: torch.Tensor, cond_row: torch.Tensor, past: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One row ``[B, C, 1, W]`` given the ``history`` rows before it: (residual out, skip, new past)."""
        window = torch.cat([past, row], dim=2)
        conv = self.conv(F.pad(window, (self.pad_w, self.pad_w, 0, 0)))
        h, skip = self._gate(row, conv, cond_row)
        return h, skip, window[:, :, 1:]


class _CouplingNet(nn.Module):
    """WaveNet-like 2-D network giving ``(log_s, shift)`` for the next row of every position."""

    def __init__(self, n_mels: int, channels: int, height_dilations: Sequence[int], last_layer_residual: bool):
        super().__init__()
        n_layers = len(height_dilations)
        self.start = weight_norm(nn.Conv2d(1, channels, 1))
        self.layers = nn.ModuleList(
            _ResidualLayer(channels, n_mels, d, 2 ** i, i < n_layers - 1 or last_layer_residual)
            for i, d in enumerate(height_dilations))
        self.end = nn.Conv2d(channels, 2, 1)
        # the flow starts as identity (zero log-scale and shift), as in both implementations
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.start(x)
        skip = 0
        for layer in self.layers:
            h, s = layer(h, cond)
            skip = skip + s
        log_s, shift = self.end(skip).chunk(2, dim=1)
        return log_s, shift

    def empty_past(self, row: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's queue of earlier input rows before ``row`` (``[B, 1, 1, W]``, the first): zeros,
        the causal padding."""
        b, _, _, w = row.shape
        return [row.new_zeros(b, layer.channels, layer.history, w) for layer in self.layers]

    def step(self, row: torch.Tensor, cond_row: torch.Tensor, past: list[torch.Tensor]
             ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """:meth:`forward` for one more row, with each layer's queue (updated in the result)."""
        h = self.start(row)
        skip = 0
        new_past = []
        for layer, queue in zip(self.layers, past):
            h, s, queue = layer.step(h, cond_row, queue)
            skip = skip + s
            new_past.append(queue)
        log_s, shift = self.end(skip).chunk(2, dim=1)
        return log_s, shift, new_past


class WaveFlow(Vocoder):
    """WaveFlow flow vocoder; :meth:`forward` samples with standard deviation ``sigma``."""

    feature_convention = "hifigan"  # ln(clip(mel_magnitude, 1e-5)), Slaney mel (Parakeet data.py)

    def __init__(
        self,
        n_flows: int = 8,
        n_height: int = 16,
        n_layers: int = 8,
        res_channels: int = 64,
        bipartize: bool = True,
        last_layer_residual: bool = False,
        height_dilations: Sequence[int] | None = None,
        upsample_factors: Sequence[int] = (16, 16),
        sigma: float = 1.0,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, PAPER_MEL))
        _check_shape(self.hop_length, n_flows, n_height, bipartize, upsample_factors)
        if height_dilations is None:
            height_dilations = HEIGHT_DILATIONS.get(n_height, ()) if n_layers == 8 else ()
            height_dilations = height_dilations or (1,) * n_layers
        if len(height_dilations) != n_layers:
            raise ValueError(f"height_dilations has {len(height_dilations)} values for {n_layers} layers")
        self.n_flows = n_flows
        self.n_height = n_height
        self.bipartize = bipartize
        self.sigma = sigma
        self.upsample = nn.ModuleList(
            weight_norm(nn.ConvTranspose2d(1, 1, (3, 2 * s), stride=(1, s), padding=(1, s // 2)))
            for s in upsample_factors)
        self.flows = nn.ModuleList(
            _CouplingNet(self.mel.n_mels, res_channels, tuple(height_dilations), last_layer_residual)
            for _ in range(n_flows))

    # -- layout -------------------------------------------------------------------------
    def _condition(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel ``[B, n_mels, frames]`` -> ``[B, n_mels, n_height, frames * hop / n_height]``."""
        c = mel.unsqueeze(1)
        for conv in self.upsample:
            c = F.leaky_relu(conv(c), 0.4)
        c = c.squeeze(1)
        b, ch, t = c.shape
        return c.view(b, ch, t // self.n_height, self.n_height).transpose(2, 3)

    def _fold(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> ``[B, 1, n_height, T / n_height]``: column ``w`` holds samples ``w*h .. w*h+h-1``."""
        b, t = audio.shape
        return audio.reshape(b, t // self.n_height, self.n_height).transpose(1, 2).unsqueeze(1)

    @staticmethod
    def _unfold(x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(1).transpose(1, 2).reshape(x.shape[0], -1)

    def _permute(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The rows' permutation after flow ``k`` (its own inverse)."""
        if k < self.n_flows // 2 or not self.bipartize:
            return x.flip(2)
        h = x.shape[2]
        return x.unflatten(2, (2, h // 2)).flip(3).flatten(2, 3)

    # -- the flow -------------------------------------------------------------------------
    def flow_forward(self, audio: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The flow in the training direction (Parakeet ``WaveFlowModule.forward``).

        ``audio [B, T]`` and its ``mel [B, n_mels, frames]`` (``T = frames * hop``; a longer ``audio``
        is cut to that) give ``(z, log_s_list)``: ``z [B, T]`` (in the audio's sample order) and
        every flow's log-scales ``[B, 1, n_height - 1, T / n_height]``, whose sum is the
        log-determinant of the map, so the negative log-likelihood is
        ``sum(z**2) / (2 sigma**2) - sum(log_s)`` (+ a constant). :meth:`flow_inverse` inverts it.
        """
        cond = self._condition(mel)
        t = cond.shape[2] * cond.shape[3]
        if audio.shape[-1] < t:
            raise ValueError(f"audio has {audio.shape[-1]} samples, the mel needs {t}")
        x = self._fold(audio[:, :t])
        log_s_list = []
        for k, net in enumerate(self.flows):
            log_s, shift = net(x[:, :, :-1], cond[:, :, 1:])
            x = torch.cat([x[:, :, :1], x[:, :, 1:] * torch.exp(log_s) + shift], dim=2)
            log_s_list.append(log_s)
            x, cond = self._permute(x, k), self._permute(cond, k)
        return self._unfold(x), log_s_list

    def flow_inverse(self, z: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """``z [B, frames * hop]`` -> audio ``[B, frames * hop]``: the flows inverted from the last, row by row."""
        cond = self._condition(mel)
        for k in range(self.n_flows):  # the rows' order the training direction ends with (8 flows: unchanged)
            cond = self._permute(cond, k)
        z = self._fold(z)
        for k in reversed(range(self.n_flows)):
            z, cond = self._permute(z, k), self._permute(cond, k)
            z = self._invert_flow(self.flows[k], z, cond)
        return self._unfold(z)

    @staticmethod
    def _invert_flow(net: _CouplingNet, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        rows = [z[:, :, :1]]
        past = net.empty_past(rows[0])
        for r in range(1, z.shape[2]):
            log_s, shift, past = net.step(rows[-1], cond[:, :, r : r + 1], past)
            rows.append((z[:, :, r : r + 1] - shift) * torch.exp(-log_s))
        return torch.cat(rows, dim=2)

    def forward(self, mel: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        sigma = self.sigma if sigma is None else sigma
        z = sigma * torch.randn(mel.shape[0], mel.shape[-1] * self.hop_length, device=mel.device, dtype=mel.dtype)
        return self.flow_inverse(z, mel)

    def load_checkpoint_state(self, state: dict) -> None:
        """Our state dict, with the weight norm folded or not (either loads into either form)."""
        self.load_state_dict(adapt_weight_norm_state(state, self))


def _check_shape(hop: int, n_flows: int, n_height: int, bipartize: bool, upsample_factors: Sequence[int]) -> None:
    """The folding and the upsampling must fit the hop; the bipartition needs an even height."""
    if n_height < 2 or hop % n_height:
        raise ValueError(f"n_height {n_height} must be at least 2 and divide hop_length {hop}")
    if bipartize and (n_height % 2 or n_flows < 2):
        raise ValueError("bipartize needs an even n_height and at least 2 flows")
    product = 1
    for s in upsample_factors:
        if s < 2 or s % 2:
            raise ValueError(f"upsample factors must be even (exact length), not {s}")
        product *= s
    if product != hop:
        raise ValueError(f"upsample_factors {tuple(upsample_factors)} multiply to {product}, not hop_length {hop}")
