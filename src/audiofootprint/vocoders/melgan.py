"""MelGAN and Multi-band MelGAN generators.

* :class:`MelGAN` - Kumar et al. 2019, arXiv:1910.06711. Official code
  descriptinc/melgan-neurips (``mel2wav/modules.py`` ``Generator``; the
  constructor's defaults are those of ``scripts/train.py``, which the released
  models used: ratios 8, 8, 2, 2, ``ngf`` 32, ``n_residual_layers`` 3; see
  ``conf/vocoder/melgan.yaml``). Submodules keep the official names
  (``model.N``, ``block``, ``shortcut``) so the released ``best_netG.pt``-style
  bare state dicts load unchanged.
* :class:`MultiBandMelGAN` - Yang et al. 2020, arXiv:2005.05106. The paper
  released no code; the reference implementation is kan-bayashi/
  ParallelWaveGAN (``MelGANGenerator`` + ``PQMF``) with its LJSpeech config
  ``egs/ljspeech/voc1/conf/multi_band_melgan.v2.yaml`` (4 bands, upsampling
  8, 4, 2, 384 channels, 4 residual stacks; the constructor's defaults, see
  ``conf/vocoder/multiband_melgan.yaml``). Submodules keep that layout
  (``melgan.N``, ``stack``, ``skip_layer``). ``forward`` runs the PQMF
  synthesis bank (:mod:`.pqmf`) and returns the full-band waveform.

Official parameter counts and their sources are in those YAML files.

Official checkpoints (checked against kan-bayashi/ParallelWaveGAN at commit
86740373ec609cb9fb192d472d2aea125041491a, ``parallel_wavegan/models/melgan.py``,
``layers/residual_stack.py``, ``layers/pqmf.py``, ``utils/utils.py`` ``load_model``, and
descriptinc/melgan-neurips ``mel2wav/modules.py``):

* descript MelGAN: a bare generator state dict (``best_netG.pt``; ``model.N.*``, legacy
  ``weight_g``/``weight_v``) loads into :class:`MelGAN` as it is. Its input is the ``"melgan"``
  convention (``log10(clamp(mel, 1e-5))``, 0 Hz to Nyquist).
* kan-bayashi toolkit ``checkpoint-NNNNsteps.pkl`` (``{"model": {"generator": ...}, "optimizer": ...,
  "steps": ...}``). Its ``MelGANGenerator`` is one ``Sequential`` ``melgan.N`` of the same layers as
  the descript generator (``ResidualStack`` ``stack.K``/``skip_layer`` for ``ResnetBlock``
  ``block.K``/``shortcut``), every convolution weight-normed. With ``out_channels=4`` plus the toolkit's
  PQMF it is Multi-band MelGAN (the toolkit has no separate class: ``generator_type`` stays
  ``"MelGANGenerator"``): that file loads into :class:`MultiBandMelGAN`; one with ``out_channels=1``
  (``melgan.v1``) loads into :class:`MelGAN`, whose keys are renamed. Such a MelGAN takes the
  toolkit's features, not descript's: the loaded model records ``feature_convention = "log10"``
  (consulted first by :func:`audiofootprint.features.convention_of`), and its band limits are the
  recipe's (``fmin``/``fmax`` of its ``config.yml``, 80-7600 Hz for LJSpeech): give them as ``mel``,
  or let :meth:`~.parallel_wavegan.ToolkitCheckpointMixin.load_companion_files` read them from the
  ``config.yml`` beside the checkpoint. Both toolkit models z-normalise their input with the
  recipe's ``stats.h5`` (see :mod:`.parallel_wavegan`): loaded statistics are applied inside
  ``forward``, so the model still takes the un-normalised ``"log10"`` features.
"""
from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from .base import MelSettings, Vocoder, resolve_mel
from .layers import (
    adapt_weight_norm_state,
    to_legacy_weight_norm_keys,
    unwrap_checkpoint,
    wn_conv1d,
    wn_conv_transpose1d,
)
from .parallel_wavegan import ToolkitCheckpointMixin, _as_float, _strip_prefix, _version
from .pqmf import PQMF

__all__ = [
    "MELGAN_MEL",
    "MULTIBAND_MELGAN_MEL",
    "MelGAN",
    "MultiBandMelGAN",
]

