"""Parallel WaveGAN generator (Yamamoto, Song & Kim, arXiv 1910.11480).

A non-causal, non-autoregressive WaveNet that turns Gaussian noise into a waveform,
conditioned on a mel-spectrogram that is first upsampled to the sample rate by a
"conv-in + upsampling" network (a 1-D convolution over +-``aux_context_window`` frames,
then per scale nearest-neighbour stretching followed by a [1 x (2s+1)] 2-D smoothing
convolution).

Official configuration reproduced (the constructor's defaults; the zoo entry, with the official
parameter count and its source, is ``conf/vocoder/parallel_wavegan.yaml``): kan-bayashi/ParallelWaveGAN,
``egs/ljspeech/voc1/conf/parallel_wavegan.v1.yaml`` (30 layers in 3 dilation cycles,
residual 64 / gate 128 / skip 64 channels, kernel 3, ``ConvInUpsampleNetwork`` with
scales 4-4-4-4, aux context window 2; 22.05 kHz, FFT 1024, hop 256, 80 mels 80-7600 Hz).

Input convention: the model takes the un-normalised log10 mel magnitude (the ``"log10"``
convention of :mod:`audiofootprint.features`: ``log10(max(mel, 1e-10))``, Slaney mel filters, as the
toolkit's ``logmelfilterbank``). The official recipe z-normalises every band with the training set's
statistics (``stats.h5``: ``(x - mean) / scale``) before the generator; a model trained here does
not, and has no statistics. Official weights need them: :meth:`~ToolkitCheckpointMixin.load_stats`
(or :meth:`~ToolkitCheckpointMixin.load_companion_files`, which finds the ``stats.h5`` beside the
checkpoint as the toolkit's download folders have it) stores them as the buffers ``mean`` and
``scale``, and ``forward`` then normalises its input itself, so ``model(features)`` stays right.
Without statistics the buffers are ``None``, absent from the state dict, and nothing is applied.

The module is the *inference* graph: weight normalisation (used for training) is
folded into plain weights, as the official decoding script does with
``remove_weight_norm``. :meth:`ParallelWaveGAN.load_checkpoint_state` reads the official
checkpoint (``checkpoint-NNNNsteps.pkl``: ``{"model": {"generator": ..., "discriminator": ...},
"optimizer": ..., "steps": ...}``, generator keys ``first_conv``, ``upsample_net.conv_in``,
``upsample_net.upsample.up_layers.N``, ``conv_layers.N.{conv,conv1x1_aux,conv1x1_out,conv1x1_skip}``,
``last_conv_layers.{1,3}``, all weight-normed: ``weight_g``/``weight_v``), renames and folds it.
Checked against kan-bayashi/ParallelWaveGAN at commit 86740373ec609cb9fb192d472d2aea125041491a
(``parallel_wavegan/models/parallel_wavegan.py``, ``layers/upsample.py``, ``layers/residual_block.py``,
``utils/utils.py`` ``load_model``).

This module also holds what the three families of that toolkit (Parallel WaveGAN, and the MelGAN
and Multi-band MelGAN generators of :mod:`.melgan`) share: reading ``stats.h5``/``stats.npy``
(:func:`read_stats`) and the companion files of a checkpoint (:class:`ToolkitCheckpointMixin`).
"""
from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audiofootprint.failures import first_line

from .base import MelSettings, Vocoder, resolve_mel
from .layers import fold_weight_norm, unwrap_checkpoint

PWG_LJSPEECH_MEL = MelSettings(sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256,
                               n_mels=80, f_min=80.0, f_max=7600.0)


