"""The cost of training to the recipe: extrapolation, the 5-day cap and carbontracker's conventions
against hand-worked figures; real steps measured per phase on a tiny model; the command's errors."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pytest
import soundfile as sf
import torch

from audiofootprint.cli import main
from audiofootprint.corpus import build_corpus
from audiofootprint.energy.harness import MeasureSettings
from audiofootprint.energy.tracker import TrackerSettings
from audiofootprint.training import recipe_cost
from audiofootprint.vocoders import zoo
from conftest import ROOT, speechlike

SR = 22050


def record(phases):
    return {"phases": phases, "energy_method": "estimate"}


def phase(name, share, seconds, joules, power=50.0, steps=3):
    spread = lambda v: {"median": v, "q1": 0.9 * v, "q3": 1.1 * v, "min": 0.8 * v, "max": 1.2 * v, "n": steps}
    return {"name": name, "share": share, "seconds_per_step": spread(seconds), "joules_per_step": spread(joules),
            "mean_power_w": power, "steps_measured": steps}


def test_extrapolation_weights_each_phase_by_its_share():
    r = record([phase("generator alone", 0.25, 2.0, 10.0), phase("with discriminators", 0.75, 4.0, 30.0)])
    out = recipe_cost.extrapolate(r, 1000)
    # 0.25 x 1000 x 2 s + 0.75 x 1000 x 4 s; (0.25 x 1000 x 10 J + 0.75 x 1000 x 30 J) / 3.6e6 J/kWh
    assert out["seconds"]["median"] == pytest.approx(3500.0)
    assert out["energy_kwh"]["median"] == pytest.approx(25000.0 / 3.6e6)
    assert out["seconds"]["q1"] == pytest.approx(0.9 * 3500.0) and out["energy_kwh"]["q3"] == pytest.approx(1.1 * 25000 / 3.6e6)
    assert out["label"] == "extrapolated from 6 measured steps (estimate)"
    assert recipe_cost.extrapolate(r, None) is None
    with pytest.raises(ValueError, match="positive"):
        recipe_cost.extrapolate(r, 0)


def test_five_day_cap_and_carbontracker_conventions_by_hand():
    cap = recipe_cost.within_cap(record([phase("every step", 1.0, 2.0, 100.0, power=50.0)]))
    assert cap == {"cap_s": 432000.0, "steps": 216000, "energy_kwh": pytest.approx(50.0 * 432000 / 3.6e6)}
    counted = recipe_cost.under_carbontracker(1.0)
    assert counted["energy_kwh"] == pytest.approx(1.59)
    assert counted["co2e_kg"] == pytest.approx(1.59 * 294.2060978 / 1000)
    # our energy carries our PUE (1.2 here): carbontracker's replaces it
    assert recipe_cost.under_carbontracker(1.2, our_pue=1.2)["energy_kwh"] == pytest.approx(1.59)
    with pytest.raises(ValueError, match="our_pue"):
        recipe_cost.under_carbontracker(1.0, our_pue=0.5)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    source = root / "source"
    source.mkdir()
    for i in range(4):
        sf.write(str(source / f"utt{i}.wav"), speechlike(1.0, SR, i), SR, subtype="PCM_16")
    build_corpus(source, root / "corpus", SR, min_seconds=0.5, split=(1.0, 0.0, 0.0), trim_top_db=None)
    return root / "corpus"


def test_each_phase_of_a_warm_up_recipe_is_measured(corpus, tmp_path):
    """Parallel WaveGAN trains its generator alone for a quarter of the recipe: two phases, each with
    the requested steps at the recipe's batch and crop."""
    entry = zoo.load_zoo(ROOT)["parallel_wavegan"]
    section = dict(entry.sections["training"]) | {"batch_size": 2, "segment_samples": 4096}
    entry = dataclasses.replace(entry, sections={**entry.sections, "training": section})
    torch.manual_seed(0)
    model = zoo.build(entry, layers=3, stacks=1, residual_channels=8, gate_channels=16, skip_channels=8,
                      mel={"sample_rate": SR})
    settings = MeasureSettings(warmup=1, windows=2, min_window_s=1e-3, min_repeats=1, idle_windows=1)
    tracker = TrackerSettings(country_iso3="FRA", output_dir=str(tmp_path))
    out = recipe_cost.measure_recipe_steps(entry, model, corpus, settings, tracker)
    assert [(p["name"], p["share"], p["steps_measured"]) for p in out["phases"]] == [
        ("generator alone", 0.25, 2), ("with discriminators", 0.75, 2)]
    assert out["batch_size"] == 2 and out["crop_samples"] == 4096 and out["recipe_steps"] == 400000
    for p in out["phases"]:
        assert p["seconds_per_step"]["median"] > 0 and p["joules_per_step"]["median"] > 0
    json.dumps(out)  # the record is plain data
    to = recipe_cost.extrapolate(out, out["recipe_steps"])
    shares = {p["name"]: p["seconds_per_step"]["median"] for p in out["phases"]}
    assert to["seconds"]["median"] == pytest.approx(400000 * (0.25 * shares["generator alone"]
                                                              + 0.75 * shares["with discriminators"]))


