"""The survey stages through DVC in a temporary copy of the project."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import BENCHMARK_MODELS, ROOT, copy_project, run

# The `reproduced` fixture (survey and carbon stages) and `benchmarked` (the ci benchmark) live in
# conftest.py: the reliability suite checks the same runs (no network: tests/test_reliability_env.py).


def test_survey_stage_outputs_exist_and_parse(reproduced):
    project, first = reproduced
    assert "Running stage 'survey'" in first.stdout and "Running stage 'survey_report'" in first.stdout
    metrics = json.loads((project / "results/survey/metrics.json").read_text())
    papers = (project / "data/survey/papers.csv").read_text().count("\n") - 1
    assert metrics["n_papers"] == papers
    assert 0 <= metrics["share_by_group"]["energy"] <= metrics["share_by_group"]["quality"] <= 1
    for table in ["family_shares", "group_shares", "shares_by_period", "shares_by_task", "energy_papers"]:
        assert (project / f"results/survey/tables/{table}.csv").stat().st_size > 0
    notebook = json.loads((project / "reports/survey.ipynb").read_text())
    assert not any(o.get("output_type") == "error" for c in notebook["cells"] for o in c.get("outputs", []))
    assert "image/png" in json.dumps(notebook)
    html = (project / "reports/survey.html").read_text()
    assert "What generative audio papers measure" in html and "Finding" in html
    for figure in ["family_shares", "shares_by_period", "shares_by_task"]:
        assert (project / f"results/survey/figures/{figure}.png").read_bytes()[:4] == b"\x89PNG"


def test_second_repro_does_nothing_and_metrics_show(reproduced):
    project, _ = reproduced
    report = (project / "reports/survey.ipynb").read_bytes()
    second = run(["dvc", "repro", "survey_report", "carbon_report"], project)
    assert "Running stage" not in second.stdout
    assert (project / "reports/survey.ipynb").read_bytes() == report
    shown = run(["dvc", "metrics", "show", "--json"], project)
    assert "share_by_group" in shown.stdout


@pytest.mark.reliability("same_bytes", "clone_in_another_folder")
def test_a_clone_in_another_folder_renders_the_same_bytes(reproduced, tmp_path):
    """No path of the checkout enters a rendered report: the notebooks run in the root with root = "."."""
    project, _ = reproduced
    other = copy_project(Path(__file__).resolve().parents[1], tmp_path / "another" / "clone")
    run(["dvc", "repro", "survey_report", "carbon_report"], other)
    for report in ("survey.ipynb", "survey.html", "carbon.ipynb", "carbon.html"):
        text = (other / "reports" / report).read_text()
        assert text == (project / "reports" / report).read_text(), report
        assert str(other) not in text and str(project) not in text, report


def test_stale_params_stops_the_pipeline(reproduced, tmp_path):
    project, _ = reproduced
    copy = tmp_path / "stale"
    shutil.copytree(project, copy)
    survey = copy / "conf/survey/default.yaml"
    survey.write_text(survey.read_text().replace("first_year: 2016", "first_year: 2017"))
    result = run(["dvc", "repro"], copy, check=False)
    assert result.returncode != 0
    assert "params.yaml is stale" in result.stderr + result.stdout


def test_carbon_stage_outputs(reproduced):
    project, first = reproduced
    assert "Running stage 'training_carbon'" in first.stdout
    metrics = json.loads((project / "results/carbon/metrics.json").read_text())
    totals = metrics["total_co2e_kg"]
    assert 0 < totals["low"] < totals["central"] < totals["high"]
    estimates = (project / "results/carbon/tables/estimates.csv").read_text().splitlines()
    assert len(estimates) - 1 == metrics["n_runs_estimated"] >= 15
    html = (project / "reports/carbon.html").read_text()
    assert "Quality against training energy" in html and "Sensitivity" in html
    for figure in ["training_co2e", "co2e_by_year", "quality_training_energy", "sensitivity"]:
        assert (project / f"results/carbon/figures/{figure}.png").read_bytes()[:4] == b"\x89PNG"


def test_benchmark_runs_every_stage_for_four_models(benchmarked):
    project, first = benchmarked
    for name in BENCHMARK_MODELS:
        assert f"Running stage 'benchmark@{name}'" in first.stdout
        metrics = json.loads((project / f"results/benchmark/{name}/metrics.json").read_text())
        assert metrics["energy_j_per_audio_s"]["median"] > 0 and metrics["real_time_factor"]["median"] > 0
        assert 1.0 <= metrics["quality"]["pesq"]["mean"] <= 4.65
        assert list((project / f"results/benchmark/{name}/audio").glob("*.synthesis.wav"))
    for name in ["hifigan_v3", "melgan"]:
        record = json.loads((project / f"results/models/{name}/training.json").read_text())
        assert record["steps"] > 0 and record["energy_kwh"] > 0
    pretrained = json.loads((project / "results/models/hifigan_v1_ljspeech/training.json").read_text())
    assert pretrained["objective"] == "pretrained" and pretrained["weights"]["sha256_verified"]
    real = json.loads((project / "results/benchmark/hifigan_v1_ljspeech/metrics.json").read_text())
    assert real["sample_rate"] == 22050 and real["quality_status"]["kind"] == "pretrained"
    assert real["quality"]["pesq"]["mean"] > 2.0 and real["quality"]["stoi"]["mean"] > 0.9  # real weights, real speech
    summary = json.loads((project / "results/benchmark_summary/metrics.json").read_text())
    assert summary["headline_models"] == ["griffinlim_32", "hifigan_v1_ljspeech"]
    assert summary["best_quality"] == "hifigan_v1_ljspeech"
    assert set(summary["budget_trained"]) == {"hifigan_v3", "melgan"}
    assert set(summary["pareto_inference"]) <= set(summary["headline_models"]) and summary["pareto_inference"]
    assert "hifigan_v1_ljspeech" in summary["published_mos_models"] and summary["pareto_published_mos"]
    html = (project / "reports/benchmark.html").read_text()
    assert "Efficiency" in html and "Pareto front" in html
    # the cost of training to the recipe (ci profile: melgan, one step at the recipe's batch of 16)
    costs = pd.read_csv(project / "results/recipe_cost/costs.csv").set_index("model")
    assert list(costs.index) == ["melgan"] and costs.loc["melgan", "batch_size"] == 16
    assert costs.loc["melgan", "seconds_per_step"] > 0 and costs.loc["melgan", "joules_per_step"] > 0
    assert pd.isna(costs.loc["melgan", "recipe_kwh"])  # MelGAN's recipe gives epochs, not steps
    assert "Training to the recipe on this machine" in html and "its recipe gives no step count" in html
    shown = run(["dvc", "metrics", "show", "--json"], project).stdout
    assert "energy_j_per_audio_s" in shown and "most_efficient" in shown  # DVC shows numbers and strings, not lists


def test_benchmark_second_repro_does_nothing(benchmarked):
    project, _ = benchmarked
    second = run(["dvc", "repro", "benchmark_report"], project)
    assert "Running stage" not in second.stdout


@pytest.mark.slow
def test_the_thesis_grid_runs_through_dvc_one_size_of_each_family(tmp_path):
    """`benchmark.models=[griffinlim_32, ...]` with one size of each of the thesis' six families, on the ci
    profile, through DVC: every model trains, is benchmarked on the thesis' features, and is summarised."""
    from audiofootprint.corpus import ALLISON_DIR

    if not ALLISON_DIR.is_dir():
        pytest.skip(f"{ALLISON_DIR} missing: `make test` installs asterisk-core-sounds-en-g722 when run as root")
    grid = [f"thesis_{family}_small" for family in ("hifigan", "melgan", "diffwave", "waveglow", "waveflow", "wavegrad")]
    project = copy_project(ROOT, tmp_path / "grid")
    run(["audiofootprint", "params", "--write", "profile=ci", f"benchmark.models=[griffinlim_32,{','.join(grid)}]",
         "profile.recipe_cost.models=[]"], project)
    first = run(["dvc", "repro", "benchmark_summary"], project)
    for name in grid:
        assert f"Running stage 'benchmark@{name}'" in first.stdout
        metrics = json.loads((project / f"results/benchmark/{name}/metrics.json").read_text())
        assert "status" not in metrics or metrics["status"] == "ok", metrics.get("reason")
        assert metrics["energy_j_per_audio_s"]["median"] > 0 and metrics["sample_rate"] == 16000
    table = pd.read_csv(project / "results/benchmark_summary/models.csv").set_index("model")
    assert set(grid) | {"griffinlim_32"} == set(table.index)
    assert (table.loc[grid, "status"] == "ok").all()
