"""UnivNet generator (Jang et al. 2021, arXiv:2106.07889).

A noise sequence is upsampled by three blocks of location-variable
convolutions (LVC, Zeng et al. 2021, arXiv:2102.10815) whose kernels a
kernel predictor computes from the mel-spectrogram frame by frame, each LVC
output passing through a gated activation unit. The paper's authors released
no code; configurations and module names follow the widely used
mindslab-ai/univnet (``config/default_c32.yaml``, ``config/default_c16.yaml``:
noise 64, channels 32/16, strides 8, 8, 4, dilations 1, 3, 9, 27, kernel
predictor hidden 64, 100 mel bands at 24 kHz), whose generator matches the
paper's parameter counts, so its ``model_g`` state dicts load unchanged.
The constructor's defaults are UnivNet-c32 (``conf/vocoder/univnet_c32.yaml``,
which also gives the official parameter count and its source); ``channel_size=16``
gives UnivNet-c16.

Official checkpoints (mindslab-ai/univnet, the same repository as maum-ai/univnet:
``model/generator.py``, ``model/lvcnet.py``, ``utils/train.py``, ``inference.py``; read at
commit 9bb2b54838bb6d7ce767131cc7b8b61198bc7558): the README's UnivNet-c16 and -c32 files
(LibriTTS train-clean-360, 24 kHz, 100 bands) are training checkpoints whose ``model_g`` has our
names (``conv_pre``, ``res_stack.N.{convt_pre.1, conv_blocks.M.1, kernel_predictor.{input_conv.0,
residual_convs.M.{1,3}, kernel_conv, bias_conv}}``, ``conv_post.1``) with ``weight_g``/``weight_v``
pairs. The file carries its training YAML (``hp_str``), which :meth:`UnivNet.load_checkpoint_state`
checks against the model. A zoo config for c32 is ``univnet_c32.yaml``'s ``model`` section
(``channel_size: 16`` for c16; ``kpnet_conv_size: 1`` for checkpoints of the repository's first
weeks, ``config/legacy.yaml``) plus::

    weights:
      path: /path/to/univnet_c32.pt     # the README's Google Drive download
      sha256: ...                       # sha256sum of the file
      format: mindslab-univnet
      mel: {sample_rate: 24000, n_fft: 1024, win_length: 1024, hop_length: 256, n_mels: 100,
            f_min: 0.0, f_max: 12000.0}
      # dataset, license, provenance, published_training: see audiofootprint.vocoders.weights

The official ``Generator.inference`` appends 10 frames of ``ln(1e-5)`` silence to the mel and
cuts their samples off the output (against edge artefacts); :meth:`UnivNet.forward` does not.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import adapt_weight_norm_state, unwrap_checkpoint, weight_norm

__all__ = [
    "UNIVNET_MEL",
    "KernelPredictor",
    "LVCBlock",
    "UnivNet",
]

#: The paper's (and mindslab's) analysis: LibriTTS at 24 kHz, 100 bands up to 12 kHz.
UNIVNET_MEL = MelSettings(24000, 1024, 1024, 256, 100, 0.0, 12000.0)


class KernelPredictor(nn.Module):
    """Predicts, per mel frame, the LVC kernels and biases of one LVC block."""

    def __init__(
        self,
        cond_channels: int,
        conv_in_channels: int,
        conv_out_channels: int,
        conv_layers: int,
        conv_kernel_size: int = 3,
        kpnet_hidden_channels: int = 64,
        kpnet_conv_size: int = 3,
        kpnet_dropout: float = 0.0,
        lrelu_slope: float = 0.1,
    ):
        super().__init__()
        self.conv_in_channels = conv_in_channels
        self.conv_out_channels = conv_out_channels
        self.conv_kernel_size = conv_kernel_size
        self.conv_layers = conv_layers
        hidden = kpnet_hidden_channels
        pad = (kpnet_conv_size - 1) // 2
        self.input_conv = nn.Sequential(
            weight_norm(nn.Conv1d(cond_channels, hidden, 5, padding=2)),
            nn.LeakyReLU(lrelu_slope),
        )
        self.residual_convs = nn.ModuleList(
            nn.Sequential(
                nn.Dropout(kpnet_dropout),
                weight_norm(nn.Conv1d(hidden, hidden, kpnet_conv_size, padding=pad)),
                nn.LeakyReLU(lrelu_slope),
                weight_norm(nn.Conv1d(hidden, hidden, kpnet_conv_size, padding=pad)),
                nn.LeakyReLU(lrelu_slope),
            )
            for _ in range(3)
        )
        n_kernel = conv_in_channels * conv_out_channels * conv_kernel_size * conv_layers
        n_bias = conv_out_channels * conv_layers
        self.kernel_conv = weight_norm(nn.Conv1d(hidden, n_kernel, kpnet_conv_size, padding=pad))
        self.bias_conv = weight_norm(nn.Conv1d(hidden, n_bias, kpnet_conv_size, padding=pad))

    def forward(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``c [B, cond, L]`` -> kernels ``[B, layers, in, out, k, L]``, biases ``[B, layers, out, L]``."""
        b, _, length = c.shape
        h = self.input_conv(c)
        for block in self.residual_convs:
            h = h + block(h)
        kernels = self.kernel_conv(h).reshape(
            b, self.conv_layers, self.conv_in_channels, self.conv_out_channels, self.conv_kernel_size, length
        )
        bias = self.bias_conv(h).reshape(b, self.conv_layers, self.conv_out_channels, length)
        return kernels, bias


