"""The training stage ``train@NAME``: one zoo model trained under the profile's budget.

Its output folder, results/models/NAME, persists between runs so that an interrupted training
resumes from its checkpoint. Everything the stage depends on is fingerprinted beside the
checkpoint (``settings.json``): the model's config file, the module of its class, the training
and vocoder code, the budget, seed, device and corpus. When DVC re-runs the stage because one
of these changed, the old checkpoint is discarded and the model trains afresh; only a run
interrupted with the same fingerprint resumes.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch

from audiofootprint import atomic, failures
from audiofootprint.energy import TrackerSettings
from audiofootprint.vocoders import zoo

CORPUS_DIR = Path("results/corpus")
MODELS_DIR = Path("results/models")

_PACKAGE = Path(__file__).resolve().parents[1]
# the code the train stage depends on in dvc.yaml (besides the model's own config and module)
STAGE_CODE = ("training", "vocoders", "features.py", "failures.py")


def stage_code_digest(package: Path = _PACKAGE) -> str:
    """SHA-256 over the Python sources the train stage depends on (paths and contents, sorted)."""
    digest = hashlib.sha256()
    for part in STAGE_CODE:
        path = package / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(package)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def training_fingerprint(root: Path, entry: zoo.ZooEntry, profile: dict) -> str:
    """The fingerprint of one training run: a checkpoint resumes only under the same one."""
    corpus_json = root / CORPUS_DIR / "corpus.json"
    settings = {"vocoder": entry.path.read_text(), "code": zoo.class_source(entry),
                "stage_code": stage_code_digest(), "train": profile["train"], "seed": profile["seed"],
                "device": profile["device"], "corpus": corpus_json.read_text() if corpus_json.is_file() else None}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def record_pretrained(root: Path, entry: zoo.ZooEntry, out: Path) -> dict:
    """The train stage of a pretrained model: its weights checked (sha256, and that they load) and recorded."""
    from audiofootprint.vocoders.weights import pretrained_record, verify

    file = entry.weights.file(root)
    digest = verify(file, entry.weights.sha256)
    model = zoo.build_for_corpus(entry, entry.weights.mel.sample_rate)
    model.from_checkpoint(file)  # a file of another architecture stops here, not in the benchmark
    record = pretrained_record(entry.weights, file, digest) | {"params": model.num_params()}
    atomic.write_json(out / "training.json", record)
    print(f"{entry.name}: pretrained weights {entry.weights.source} (sha256 {digest[:12]}... verified, "
          f"{model.num_params():,} parameters, trained on {entry.weights.dataset})", flush=True)
    return record


def train_model(root: str | Path, name: str, params: dict) -> dict:
    """Train one model under the profile's budget (stage ``train@NAME``); return its record.

    A folder made under another fingerprint (:func:`training_fingerprint`) is discarded first.
    A training that fails is recorded (:func:`audiofootprint.failures.training_failure`) and its
    record returned; a configuration error (:class:`~audiofootprint.vocoders.zoo.ConfigError`) raises.
    """
    root = Path(root)
    profile = params["profile"]
    entry = zoo.load_zoo(root)[name]
    out = root / MODELS_DIR / name
    fingerprint = training_fingerprint(root, entry, profile)
    stamp = out / "settings.json"
    if out.exists() and (not stamp.is_file() or json.loads(stamp.read_text()).get("fingerprint") != fingerprint):
        shutil.rmtree(out)  # made with other settings or code: start afresh
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(stamp, {"fingerprint": fingerprint})
    if entry.weights is not None:
        return record_pretrained(root, entry, out)
    objective = zoo.section(entry, "training").get("objective", "none")
    if objective == "none":
        record = {"objective": "none", "steps": 0, "seconds": 0.0, "energy_kwh": 0.0, "co2e_kg": 0.0,
                  "note": f"{name} has no trainable weights: no training, no training energy"}
        atomic.write_json(out / "training.json", record)
        return record
    from audiofootprint.training.loop import TrainingFailed, train

    torch.manual_seed(profile["seed"])
    torch.set_num_threads(int(profile["torch_threads"]))
    model = zoo.build_for_corpus(entry, int(params["corpus"]["sample_rate"]))
    energy = params["energy"]
    tracker = TrackerSettings(**{**energy, "output_dir": str(root / energy["output_dir"])})
    device = profile["device"] if (profile["device"] == "cpu" or torch.cuda.is_available()) else "cpu"
    try:
        return train(entry, model, root / CORPUS_DIR, out, profile["train"], tracker, device=device,
                     seed=int(profile["seed"]), progress=True)
    except TrainingFailed as failure:  # during training: what it spent until then is recorded
        return failures.training_failure(out, name, failure.error, failure.progress)
    except zoo.ConfigError:
        raise
    except Exception as error:  # before the first step (objective, optimisers, data, resuming)
        return failures.training_failure(out, name, error, {"objective": objective})
