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
layout (NVIDIA/waveglow ``glow.py`` at commit 8afb643df59265016af6bd255c7516309d675168:
``upsample``, ``WN.K.{start,in_layers.I,res_skip_layers.I,cond_layer,end}``, ``convinv.K.conv``;
``start``, ``in_layers``, ``res_skip_layers`` and ``cond_layer`` weight-normed with the legacy API,
hence ``weight_g``/``weight_v`` pairs, ``end`` and ``convinv`` plain), and
:meth:`WaveGlow.load_checkpoint_state` reads:

* ``{"model": state_dict}`` or a bare state dict in that layout (a re-saved NVIDIA/waveglow model);
* NVIDIA DeepLearningExamples checkpoints (``PyTorch/SpeechSynthesis/Tacotron2/waveglow/model.py``,
  ``entrypoints.py``: ``{"state_dict": ..., "config": ...}``, keys prefixed ``module.``, one
  ``cond_layers.I`` per WN layer instead of the fused ``cond_layer``), and the older NVIDIA/waveglow
  layouts ``convert_model.py`` updates (``cond_layers.I``; separate ``res_layers.I``/``skip_layers.I``):
  these are folded and concatenated as ``convert_model.py`` does. A ``config`` in the file that
  does not match the model's hyperparameters (the default ``WN_config`` of DeepLearningExamples'
  ``entrypoints.py`` has 512 channels, ours 256) is a ``ValueError`` saying which constructor
  arguments to use.

