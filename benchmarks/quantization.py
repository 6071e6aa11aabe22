"""Torch float32, ONNX Runtime float32 and int8 variants of one vocoder, side by side in one run.

Default: the pretrained HiFi-GAN V1 (LJSpeech), the model of the issue's goals. Every variant is
made from the same float32 weights and scored on the profile's test utterances (PESQ, STOI, MCD
against the recordings). Speed is timed in interleaved rounds, one call of every variant per
round on the same mel, in a new order each round, so that the machine's drift falls on all
variants alike; the speed-up is the median over rounds of (torch float32 time / variant time) in
the same round. Energy per second of audio comes from the measurement harness (codecarbon; its
method is printed), one measurement per variant. Goals checked for the int8 variants: at least
2.0x faster and 3.5x smaller than torch float32, PESQ within 0.1 and STOI within 0.01; and ONNX
Runtime float32 no slower than torch float32.

    .venv/bin/python benchmarks/quantization.py [--model hifigan_v1_ljspeech] [--rounds 15] [--profile default]
                                                [--mixed-orders damage damage_per_mac]

``--mixed-orders`` makes one mixed-precision variant per search order (quantize.mixed_precision.order),
named ``ort_mixed_int8/ORDER``, so that the orders are compared in the same interleaved rounds.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
import time
import warnings

import torch

from audiofootprint import PROJECT_ROOT, evaluate, runtime
from audiofootprint.params import compose_params
from audiofootprint.paths import CORPUS_DIR, MODELS_DIR
from audiofootprint.quantization.base import SEARCH_ORDERS, NotApplicable
from audiofootprint.quantization.registry import apply
from audiofootprint.quantization.study import calibration_set, quantization_test_set
from audiofootprint.vocoders import zoo

VARIANTS = ["fp32", "ort_fp32", "static_int8", "weight_int8", "ort_weight_int8", "ort_static_int8_minmax",
            "ort_static_int8_entropy", "ort_static_int8_percentile", "ort_mixed_int8"]
GOALS = {"speedup": 2.0, "size_ratio": 3.5, "pesq": 0.1, "stoi": 0.01}
METRICS = ("pesq", "stoi", "mcd")


def timed_rounds(models: dict, mel: torch.Tensor, rounds: int, seed: int) -> dict[str, list[float]]:
    """Seconds of one call of every model, ``rounds`` times, the order shuffled each round."""
    times = {name: [] for name in models}
    order = list(models)
    shuffle = random.Random(seed)
    with torch.inference_mode():
        for model in models.values():  # warm-up: first calls allocate and plan
            model(mel)
        for _ in range(rounds):
            shuffle.shuffle(order)
            for name in order:
                started = time.perf_counter()
                models[name](mel)
                times[name].append(time.perf_counter() - started)
    return times


def variants(schemes: list[str], calibration, orders: list[str] | None):
    """(scheme, label, mixed-precision budget) of each variant to make: ort_mixed_int8 once per search
    order when ``orders`` are given, labelled ``ort_mixed_int8/ORDER``."""
    for scheme in schemes:
        if scheme == "ort_mixed_int8" and orders and calibration.budget is not None:
            for order in orders:
                yield scheme, f"{scheme}/{order}", dataclasses.replace(calibration.budget, order=order)
        else:
            yield scheme, scheme, calibration.budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hifigan_v1_ljspeech")
    parser.add_argument("--schemes", nargs="+", default=VARIANTS, help="fp32 is always first")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--profile", default="default", help="measurement and test-set budget (ci, default, paper)")
    parser.add_argument("--mixed-orders", nargs="+", choices=list(SEARCH_ORDERS),
                        help="one ort_mixed_int8 variant per search order (default: the params' order)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    params = compose_params(PROJECT_ROOT, [f"profile={args.profile}"])
    profile = params["profile"]
    with tempfile.TemporaryDirectory() as output_dir:
        setup = runtime.set_up(PROJECT_ROOT, {**params, "energy": {**params["energy"], "output_dir": output_dir}})
        entry = zoo.load_zoo(PROJECT_ROOT)[args.model]
        model = zoo.build_for_corpus(entry, int(params["corpus"]["sample_rate"]))
        record = evaluate.load_trained(model, PROJECT_ROOT / MODELS_DIR / args.model, entry, PROJECT_ROOT)
        model = model.for_inference()
        corpus = PROJECT_ROOT / CORPUS_DIR
        calibration = calibration_set(model, corpus, params["quantize"])
        limits = quantization_test_set(profile, entry)
        utterances = evaluate.test_utterances(corpus, int(limits["test_utterances"]), float(limits["max_test_seconds"]))
        made, rows = {}, {}
        for scheme, label, budget in variants(["fp32"] + [s for s in args.schemes if s != "fp32"], calibration,
                                              args.mixed_orders):
            started = time.perf_counter()
            try:
                variant = apply(scheme, model, dataclasses.replace(calibration, budget=budget), setup.device)
            except NotApplicable as reason:
                print(f"{label}: not applicable: {reason}")
                continue
            scheme = label
            made[scheme] = variant.model
            scores = evaluate.score(variant.model, utterances, METRICS, setup.seed)
            cost = evaluate.measure_on_utterance(variant.model, utterances[0], setup, profile, entry,
                                                 label=f"{args.model}/{scheme}", features_of=model)
            rows[scheme] = {"size": variant.model.artifact_bytes(), "engine": variant.model.engine,
                            "energy": cost["measurement"]["summary"]["energy_j_per_audio_s"]["median"],
                            "method": cost["measurement"]["methods"]["cpu"], "made_s": time.perf_counter() - started,
                            **{m: float(scores[m].mean()) for m in METRICS}}
            print(f"  made and scored {scheme} in {rows[scheme]['made_s']:.0f} s", flush=True)
        mel = evaluate.measurement_mel(model, utterances[0][1], utterances[0][2],
                                       float(evaluate.measure_settings(profile, entry)["audio_seconds"]))
        times = timed_rounds(made, mel, args.rounds, setup.seed)
    audio_seconds = mel.shape[-1] * model.hop_length / model.mel.sample_rate
    base = rows["fp32"]
    print(f"\n{args.model} ({record.kind} weights), {len(utterances)} test utterances, {args.rounds} interleaved rounds "
          f"on {audio_seconds:.2f} s of audio, {setup.threads} threads")
    header = (f"{'scheme':<30} {'engine':<11} {'MB':>6} {'smaller':>7} {'RTF':>6} {'faster':>6} {'spread':>11} "
              f"{'energy':>6} {'PESQ':>6} {'dPESQ':>6} {'dSTOI':>7} {'dMCD':>6}  goals")
    print(header + "\n" + "-" * len(header))
    for scheme, row in rows.items():
        ratios = sorted(a / b for a, b in zip(times["fp32"], times[scheme]))
        speedup = statistics.median(ratios)
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [speedup, speedup, speedup]
        size_ratio = base["size"] / row["size"]
        deltas = {m: row[m] - base[m] for m in METRICS}
        verdict = ""
        if "int8" in scheme:
            checks = {"speed": speedup >= GOALS["speedup"], "size": size_ratio >= GOALS["size_ratio"],
                      "pesq": abs(deltas["pesq"]) <= GOALS["pesq"], "stoi": abs(deltas["stoi"]) <= GOALS["stoi"]}
            verdict = " ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items())
        elif scheme == "ort_fp32":
            verdict = f"no slower than torch: {'met' if speedup >= 1.0 else 'MISSED'}"
        print(f"{scheme:<30} {row['engine']:<11} {row['size'] / 1e6:6.2f} {size_ratio:6.2f}x "
              f"{statistics.median(times[scheme]) / audio_seconds:6.3f} {speedup:5.2f}x "
              f"[{quartiles[0]:4.2f},{quartiles[2]:4.2f}] {row['energy'] / base['energy']:5.2f}x {row['pesq']:6.3f} "
              f"{deltas['pesq']:+6.3f} {deltas['stoi']:+7.4f} {deltas['mcd']:+6.3f}  {verdict}")
    print(f"faster: median over rounds of torch-fp32 time / variant time in the same round, [q1,q3] of those ratios; "
          f"energy: harness median J per audio second / torch fp32's ({base['method']})")


if __name__ == "__main__":
    main()
