"""Vocos (Siuzdak, arXiv 2306.00814).

A frame-rate vocoder: a ConvNeXt backbone (1-D, depthwise kernel 7, LayerNorm, GELU MLP,
layer scale) keeps the mel frame rate throughout; a linear head predicts, per frame, the
log-magnitude and phase of an STFT frame (``n_fft + 2`` outputs), and the waveform is
obtained by an inverse STFT. No upsampling layers, so it is cheap per sample.

Official configuration reproduced (the constructor's defaults; the zoo entry, with the official
parameter count and its source, is ``conf/vocoder/vocos.yaml``): gemelo-ai/vocos ``configs/vocos.yaml`` (the
``charactr/vocos-mel-24khz`` model): backbone input 100 mels, dim 512, intermediate 1536,
8 ConvNeXt layers, layer scale 1/8; ``ISTFTHead`` n_fft 1024, hop 256; 24 kHz.

Inverse STFT padding: ``"same"`` (our default) trims ``(win - hop) / 2`` samples from both
ends of the overlap-added signal, which yields exactly ``frames * hop`` samples; the
window-envelope normalisation is applied only where it is evaluated, so the NOLA problem of
``torch.istft(center=False)`` does not arise. ``"center"`` uses ``torch.istft(center=True)``
with ``length=frames * hop``. (``configs/vocos.yaml`` trains with ``padding: center``, for
features and head alike; both conventions have the same parameters and nearly the same
cost.)

Input convention (``MelSpectrogramFeatures``): torchaudio ``MelSpectrogram`` (power 1, HTK
mel scale, no filter normalisation, 0 Hz to sr/2), natural log of ``clamp(mel, 1e-7)``.

Official checkpoints (gemelo-ai/vocos ``vocos/pretrained.py``, ``models.py``, ``modules.py``,
``heads.py``, ``spectral_ops.py``, ``feature_extractors.py``; read at commit
c859e3b7b534f3776a357983029d34170ddd6fc3): ``Vocos.from_pretrained`` builds the model from the
Hugging Face repository's ``config.yaml`` and loads ``pytorch_model.bin``, the state dict of
``Vocos(feature_extractor, backbone, head)``. Our module names are the official ones
(``backbone.embed``, ``backbone.norm``, ``backbone.convnext.N.{dwconv, norm, pwconv1, pwconv2,
gamma}``, ``backbone.final_layer_norm``, ``head.out``); the official file also holds buffers we
rebuild (``feature_extractor.mel_spec.spectrogram.window``, ``feature_extractor.mel_spec.mel_scale.fb``,
``head.istft.window``), which :meth:`Vocos.load_checkpoint_state` checks against the model's
settings and drops. The weights file does not say the architecture: the zoo config must match
``config.yaml``. :func:`official_config_kwargs` turns a ``config.yaml`` into our ``model``
arguments; for ``charactr/vocos-mel-24khz`` (24 kHz, n_fft 1024, hop 256, 100 mels, dim 512,
intermediate 1536, 8 layers) they are ``conf/vocoder/vocos.yaml``'s, so its config is that
``model`` section plus::

    weights:
      path: /path/to/vocos-mel-24khz/pytorch_model.bin
      sha256: ...                       # sha256sum pytorch_model.bin
      format: charactr-vocos
      mel: {sample_rate: 24000, n_fft: 1024, win_length: 1024, hop_length: 256, n_mels: 100,
            f_min: 0.0, f_max: null}
      # dataset, license, provenance, published_training: see audiofootprint.vocoders.weights

(keep ``padding: same``; see :func:`official_config_kwargs` for why).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import unwrap_checkpoint

VOCOS_24K_MEL = MelSettings(sample_rate=24000, n_fft=1024, win_length=1024, hop_length=256,
                            n_mels=100, f_min=0.0, f_max=None)


class _ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, C, T]
        h = self.norm(self.dwconv(x).transpose(1, 2))
        h = self.pwconv2(F.gelu(self.pwconv1(h))) * self.gamma
        return x + h.transpose(1, 2)


class _Backbone(nn.Module):
    def __init__(self, n_mels: int, dim: int, intermediate_dim: int, num_layers: int,
                 layer_scale: float | None):
        super().__init__()
        self.embed = nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        scale = layer_scale if layer_scale is not None else 1.0 / num_layers
        self.convnext = nn.ModuleList(
            _ConvNeXtBlock(dim, intermediate_dim, scale) for _ in range(num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # -> [B, T, dim]
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class _ISTFTHead(nn.Module):
    """Linear -> (log-magnitude, phase) -> complex STFT -> inverse STFT."""

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str):
        super().__init__()
        if padding not in ("same", "center"):
            raise ValueError("padding must be 'same' or 'center'")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.padding = padding
        self.out = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_mag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)  # [B, n_fft/2+1, T]
        mag = torch.exp(log_mag).clamp(max=1e2)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        frames = spec.shape[-1]
        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window,
                               center=True, length=frames * self.hop_length)
        return self._istft_same(spec)

    def _istft_same(self, spec: torch.Tensor) -> torch.Tensor:
        n_fft, hop = self.n_fft, self.hop_length
        frames = spec.shape[-1]
        trim = (n_fft - hop) // 2
        full = (frames - 1) * hop + n_fft
        chunks = torch.fft.irfft(spec, n_fft, dim=1) * self.window[None, :, None]
        # overlap-add of the windowed frames, and of the squared window for normalising
        y = F.fold(chunks, (1, full), (1, n_fft), stride=(1, hop))[:, 0, 0, trim:full - trim]
        win_sq = self.window.square()[None, :, None].expand(1, n_fft, frames)
        env = F.fold(win_sq, (1, full), (1, n_fft), stride=(1, hop))[0, 0, 0, trim:full - trim]
        return y / env.clamp_min(1e-11)


class Vocos(Vocoder):
    """Vocos mel vocoder (ConvNeXt backbone + ISTFT head)."""

    feature_convention = "vocos"  # ln(clamp(mel_magnitude, 1e-7)), HTK mel, no norm (torchaudio default)

    def __init__(
        self,
        dim: int = 512,
        intermediate_dim: int = 1536,
        num_layers: int = 8,
        n_fft: int = 1024,
        padding: str = "same",
        layer_scale_init_value: float | None = None,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, VOCOS_24K_MEL))
        if (n_fft - self.hop_length) % 2:
            raise ValueError("n_fft - hop_length must be even for 'same' padding")
        self.backbone = _Backbone(self.mel.n_mels, dim, intermediate_dim, num_layers,
                                  layer_scale_init_value)
        self.head = _ISTFTHead(dim, n_fft, self.hop_length, padding)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(mel))

    def load_checkpoint_state(self, state: dict) -> None:
        """Load our state dict or an official one.

        Official layouts: the Hugging Face ``pytorch_model.bin`` (``vocos.pretrained.Vocos``'s
        state dict: ``feature_extractor.*``, ``backbone.*``, ``head.*``) and a training
        checkpoint of ``vocos.experiment.VocosExp`` (PyTorch Lightning, ``{"state_dict": ...}``
        with the discriminators and losses beside the generator). Before they are dropped, the
        buffers we do not keep are checked against this model: the feature extractor's mel
        filterbank (``feature_extractor.mel_spec.mel_scale.fb``, ``[n_fft/2+1, n_mels]``) and
        analysis window, and the ISTFT window (``head.istft.window``); a mismatch raises
        :class:`ValueError` naming our YAML key. Vocos conditioned on EnCodec tokens
        (``vocos-encodec-24khz``: ``EncodecFeatures``, ``AdaLayerNorm``) is refused.
        """
        state = _strip_prefix(dict(unwrap_checkpoint(state, ("state_dict",))), "module.")
        if any(key.startswith(("backbone.", "head.")) for key in state):  # a full official model
            state = {k: v for k, v in state.items() if k.startswith(("backbone.", "head.", "feature_extractor."))}
        if any(key.startswith("feature_extractor.encodec.") or ".norm.scale." in key for key in state):
            raise ValueError("the checkpoint is an EnCodec-conditioned Vocos (EncodecFeatures / AdaLayerNorm, e.g. "
                             "vocos-encodec-24khz): it takes codec tokens, not a mel; only mel Vocos is supported")
        self._check_official_buffers(state)
        state = {k: v for k, v in state.items()
                 if not k.startswith("feature_extractor.") and k != "head.istft.window"}
        # layer_scale_init_value <= 0 trains without layer scale: no gamma, i.e. gamma = 1.
        for i, block in enumerate(self.backbone.convnext):
            prefix = f"backbone.convnext.{i}."
            if f"{prefix}gamma" not in state and f"{prefix}pwconv2.weight" in state:
                state[f"{prefix}gamma"] = torch.ones_like(block.gamma)
        self.load_state_dict(state)

    def _check_official_buffers(self, state: Mapping) -> None:
        m = self.mel
        fb = state.get("feature_extractor.mel_spec.mel_scale.fb")
        if fb is not None:
            if fb.shape[1] != m.n_mels:
                raise ValueError(f"the checkpoint's feature extractor has {fb.shape[1]} mel bands, this model "
                                 f"mel.n_mels={m.n_mels}: build it with mel.n_mels: {fb.shape[1]}")
            if fb.shape[0] != m.n_fft // 2 + 1:
                raise ValueError(f"the checkpoint's feature extractor has an FFT of {2 * (fb.shape[0] - 1)}, this "
                                 f"model mel.n_fft={m.n_fft}: build it with mel.n_fft: {2 * (fb.shape[0] - 1)}")
            f_max = m.f_max if m.f_max is not None else m.sample_rate / 2
            ours = torchaudio.functional.melscale_fbanks(m.n_fft // 2 + 1, m.f_min, f_max, m.n_mels, m.sample_rate,
                                                         norm=None, mel_scale="htk")
            if not torch.allclose(fb.float(), ours, atol=1e-3):
                raise ValueError(
                    "the checkpoint's mel filterbank (HTK, no normalisation, as vocos MelSpectrogramFeatures "
                    f"builds it) does not match this model's mel settings (sample_rate {m.sample_rate}, f_min "
                    f"{m.f_min}, f_max {m.f_max}): set mel to the analysis the weights were trained with")
        window = state.get("feature_extractor.mel_spec.spectrogram.window")
        if window is not None and window.shape[0] != m.win_length:
            raise ValueError(f"the checkpoint's feature extractor has a {window.shape[0]}-sample window, this model "
                             f"mel.win_length={m.win_length}: build it with mel.win_length: {window.shape[0]}")
        window = state.get("head.istft.window")
        if window is not None and window.shape[0] != self.head.n_fft:
            raise ValueError(f"the checkpoint's ISTFT head has n_fft {window.shape[0]}, this model "
                             f"n_fft={self.head.n_fft}: build it with n_fft: {window.shape[0]}")


def official_config_kwargs(config: str | Path | Mapping) -> dict:
    """Our constructor's arguments (the ``model`` section of a conf/vocoder YAML, ``mel`` included)
    for an official Vocos ``config.yaml`` (a path, its text already parsed, or a training config
    such as gemelo-ai/vocos ``configs/vocos.yaml``, whose model sits under ``model.init_args``).

    Only mel Vocos (``MelSpectrogramFeatures`` + ``VocosBackbone`` without AdaLayerNorm +
    ``ISTFTHead``) is accepted. ``padding`` is ``"same"`` whatever the official ``padding``:
    it says where the head places each frame, and this project's features (``features.py``)
    centre frame ``t`` on sample ``t * hop + hop / 2``, which is where ``"same"`` puts it (the
    official ``"center"``, with features that centre frame ``t`` on ``t * hop``, is the same
    alignment; ``"center"`` here would shift the output by half a hop). The weights are the
    same for both.
    """
    if not isinstance(config, Mapping):
        import yaml

        config = yaml.safe_load(Path(config).read_text())
    if "backbone" not in config and "model" in config:
        config = config["model"].get("init_args", config["model"])
    parts = {}
    for part, klass in (("feature_extractor", "MelSpectrogramFeatures"), ("backbone", "VocosBackbone"),
                        ("head", "ISTFTHead")):
        section = config.get(part)
        if not isinstance(section, Mapping) or "class_path" not in section:
            raise ValueError(f"not a Vocos config: no {part}.class_path")
        if str(section["class_path"]).rsplit(".", 1)[-1] != klass:
            raise ValueError(f"{part} is {section['class_path']}: only {klass} is supported (mel Vocos)")
        parts[part] = dict(section.get("init_args") or {})
    features, backbone, head = parts["feature_extractor"], parts["backbone"], parts["head"]
    if backbone.get("adanorm_num_embeddings"):
        raise ValueError("backbone.adanorm_num_embeddings is set: AdaLayerNorm (EnCodec Vocos) is not supported")
    # MelSpectrogramFeatures' and ISTFTHead's own defaults
    n_mels = int(features.get("n_mels", 100))
    hop = int(features.get("hop_length", 256))
    mel_fft = int(features.get("n_fft", 1024))
    if int(backbone["input_channels"]) != n_mels:
        raise ValueError(f"backbone.input_channels {backbone['input_channels']} != feature_extractor.n_mels {n_mels}")
    if int(head["dim"]) != int(backbone["dim"]) or int(head["hop_length"]) != hop:
        raise ValueError("head.dim / head.hop_length do not match backbone.dim / feature_extractor.hop_length")
    kwargs = {
        "dim": int(backbone["dim"]),
        "intermediate_dim": int(backbone["intermediate_dim"]),
        "num_layers": int(backbone["num_layers"]),
        "n_fft": int(head["n_fft"]),
        "padding": "same",
        "mel": {"sample_rate": int(features.get("sample_rate", 24000)), "n_fft": mel_fft, "win_length": mel_fft,
                "hop_length": hop, "n_mels": n_mels, "f_min": 0.0, "f_max": None},
    }
    if backbone.get("layer_scale_init_value") is not None:
        kwargs["layer_scale_init_value"] = float(backbone["layer_scale_init_value"])
    return kwargs


def _strip_prefix(state: dict, prefix: str) -> dict:
    """``state`` without ``prefix`` on its keys, if every key has it (a ``DataParallel`` save)."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return state