The original ``waveglow_256channels.pt`` pickles the whole module (``{"model": <glow.WaveGlow>}``);
``torch.load(weights_only=True)`` refuses it, and :meth:`WaveGlow.from_checkpoint` says, in one line,
how to re-save its state dict (which needs NVIDIA's code and a file one trusts).
"""
from __future__ import annotations

import io
import pickle
import pickletools
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .weights import CheckpointError
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

    feature_convention = "hifigan"  # ln(clamp(mel_magnitude, 1e-5)), Slaney mel (Tacotron 2 / HiFi-GAN)

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

    # -- checkpoint layouts -------------------------------------------------------
    def load_checkpoint_state(self, state: dict) -> None:
        """Load our state dict or an official one (see the module docstring): ``{"model": ...}``,
        ``{"state_dict": ..., "config": ...}`` or bare; ``module.`` prefixes, legacy weight-norm pairs,
        per-layer ``cond_layers`` and separate ``res_layers``/``skip_layers`` allowed."""
        if isinstance(state, Mapping) and isinstance(state.get("config"), Mapping):
            self._check_config(state["config"])
        state = unwrap_checkpoint(state, ("state_dict",), ("model",))
        state = {_strip_distributed(k): v.float() if isinstance(v, torch.Tensor) and v.dtype in (
                 torch.float16, torch.bfloat16) else v for k, v in state.items()}
        self.load_state_dict(_fuse_per_layer_convs(fold_weight_norm(state)))

    def _check_config(self, config: Mapping) -> None:
        """A DeepLearningExamples ``config`` must describe this model; else say which arguments to use."""
        wn = config.get("WN_config") if isinstance(config.get("WN_config"), Mapping) else {}
        ours = {"n_mel_channels": ("mel n_mels", self.mel.n_mels), "n_flows": ("n_flows", self.n_flows),
                "n_group": ("n_group", self.n_group), "n_early_every": ("n_early_every", self.n_early_every),
                "n_early_size": ("n_early_size", self.n_early_size)}
        wn_ours = {"n_layers": ("wn_layers", self.WN[0].n_layers), "n_channels": ("wn_channels", self.WN[0].n_channels),
                   "kernel_size": ("wn_kernel_size", self.WN[0].in_layers[0].kernel_size[0])}
        wrong = [f"{arg}={config[key]} (this model: {value})" for key, (arg, value) in ours.items()
                 if key in config and config[key] != value]
        wrong += [f"{arg}={wn[key]} (this model: {value})" for key, (arg, value) in wn_ours.items()
                  if key in wn and wn[key] != value]
        if wrong:
            raise ValueError(f"the checkpoint's config describes another WaveGlow: build it with {', '.join(wrong)}")

    def from_checkpoint(self, path, *args, **kwargs) -> "WaveGlow":
        """:meth:`Vocoder.from_checkpoint`; a file holding a pickled WaveGlow *module* (the original
        ``waveglow_256channels.pt``) is refused with a one-line :class:`CheckpointError` saying how to re-save it."""
        try:
            return super().from_checkpoint(path, *args, **kwargs)
        except (ValueError, pickle.UnpicklingError) as error:
            message = pickled_module_message(path)
            if message is None:
                raise
            raise CheckpointError(message) from error


def _strip_distributed(key: str) -> str:
    """DeepLearningExamples ``unwrap_distributed``: drop ``module.1.`` then ``module.``."""
    return key.replace("module.1.", "").replace("module.", "")


def _fuse_per_layer_convs(state: Mapping) -> dict:
    """Older layouts (folded) -> the fused one NVIDIA/waveglow ``convert_model.py`` makes.

    ``WN.K.cond_layers.I`` (one 1x1 conv per layer, DeepLearningExamples and the old glow.py) are
    concatenated in layer order into ``WN.K.cond_layer``; ``WN.K.res_layers.I`` and
    ``WN.K.skip_layers.I`` into ``WN.K.res_skip_layers.I`` (residual rows first; the last layer
    has a skip part only).
    """
    out = dict(state)
    per_layer = re.compile(r"^(WN\.\d+)\.(cond_layers|res_layers|skip_layers)\.(\d+)\.(weight|bias)$")
    groups: dict = {}
    for key in list(out):
        m = per_layer.match(key)
        if m:
            prefix, kind, index, what = m.groups()
            groups.setdefault(prefix, {}).setdefault(kind, {}).setdefault(int(index), {})[what] = out.pop(key)
    for prefix, kinds in groups.items():
        if "cond_layers" in kinds:
            layers = kinds["cond_layers"]
            for what in ("weight", "bias"):
                out[f"{prefix}.cond_layer.{what}"] = torch.cat([layers[i][what] for i in sorted(layers)])
        if "skip_layers" in kinds:
            skips, res = kinds["skip_layers"], kinds.get("res_layers", {})
            for i in sorted(skips):
                for what in ("weight", "bias"):
                    parts = ([res[i][what]] if i in res else []) + [skips[i][what]]
                    out[f"{prefix}.res_skip_layers.{i}.{what}"] = torch.cat(parts)
        elif "res_layers" in kinds:
            raise KeyError(f"{prefix}.res_layers without skip_layers")
    return out


# -- pickled modules -------------------------------------------------------------

#: Modules whose globals a weights-only checkpoint may name (containers, tensor rebuilding).
_PLAIN_PICKLE_MODULES = ("collections", "builtins", "__builtin__", "copyreg", "_codecs")


def pickled_globals(path: str | Path) -> list[str]:
    """The globals (``module.name``) a torch checkpoint's pickle refers to, read without unpickling.

    Works on the zip format (``*/data.pkl``) and on the legacy one (a few pickles in a row); an
    unreadable file gives what was found so far.
    """
    path = Path(path)
    found: list[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("data.pkl")]
                streams, pickles = [io.BytesIO(archive.read(names[0]))] if names else [], 1
        else:
            streams, pickles = [open(path, "rb")], 4  # magic, protocol, sys_info, the object
        for stream in streams:
            with stream:
                for _ in range(pickles):
                    _scan_pickle(stream, found)
    except Exception:  # noqa: BLE001 - a best-effort diagnosis of a file torch already refused
        pass
    return found


def _scan_pickle(stream, found: list[str]) -> None:
    recent: list = []  # values pushed recently (strings, else None): STACK_GLOBAL's operands
    memo: dict = {}
    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            found.append(str(arg).replace(" ", "."))
            recent.append(None)
        elif name == "STACK_GLOBAL":
            if len(recent) >= 2 and all(isinstance(x, str) for x in recent[-2:]):
                found.append(f"{recent[-2]}.{recent[-1]}")
            recent.append(None)
        elif "UNICODE" in name or "STRING" in name:
            recent.append(str(arg))
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = recent[-1] if recent else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(arg))
        elif name == "STOP":
            return
        else:
            recent.append(None)
        del recent[:-2]


def pickled_module_message(path: str | Path) -> str | None:
    """The one-line refusal of a checkpoint that pickles a module (None when it does not)."""
    names = pickled_globals(path)
    own = [n for n in names if n.split(".")[0] not in _PLAIN_PICKLE_MODULES + ("torch",)]
    modules = own or [n for n in names if n.startswith("torch.nn.modules.")]
    if not modules:
        return None
    resave = (f"python -c \"import torch; c = torch.load({str(path)!r}, map_location='cpu', weights_only=False); "
              "m = c['model'] if isinstance(c, dict) else c; "
              "torch.save({'model': m.state_dict()}, 'waveglow_state.pt')\"")
    return (f"{path} holds a pickled module ({modules[0]}; NVIDIA/waveglow's original waveglow_256channels.pt "
            "is saved so), not a state dict, and torch.load(weights_only=True) refuses it. To use it, re-save "
            f"its state dict in a checkout of NVIDIA/waveglow (glow.py importable): {resave}, then load "
            "waveglow_state.pt. Warning: weights_only=False runs code from the file: do this only with a file "
            "from a source you trust")

