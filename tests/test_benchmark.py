"""Benchmark computations: mel adaptation, efficiency by hand, the summary over models."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pytest

from audiofootprint import atomic
from audiofootprint.benchmark_summary import efficiency, model_table, summarise
from audiofootprint.vocoders.zoo import corpus_mel
from audiofootprint.params import compose_params
from audiofootprint.vocoders.base import MelSettings
from conftest import ROOT, measured_metrics


def test_mel_adapted_to_the_corpus():
    hifigan = MelSettings()  # 22.05 kHz, f_max 8000
    assert corpus_mel(hifigan, 16000) == {**hifigan.as_dict(), "sample_rate": 16000, "f_max": 8000.0}
    vocos = MelSettings(sample_rate=24000, n_mels=100, f_max=None)
    adapted = corpus_mel(vocos, 16000)
    assert adapted["f_max"] == 8000.0 and adapted["n_mels"] == 100 and adapted["hop_length"] == 256


def test_efficiency_by_hand():
    table = pd.DataFrame({"pesq": [1.0, 2.0, 3.0], "energy_j_per_audio_s": [1.0, 2.0, 10.0]}, index=["f", "a", "b"])
    # floor 1.0, ceiling 4.0: q = 0, 1/3, 2/3; divided by energy
    assert efficiency(table, "pesq", 1.0, 4.0).tolist() == pytest.approx([0.0, 1 / 6, 2 / 30])
    mcd = pd.DataFrame({"mcd": [8.0, 4.0, 10.0], "energy_j_per_audio_s": [2.0, 4.0, 1.0]})  # lower is better
    # the third is worse than the floor: it buys nothing, whatever its energy
    assert efficiency(mcd, "mcd", 8.0, 0.0).tolist() == pytest.approx([0.0, 0.5 / 4, 0.0])
    with pytest.raises(ValueError, match="no room"):
        efficiency(table, "pesq", 2.0, 2.0)


def _fake_model(root, name, energy, pesq, training_kwh, q1=None, q3=None, kind="recipe", published_run=None,
                **fields):
    """metrics.json of one benchmarked model; ``kind`` as evaluate.quality_status gives it; ``fields``
    replace the record's own (family, params...)."""
    status = {"kind": kind, "converged": kind != "budget", "steps": 10, "recipe_steps": 10 if kind == "recipe" else 1000}
    if kind == "budget":
        status["label"] = "after 10 steps of the recipe's 1,000"
    training = {"energy_kwh": training_kwh, "steps": 10, "seconds": 5.0, "trained_by": name,
                "objective": {"pretrained": "pretrained", "training-free": "none"}.get(kind, "hifigan")}
    if published_run:
        training["published_training"] = {"run": published_run, "note": "the run that made them"}
    record = measured_metrics(name, energy, pesq, q1=q1, q3=q3, status=status, training=training)
    dataclasses.replace(record, **fields).write(root / "results/benchmark" / name / "metrics.json")