def location_variable_conv(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor, hop: int) -> torch.Tensor:
    """Convolve each ``hop``-sample segment of ``x`` with its own kernel.

    x ``[B, Cin, L * hop]``, kernel ``[B, Cin, Cout, K, L]``, bias ``[B, Cout, L]``
    -> ``[B, Cout, L * hop]``; 'same' zero padding, dilation 1 (as in UnivNet,
    where the dilation lives in the convolution before the LVC).
    """
    b, c_in, t = x.shape
    _, _, c_out, k, length = kernel.shape
    if t != length * hop:
        raise ValueError(f"input length {t} != frames {length} * hop {hop}")
    pad = (k - 1) // 2
    x = F.pad(x, (pad, pad))
    # Windows of hop + k - 1 samples, one per frame: [B, Cin, L, hop + k - 1].
    windows = x.unfold(2, hop + k - 1, hop)
    # Taps: [B, Cin, L, K, hop]
    taps = torch.stack([windows[..., j : j + hop] for j in range(k)], dim=3)
    out = torch.einsum("bilkt,biokl->bolt", taps, kernel) + bias.unsqueeze(-1)
    return out.reshape(b, c_out, t)


class LVCBlock(nn.Module):
    """Upsample by ``stride``, then ``len(dilations)`` x (dilated conv, LVC, gated residual)."""

    def __init__(
        self,
        in_channels: int,
        cond_channels: int,
        stride: int,
        dilations: Sequence[int] = (1, 3, 9, 27),
        lrelu_slope: float = 0.2,
        conv_kernel_size: int = 3,
        cond_hop_length: int = 256,
        kpnet_hidden_channels: int = 64,
        kpnet_conv_size: int = 3,
        kpnet_dropout: float = 0.0,
    ):
        super().__init__()
        self.cond_hop_length = cond_hop_length
        self.in_channels = in_channels
        self.kernel_predictor = KernelPredictor(
            cond_channels,
            in_channels,
            2 * in_channels,
            len(dilations),
            conv_kernel_size,
            kpnet_hidden_channels,
            kpnet_conv_size,
            kpnet_dropout,
            lrelu_slope,
        )
        self.convt_pre = nn.Sequential(
            nn.LeakyReLU(lrelu_slope),
            weight_norm(
                nn.ConvTranspose1d(
                    in_channels,
                    in_channels,
                    2 * stride,
                    stride=stride,
                    padding=stride // 2 + stride % 2,
                    output_padding=stride % 2,
                )
            ),
        )
        self.conv_blocks = nn.ModuleList(
            nn.Sequential(
                nn.LeakyReLU(lrelu_slope),
                weight_norm(
                    nn.Conv1d(
                        in_channels,
                        in_channels,
                        conv_kernel_size,
                        padding=d * (conv_kernel_size - 1) // 2,
                        dilation=d,
                    )
                ),
                nn.LeakyReLU(lrelu_slope),
            )
            for d in dilations
        )

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = self.convt_pre(x)
        kernels, bias = self.kernel_predictor(c)
        ch = self.in_channels
        for i, conv in enumerate(self.conv_blocks):
            y = location_variable_conv(conv(x), kernels[:, i], bias[:, i], self.cond_hop_length)
            x = x + torch.sigmoid(y[:, :ch]) * torch.tanh(y[:, ch:])
        return x


