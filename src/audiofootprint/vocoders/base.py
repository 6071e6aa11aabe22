"""The one interface every vocoder in the zoo follows.

A vocoder maps a mel-spectrogram ``[batch, n_mels, frames]`` to a waveform
``[batch, frames * hop_length]``. It carries the mel settings it expects so that
features can be computed for it (see :class:`MelSettings`).
"""
from __future__ import annotations

import dataclasses
import io
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn



def parameter_count(module: nn.Module) -> int:
    """Number of parameters of any module (trainable or not): the one count of the project."""
    return sum(p.numel() for p in module.parameters())


def _tensor_bytes(value) -> int:
    """Bytes of a state-dict value: a tensor (a quantized one: its codes plus scales and zero points)
    or a tuple of them (packed parameters)."""
    if isinstance(value, (tuple, list)):
        return sum(_tensor_bytes(v) for v in value)
    if not isinstance(value, torch.Tensor):
        return 0
    if value.is_quantized:
        if value.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric,
                               torch.per_channel_affine_float_qparams):
            extra = value.q_per_channel_scales().nbytes + value.q_per_channel_zero_points().nbytes
        else:
            extra = 16  # one float64 scale, one int64 zero point
        return value.int_repr().nbytes + extra
    return value.nbytes


def _is_number(value, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


class MelSettingsError(ValueError):
    """Mel settings that cannot analyse audio; the message names the field and what it must be."""


@dataclass(frozen=True)
class MelSettings:
    """Mel-spectrogram analysis a vocoder was designed for (checked: :class:`MelSettingsError`)."""

    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = 8000.0

    def __post_init__(self):
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            value = getattr(self, name)
            if not _is_number(value, numbers.Integral) or value < 1:
                raise MelSettingsError(f"{name} must be a positive whole number, not {value!r}")
        if not _is_number(self.f_min, numbers.Real):
            raise MelSettingsError(f"f_min must be a frequency in Hz, not {self.f_min!r}")
        if self.f_max is not None and not _is_number(self.f_max, numbers.Real):
            raise MelSettingsError(f"f_max must be a frequency in Hz or null (the Nyquist frequency), "
                                   f"not {self.f_max!r}")
        nyquist = self.sample_rate / 2
        if self.win_length > self.n_fft:
            raise MelSettingsError(f"win_length {self.win_length} is larger than n_fft {self.n_fft}: "
                                   "the window must fit in the FFT")
        if self.hop_length > self.win_length:
            raise MelSettingsError(f"hop_length {self.hop_length} is larger than win_length {self.win_length}: "
                                   "frames would skip samples")
        if self.f_max is not None and self.f_max > nyquist:
            raise MelSettingsError(f"f_max {self.f_max:g} Hz is above the Nyquist frequency ({nyquist:g} Hz) of "
                                   f"sample_rate {self.sample_rate}: lower it, or give null for the Nyquist frequency")
        top = nyquist if self.f_max is None else self.f_max
        if not 0 <= self.f_min < top:
            raise MelSettingsError(f"f_min {self.f_min:g} Hz must be at least 0 and below f_max ({top:g} Hz)")

    def as_dict(self) -> dict:
        return asdict(self)


def resolve_mel(mel: MelSettings | Mapping | None, default: MelSettings) -> MelSettings:
    """The mel settings a model is built for.

    ``None`` gives the model's own ``default``; a mapping (a dict, or a Hydra ``DictConfig``)
    overrides fields of that default, so a partial mapping such as ``{"n_mels": 100}`` keeps
    the model's other settings.
    """
    if mel is None:
        return default
    if isinstance(mel, MelSettings):
        return mel
    if isinstance(mel, Mapping):
        unknown = [str(k) for k in mel if str(k) not in default.as_dict()]
        if unknown:
            raise MelSettingsError(f"{', '.join(unknown)} is not a mel setting; the fields are "
                                   f"{', '.join(default.as_dict())}")
        return dataclasses.replace(default, **{str(k): v for k, v in mel.items()})
    raise TypeError(f"mel must be MelSettings, a mapping or None, not {type(mel).__name__}")


class Vocoder(nn.Module):
    """Base class: subclasses implement :meth:`forward` (mel -> waveform).

    Subclasses pass ``resolve_mel(mel, THEIR_DEFAULT)``; a bare ``Vocoder`` resolves ``mel``
    against :class:`MelSettings`' defaults.
    """

    #: The inference engine that runs the model (a key of :data:`audiofootprint.engines.ENGINES`).
    engine = "torch"

    def __init__(self, mel: MelSettings | Mapping | None = None):
        super().__init__()
        self.mel = resolve_mel(mel, MelSettings())

    @property
    def hop_length(self) -> int:
        return self.mel.hop_length

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def for_inference(self) -> "Vocoder":
        """Fold weight normalisation into plain weights (as official inference scripts do); eval mode.

        The function is unchanged; the re-parametrisation that only helps training is removed.
        """
        from torch.nn.utils import parametrize

        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            elif hasattr(module, "weight_g") and hasattr(module, "weight_v"):
                torch.nn.utils.remove_weight_norm(module)
        return self.eval()

    def num_params(self) -> int:
        """Number of parameters (all, trainable or not)."""
        return parameter_count(self)

    def artifact_bytes(self) -> int:
        """Size of the file a user would ship: ``torch.save(state_dict())`` (an engine that ships
        another file, e.g. an ONNX graph, gives that file's size)."""
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        return buffer.tell()

    def weight_bytes(self) -> int:
        """Bytes the weights take at rest: every tensor of the state dict (quantized tensors: integer
        codes, scales and zero points; packed parameters unpacked)."""
        return sum(_tensor_bytes(value) for value in self.state_dict().values())

    def engine_threads(self) -> int:
        """Threads the engine computes with (torch's intra-op threads here)."""
        return torch.get_num_threads()

    def state_dict_for_checkpoint(self) -> dict:
        """The state dict written to checkpoints; override to follow an official layout."""
        return self.state_dict()

    def load_checkpoint_state(self, state: dict) -> None:
        """Load a state dict in this model's checkpoint layout."""
        self.load_state_dict(state)

    def from_checkpoint(self, path: str | Path, sha256: str | None = None, sha256_from: str = "--sha256") -> "Vocoder":
        """Load weights from ``path`` (``weights_only=True``; its sha256 checked if given, an error naming
        ``sha256_from`` where it was given) and return self.

        A file that cannot be used raises :class:`audiofootprint.vocoders.weights.CheckpointError`.
        """
        from audiofootprint.vocoders.weights import load_checkpoint

        return load_checkpoint(self, Path(path), sha256, sha256_from)
