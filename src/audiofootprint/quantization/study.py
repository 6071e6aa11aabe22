"""The quantization study (thesis part 3): every trained vocoder under every scheme.

Per (model, scheme) (stage ``quantize@MODEL-SCHEME``)::

    results/quantize/MODEL/SCHEME/metrics.json           headline numbers, or why the scheme does not apply
    results/quantize/MODEL/SCHEME/variant/record.json    how the variant was made, per-utterance scores
    results/quantize/MODEL/SCHEME/variant/measurement.json  the harness' full measurement
    results/quantize/MODEL/SCHEME/variant/*.wav          one synthesis to listen to

The summary of all variants is :mod:`audiofootprint.quantization.summary`.
"""
from __future__ import annotations

import time
from pathlib import Path

from audiofootprint import atomic, audio, evaluate, runtime
from audiofootprint.corpus import iter_utterances
from audiofootprint.failures import FAILED, FailedTrainingError, first_line
from audiofootprint.paths import CORPUS_DIR, MODELS_DIR, QUANTIZE_DIR, VARIANT_FOLDER, VARIANT_RECORD, variant_record
from audiofootprint.quantization.base import Calibration, MixedBudget, NotApplicable
from audiofootprint.quantization.registry import apply, scheme as scheme_named
from audiofootprint.records import NOT_APPLICABLE, OK, VariantMetrics
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder


def calibration_set(model: Vocoder, corpus_dir: Path, settings: dict) -> Calibration:
    """The first ``calibration_utterances`` training utterances (by id), each cut to at most
    ``calibration_seconds``: their mels, their waveforms at the model's rate, and the
    mixed-precision budget of ``settings`` (params.yaml ``quantize``)."""
    count, seconds = int(settings["calibration_utterances"]), float(settings["calibration_seconds"])
    mels, waves = [], []
    for _, wave, rate in iter_utterances(corpus_dir, "train"):
        if wave.shape[-1] >= model.hop_length * rate / model.mel.sample_rate:
            mel = evaluate.measurement_mel(model, wave, rate, seconds)
            mels.append(mel)
            waves.append(evaluate.at_model_rate(model, wave, rate)[: mel.shape[-1] * model.hop_length])
        if len(mels) >= count:
            break
    if not mels:
        raise FileNotFoundError(f"{corpus_dir} has no training utterances: build the corpus first (dvc repro corpus)")
    budget = settings.get("mixed_precision")
    return Calibration(mels, waves, MixedBudget.from_params(budget) if budget else None)


def quantization_test_set(profile: dict, entry: zoo.ZooEntry) -> dict:
    """Test utterances and seconds per variant: the profile's ``quantize`` budget, lowered by the
    model's own ``benchmark`` limits (:func:`~audiofootprint.vocoders.zoo.within_limits`)."""
    budget = {**profile["benchmark"], **profile["quantize"]}
    return zoo.within_limits(budget, zoo.section(entry, "benchmark"), ("test_utterances", "max_test_seconds"))


