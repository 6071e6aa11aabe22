"""The energy card: numbers from a hand-made results tree, methods, the front, errors, real results."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from audiofootprint import atomic
from audiofootprint.benchmark_summary import summarise
from audiofootprint.card import build_card, render_markdown, sig
from audiofootprint.carbon import intensity_for
from audiofootprint.cli import main
from audiofootprint.energy.tracker import CPU_METHODS, method_kind, overall_method
from audiofootprint.failures import benchmark_failure, training_failure
from audiofootprint.records import TrainingRecord
from conftest import ROOT

ESTIMATED = {"cpu": "estimate: CPU load x TDP (8 W TDP for Test CPU)", "gpu": "no GPU seen",
             "ram": "estimate: codecarbon RAM power model (process mode)"}
MEASURED = {"cpu": CPU_METHODS["intel_rapl"], "gpu": "NVML total-energy counter", "ram": "not measured"}
OK_KEYS = {"model", "status", "family", "profile", "sources", "notes", "static", "inference", "method",
           "hardware", "training", "quality", "pareto"}
# model: (energy J per audio s, PESQ, trained_by). Floor gl at PESQ 2.0, recordings at 4.5 (span 2.5).
MODELS = {"gl": (1.0, 2.0, "gl"), "a": (4.0, 3.0, "a"), "b": (5.0, 2.5, "b"), "c": (6.0, 1.5, "a")}
TRAINING_KWH = 0.002
PUE = 1.5


def _params(root, models, country="FRA"):
    atomic.write_text(root / "params.yaml", yaml.safe_dump({
        "profile": {"name": "ci"},
        "energy": {"country_iso3": country, "pue": PUE},
        "benchmark": {"models": {name: {"trained_by": by} for name, by in models.items()},
                      "quality_axis": "pesq", "floor": "gl", "published_mos": {}},
    }))


def _benchmarked(root, name, energy, pesq, trained_by, methods=ESTIMATED):
    grid = intensity_for("FRA")[0]
    kwh = 0.0 if trained_by == "gl" else TRAINING_KWH
    atomic.write_json(root / "results/benchmark" / name / "metrics.json", {
        "status": "ok", "family": f"family {name}", "params": 2_000_000, "size_mb": 8.0, "gflops_per_audio_s": 12.5,
        "energy_j_per_audio_s": {"median": energy, "q1": energy * 0.9, "q3": energy * 1.2, "n": 4,
                                 "min": energy * 0.8, "max": energy * 1.3},
        "net_energy_j_per_audio_s": {"median": energy / 2, "q1": energy / 2, "q3": energy / 2, "n": 4},
        "real_time_factor": {"median": 0.25, "q1": 0.2, "q3": 0.3, "n": 30},
        "energy_method": methods, "hardware": "Test CPU", "test_utterances": 3, "test_seconds": 6.0,
        # converged by fiat: these cards are about the numbers, not about which quality counts
        "quality_status": {"kind": "recipe" if kwh else "training-free", "converged": True, "steps": 40 if kwh else 0,
                           "recipe_steps": 40 if kwh else None}, "sample_rate": 16000,
        "quality": {"pesq": {"mean": pesq, "ci95": 0.12, "n": 3}, "stoi": {"mean": 0.8, "ci95": 0.01, "n": 3}},
        "training": {"objective": "gan" if kwh else "none", "steps": 40 if kwh else 0, "seconds": 20.0 if kwh else 0.0,
                     "energy_kwh": kwh, "co2e_kg": kwh * grid / 1000, "trained_by": trained_by},
    })
    hardware = {"codecarbon_version": "3.3.2", "country_iso3": "FRA", "cpu_count": 2, "cpu_model": "Test CPU",
                "gpu_count": 0, "gpu_model": None, "os": "Linux", "pue": PUE, "ram_total_gb": 16.0,
                "tracking_mode": "process"}
    window = {"calls": 10, "energy_j": 1.0}
    atomic.write_json(root / "results/benchmark" / name / "measurement.json", {
        "flops_method": "torch.utils.flop_counter (matmul and convolution only: a lower bound)",
        "flops_per_audio_s": 12.5e9, "input": "mel of test utterance u1 (63 frames)", "label": name,
        "params": 2_000_000, "peak_memory": {"bytes": 3_000_000, "method": "Linux VmHWM above VmRSS"},
        "torch_threads": 2,
        "measurement": {"audio_seconds": 1.0, "device": "cpu", "hardware": hardware, "methods": methods,
                        "idle": [window] * 2, "windows": [window] * 4,
                        "settings": {"warmup": 2, "windows": 4, "min_window_s": 2.0, "idle_windows": 2}},
    })
    path = TrainingRecord.path_of(root, trained_by)
    if not path.is_file():
        record = TrainingRecord.nothing_to_learn(trained_by)
        if kwh:
            record = TrainingRecord({"objective": "gan", "steps": 40, "seconds": 20.0, "energy_kwh": kwh,
                                     "co2e_kg": kwh * grid / 1000, "total_energy_kwh": kwh * 1.25,
                                     "recipe_steps": 1_000_000, "stopped_by": "max_seconds",
                                     "budget": {"max_steps": 1000, "max_seconds": 20},
                                     "hardware": hardware, "methods": methods})
        record.write(path)


@pytest.fixture
def tree(tmp_path):
    """Four benchmarked models, one (x) never benchmarked, and the summary the pipeline computes."""
    _params(tmp_path, {**{name: by for name, (_, _, by) in MODELS.items()}, "x": "x"})
    for name, (energy, pesq, by) in MODELS.items():
        _benchmarked(tmp_path, name, energy, pesq, by)
    atomic.write_json(tmp_path / "results/recordings/metrics.json", {"pesq": {"mean": 4.5, "ci95": 0.0, "n": 3}})
    summarise(tmp_path, yaml.safe_load((tmp_path / "params.yaml").read_text()))
    return tmp_path


def test_method_labels():
    assert method_kind(ESTIMATED["cpu"]) == "estimate" and method_kind(MEASURED["cpu"]) == "measured"
    assert method_kind("no GPU seen") == "none" and method_kind("codecarbon mode foo") == "unknown"
    assert overall_method(ESTIMATED) == "estimate"
    assert overall_method(MEASURED) == "measured"
    assert overall_method({**MEASURED, "ram": ESTIMATED["ram"]}) == "partly estimated"
    assert overall_method({**ESTIMATED, "cpu": "codecarbon mode foo"}) == "unknown"
    assert sig(5.3) == "5.30" and sig(396.0) == "396" and sig(2071.67) == "2,072" and sig(8.3e-6) == "8.30e-06"


def test_card_numbers_by_hand(tree):
    card = build_card(tree, "b")
    assert set(card) == OK_KEYS and card["status"] == "ok" and card["profile"] == "ci"
    assert card["inference"]["energy_j_per_audio_s"] == {"median": 5.0, "q1": 4.5, "q3": 6.0, "n": 4}
    assert (card["inference"]["windows"], card["inference"]["calls"], card["inference"]["idle_windows"]) == (4, 40, 2)
    assert card["static"]["flops_lower_bound"] and card["static"]["peak_memory_mb"] == 3.0
    assert card["hardware"]["torch_threads"] == 2 and card["method"]["label"] == "estimate"
    grid, source = intensity_for("FRA")
    training = card["training"]
    assert training["energy_kwh"] == TRAINING_KWH and not training["shared"]
    assert training["co2e_kg"] == pytest.approx(TRAINING_KWH * grid / 1000)
    assumptions = training["assumptions"]
    assert assumptions["grid_g_per_kwh"] == grid and assumptions["grid_source"] == source
    assert assumptions["pue"] == PUE and assumptions["implied_g_per_kwh"] == pytest.approx(grid)
    assert assumptions["consistent"] and card["notes"] == []
    assert (card["quality"]["axis"], card["quality"]["mean"], card["quality"]["ci95"]) == ("pesq", 2.5, 0.12)
    pareto = card["pareto"]
    # a (4 J, 3.0) beats b (5 J, 2.5) on both axes; gl (1 J, 2.0) is cheaper but worse
    assert pareto["dominated_by"] == ["a"] and not pareto["on_front"] and pareto["front"] == ["a", "gl"]
    assert pareto["failed"] == ["x"] and pareto["survives_spread"] is False and pareto["on_training_front"] is False
    # efficiency = (2.5 - 2.0) / (4.5 - 2.0) / 5 J = 0.04; a has 0.4 / 4 = 0.1; gl and c are at 0
    assert pareto["efficiency"] == pytest.approx(0.04)
    assert (pareto["rank_by_efficiency"], pareto["n_ranked"]) == (2, 4)


def test_card_dominated_by_several_and_shared_training(tree):
    card = build_card(tree, "c")
    assert card["pareto"]["dominated_by"] == ["a", "b", "gl"]
    # c is below the floor: efficiency 0, tied with gl (1 J) and ranked after it (6 J)
    assert card["pareto"]["efficiency"] == 0 and card["pareto"]["rank_by_efficiency"] == 4
    assert card["training"]["shared"] and card["training"]["trained_by"] == "a"
    assert "results/models/a/training.json" in card["sources"]
    text = render_markdown(card)
    assert "dominated by a, b, gl" in text and "the shared run of a" in text and "efficiency 0" in text
    on_front = build_card(tree, "a")
    assert on_front["pareto"]["on_front"] and on_front["pareto"]["survives_spread"] is not None
    assert "on the front" in render_markdown(on_front)


def test_markdown_states_the_method_and_assumptions(tree):
    text = render_markdown(build_card(tree, "b"))
    grid = intensity_for("FRA")[0]
    assert "**estimate**" in text and "**estimates** by codecarbon" in text and "measured" not in text.lower()
    assert "lower bound: matmul/conv only" in text
    assert "5.00 J median (IQR 4.50 to 6.00 J) over 4 windows" in text
    assert f"grid FRA {sig(grid)} g CO2e/kWh" in text and f"PUE {PUE:g}" in text
    assert "2.500 MOS-LQO +/- 0.120 (95% CI over 3 test utterances)" in text
    assert "efficiency rank 2 of 4" in text and "| Parameters | 2,000,000 (8.00 MB on disk) |" in text
    assert "profile `ci`" in text and "40 steps in 20.0 s" in text


def test_measured_counters_are_called_measured(tmp_path):
    _params(tmp_path, {"m": "m", "gl": "gl"})
    _benchmarked(tmp_path, "m", 2.0, 3.0, "m", methods=MEASURED)
    card = build_card(tmp_path, "m")
    assert card["method"]["label"] == "measured" and card["training"]["method"]["label"] == "measured"
    assert "**measured** with energy counters" in render_markdown(card)


def test_missing_summary_still_prints(tree):
    shutil.rmtree(tree / "results/benchmark_summary")
    card = build_card(tree, "b")
    assert card["pareto"] == {"computed": False,
                              "note": "the Pareto front is not computed yet: run `dvc repro benchmark_summary`"}
    assert "not computed yet: run `dvc repro benchmark_summary`" in render_markdown(card)


def test_stale_summary_and_inconsistent_co2e_are_noted(tree):
    path = tree / "results/benchmark/b/metrics.json"
    metrics = json.loads(path.read_text())
    metrics["energy_j_per_audio_s"]["median"] = 7.0
    atomic.write_json(path, metrics)
    record_path = tree / "results/models/b/training.json"
    record = json.loads(record_path.read_text())
    record["co2e_kg"] = TRAINING_KWH * 100.0 / 1000  # 100 g/kWh: not France's grid in codecarbon's table
    record["hardware"]["country_iso3"] = "DEU"
    atomic.write_json(record_path, record)
    card = build_card(tree, "b")
    notes = " ".join(card["notes"])
    assert card["pareto"]["stale"] and "older results of b" in notes
    assert card["training"]["assumptions"]["implied_g_per_kwh"] == pytest.approx(100.0)
    assert card["training"]["assumptions"]["country_iso3"] == "DEU"
    assert not card["training"]["assumptions"]["consistent"]
    assert "params.yaml now says FRA" in notes and "train@b" in notes
    assert f"differs from {tree / 'results/models/b/training.json'}" in notes


def test_failed_model_says_why(tree):
    _params(tree, {**{name: by for name, (_, _, by) in MODELS.items()}, "f": "f"})
    training = training_failure("f", FloatingPointError("loss is NaN at step 3"), {"steps": 3, "energy_kwh": 0.0005})
    TrainingRecord(training).write(TrainingRecord.path_of(tree, "f"))  # as train@f writes it
    benchmark_failure(tree / "results/benchmark/f", "f", "HiFi-GAN", "f", training)  # as benchmark@f writes it
    card = build_card(tree, "f")
    assert card["status"] == "failed" and "static" not in card
    why = "its training (train@f) failed after 3 steps (FloatingPointError: loss is NaN at step 3)"
    assert card["failure"]["reason"] == why
    text = render_markdown(card)
    assert f"**f failed** (status `failed`): {why}" in text
    assert ("training failed after 3 steps (FloatingPointError: loss is NaN at step 3); 3 steps and 0.000500 kWh "
            "spent") in text


def test_errors_name_the_file_and_the_stage(tree, capsys):
    with pytest.raises(KeyError, match="unknown model 'nosuch'.*a, b, c, gl, x"):
        build_card(tree, "nosuch")
    with pytest.raises(FileNotFoundError, match=r"x/metrics.json not found: run `dvc repro benchmark@x`"):
        build_card(tree, "x")
    (tree / "results/benchmark/b/measurement.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"b/measurement.json not found: run `dvc repro benchmark@b`"):
        build_card(tree, "b")
    (tree / "results/benchmark/c/metrics.json").unlink()
    assert main(["--root", str(tree), "card", "c"]) == 2
    error = capsys.readouterr().err
    assert "results/benchmark/c/metrics.json not found" in error and "dvc repro benchmark@c" in error
    assert main(["card", "nosuch", "--root", str(tree)]) == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err


def test_cli_json_parses_and_markdown_prints(tree, capsys):
    assert main(["--root", str(tree), "card", "a", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert set(card) == OK_KEYS and card["pareto"]["on_front"]
    assert main(["card", "a", "--root", str(tree)]) == 0
    assert capsys.readouterr().out.startswith("### Energy card: a (family a)")


def _committed_models():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return [name for name in params["benchmark"]["models"]
            if (ROOT / "results/benchmark" / name / "metrics.json").is_file()
            and (ROOT / "results/benchmark" / name / "measurement.json").is_file()]


def test_card_of_committed_results():
    names = _committed_models()
    if not names:
        pytest.skip("no committed results/benchmark/*/metrics.json: run `make repro` first")
    name = "hifigan_v1" if "hifigan_v1" in names else names[0]
    metrics = json.loads((ROOT / "results/benchmark" / name / "metrics.json").read_text())
    card = json.loads(json.dumps(build_card(ROOT, name), allow_nan=False))
    assert card["inference"]["energy_j_per_audio_s"]["median"] == metrics["energy_j_per_audio_s"]["median"]
    assert card["static"]["params"] == metrics["params"]
    assert card["method"]["label"] == overall_method(metrics["energy_method"])
    text = render_markdown(card)
    assert f"**{card['method']['label']}**" in text
    training = card["training"]
    if training["assumptions"]:
        assert training["assumptions"]["consistent"], card["notes"]
    if card["pareto"]["computed"] and not card["pareto"]["stale"]:
        front = json.loads((ROOT / "results/benchmark_summary/metrics.json").read_text())["pareto_inference"]
        assert card["pareto"]["on_front"] == (name in front)
