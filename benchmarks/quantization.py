"""Float32 against every quantization scheme, side by side, in one run.

For each model (default: HiFi-GAN V1 and MelGAN, the issue's goal models) the trained weights of
``results/models/NAME`` are loaded (untrained weights when the training stage has not run: the
costs do not depend on training, the quality does, and the table says which). Each scheme is
applied, measured with the harness (the profile's measurement settings, energy from codecarbon)
and scored on the profile's test utterances. Printed per variant: size ratio, speed-up, energy
ratio and PESQ change against float32, and the goals for static int8 (>= 3.9x smaller, >= 1.3x
faster, PESQ within 0.1).

    .venv/bin/python benchmarks/quantization.py [--models hifigan_v1 melgan] [--profile default]
"""
from __future__ import annotations

import argparse
import tempfile
import warnings

from audiofootprint import PROJECT_ROOT, evaluate, runtime
from audiofootprint.params import compose_params
from audiofootprint.paths import CORPUS_DIR, MODELS_DIR
from audiofootprint.quantization.schemes import SCHEMES, NotApplicable, apply
from audiofootprint.quantization.study import calibration_mels, quantization_test_set
from audiofootprint.records import TrainingRecord
from audiofootprint.vocoders import zoo

GOALS = {"static_int8": {"size_ratio": 3.9, "speedup": 1.3, "max_pesq_drop": 0.1}}


def measure_variant(name: str, scheme: str, params: dict, output_dir: str) -> dict:
    """Size, harness measurement and PESQ of one (model, scheme), or the reason it does not apply."""
    profile, settings = params["profile"], params["quantize"]
    setup = runtime.set_up(PROJECT_ROOT, {**params, "energy": {**params["energy"], "output_dir": output_dir}})
    entry = zoo.load_zoo(PROJECT_ROOT)[name]
    model = zoo.build_for_corpus(entry, int(params["corpus"]["sample_rate"]))
    trained = TrainingRecord.path_of(PROJECT_ROOT, name).is_file()
    if trained:
        evaluate.load_trained(model, PROJECT_ROOT / MODELS_DIR / name, entry, PROJECT_ROOT)
    model = model.for_inference()
    corpus = PROJECT_ROOT / CORPUS_DIR
    calibration = calibration_mels(model, corpus, int(settings["calibration_utterances"]),
                                   float(settings["calibration_seconds"]))
    try:
        made = apply(scheme, model, calibration)
    except NotApplicable as reason:
        return {"model": name, "scheme": scheme, "status": f"not applicable: {reason}"}
    limits = quantization_test_set(profile, entry)
    utterances = evaluate.test_utterances(corpus, int(limits["test_utterances"]), float(limits["max_test_seconds"]))
    scores = evaluate.score(made.model, utterances, ("pesq",), setup.seed)
    cost = evaluate.measure_on_utterance(made.model, utterances[0], setup, profile, entry, label=f"{name}/{scheme}",
                                         features_of=model)
    summary = cost["measurement"]["summary"]
    return {"model": name, "scheme": scheme, "status": "ok", "trained": trained, "backend": made.backend,
            "size_bytes": cost["size_bytes"], "rtf": summary["real_time_factor"]["median"],
            "rtf_iqr": summary["real_time_factor"]["q3"] - summary["real_time_factor"]["q1"],
            "windows": summary["energy_j_per_audio_s"]["n"], "calls": summary["real_time_factor"]["n"],
            "energy": summary["energy_j_per_audio_s"]["median"], "pesq": float(scores["pesq"].mean()),
            "method": cost["measurement"]["methods"]["cpu"], "hardware": cost["measurement"]["hardware"]["cpu_model"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["hifigan_v1", "melgan"])
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES))
    parser.add_argument("--profile", default="default", help="measurement and test-set budget (ci, default, paper)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    params = compose_params(PROJECT_ROOT, [f"profile={args.profile}"])
    schemes = ["fp32"] + [s for s in args.schemes if s != "fp32"]
    header = (f"{'model':<12} {'scheme':<13} {'size MB':>8} {'smaller':>8} {'RTF':>7} {'IQR':>6} {'faster':>7} "
              f"{'J/aud s':>8} {'energy':>7} {'PESQ':>6} {'dPESQ':>6}  goals")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as output_dir:
        for name in args.models:
            base = None
            for scheme in schemes:
                row = measure_variant(name, scheme, params, output_dir)
                if row["status"] != "ok":
                    print(f"{name:<12} {scheme:<13} {row['status']}")
                    continue
                base = base or row
                ratio, speedup = base["size_bytes"] / row["size_bytes"], base["rtf"] / row["rtf"]
                energy, drop = row["energy"] / base["energy"], row["pesq"] - base["pesq"]
                goal = GOALS.get(scheme)
                verdict = "" if goal is None else " ".join([
                    f"size {'met' if ratio >= goal['size_ratio'] else 'MISSED'}",
                    f"speed {'met' if speedup >= goal['speedup'] else 'MISSED'}",
                    f"pesq {'met' if abs(drop) <= goal['max_pesq_drop'] else 'MISSED'}"])
                print(f"{name:<12} {scheme:<13} {row['size_bytes'] / 1e6:8.2f} {ratio:7.2f}x {row['rtf']:7.4f} "
                      f"{row['rtf_iqr']:6.4f} {speedup:6.2f}x {row['energy']:8.3f} {energy:6.2f}x "
                      f"{row['pesq']:6.3f} {drop:+6.3f}  {verdict}")
            if base:
                print(f"  {name}: {'trained weights' if base['trained'] else 'UNTRAINED weights'}; "
                      f"{base['windows']} windows, {base['calls']} timed calls for fp32; energy: {base['method']} on {base['hardware']}")


if __name__ == "__main__":
    main()