#: descriptinc/melgan-neurips Audio2Mel defaults (fmax None = Nyquist).
MELGAN_MEL = MelSettings(22050, 1024, 1024, 256, 80, 0.0, None)

#: multi_band_melgan.v2.yaml (LJSpeech) feature settings.
MULTIBAND_MELGAN_MEL = MelSettings(22050, 1024, 1024, 256, 80, 80.0, 7600.0)

LRELU_SLOPE = 0.2

#: The MelGAN initialisation: weights drawn from N(0, 0.02).
INIT_STD = 0.02


def _wn_conv(in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1) -> nn.Module:
    """Unpadded weight-normed conv (padding is a separate ReflectionPad1d layer)."""
    return wn_conv1d(in_ch, out_ch, kernel_size, dilation, padding=0, std=INIT_STD)


def _wn_upsample(in_ch: int, out_ch: int, r: int) -> nn.Module:
    """Transposed conv, kernel 2r / stride r, giving exactly ``r`` x the input length."""
    return wn_conv_transpose1d(
        in_ch, out_ch, 2 * r, r, padding=r // 2 + r % 2, output_padding=r % 2, std=INIT_STD
    )


class ResnetBlock(nn.Module):
    """descript MelGAN residual unit: dilated k3 conv + 1x1 conv, 1x1 shortcut."""

    def __init__(self, dim: int, dilation: int = 1, kernel_size: int = 3):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(LRELU_SLOPE),
            nn.ReflectionPad1d((kernel_size - 1) // 2 * dilation),
            _wn_conv(dim, dim, kernel_size, dilation),
            nn.LeakyReLU(LRELU_SLOPE),
            _wn_conv(dim, dim, 1),
        )
        self.shortcut = _wn_conv(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class ResidualStack(nn.Module):
    """ParallelWaveGAN's name for the same unit (``stack`` + ``skip_layer``)."""

    def __init__(self, dim: int, dilation: int = 1, kernel_size: int = 3):
        super().__init__()
        self.stack = nn.Sequential(
            nn.LeakyReLU(LRELU_SLOPE),
            nn.ReflectionPad1d((kernel_size - 1) // 2 * dilation),
            _wn_conv(dim, dim, kernel_size, dilation),
            nn.LeakyReLU(LRELU_SLOPE),
            _wn_conv(dim, dim, 1),
        )
        self.skip_layer = _wn_conv(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(x) + self.skip_layer(x)


def _melgan_layers(
    in_ch: int,
    out_ch: int,
    channels: int,
    scales: Sequence[int],
    n_res: int,
    kernel_size: int,
    stack_kernel_size: int,
    unit: type[nn.Module],
) -> list[nn.Module]:
    """The MelGAN generator as a flat layer list (the official Sequential order)."""
    if kernel_size % 2 == 0:
        raise ValueError("kernel_size must be odd")
    if channels % (2 ** len(scales)):
        raise ValueError("channels must be divisible by 2**len(scales)")
    layers: list[nn.Module] = [
        nn.ReflectionPad1d((kernel_size - 1) // 2),
        _wn_conv(in_ch, channels, kernel_size),
    ]
    ch = channels
    for r in scales:
        layers += [nn.LeakyReLU(LRELU_SLOPE), _wn_upsample(ch, ch // 2, int(r))]
        ch //= 2
        layers += [unit(ch, stack_kernel_size**j, stack_kernel_size) for j in range(n_res)]
    layers += [
        nn.LeakyReLU(LRELU_SLOPE),
        nn.ReflectionPad1d((kernel_size - 1) // 2),
        _wn_conv(ch, out_ch, kernel_size),
        nn.Tanh(),
    ]
    return layers


def _descript_from_toolkit(key: str) -> str:
    """kan-bayashi ``MelGANGenerator`` key -> descript ``Generator`` key (same layers, other names)."""
    key = re.sub(r"^melgan\.", "model.", key)
    key = re.sub(r"^(model\.\d+)\.stack\.", r"\1.block.", key)
    return re.sub(r"^(model\.\d+)\.skip_layer\.", r"\1.shortcut.", key)


def _toolkit_from_descript(key: str) -> str:
    key = re.sub(r"^model\.", "melgan.", key)
    key = re.sub(r"^(melgan\.\d+)\.block\.", r"\1.stack.", key)
    return re.sub(r"^(melgan\.\d+)\.shortcut\.", r"\1.skip_layer.", key)


class _WeightNormCheckpointMixin(ToolkitCheckpointMixin):
    """Checkpoint loading shared by the MelGAN family (weight-norm layouts, toolkit statistics)."""

    _checkpoint_paths: tuple[tuple[str, ...], ...] = ()

    def load_checkpoint_state(self, state: dict) -> None:
        state = unwrap_checkpoint(state, *self._checkpoint_paths)
        self._load_weights(_as_float(_strip_prefix(state)), self._load_generator)

    def _load_generator(self, state: dict) -> None:
        self.load_state_dict(adapt_weight_norm_state(state, self))


class MelGAN(_WeightNormCheckpointMixin, Vocoder):
    """Original MelGAN generator (descript). Output ``[B, frames * prod(ratios)]``.

    Reads descript's bare state dicts and the kan-bayashi toolkit's MelGAN checkpoints (see the
    module docstring); after a toolkit checkpoint the instance's ``feature_convention`` is
    ``"log10"`` (the toolkit's features) instead of the class's ``"melgan"``, and
    :meth:`state_dict_for_checkpoint` writes the toolkit layout again.
    """

    feature_convention = "melgan"  # descript's log10(clamp(mel_magnitude, 1e-5)); a toolkit checkpoint sets "log10"

    _checkpoint_paths = (("model", "generator"), ("generator",), ("netG",))
    _toolkit_generator_types = ("MelGANGenerator",)

    def __init__(
        self,
        ratios: Sequence[int] = (8, 8, 2, 2),
        ngf: int = 32,
        n_residual_layers: int = 3,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, MELGAN_MEL))
        ratios = [int(r) for r in ratios]
        if math.prod(ratios) != self.mel.hop_length:
            raise ValueError(f"prod(ratios)={math.prod(ratios)} != hop_length={self.mel.hop_length}")
        channels = int(ngf) * 2 ** len(ratios)
        self.model = nn.Sequential(
            *_melgan_layers(self.mel.n_mels, 1, channels, ratios, int(n_residual_layers), 7, 3, ResnetBlock)
        )
        self._init_feature_stats()

    @property
    def toolkit_weights(self) -> bool:
        """Whether the loaded weights are a kan-bayashi toolkit MelGAN's (``"log10"`` features)."""
        return self.__dict__.get("feature_convention") == "log10"

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize_features(mel)).squeeze(1)

    def _load_generator(self, state: dict) -> None:
        toolkit = any(key.startswith("melgan.") for key in state)  # kan-bayashi MelGANGenerator
        if toolkit:
            state = {_descript_from_toolkit(key): value for key, value in state.items()}
        self.load_state_dict(adapt_weight_norm_state(state, self))
        if toolkit:
            self.feature_convention = "log10"
        else:  # descript weights: the class's "melgan"
            self.__dict__.pop("feature_convention", None)

    def _apply_toolkit_config(self, config: Mapping, source: Path) -> None:
        out = (config.get("generator_params") or {}).get("out_channels", 1)
        if int(out) != 1:
            raise ValueError(f"{source}: a MelGANGenerator with out_channels={out} is Multi-band MelGAN; load it "
                             "into MultiBandMelGAN")
        super()._apply_toolkit_config(config, source)

    def state_dict_for_checkpoint(self) -> dict:
        """A bare state dict with legacy weight-norm keys, like the released ``.pt`` files.

        After toolkit weights: ``{"model": {"generator": ...}}`` in the toolkit's key names, so that
        the file loads back as a toolkit MelGAN (``"log10"`` features, statistics kept).
        """
        state = to_legacy_weight_norm_keys(self.state_dict())
        if self.toolkit_weights:
            return {"model": {"generator": {_toolkit_from_descript(k): v for k, v in state.items()}}}
        return state


class MultiBandMelGAN(_WeightNormCheckpointMixin, Vocoder):
    """Multi-band MelGAN: a MelGAN predicting ``subbands`` signals + PQMF synthesis.

    Reads the kan-bayashi toolkit's checkpoints (see the module docstring); ``forward`` and
    :meth:`subband_forward` z-normalise their input first when official statistics are loaded.
    """

    feature_convention = "log10"  # the kan-bayashi toolkit's log10(max(mel_magnitude, 1e-10))

    _checkpoint_paths = (("model", "generator"), ("generator",))
    _toolkit_generator_types = ("MelGANGenerator", "MultiBandMelGANGenerator")

    def __init__(
        self,
        subbands: int = 4,
        channels: int = 384,
        upsample_scales: Sequence[int] = (8, 4, 2),
        kernel_size: int = 7,
        stack_kernel_size: int = 3,
        stacks: int = 4,
        pqmf_taps: int = 62,
        pqmf_cutoff_ratio: float = 0.142,
        pqmf_beta: float = 9.0,
        mel: MelSettings | Mapping | None = None,
    ):
        super().__init__(resolve_mel(mel, MULTIBAND_MELGAN_MEL))
        scales = [int(s) for s in upsample_scales]
        self.subbands = int(subbands)
        if math.prod(scales) * self.subbands != self.mel.hop_length:
            raise ValueError(
                f"prod(upsample_scales) * subbands = {math.prod(scales) * self.subbands} "
                f"!= hop_length={self.mel.hop_length}"
            )
        self.melgan = nn.Sequential(
            *_melgan_layers(
                self.mel.n_mels,
                self.subbands,
                int(channels),
                scales,
                int(stacks),
                int(kernel_size),
                int(stack_kernel_size),
                ResidualStack,
            )
        )
        self.pqmf = PQMF(self.subbands, pqmf_taps, pqmf_cutoff_ratio, pqmf_beta)
        self._init_feature_stats()

    def subband_forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Sub-band signals ``[B, subbands, frames * hop / subbands]``."""
        return self.melgan(self.normalize_features(mel))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.pqmf.synthesis(self.subband_forward(mel)).squeeze(1)

    def _load_generator(self, state: dict) -> None:
        """Also the PQMF filters a saved toolkit model carries (``pqmf.*``, after its ``load_model``)."""
        filters = {key.removeprefix("pqmf."): state.pop(key) for key in list(state) if key.startswith("pqmf.")}
        for name in ("analysis_filter", "synthesis_filter"):
            if name in filters and filters[name].shape != getattr(self.pqmf, name).shape:
                raise ValueError(f"the checkpoint's pqmf.{name} is {tuple(filters[name].shape)}, this model's "
                                 f"{tuple(getattr(self.pqmf, name).shape)}: another number of sub-bands or taps")
        super()._load_generator(state)
        with torch.no_grad():
            for name in ("analysis_filter", "synthesis_filter"):
                if name in filters:
                    getattr(self.pqmf, name).copy_(filters[name])

    def _apply_toolkit_config(self, config: Mapping, source: Path) -> None:
        """Also the PQMF bank the toolkit's ``load_model`` builds: ``pqmf_params``, else the defaults of
        the toolkit version that wrote the config (cut-off 0.15 up to 0.4.2, 0.142 since)."""
        out = (config.get("generator_params") or {}).get("out_channels")
        if out is not None and int(out) != self.subbands:
            raise ValueError(f"{source}: out_channels {out} sub-bands, this model has {self.subbands}")
        super()._apply_toolkit_config(config, source)
        params = config.get("pqmf_params")
        if params is None:
            legacy = _version(config.get("version", "0.1.0")) <= (0, 4, 2)
            params = {"taps": 62, "cutoff_ratio": 0.15, "beta": 9.0} if legacy else {}
        params = {"taps": 62, "cutoff_ratio": 0.142, "beta": 9.0, **params}
        wanted = (int(params["taps"]), float(params["cutoff_ratio"]), float(params["beta"]))
        if wanted != (self.pqmf.taps, self.pqmf.cutoff_ratio, self.pqmf.beta):
            warnings.warn(f"{source}: the checkpoint was trained with PQMF taps={wanted[0]}, "
                          f"cutoff_ratio={wanted[1]}, beta={wanted[2]}; the model's bank now follows it", stacklevel=3)
            self.pqmf = PQMF(self.subbands, *wanted).to(self.pqmf.synthesis_filter.device)

    def state_dict_for_checkpoint(self) -> dict:
        """``{"model": {"generator": state}}``, the ParallelWaveGAN checkpoint layout (with the
        statistics ``mean``/``scale`` when loaded, as the toolkit's ``register_stats`` leaves them)."""
        return {"model": {"generator": to_legacy_weight_norm_keys(self.state_dict())}}