@pytest.mark.parametrize("name,message", [
    ("griffinlim_32", "no training of its own"),
    ("diffwave_50", "no training of its own"),
    ("no_such_model", "unknown vocoder"),
])
def test_recipe_cost_refuses_what_it_cannot_measure(name, message, capsys):
    assert main(["--root", str(ROOT), "recipe-cost", name]) == 2
    assert message in capsys.readouterr().err


def test_memory_ceiling_turns_an_oversized_allocation_into_an_error_and_is_lifted(monkeypatch):
    """With 256 MiB available, a 1 GiB tensor fails as torch's RuntimeError (not a kill); the address
    space limit in force before comes back on leaving; for a CUDA device none is set."""
    import resource

    from audiofootprint import runtime

    before = resource.getrlimit(resource.RLIMIT_AS)
    monkeypatch.setattr(runtime, "available_memory_bytes", lambda: 256 * 2**20)
    with runtime.memory_ceiling() as cap:
        assert resource.getrlimit(resource.RLIMIT_AS)[0] == cap
        with pytest.raises(RuntimeError, match="can't allocate memory"):
            torch.empty(2**30, dtype=torch.uint8)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert torch.empty(2**30, dtype=torch.uint8).numel() == 2**30
    with runtime.memory_ceiling("cuda") as cap:  # CUDA reserves address space far beyond its use: no cap
        assert cap is None and resource.getrlimit(resource.RLIMIT_AS) == before


def test_a_model_whose_steps_fail_is_recorded_and_the_others_measured(corpus, tmp_path, monkeypatch):
    """The stage over two models on a machine with 2 GiB available (the memory ceiling's share of
    it): the first, at a batch that needs gigabytes, fails with torch's allocation error instead of
    being killed, its record says failed and why; the second is measured; costs.csv has both rows."""
    from audiofootprint import runtime
    from audiofootprint.training import recipe_stage

    monkeypatch.setattr(runtime, "available_memory_bytes", lambda: 2 * 2**30)
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    shutil.copytree(ROOT / "conf" / "vocoder", project / "conf" / "vocoder")
    shutil.copytree(corpus, project / "results" / "corpus")
    entries = zoo.load_zoo(project)

    def with_recipe(name, **section):
        sections = entries[name].sections
        return dataclasses.replace(entries[name], sections={**sections, "training": {**sections["training"], **section}})

    recipes = {"hifigan_v3": with_recipe("hifigan_v3", batch_size=1024, segment_samples=8192),
               "melgan": with_recipe("melgan", objective="melgan", batch_size=1, segment_samples=2048)}
    monkeypatch.setattr(zoo, "load_zoo", lambda root: {**entries, **recipes})
    small_models = {"hifigan_v3": {"upsample_initial_channel": 16}, "melgan": {"ngf": 4, "n_residual_layers": 1}}
    monkeypatch.setattr(zoo, "build_for_corpus",
                        lambda entry, rate: zoo.build(entry, **small_models[entry.name], mel={"sample_rate": SR}))
    params = {"profile": {"recipe_cost": {"models": ["hifigan_v3", "melgan"], "warmup": 0, "steps": 1},
                          "seed": 0, "torch_threads": 1, "device": "cpu"},
              "benchmark": {"training": {}}, "corpus": {"sample_rate": SR},
              "energy": {"country_iso3": "FRA", "pue": 1.0, "output_dir": str(tmp_path / "cc")}}
    table = recipe_stage.write_results(project, params).set_index("model")
    assert table.loc["hifigan_v3", "status"] == "failed" and "can't allocate memory" in table.loc["hifigan_v3", "label"]
    assert "memory ceiling" in table.loc["hifigan_v3", "label"]
    assert table.loc["melgan", "status"] == "ok" and table.loc["melgan", "seconds_per_step"] > 0
    failed = json.loads((project / "results/recipe_cost/hifigan_v3.json").read_text())
    assert failed["status"] == "failed" and failed["error_type"] == "RuntimeError"
    assert list(pd.read_csv(project / "results/recipe_cost/costs.csv")["model"]) == ["hifigan_v3", "melgan"]