class UnivNet(Vocoder):
    """UnivNet generator. ``forward(mel, noise=None)``; noise ~ N(0, 1) when omitted."""

    feature_convention = "hifigan"  # ln(clamp(mel_magnitude, 1e-5)), Slaney mel (as HiFi-GAN)

    def __init__(
        self,
        noise_dim: int = 64,
        channel_size: int = 32,
        dilations: Sequence[int] = (1, 3, 9, 27),
        strides: Sequence[int] = (8, 8, 4),
        lrelu_slope: float = 0.2,
        kpnet_conv_size: int = 3,
        kpnet_hidden_channels: int = 64,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, UNIVNET_MEL))
        strides = [int(s) for s in strides]
        dilations = [int(d) for d in dilations]
        if math.prod(strides) != self.mel.hop_length:
            raise ValueError(f"prod(strides)={math.prod(strides)} != hop_length={self.mel.hop_length}")
        self.noise_dim = int(noise_dim)
        channel_size = int(channel_size)
        self.res_stack = nn.ModuleList()
        hop = 1
        for s in strides:
            hop *= s
            self.res_stack.append(
                LVCBlock(
                    channel_size,
                    self.mel.n_mels,
                    stride=s,
                    dilations=dilations,
                    lrelu_slope=float(lrelu_slope),
                    cond_hop_length=hop,
                    kpnet_hidden_channels=int(kpnet_hidden_channels),
                    kpnet_conv_size=int(kpnet_conv_size),
                )
            )
        self.conv_pre = weight_norm(nn.Conv1d(self.noise_dim, channel_size, 7, padding=3, padding_mode="reflect"))
        self.conv_post = nn.Sequential(
            nn.LeakyReLU(float(lrelu_slope)),
            weight_norm(nn.Conv1d(channel_size, 1, 7, padding=3, padding_mode="reflect")),
            nn.Tanh(),
        )

    def forward(self, mel: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(mel.shape[0], self.noise_dim, mel.shape[2], device=mel.device, dtype=mel.dtype)
        z = self.conv_pre(noise)
        for block in self.res_stack:
            z = block(z, mel)
        return self.conv_post(z).squeeze(1)

    def load_checkpoint_state(self, state: dict) -> None:
        """Load our checkpoint or mindslab's (maum-ai's) ``{"model_g": ..., "hp_str": ...}``.

        mindslab-ai/univnet ``utils/train.py`` saves ``{"model_g", "model_d", "optim_g",
        "optim_d", "step", "epoch", "hp_str", "githash"}``, ``model_g`` with legacy weight-norm
        keys; ``{"generator": ...}`` and a bare state dict load too. A ``module.`` prefix
        (a generator saved while wrapped in ``DistributedDataParallel``) is removed. The
        training configuration in the file (``hp_str``, the YAML text; or a mapping ``hp``) is
        compared with this model first (:meth:`check_official_hp`).
        """
        hp = state.get("hp_str", state.get("hp"))
        if hp is not None:
            self.check_official_hp(hp)
        state = _strip_prefix(dict(unwrap_checkpoint(state, ("model_g",), ("generator",))), "module.")
        self.load_state_dict(adapt_weight_norm_state(state, self))

    def check_official_hp(self, hp: str | Mapping) -> None:
        """Compare mindslab's configuration (``config/default_c32.yaml`` keys: ``gen.*``,
        ``audio.n_mel_channels``, ``audio.hop_length``) with this model; what the weights alone
        cannot reveal (dilations, leaky-ReLU slope) or would load wrongly raises
        :class:`ValueError` naming our YAML key. An unreadable ``hp_str`` is ignored."""
        if isinstance(hp, str):
            import yaml

            try:
                hp = yaml.safe_load(hp)
            except yaml.YAMLError:
                return
        if not isinstance(hp, Mapping):
            return
        gen = hp.get("gen") or {}
        audio = hp.get("audio") or {}
        first = self.res_stack[0]
        ours = {
            "gen.noise_dim": ("noise_dim", self.noise_dim, gen.get("noise_dim")),
            "gen.channel_size": ("channel_size", first.in_channels, gen.get("channel_size")),
            "gen.strides": ("strides", [b.convt_pre[1].stride[0] for b in self.res_stack], gen.get("strides")),
            "gen.dilations": ("dilations", [c[1].dilation[0] for c in first.conv_blocks], gen.get("dilations")),
            "gen.lReLU_slope": ("lrelu_slope", first.convt_pre[0].negative_slope, gen.get("lReLU_slope")),
            "gen.kpnet_conv_size": ("kpnet_conv_size", first.kernel_predictor.kernel_conv.kernel_size[0],
                                    gen.get("kpnet_conv_size")),
            "audio.n_mel_channels": ("mel.n_mels", self.mel.n_mels, audio.get("n_mel_channels")),
            "audio.hop_length": ("mel.hop_length", self.mel.hop_length, audio.get("hop_length")),
        }
        for key, (yaml_key, value, theirs) in ours.items():
            if theirs is None:
                continue
            if isinstance(value, list):
                same = [int(t) for t in theirs] == value
            elif isinstance(value, float):
                same = math.isclose(float(theirs), value)
            else:
                same = int(theirs) == value
            if not same:
                raise ValueError(f"the checkpoint was trained with {key}={theirs}, this model has {yaml_key}="
                                 f"{value}: build it with {yaml_key}: {theirs}")


def _strip_prefix(state: dict, prefix: str) -> dict:
    """``state`` without ``prefix`` on its keys, if every key has it (a ``DataParallel`` save)."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return state