@pytest.fixture
def project(tmp_path):
    for name in ("conf", "data"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def test_summary_fronts_efficiency_and_failures(project):
    params = compose_params(project, ["benchmark.models=[griffinlim_32,hifigan_v3,melgan,vocos,hifigan_v1]",
                                      "benchmark.metrics=[pesq]"])
    _fake_model(project, "griffinlim_32", energy=0.1, pesq=1.5, training_kwh=0.0, kind="training-free")
    _fake_model(project, "hifigan_v3", energy=1.0, pesq=2.5, training_kwh=0.001)
    _fake_model(project, "melgan", energy=2.0, pesq=2.0, training_kwh=0.002)  # dominated by hifigan_v3
    _fake_model(project, "vocos", energy=0.5, pesq=1.2, training_kwh=0.001)  # below the floor
    # hifigan_v1 has no metrics.json: its benchmark failed
    atomic.write_json(project / "results/recordings/metrics.json", {"pesq": {"mean": 4.5, "ci95": 0.0, "n": 2}})
    metrics = summarise(project, params)
    assert metrics["pareto_inference"] == ["griffinlim_32", "hifigan_v3"]
    assert metrics["failed"] == ["hifigan_v1"]
    assert metrics["best_quality"] == "hifigan_v3"
    table = pd.read_csv(project / "results/benchmark_summary/models.csv").set_index("model")
    assert table.loc["hifigan_v3", "efficiency"] == pytest.approx((1.0 / 3.0) / 1.0)
    assert table.loc["melgan", "efficiency"] == pytest.approx((0.5 / 3.0) / 2.0)
    assert table.loc["griffinlim_32", "efficiency"] == 0
    assert table.loc["hifigan_v1", "status"].startswith("failed")
    # zero efficiency (the floor, and vocos below it) ranks after the others, the cheaper first
    assert table.loc["vocos", "efficiency"] == 0
    assert table["rank_by_efficiency"].dropna().astype(int).to_dict() == {
        "hifigan_v3": 1, "melgan": 2, "griffinlim_32": 3, "vocos": 4}
    assert metrics["most_efficient"] == "hifigan_v3"
    assert json.loads((project / "results/benchmark_summary/metrics.json").read_text()) == metrics


def test_model_table_marks_missing_results(project):
    params = compose_params(project, ["benchmark.models=[melgan]"])
    table = model_table(project, params)
    assert table.loc[0, "status"] == "failed" and "melgan/metrics.json missing" in table.loc[0, "reason"]


def test_budget_trained_models_are_costed_never_crowned(project):
    """A budget-trained model that scores higher is not named best, nor put on a front or ranked."""
    params = compose_params(project, ["benchmark.models=[griffinlim_32,hifigan_v1_ljspeech,hifigan_v3,melgan]",
                                      "benchmark.metrics=[pesq]"])
    _fake_model(project, "griffinlim_32", energy=0.1, pesq=1.5, training_kwh=0.0, kind="training-free")
    _fake_model(project, "hifigan_v1_ljspeech", energy=3.0, pesq=2.9, training_kwh=0.0, kind="pretrained",
                published_run="hifigan_v1_jik876")
    _fake_model(project, "hifigan_v3", energy=0.5, pesq=3.5, training_kwh=0.001, kind="budget")  # best, cheap: noise
    _fake_model(project, "melgan", energy=1.0, pesq=1.2, training_kwh=0.001, kind="budget")
    atomic.write_json(project / "results/recordings/metrics.json", {"pesq": {"mean": 4.5, "ci95": 0.0, "n": 18}})
    estimates = pd.DataFrame({"model_id": ["hifigan_v1_jik876"], "energy_kwh_low": [100.0],
                              "energy_kwh_central": [200.0], "energy_kwh_high": [300.0]})
    atomic.write_csv(project / "results/carbon/tables/estimates.csv", estimates)
    metrics = summarise(project, params)
    assert metrics["best_quality"] == "hifigan_v1_ljspeech"
    assert metrics["headline_models"] == ["griffinlim_32", "hifigan_v1_ljspeech"]
    assert metrics["pareto_inference"] == ["griffinlim_32", "hifigan_v1_ljspeech"]
    assert "hifigan_v3" not in metrics["pareto_training"] + metrics["pareto_inference_survives_spread"]
    assert metrics["budget_trained"] == {"hifigan_v3": "after 10 steps of the recipe's 1,000",
                                         "melgan": "after 10 steps of the recipe's 1,000"}
    table = pd.read_csv(project / "results/benchmark_summary/models.csv").set_index("model")
    assert table.loc["hifigan_v3", "pareto_inference"] == False  # noqa: E712 - read back from CSV
    assert pd.isna(table.loc["hifigan_v3", "rank_by_efficiency"])
    assert table.loc["hifigan_v1_ljspeech", "rank_by_efficiency"] == 1
    # the pretrained model's training energy is the published run's estimate, labelled as such
    assert table.loc["hifigan_v1_ljspeech", "training_energy_kwh"] == 200.0
    assert table.loc["hifigan_v1_ljspeech", "training_energy_high_kwh"] == 300.0
    assert table.loc["hifigan_v1_ljspeech", "training_energy_method"].startswith(
        "estimate of the published run hifigan_v1_jik876 (someone else's")


def test_published_mos_front_and_ranking_by_hand(project):
    """The published-MOS axis: gaps to each test's recordings, a front and a ranking against energy,
    over every rated model (budget-trained ones too: the rating and the cost are the architecture's)."""
    mos = pd.DataFrame([
        # model, mos, test (one paper, two tests with different recordings' MOS)
        ("Ground Truth", 4.5, "arXiv:0000.00001 Table 1"), ("A", 4.3, "arXiv:0000.00001 Table 1"),
        ("B", 3.5, "arXiv:0000.00001 Table 1"), ("GL", 2.5, "arXiv:0000.00001 Table 1"),
        ("Ground Truth", 4.0, "arXiv:0000.00001 Table 2"), ("B", 3.9, "arXiv:0000.00001 Table 2"),
    ], columns=["model", "mos", "test"])
    mos["ci95"] = 0.05
    mos["dataset"] = "LJSpeech"
    mos["test_condition"] = "copy-synthesis from ground-truth mel-spectrograms"
    mos["source"] = "arXiv:0000.00001"
    mos["where_stated"] = mos["test"].str.removeprefix("arXiv:0000.00001 ")
    mos["notes"] = "hand-made"
    path = project / "data/published/mos_ljspeech.csv"
    mos[["model", "mos", "ci95", "dataset", "test_condition", "source", "test", "where_stated", "notes"]].to_csv(
        path, index=False)
    params = compose_params(project, ["benchmark.models=[griffinlim_32,griffinlim_60,hifigan_v3,melgan]",
                                      "benchmark.metrics=[pesq]", "benchmark.published_mos={griffinlim_60: GL,"
                                      " hifigan_v3: A, melgan: B}"])
    _fake_model(project, "griffinlim_32", energy=0.1, pesq=1.5, training_kwh=0.0, kind="training-free")
    _fake_model(project, "griffinlim_60", energy=0.2, pesq=1.6, training_kwh=0.0, kind="training-free")
    _fake_model(project, "hifigan_v3", energy=2.0, pesq=1.1, training_kwh=0.001, kind="budget")
    _fake_model(project, "melgan", energy=1.0, pesq=1.1, training_kwh=0.001, kind="budget")
    atomic.write_json(project / "results/recordings/metrics.json", {"pesq": {"mean": 4.5, "ci95": 0.0, "n": 18}})
    metrics = summarise(project, params)
    table = pd.read_csv(project / "results/benchmark_summary/models.csv").set_index("model")
    # gaps: A -0.2 (Table 1); B median(-1.0, -0.1) = -0.55 (each against its own test's recordings); GL -2.0
    assert table.loc["hifigan_v3", "published_mos_gap"] == pytest.approx(-0.2)
    assert table.loc["melgan", "published_mos_gap"] == pytest.approx(-0.55)
    assert table.loc["griffinlim_60", "published_mos_gap"] == pytest.approx(-2.0)
    # every point is on the front: each cheaper one is rated lower
    assert metrics["pareto_published_mos"] == ["griffinlim_60", "hifigan_v3", "melgan"]
    # efficiency: share of the Griffin-Lim-to-recordings gap closed, per joule
    assert table.loc["hifigan_v3", "efficiency_published_mos"] == pytest.approx((1.8 / 2.0) / 2.0)
    assert table.loc["melgan", "efficiency_published_mos"] == pytest.approx((1.45 / 2.0) / 1.0)
    assert metrics["ranking_published_mos"] == ["melgan", "hifigan_v3", "griffinlim_60"]
    assert metrics["most_efficient_published_mos"] == "melgan"
    assert metrics["published_mos_floor"] == {"model": "griffinlim_60", "mos_gap": -2.0}


def test_a_grid_is_summarised_family_by_family_from_small_to_large(project):
    """The thesis' grid (two of its families here, their real parameter counts, energies made up):
    sizes ordered by their parameters, each family's growth from smallest to largest by hand, and
    quality only where it is a finding."""
    grid = {("hifigan", "small"): (1_464_322, 2.0), ("hifigan", "medium"): (928_514, 1.0),
            ("hifigan", "large"): (13_936_130, 8.0), ("melgan", "small"): (1_030_786, 1.0),
            ("melgan", "medium"): (4_266_050, 3.0), ("melgan", "large"): (18_214_658, 2.0)}
    names = [f"thesis_{family}_{size}" for family, size in grid]
    params = compose_params(project, [f"benchmark.models=[griffinlim_32,{','.join(names)}]", "benchmark.metrics=[pesq]"])
    _fake_model(project, "griffinlim_32", energy=0.1, pesq=1.5, training_kwh=0.0, kind="training-free")
    for (family, size), (count, energy) in grid.items():
        kind = "recipe" if (family, size) == ("melgan", "large") else "budget"
        _fake_model(project, f"thesis_{family}_{size}", energy=energy, pesq=2.0, training_kwh=0.001, kind=kind,
                    family=family, params=count)
    atomic.write_json(project / "results/recordings/metrics.json", {"pesq": {"mean": 4.5, "ci95": 0.0, "n": 2}})
    thesis = summarise(project, params)["grids"]["thesis"]
    # median parameters per size over the families: small 1.25M, medium 2.60M, large 16.1M
    assert thesis["sizes"] == ["small", "medium", "large"]
    assert thesis["members"] == sorted(names) and thesis["failed"] == []
    hifigan, melgan = thesis["families"]["hifigan"], thesis["families"]["melgan"]
    assert (hifigan["smallest"], hifigan["largest"]) == ("small", "large")
    assert hifigan["energy_largest_over_smallest"] == 4.0
    assert hifigan["params_largest_over_smallest"] == pytest.approx(13_936_130 / 1_464_322, abs=1e-4)
    assert hifigan["energy_order_follows_params"]  # medium (the narrowest) 1 J, small 2 J, large 8 J
    assert melgan["energy_largest_over_smallest"] == 2.0 and not melgan["energy_order_follows_params"]
    assert hifigan["by_size"]["medium"]["energy_j_per_audio_s"] == 1.0
    # a budget-trained member's quality is not a finding; the converged one's is, and makes the front
    assert hifigan["by_size"]["large"]["pesq"] is None and melgan["by_size"]["large"]["pesq"] == 2.0
    assert thesis["converged"] == thesis["pareto_inference"] == ["thesis_melgan_large"]
    table = pd.read_csv(project / "results/benchmark_summary/models.csv").set_index("model")
    assert table.loc["thesis_hifigan_medium", ["grid", "grid_size"]].tolist() == ["thesis", "medium"]
    assert table.loc["griffinlim_32", ["grid", "grid_size"]].isna().all()


def test_a_run_without_a_grid_has_no_grid_summary(project):
    params = compose_params(project, ["benchmark.models=[griffinlim_32,hifigan_v3]", "benchmark.metrics=[pesq]"])
    _fake_model(project, "griffinlim_32", energy=0.1, pesq=1.5, training_kwh=0.0, kind="training-free")
    _fake_model(project, "hifigan_v3", energy=1.0, pesq=2.5, training_kwh=0.001)
    atomic.write_json(project / "results/recordings/metrics.json", {"pesq": {"mean": 4.5, "ci95": 0.0, "n": 2}})
    assert "grids" not in summarise(project, params)
