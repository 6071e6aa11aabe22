"""How much the measurement harness adds to what it measures.

Runs the same work (one HiFi-GAN V2 synthesis of 1 s of audio, and a fixed busy loop) in a
bare timed loop and under the harness (codecarbon offline tracker, windows, per-call timing),
alternating several rounds, and prints the median time per call of each and the overhead:
harness / bare - 1. The goal is an overhead under 2% of the measured time.

    .venv/bin/python benchmarks/harness_overhead.py [--rounds 5] [--window 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from audiofootprint import PROJECT_ROOT
from audiofootprint.energy import MeasureSettings, TrackerSettings, measure
from audiofootprint.energy.cost import synthetic_mel
from audiofootprint.vocoders import zoo


def bare_loop(fn, seconds: float) -> tuple[float, int]:
    """Median seconds per call of ``fn`` over a plain loop lasting ``seconds``; and the calls."""
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        before = time.perf_counter()
        fn()
        times.append(time.perf_counter() - before)
    return statistics.median(times), len(times)


def harnessed(fn, seconds: float, output_dir: str) -> tuple[float, float]:
    """Median seconds per call under the harness, and its whole wall time per call (start/stop included)."""
    start = time.perf_counter()
    result = measure(fn, label="overhead", audio_seconds=1.0, samples=1,
                     settings=MeasureSettings(warmup=0, windows=1, min_window_s=seconds, min_repeats=3, idle_windows=1),
                     tracker_settings=TrackerSettings(output_dir=output_dir))
    total = time.perf_counter() - start
    window = result.windows[0]
    idle = sum(w.wall_s for w in result.idle)
    return statistics.median(result.call_times_s), (total - idle) / window.calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window", type=float, default=3.0, help="seconds per measurement")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = zoo.build(zoo.load_zoo(PROJECT_ROOT)["hifigan_v2"]).for_inference()
    mel = synthetic_mel(model, 1.0)

    def synthesis():
        with torch.inference_mode():
            model(mel)

    def busy():
        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:
            pass

    print(f"{'work':<22} {'round':>5} {'bare ms':>9} {'harness ms':>11} {'overhead':>9} {'with start/stop':>16}")
    with tempfile.TemporaryDirectory() as output_dir:
        for name, fn in [("hifigan_v2 1 s synthesis", synthesis), ("busy loop 50 ms", busy)]:
            fn()
            overheads, totals = [], []
            for number in range(args.rounds):
                bare, _ = bare_loop(fn, args.window)
                under, whole = harnessed(fn, args.window, output_dir)
                overheads.append(under / bare - 1)
                totals.append(whole / bare - 1)
                print(f"{name:<22} {number:>5} {bare * 1e3:>9.3f} {under * 1e3:>11.3f} {overheads[-1]:>+9.2%} "
                      f"{totals[-1]:>+16.2%}")
            print(f"{name:<22} median overhead per call {statistics.median(overheads):+.2%}; "
                  f"including tracker start/stop {statistics.median(totals):+.2%}")


if __name__ == "__main__":
    main()
