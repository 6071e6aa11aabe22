"""The training stage ``train@NAME``: one zoo model trained under the profile's budget.

Its output folder, results/models/NAME, persists between runs so that an interrupted training
resumes from its checkpoint. Everything the stage depends on is fingerprinted beside the
checkpoint (``settings.json``): the model's config file, the module of its class, the training
and vocoder code, the budget, seed, device, threads, energy settings and corpus. When DVC re-runs
the stage because one of these changed, the old folder is discarded and the model trains afresh;
a run interrupted under the same fingerprint resumes, and one finished under it is kept. A
finished run keeps only what later stages read (``generator.pt``, ``training.json``): the resume
checkpoint (optimisers, discriminators) is deleted, so DVC caches none.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from audiofootprint import atomic, failures, pipeline, runtime
from audiofootprint.paths import CORPUS_DIR, CORPUS_MANIFEST, MODELS_DIR
from audiofootprint.records import TrainingRecord
from audiofootprint.training.loop import CHECKPOINT, GENERATOR, TrainingFailed, train
from audiofootprint.vocoders import zoo


def stage_code_digest(root: Path | None = None) -> str:
    """SHA-256 over the Python sources the train stage depends on (:func:`audiofootprint.pipeline.code_files`;
    ``root``: another project root). pipeline.py itself, which describes the stage, is left out."""
    digest = hashlib.sha256()
    base = pipeline.PACKAGE_DIR.parents[1] if root is None else Path(root)
    for file in pipeline.code_files("train", base):
        if file.name != "pipeline.py":
            digest.update(str(file.relative_to(base)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def training_fingerprint(root: Path, entry: zoo.ZooEntry, params: dict) -> str:
    """The fingerprint of one training run: a checkpoint resumes, and a finished run is kept,
    only under the same one (config, code, budget, seed, device, threads, energy settings, corpus)."""
    profile = params["profile"]
    corpus_json = root / CORPUS_MANIFEST
    settings = {"vocoder": entry.path.read_text(), "code": zoo.class_source(entry),
                "stage_code": stage_code_digest(), "train": profile["train"], "seed": profile["seed"],
                "device": profile["device"], "threads": profile["torch_threads"], "energy": params["energy"],
                "corpus": corpus_json.read_text() if corpus_json.is_file() else None}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def finished_run(out: Path) -> TrainingRecord | None:
    """The record of a training that finished in ``out`` (its generator written), else None."""
    record_path = out / TrainingRecord.FILE
    if not (record_path.is_file() and (out / GENERATOR).is_file()):
        return None
    record = TrainingRecord.read(record_path)
    return None if record.failed else record


def record_pretrained(root: Path, entry: zoo.ZooEntry, out: Path) -> TrainingRecord:
    """The train stage of a pretrained model: its weights checked (sha256, and that they load) and recorded."""
    from audiofootprint.vocoders.weights import pretrained_record, verify

    file = entry.weights.file(root)
    digest = verify(file, entry.weights.sha256, entry.weights.sha256_key)
    model = zoo.build_for_corpus(entry, entry.weights.mel.sample_rate)
    model.from_checkpoint(file)  # a file of another architecture stops here, not in the benchmark
    record = TrainingRecord(pretrained_record(entry.weights, file, digest) | {"params": model.num_params()})
    record.write(out / TrainingRecord.FILE)
    print(f"{entry.name}: pretrained weights {entry.weights.source} (sha256 {digest[:12]}... verified, "
          f"{model.num_params():,} parameters, trained on {entry.weights.dataset})", flush=True)
    return record


def train_model(root: str | Path, name: str, params: dict) -> TrainingRecord:
    """Train one model under the profile's budget (stage ``train@NAME``); return its record.

    A folder made under another fingerprint (:func:`training_fingerprint`) is discarded first; a
    run that finished under the same one is kept as it is. Once a run finishes, its resume
    checkpoint is deleted: the folder keeps what later stages read (generator, record), so DVC
    caches no optimiser or discriminator state. A training that fails is recorded (:func:`audiofootprint.failures.training_failure`) and its
    record returned; a configuration error (:class:`~audiofootprint.vocoders.zoo.ConfigError`) raises.
    """
    root = Path(root)
    profile = params["profile"]
    entries = zoo.load_zoo(root)
    if name not in entries:
        raise KeyError(f"unknown vocoder {name!r}: there is no conf/vocoder/{name}.yaml (configured: "
                       f"{', '.join(entries)})")
    entry = entries[name]
    out = root / MODELS_DIR / name
    fingerprint = training_fingerprint(root, entry, params)
    stamp = out / "settings.json"
    if out.exists() and (not stamp.is_file() or json.loads(stamp.read_text()).get("fingerprint") != fingerprint):
        shutil.rmtree(out)  # made with other settings or code: start afresh
    finished = finished_run(out) if entry.weights is None else None
    if finished is not None:  # DVC re-ran the stage for a change that does not touch this training
        (out / CHECKPOINT).unlink(missing_ok=True)
        print(f"{name}: trained already under the same settings ({finished.get('steps', 0)} steps): kept", flush=True)
        return finished
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(stamp, {"fingerprint": fingerprint})
    if entry.weights is not None:
        return record_pretrained(root, entry, out)
    objective = zoo.section(entry, "training").get("objective", "none")
    if objective == "none":
        record = TrainingRecord.nothing_to_learn(name, family=entry.family)
        record.write(out / TrainingRecord.FILE)
        return record
    setup = runtime.set_up(root, params)
    model = zoo.build_for_corpus(entry, int(params["corpus"]["sample_rate"]))
    try:
        record = train(entry, model, root / CORPUS_DIR, out, profile["train"], setup.tracker,
                       device=setup.device, seed=setup.seed, progress=True, keep_resume_state=False)
        return TrainingRecord(record, out / TrainingRecord.FILE)
    except TrainingFailed as failure:  # during training: what it spent until then is recorded
        return _failed(out, name, failure.error, failure.progress)
    except zoo.ConfigError:
        raise
    except Exception as error:  # before the first step (objective, optimisers, data, resuming)
        return _failed(out, name, error, {"objective": objective})


def _failed(out: Path, name: str, error: BaseException, progress: dict) -> TrainingRecord:
    """Record a training that raised ``error`` (:func:`audiofootprint.failures.training_failure`)."""
    (out / GENERATOR).unlink(missing_ok=True)  # no weights go with a failed record
    record = TrainingRecord(failures.training_failure(name, error, progress))
    record.write(out / TrainingRecord.FILE)
    failures.tell(f"train {name}", error, record)
    return record