def run_variant(root: str | Path, name: str, scheme: str, params: dict, progress: bool = True) -> VariantMetrics:
    """Quantize one trained model with one scheme, then measure and score it (stage ``quantize@``)."""
    root = Path(root)
    profile, bench, settings = params["profile"], params["benchmark"], params["quantize"]
    if name not in settings["models"]:
        raise KeyError(f"{name!r} is not in quantize.models of params.yaml ({', '.join(settings['models'])})")
    if scheme not in settings["schemes"]:
        raise KeyError(f"{scheme!r} is not in quantize.schemes of params.yaml ({', '.join(settings['schemes'])})")
    out, label = root / QUANTIZE_DIR / name / scheme, f"{name}/{scheme}"
    entry, engine = zoo.load_zoo(root)[name], scheme_named(scheme).engine
    sample_rate = int(params["corpus"]["sample_rate"])
    setup = runtime.set_up(root, params)
    baseline = zoo.build_for_corpus(entry, sample_rate)
    try:
        evaluate.load_trained(baseline, root / MODELS_DIR / name, entry, root)
    except FailedTrainingError as error:  # recorded by train@NAME: no weights to quantize, the pipeline goes on
        return _record_outcome(out, label, VariantMetrics(name, scheme, NOT_APPLICABLE, str(error), engine=engine),
                               progress)
    baseline = baseline.for_inference()
    calibration = calibration_set(baseline, root / CORPUS_DIR, settings)
    started = time.perf_counter()
    try:
        made = apply(scheme, baseline, calibration, setup.device)
        limits = quantization_test_set(profile, entry)
        utterances = evaluate.test_utterances(root / CORPUS_DIR, int(limits["test_utterances"]),
                                              float(limits["max_test_seconds"]))
        # a quantized graph that cannot run on real input is as inapplicable as one that cannot be built
        try:
            evaluate.synthesize(made.model, utterances[0][1][: 4 * baseline.hop_length], sample_rate, setup.seed)
        except Exception as error:  # noqa: BLE001 - recorded with its type and message
            raise NotApplicable(f"{made.backend}: the quantized model fails to run "
                                f"({type(error).__name__}: {first_line(error)})") from error
    except NotApplicable as reason:
        return _record_outcome(out, label, VariantMetrics(name, scheme, NOT_APPLICABLE, str(reason), engine=engine), progress)
    quantize_seconds = time.perf_counter() - started
    if progress:
        print(f"  {label}: {made.backend} in {quantize_seconds:.1f} s; scoring {len(utterances)} test utterances",
              flush=True)
    try:
        table = evaluate.score(made.model, utterances, tuple(bench["metrics"]), setup.seed,
                               baseline=None if scheme == settings["baseline"] else baseline,
                               progress=label if progress else None)
    except ValueError as error:  # e.g. quantization collapsed the output to silence: a result, not a crash
        return _record_outcome(out, label, VariantMetrics(
            name, scheme, FAILED, f"its output cannot be scored: {error}", engine=engine, backend=made.backend,
            size_bytes=made.model.artifact_bytes()), progress)
    utt_id, wave, rate = utterances[0]
    audio.write_wav(out / VARIANT_FOLDER / f"{utt_id}.synthesis.wav",
                       evaluate.synthesize(made.model, wave, sample_rate, setup.seed)[1], rate)
    if progress:
        print(f"  {label}: measuring ({profile['measure']['windows']} windows of >= "
              f"{profile['measure']['min_window_s']} s)", flush=True)
    cost = evaluate.measure_on_utterance(made.model, utterances[0], setup, profile, entry, label=label,
                                         features_of=baseline)
    atomic.write_json(out / VARIANT_FOLDER / "measurement.json", cost)
    atomic.write_json(root / variant_record(name, scheme), {
        "model": name, "scheme": scheme, "backend": made.backend, "notes": made.notes,
        "calibration": f"{len(calibration.mels)} training utterances, <= {settings['calibration_seconds']} s each",
        **made.details,
        "quantize_seconds": round(quantize_seconds, 3), "utterances": table.to_dict(orient="records")})

    metrics = VariantMetrics(
        name, scheme, OK, engine=engine, backend=made.backend, notes=made.notes, family=entry.family,
        size_bytes=cost["size_bytes"], weight_bytes=made.model.weight_bytes(),
        peak_memory_bytes=cost["peak_memory"]["bytes"], **evaluate.cost_summary(cost),
        torch_threads=cost["torch_threads"], engine_threads=cost["engine_threads"], test_utterances=len(table), quality=evaluate.quality_summary(table))
    metrics.write(out / "metrics.json")
    return metrics


def _record_outcome(out: Path, label: str, record: VariantMetrics, progress: bool) -> VariantMetrics:
    """Write the record of a variant that was not measured (not applicable, or failed) and return it."""
    if progress:
        print(f"  {label}: {record.status.replace('_', ' ')}: {record.reason}", flush=True)
    atomic.write_json(out / VARIANT_FOLDER / VARIANT_RECORD, record.as_dict())
    record.write(out / "metrics.json")
    return record