class _GatedResidualBlock(nn.Module):
    """Dilated conv + mel conditioning, tanh*sigmoid gate, residual and skip outputs."""

    def __init__(self, residual: int, gate: int, skip: int, aux: int, kernel_size: int,
                 dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(residual, gate, kernel_size, dilation=dilation,
                              padding=(kernel_size - 1) // 2 * dilation)
        self.conv1x1_aux = nn.Conv1d(aux, gate, 1, bias=False)
        self.conv1x1_out = nn.Conv1d(gate // 2, residual, 1)
        self.conv1x1_skip = nn.Conv1d(gate // 2, skip, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x) + self.conv1x1_aux(cond)
        filt, gate = h.chunk(2, dim=1)
        h = torch.tanh(filt) * torch.sigmoid(gate)
        return (self.conv1x1_out(h) + x) * math.sqrt(0.5), self.conv1x1_skip(h)


class _ConvInUpsampler(nn.Module):
    """Context convolution over mel frames, then nearest stretch + smoothing per scale."""

    def __init__(self, n_mels: int, aux_context_window: int, scales: list[int]):
        super().__init__()
        self.context = aux_context_window
        self.conv_in = nn.Conv1d(n_mels, n_mels, 2 * aux_context_window + 1, bias=False)
        self.scales = [int(s) for s in scales]
        self.smooth = nn.ModuleList(
            nn.Conv2d(1, 1, (1, 2 * s + 1), padding=(0, s), bias=False) for s in self.scales
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        # replicate-pad so that the valid context convolution keeps the frame count
        c = F.pad(mel, (self.context, self.context), mode="replicate")
        c = self.conv_in(c).unsqueeze(1)  # [B, 1, n_mels, T]
        for scale, conv in zip(self.scales, self.smooth):
            c = conv(torch.repeat_interleave(c, scale, dim=-1))
        return c.squeeze(1)


# ---------------------------------------------------------------------------
# kan-bayashi/ParallelWaveGAN toolkit: feature statistics and companion files
# ---------------------------------------------------------------------------

#: The toolkit's names of the feature statistics (``compute_statistics.py``; a StandardScaler's
#: ``mean_`` and ``scale_``), as datasets of ``stats.h5`` and as generator buffers.
STATS_KEYS = ("mean", "scale")


def read_stats(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, scale)`` per mel band (float32) from a toolkit statistics file.

    ``stats.h5`` holds datasets ``mean`` and ``scale`` (read with h5py, imported only here);
    ``stats.npy`` is an array ``[2, n_mels]``, mean then scale (the toolkit's ``register_stats``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature statistics {path} not found")
    if path.suffix == ".h5":
        try:
            import h5py
        except ImportError:  # pragma: no cover - h5py is pinned in the lock
            raise ImportError(f"reading {path} needs h5py (pip install h5py)") from None
        with h5py.File(path, "r") as handle:
            missing = [name for name in STATS_KEYS if name not in handle]
            if missing:
                raise ValueError(f"{path}: no dataset {', '.join(map(repr, missing))}; a toolkit stats.h5 "
                                 f"has {' and '.join(map(repr, STATS_KEYS))} (found: {', '.join(handle) or 'none'})")
            mean, scale = (np.asarray(handle[name][()]).reshape(-1) for name in STATS_KEYS)
    elif path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim < 1 or array.shape[0] != 2:
            raise ValueError(f"{path}: expected an array [2, n_mels] (mean, then scale), got shape {array.shape}")
        mean, scale = array[0].reshape(-1), array[1].reshape(-1)
    else:
        raise ValueError(f"{path}: feature statistics are a .h5 (datasets mean, scale) or a .npy ([2, n_mels]) file")
    if mean.shape != scale.shape:
        raise ValueError(f"{path}: mean has {mean.size} values, scale {scale.size}")
    return (torch.from_numpy(np.array(mean, dtype=np.float32)),
            torch.from_numpy(np.array(scale, dtype=np.float32)))


def _version(text) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", str(text))[:3])


def read_toolkit_config(path: Path) -> dict | None:
    """The toolkit's ``config.yml`` (``yaml.safe_load``), or None when absent or not plain YAML."""
    if not path.is_file():
        return None
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        warnings.warn(f"{path} is not plain YAML ({first_line(error)}); it is ignored", stacklevel=3)
        return None
    return config if isinstance(config, dict) else None


def toolkit_mel(config: Mapping, default: MelSettings) -> MelSettings:
    """The analysis a toolkit ``config.yml`` trained with (``sampling_rate``, ``fft_size``, ...)."""
    fields = {"sampling_rate": "sample_rate", "fft_size": "n_fft", "hop_size": "hop_length",
              "win_length": "win_length", "num_mels": "n_mels", "fmin": "f_min", "fmax": "f_max"}
    changes = {ours: config[theirs] for theirs, ours in fields.items() if theirs in config}
    if "win_length" in changes and changes["win_length"] is None:  # librosa: the FFT size
        changes["win_length"] = changes.get("n_fft", default.n_fft)
    if "f_min" in changes:
        changes["f_min"] = float(changes["f_min"] or 0.0)
    if changes.get("f_max") is not None:
        changes["f_max"] = float(changes["f_max"])
    for key in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels"):
        if key in changes:
            changes[key] = int(changes[key])
    return dataclasses.replace(default, **changes)


class ToolkitCheckpointMixin:
    """What the kan-bayashi toolkit's generators share beyond their weights (a mixin of a Vocoder).

    * The feature statistics: buffers ``mean`` and ``scale`` (``None`` until loaded, and then not in
      the state dict) and :meth:`normalize_features`, which every ``forward`` applies first.
    * :meth:`load_companion_files`: the ``stats.h5`` (or ``stats.npy``) and ``config.yml`` that sit
      beside an official checkpoint.
    """

    #: ``generator_type`` values of a toolkit ``config.yml`` that this class reads.
    _toolkit_generator_types: tuple[str, ...] = ()

    def _init_feature_stats(self) -> None:
        self.register_buffer("mean", None)
        self.register_buffer("scale", None)

    @property
    def has_feature_stats(self) -> bool:
        """Whether official feature statistics are loaded (and applied by ``forward``)."""
        return self.mean is not None

    def set_feature_stats(self, mean: torch.Tensor | None, scale: torch.Tensor | None) -> None:
        """Store (or, with ``None``, remove) the per-band statistics ``forward`` normalises with."""
        if mean is None or scale is None:
            if not (mean is None and scale is None):
                raise ValueError("give both mean and scale, or neither")
            self.mean = self.scale = None
            return
        mean = torch.as_tensor(mean).detach().reshape(-1).float()
        scale = torch.as_tensor(scale).detach().reshape(-1).float()
        n_mels = self.mel.n_mels
        if mean.numel() != n_mels or scale.numel() != n_mels:
            raise ValueError(f"feature statistics have {mean.numel()} mean and {scale.numel()} scale values; "
                             f"the model takes {n_mels} mel bands")
        if not (torch.isfinite(mean).all() and torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("feature statistics must be finite, with every scale > 0")
        device = next(self.parameters()).device
        self.mean, self.scale = mean.to(device), scale.to(device)

    def load_stats(self, path: str | Path):
        """Load ``stats.h5`` / ``stats.npy`` (:func:`read_stats`); ``forward`` then z-normalises. Returns self."""
        mean, scale = read_stats(path)
        try:
            self.set_feature_stats(mean, scale)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        return self

    def normalize_features(self, mel: torch.Tensor) -> torch.Tensor:
        """``(mel - mean) / scale`` per band when statistics are loaded; otherwise ``mel`` itself."""
        if self.mean is None:
            return mel
        return (mel - self.mean.to(mel.dtype).unsqueeze(-1)) / self.scale.to(mel.dtype).unsqueeze(-1)

    def _load_weights(self, state: Mapping, load) -> None:
        """``load(state)`` (a state dict loader) with ``mean``/``scale`` taken out of ``state``: those
        (left by the toolkit's ``register_stats``, or by our own checkpoints) become the model's
        statistics. New weights without statistics leave the model without: read the stats after
        the checkpoint (:meth:`load_companion_files`, :meth:`load_stats`), as the toolkit does."""
        state = dict(state)
        found = [state.pop(key) for key in STATS_KEYS if key in state]
        if len(found) == 1:
            raise KeyError("a checkpoint with only one of the feature statistics mean and scale")
        kept = (self.mean, self.scale)
        self.mean = self.scale = None  # the buffers are not in the state dict while None
        try:
            load(state)
        except BaseException:
            self.mean, self.scale = kept
            raise
        if found:
            self.set_feature_stats(*found)

    def load_companion_files(self, checkpoint_path: str | Path, stats: str | Path | None = None):
        """Read the files beside an official checkpoint, as the toolkit's ``load_model`` does; returns self.

        * ``stats`` (an explicit ``.h5``/``.npy`` path), else ``stats.h5`` or ``stats.npy`` in the
          checkpoint's folder (the one ``config.yml``'s ``format`` names first), are the feature
          statistics :meth:`load_stats` reads. No file: the model stays as it is.
        * ``config.yml`` in that folder, when present: its ``generator_type`` must be one this class
          reads; its analysis (``sampling_rate``, ``fft_size``, ``win_length``, ``hop_size``, ``fmin``,
          ``fmax``) becomes ``self.mel`` (with a warning when that changes it; a different hop or
          band count is an error: another architecture); subclasses take more (the PQMF of
          Multi-band MelGAN).

        Calling it twice does the same as once.
        """
        checkpoint_path = Path(checkpoint_path)
        folder = checkpoint_path.parent
        config_file = folder / "config.yml"
        config = read_toolkit_config(config_file)
        if config is not None:
            self._apply_toolkit_config(config, config_file)
        if stats is None:
            order = ("stats.npy", "stats.h5") if config and config.get("format") == "npy" else ("stats.h5", "stats.npy")
            stats = next((folder / name for name in order if (folder / name).is_file()), None)
        if stats is not None:
            self.load_stats(stats)
        return self

    def _apply_toolkit_config(self, config: Mapping, source: Path) -> None:
        generator_type = config.get("generator_type", "ParallelWaveGANGenerator")  # the toolkit's default
        if self._toolkit_generator_types and generator_type not in self._toolkit_generator_types:
            raise ValueError(f"{source}: generator_type {generator_type!r} is not read by {type(self).__name__} "
                             f"(it reads {', '.join(self._toolkit_generator_types)})")
        mel = toolkit_mel(config, self.mel)
        if (mel.hop_length, mel.n_mels) != (self.mel.hop_length, self.mel.n_mels):
            raise ValueError(f"{source}: hop_size {mel.hop_length} and num_mels {mel.n_mels} do not fit this "
                             f"{type(self).__name__} (hop {self.mel.hop_length}, {self.mel.n_mels} mels): build it "
                             "with that config's generator_params and mel settings")
        if mel != self.mel:
            changed = ", ".join(f"{k} {getattr(self.mel, k)} -> {v}" for k, v in mel.as_dict().items()
                                if getattr(self.mel, k) != v)
            warnings.warn(f"{source}: the checkpoint was trained with another analysis; {type(self).__name__}.mel "
                          f"now follows it ({changed})", stacklevel=3)
            self.mel = mel


class ParallelWaveGAN(ToolkitCheckpointMixin, Vocoder):
    """Parallel WaveGAN generator: noise + mel -> waveform in one pass.

    ``forward`` takes the un-normalised log10 mel (``"log10"`` convention); with official statistics
    loaded (:meth:`load_stats`, :meth:`load_companion_files`) it z-normalises them first.
    """

    # log10(max(mel_magnitude, 1e-10)), Slaney mel (kan-bayashi logmelfilterbank), not z-normalised: the
    # official z-normalisation is applied inside the model when its stats are loaded
    feature_convention = "log10"
    _toolkit_generator_types = ("ParallelWaveGANGenerator",)

    def __init__(
        self,
        layers: int = 30,
        stacks: int = 3,
        residual_channels: int = 64,
        gate_channels: int = 128,
        skip_channels: int = 64,
        kernel_size: int = 3,
        aux_context_window: int = 2,
        upsample_scales: list[int] | tuple[int, ...] = (4, 4, 4, 4),
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, PWG_LJSPEECH_MEL))
        if layers % stacks:
            raise ValueError("layers must be a multiple of stacks")
        if math.prod(upsample_scales) != self.hop_length:
            raise ValueError(f"prod(upsample_scales)={math.prod(upsample_scales)} "
                             f"!= hop_length={self.hop_length}")
        n_mels = self.mel.n_mels
        per_stack = layers // stacks
        self.first_conv = nn.Conv1d(1, residual_channels, 1)
        self.upsample = _ConvInUpsampler(n_mels, aux_context_window, list(upsample_scales))
        self.blocks = nn.ModuleList(
            _GatedResidualBlock(residual_channels, gate_channels, skip_channels, n_mels,
                                kernel_size, 2 ** (i % per_stack))
            for i in range(layers)
        )
        self.post1 = nn.Conv1d(skip_channels, skip_channels, 1)
        self.post2 = nn.Conv1d(skip_channels, 1, 1)
        self._init_feature_stats()

    def forward(self, mel: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        mel = self.normalize_features(mel)
        cond = self.upsample(mel)  # [B, n_mels, T*hop]
        if noise is None:
            noise = torch.randn(mel.shape[0], 1, cond.shape[-1], device=mel.device,
                                dtype=mel.dtype)
        x = self.first_conv(noise.view(mel.shape[0], 1, -1))
        skips = torch.zeros((), device=mel.device, dtype=mel.dtype)
        for block in self.blocks:
            x, s = block(x, cond)
            skips = skips + s
        h = F.relu(skips * math.sqrt(1.0 / len(self.blocks)))
        return self.post2(F.relu(self.post1(h))).squeeze(1)


    # -- checkpoint layout -------------------------------------------------------
    def load_checkpoint_state(self, state: dict) -> None:
        """Load our own state dict, or an official kan-bayashi generator checkpoint.

        The official file is ``{"model": {"generator": ...}, ...}`` (a bare generator state dict
        loads too); weight-norm pairs are folded, keys renamed (:func:`rename_official`). Statistics
        found in the state (``mean``/``scale``, as the toolkit's ``register_stats`` leaves them)
        become the model's; a state without them leaves the model without statistics.
        """
        state = unwrap_checkpoint(state, ("model", "generator"), ("generator",), ("model",))
        self._load_weights(_as_float(_strip_prefix(state)), self._load_generator)

    def _load_generator(self, state: dict) -> None:
        state = fold_weight_norm(state)
        if any(k.startswith(("conv_layers.", "upsample_net.", "last_conv_layers.")) for k in state):
            state = rename_official(state)
        self.load_state_dict(state)


def _strip_prefix(state: Mapping, prefix: str = "module.") -> dict:
    """Keys without the ``module.`` of a (Distributed)DataParallel wrapper."""
    return {k.removeprefix(prefix): v for k, v in state.items()}


def _as_float(state: Mapping) -> dict:
    """Half-precision tensors in float32 (weight norm is folded in float32)."""
    return {k: v.float() if isinstance(v, torch.Tensor) and v.dtype in (torch.float16, torch.bfloat16) else v
            for k, v in state.items()}


def rename_official(state: Mapping) -> dict:
    """Map (folded) kan-bayashi ``ParallelWaveGANGenerator`` keys onto this module's keys.

    ``first_conv`` -> ``first_conv``; ``upsample_net.conv_in`` -> ``upsample.conv_in``;
    ``upsample_net.upsample.up_layers.N`` (``Stretch2d``, ``Conv2d`` alternating: the convolutions at
    N = 1, 3, 5, ...) -> ``upsample.smooth.K``; ``conv_layers.N`` -> ``blocks.N``;
    ``last_conv_layers.1`` / ``.3`` (after ReLUs at 0 and 2) -> ``post1`` / ``post2``. An upsampling
    network with an activation after each convolution (``upsample_params.nonlinear_activation``; not
    in the official recipes) is another architecture and raises ``ValueError``.
    """
    up = re.compile(r"^upsample_net\.upsample\.up_layers\.(\d+)\.(.*)")
    conv_positions = sorted({int(m.group(1)) for k in state if (m := up.match(k))})
    if conv_positions != [2 * i + 1 for i in range(len(conv_positions))]:
        raise ValueError(f"upsample_net.upsample.up_layers has convolutions at {conv_positions}, not at 1, 3, 5, ...: "
                         "an upsampling network with activations (or another one), which ParallelWaveGAN does "
                         "not build")
    out = {}
    for key, value in state.items():
        new = re.sub(r"^conv_layers\.", "blocks.", key)
        new = re.sub(r"^upsample_net\.conv_in\.", "upsample.conv_in.", new)
        m = up.match(new)
        if m:
            new = f"upsample.smooth.{int(m.group(1)) // 2}.{m.group(2)}"
        new = re.sub(r"^last_conv_layers\.1\.", "post1.", new)
        new = re.sub(r"^last_conv_layers\.3\.", "post2.", new)
        out[new] = value
    return out
