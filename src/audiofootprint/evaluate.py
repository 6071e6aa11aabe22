"""Evaluating a vocoder, the one way every stage and script does it: the stage set-up, the
weights a training stage recorded, the test utterances, copy-synthesis scored against the
recordings, and the harness' measurement on one test utterance.

Used by the benchmark (:mod:`audiofootprint.benchmark`), the quantization study
(:mod:`audiofootprint.quantization.study`), the ``measure`` command and ``benchmarks/``; each sets up
with :func:`audiofootprint.runtime.set_up`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchaudio.functional as AF

from audiofootprint import audio, failures, quality
from audiofootprint.corpus import iter_utterances
from audiofootprint.energy import MeasureSettings
from audiofootprint.energy.cost import measure_vocoder
from audiofootprint.energy.tracker import hardware_label
from audiofootprint.features import features_for
from audiofootprint.records import TrainingRecord
from audiofootprint.runtime import StageSetup
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder

Utterance = tuple[str, torch.Tensor, int]  # id, waveform, sample rate


def load_trained(model: Vocoder, training_dir: Path, entry: zoo.ZooEntry | None = None,
                 root: Path = Path(".")) -> TrainingRecord:
    """Load the weights a training stage recorded into ``model`` and return its record.

    Trained models load the ``generator.pt`` the stage wrote; a pretrained model (``entry`` with
    a ``weights`` section) loads its configured file, whose sha256 is checked again.
    """
    record_path = training_dir / TrainingRecord.FILE
    record = TrainingRecord.read(record_path)
    if record.failed:
        raise failures.FailedTrainingError(f"{record_path} records a failed training ({failures.reason(record)}): "
                                           "no weights to load")
    if record.kind == "pretrained":
        if entry is None or entry.weights is None:
            raise FileNotFoundError(f"{record_path} records pretrained weights, but the config names none")
        model.from_checkpoint(entry.weights.file(root), sha256=entry.weights.sha256, sha256_from=entry.weights.sha256_key)
        return record
    weights = training_dir / "generator.pt"
    if weights.is_file():
        model.from_checkpoint(weights)
    elif record.kind != "none":
        raise FileNotFoundError(f"{weights} not found although {record_path} records a training run")
    return record


def quality_status(record: Mapping, owner: zoo.ZooEntry) -> dict:
    """Whether a model's measured quality is a finding: its weights converged, or it has none to train.

    ``kind`` is ``pretrained`` (published weights), ``training-free`` (no learned weights),
    ``recipe`` (trained here to its recipe's ``recipe_steps``) or ``budget`` (trained here for
    fewer steps: costed, never ranked by quality). ``owner`` is the config whose training the
    model uses (DiffWave-50 samples DiffWave-6's network).
    """
    objective = record.get("objective", "none")
    steps = int(record.get("steps", 0) or 0)
    recipe = zoo.section(owner, "training").get("recipe_steps")
    if objective == "pretrained":
        kind = "pretrained"
    elif objective == "none":
        kind = "training-free"
    else:
        kind = "recipe" if recipe and steps >= int(recipe) else "budget"
    status = {"kind": kind, "converged": kind != "budget", "steps": steps,
              "recipe_steps": int(recipe) if recipe else None}
    if kind == "budget":
        status["label"] = f"after {steps} steps of the recipe's {int(recipe):,}" if recipe else f"after {steps} steps"
    return status


def test_utterances(corpus_dir: Path, count: int | None, max_seconds: float | None) -> list[Utterance]:
    """The first ``count`` test utterances (by id), stopping before ``max_seconds`` of audio in all
    (``None``: no limit, i.e. the whole test split)."""
    chosen, total = [], 0.0
    for utt_id, wave, rate in sorted(iter_utterances(corpus_dir, "test"), key=lambda u: u[0]):
        seconds = wave.shape[-1] / rate
        if chosen and ((count is not None and len(chosen) >= count)
                       or (max_seconds is not None and total + seconds > max_seconds)):
            break
        chosen.append((utt_id, wave, rate))
        total += seconds
    if not chosen:
        raise FileNotFoundError(f"{corpus_dir} has no test utterances: build the corpus first (dvc repro corpus)")
    return chosen


def scoring_limits(profile: dict, entry: zoo.ZooEntry | None, converged: bool) -> dict:
    """How much of the test split a model is scored on: ``{test_utterances, max_test_seconds}``.

    Converged models, the floor and the recordings: ``profile.benchmark.converged`` (``null`` =
    no limit: the whole split); budget-trained ones: ``profile.benchmark``'s own limits. A
    model's ``benchmark`` section (slow samplers) lowers them (:func:`~audiofootprint.vocoders.zoo.within_limits`).
    """
    budget = profile["benchmark"]
    source = budget["converged"] if converged else budget
    own = zoo.section(entry, "benchmark") if entry is not None else {}
    return zoo.within_limits(source, own, ("test_utterances", "max_test_seconds"))


def utterances_within(corpus_dir: Path, limits: dict) -> list[Utterance]:
    """:func:`test_utterances` under ``limits`` (see :func:`scoring_limits`)."""
    count, seconds = limits["test_utterances"], limits["max_test_seconds"]
    return test_utterances(corpus_dir, None if count is None else int(count),
                           None if seconds is None else float(seconds))


def at_model_rate(model: Vocoder, wave: torch.Tensor, rate: int) -> torch.Tensor:
    """``wave`` (at ``rate``) resampled to the rate of the model's mel analysis (unchanged if equal)."""
    native = int(model.mel.sample_rate)
    wave = wave.reshape(-1)
    return wave if native == rate else AF.resample(wave, rate, native)


def synthesize(model: Vocoder, wave: torch.Tensor, rate: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy-synthesis of a recording at ``rate``: the model runs at its own rate, and both signals
    come back at ``rate``, of equal length (the recording cut to the synthesised whole frames)."""
    hop, native = model.hop_length, int(model.mel.sample_rate)
    native_wave = at_model_rate(model, wave, rate)
    frames = native_wave.shape[-1] // hop
    torch.manual_seed(seed)
    with torch.inference_mode():
        synthesis = model(features_for(model, native_wave[: frames * hop].reshape(1, -1)))[0].clamp(-1.0, 1.0)
    if native == rate:
        return wave.reshape(-1)[: frames * hop], synthesis
    synthesis = AF.resample(synthesis, native, rate)
    length = min(synthesis.shape[-1], wave.shape[-1], math.floor(frames * hop * rate / native))
    return wave.reshape(-1)[:length], synthesis[:length]


def measurement_mel(model: Vocoder, wave: torch.Tensor, rate: int, seconds: float) -> torch.Tensor:
    """The model's features of the first ``seconds`` of ``wave`` (at least one frame), at its own rate."""
    native_wave = at_model_rate(model, wave, rate)
    native = int(model.mel.sample_rate)
    frames = max(1, min(native_wave.shape[-1] // model.hop_length, math.ceil(seconds * native / model.hop_length)))
    return features_for(model, native_wave[: frames * model.hop_length].reshape(1, -1))


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-noise ratio of ``estimate`` against ``reference`` in dB (inf when identical)."""
    noise = float(np.sum((reference - estimate) ** 2))
    signal = float(np.sum(reference ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def score(model: Vocoder, utterances: list[Utterance], metrics: tuple[str, ...], seed: int, *,
          baseline: Vocoder | None = None, listen_dir: Path | None = None, listen: int = 0,
          progress: str | None = None) -> pd.DataFrame:
    """Per test utterance: copy-synthesis scored against the recording with ``metrics``; with a
    ``baseline``, also its distance to the baseline's output for the same input (SNR, MR-STFT).

    The first ``listen`` syntheses and their recordings are written to ``listen_dir``.
    """
    rows = []
    for index, (utt_id, wave, rate) in enumerate(utterances):
        reference, synthesis = synthesize(model, wave, rate, seed)
        row = {"id": utt_id, "seconds": reference.shape[-1] / rate,
               **quality.score(reference.numpy(), synthesis.numpy(), rate, metrics=metrics)}
        if baseline is not None:
            _, base = synthesize(baseline, wave, rate, seed)
            row["snr_to_fp32_db"] = snr_db(base.numpy().astype(np.float64), synthesis.numpy().astype(np.float64))
            row["mrstft_to_fp32"] = quality.mrstft(base.numpy(), synthesis.numpy(), rate)
        rows.append(row)
        if listen_dir is not None and index < listen:
            audio.write_wav(listen_dir / f"{utt_id}.synthesis.wav", synthesis, rate)
            audio.write_wav(listen_dir / f"{utt_id}.recording.wav", reference, rate)
        if progress:
            print(f"  {progress}: {utt_id} " + " ".join(f"{k}={v:.3f}" for k, v in row.items()
                                                         if isinstance(v, float) and k != "seconds"), flush=True)
    return pd.DataFrame(rows)


def measure_settings(profile: dict, entry: zoo.ZooEntry | None) -> dict:
    """The harness settings of a model: the profile's ``measure`` section, lowered where the model's own
    ``measure`` section (slow samplers) asks for less (:func:`~audiofootprint.vocoders.zoo.within_limits`);
    ``audio_seconds`` included."""
    own = zoo.section(entry, "measure") if entry is not None else {}
    return {**profile["measure"], **zoo.within_limits(profile["measure"], own, own)}


def measure(model: Vocoder, mel: torch.Tensor, setup: StageSetup, profile: dict, entry: zoo.ZooEntry | None,
            label: str, input_note: str) -> dict:
    """The harness' measurement of ``model`` on ``mel`` under :func:`measure_settings`;
    ``input_note`` says what the mel is."""
    settings = measure_settings(profile, entry)
    settings.pop("audio_seconds")
    cost = measure_vocoder(model, mel, label=label, settings=MeasureSettings(**settings),
                           tracker_settings=setup.tracker, device=setup.device, seed=setup.seed)
    cost["input"] = input_note
    return cost


def measure_on_utterance(model: Vocoder, utterance: Utterance, setup: StageSetup, profile: dict,
                         entry: zoo.ZooEntry | None, label: str, features_of: Vocoder | None = None) -> dict:
    """:func:`measure` on the features of the first ``audio_seconds`` of a test utterance (computed
    by ``features_of``, default ``model``: a quantized variant takes its float model's features)."""
    seconds = float(measure_settings(profile, entry)["audio_seconds"])
    utt_id, wave, rate = utterance
    mel = measurement_mel(features_of or model, wave, rate, seconds)
    return measure(model, mel, setup, profile, entry, label, f"mel of test utterance {utt_id} ({mel.shape[-1]} frames)")


def rounded_stats(stats: dict) -> dict:
    """A harness spread (median, quartiles...) with its floats rounded to 6 decimals."""
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in stats.items()}


def mean_ci(values: pd.Series) -> dict:
    """Mean of a metric over utterances with a 95% confidence interval (normal approximation)."""
    values = values.dropna().astype(float)
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": round(mean, 4), "ci95": round(half, 4) if not math.isnan(half) else None, "n": int(len(values))}


def quality_summary(table: pd.DataFrame) -> dict:
    """Mean and 95% CI of every score column of a :func:`score` table."""
    return {metric: mean_ci(table[metric]) for metric in table.columns if metric not in ("id", "seconds")}


def cost_summary(cost: dict) -> dict:
    """The headline numbers of a harness measurement, as every metrics.json gives them."""
    summary = cost["measurement"]["summary"]
    return {"energy_j_per_audio_s": rounded_stats(summary["energy_j_per_audio_s"]),
            "net_energy_j_per_audio_s": rounded_stats(summary["net_energy_j_per_audio_s"]),
            "real_time_factor": rounded_stats(summary["real_time_factor"]),
            "energy_method": cost["measurement"]["methods"],
            "hardware": hardware_label(cost["measurement"]["hardware"])}
