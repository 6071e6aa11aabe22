"""Training: every family's objective runs on a tiny model and corpus (finite losses, gradients,
updated weights, lower reconstruction loss on a fixed batch); the discriminators have the official
sizes; resuming gives the same weights as an uninterrupted run; checkpoints are atomic; the
training record carries energy and method labels; shared and training-free entries."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiofootprint.corpus import build_corpus
from audiofootprint.energy.tracker import TrackerSettings, open_tracker
from audiofootprint.training import discriminators as D
from audiofootprint.training.config import (
    Budget,
    SharedTrainingError,
    training_section,
)
from audiofootprint.records import TrainingRecord
from audiofootprint.training.batches import random_segments
from audiofootprint.training.loop import CHECKPOINT, GENERATOR, train
from audiofootprint.training.objectives import OBJECTIVES, ObjectiveError, StepContext, build_objective
from audiofootprint.vocoders import zoo
from conftest import speechlike

RECORD = TrainingRecord.FILE

ROOT = Path(__file__).resolve().parents[1]
ZOO = zoo.load_zoo(ROOT)
SR = 22050

#: objective -> (zoo entry, small constructor overrides, segment samples, discriminator width factor)
TINY = {
    "hifigan": ("hifigan_v1", {"upsample_initial_channel": 16}, 2048, 1 / 16),
    "bigvgan": ("bigvgan_base", {"upsample_initial_channel": 16}, 2048, 1 / 16),
    "melgan": ("melgan", {"ngf": 4, "n_residual_layers": 1}, 2048, 1 / 4),
    "multiband_melgan": ("multiband_melgan", {"channels": 32, "stacks": 1}, 4096, 1 / 4),
    "parallel_wavegan": ("parallel_wavegan", {"layers": 3, "stacks": 1, "residual_channels": 8,
                                              "gate_channels": 16, "skip_channels": 8}, 2048, 1 / 4),
    "univnet": ("univnet_c32", {"channel_size": 4, "kpnet_hidden_channels": 8, "noise_dim": 8,
                                "mel": {"sample_rate": SR, "f_max": SR / 2}}, 2048, 1 / 8),
    "vocos": ("vocos", {"dim": 32, "intermediate_dim": 64, "num_layers": 1, "mel": {"sample_rate": SR}}, 2048, 1 / 8),
    "waveglow": ("waveglow", {"n_flows": 6, "wn_channels": 16, "wn_layers": 2, "upsample_kernel": 512}, 2048, 1.0),
    "wavernn": ("wavernn", {"n_res_block": 1, "n_rnn": 32, "n_fc": 32, "n_hidden": 16, "n_output": 16}, 1375, 1.0),
    "diffwave": ("diffwave_6", {"residual_layers": 4, "residual_channels": 8, "dilation_cycle_length": 2}, 2048, 1.0),
    "waveflow": ("waveflow", {"n_flows": 2, "n_layers": 2, "res_channels": 8}, 2048, 1.0),
    "wavegrad": ("wavegrad_6", {"upsample_preconv_channels": 16, "upsample_channels": [8] * 5,
                                "downsample_preconv_channels": 4, "downsample_channels": [8] * 4,
                                "mel": {"sample_rate": SR, "f_max": SR / 2}}, 2400, 1.0),
}
GANS = {"hifigan", "bigvgan", "melgan", "multiband_melgan", "parallel_wavegan", "univnet", "vocos"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("training")
    source = root / "source"
    source.mkdir()
    for i in range(6):
        sf.write(str(source / f"utt{i}.wav"), speechlike(1.5, SR, i), SR, subtype="PCM_16")
    result = build_corpus(source, root / "corpus", SR, min_seconds=0.5, split=(0.6, 0.4, 0.0), trim_top_db=None)
    assert set(result.manifest["split"]) == {"train", "valid"}
    return root / "corpus"


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    """One codecarbon tracker for the module (opening one costs about 1.5 s)."""
    return open_tracker(TrackerSettings(country_iso3="FRA", output_dir=str(tmp_path_factory.mktemp("codecarbon"))))




def tiny(objective: str, seed: int = 0):
    """(entry, tiny model, training section, segment) for ``objective``."""
    name, overrides, segment, width = TINY[objective]
    entry = ZOO[name]
    torch.manual_seed(seed)
    model = zoo.build(entry, **overrides)
    section = training_section(entry) | {"discriminator_channel_mult": width}
    return entry, model, section, segment


def flat_state(state: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out.update(flat_state(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out


def budget(steps: int, segment: int, **kw) -> dict:
    return {"max_steps": steps, "batch_size": 1, "segment_samples": segment, "eval_points": 0,
            "checkpoint_every_s": None} | kw


# ------------------------------------------------------------------ configuration


def test_every_zoo_entry_has_a_training_section():
    assert set(ZOO) == set(zoo.config_paths(ROOT))  # load_entry ignores the new top-level section
    for name, entry in ZOO.items():
        section = training_section(entry)
        if "shares_training_with" in section:
            continue
        objective = section["objective"]
        assert objective == "none" or objective in OBJECTIVES, name
        if objective != "none":
            model_hop = zoo.build(entry).hop_length
            assert section["segment_samples"] % model_hop == 0, name
            assert section["batch_size"] >= 1 and "lr" in section["generator"], name
    assert {training_section(ZOO[name])["objective"] for name, *_ in TINY.values()} == set(TINY) == set(OBJECTIVES)


def test_diffwave_50_shares_diffwave_6_training(corpus, tracker, tmp_path):
    plan = zoo.plan_models(ROOT, "all")
    assert plan["diffwave_50"]["trained_by"] == plan["diffwave_6"]["trained_by"] == "diffwave_6"
    trained = zoo.training_plan(ROOT, plan)  # the train@ stages: benchmark.training of params.yaml
    assert "diffwave_6" in trained and "diffwave_50" not in trained
    with pytest.raises(SharedTrainingError, match="diffwave_6"):
        train(ZOO["diffwave_50"], None, corpus, tmp_path / "d50", budget(1, 2048), tracker, progress=False)
    assert not (tmp_path / "d50" / GENERATOR).exists()


def test_griffinlim_has_nothing_to_train(corpus, tracker, tmp_path):
    record = train(ZOO["griffinlim_32"], None, corpus, tmp_path, budget(10, 2048), tracker, progress=False)
    assert record["objective"] == "none" and record["steps"] == 0 and record["energy_kwh"] == 0.0
    assert json.loads((tmp_path / RECORD).read_text())["objective"] == "none"
    zoo.build(ZOO["griffinlim_32"]).from_checkpoint(tmp_path / GENERATOR)


def test_budget_from_a_profile_section():
    b = Budget.coerce({"max_steps": 3, "max_seconds": 20, "batch_size": 1, "eval_points": 2,
                       "checkpoint_every_s": 10, "eval_utterances": 1})
    assert b.max_steps == 3 and b.progress(1, 0.0) == pytest.approx(1 / 3) and b.progress(1, 10.0) == 0.5
    assert Budget.coerce({"max_steps": 5, "max_seconds": None}).max_seconds == math.inf
    with pytest.raises(ValueError, match="unknown budget key"):
        Budget.coerce({"max_step": 3})


def test_sample_rate_must_match_the_corpus(corpus, tracker, tmp_path):
    entry = ZOO["hifigan_v1"]
    model = zoo.build(entry, upsample_initial_channel=16, mel={"sample_rate": 16000})
    with pytest.raises(zoo.ConfigError, match="16000 Hz.*22050 Hz"):
        train(entry, model, corpus, tmp_path, budget(1, 2048), tracker, progress=False)


# ------------------------------------------------------------------ discriminators


def test_discriminators_have_the_official_sizes():
    """Parameter counts of the official modules (weight-norm g and v counted), checked against
    jik876/hifi-gan, descriptinc/melgan-neurips, kan-bayashi/ParallelWaveGAN, mindslab-ai/univnet,
    NVIDIA/BigVGAN and gemelo-ai/vocos instantiated with the recipes' settings."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(D.MultiPeriodDiscriminator.hifigan()) == 41_105_770
    assert count(D.MultiScaleDiscriminator.hifigan()) == 29_618_821
    assert count(D.MultiScaleDiscriminator.melgan()) == 16_924_086
    assert count(D.MultiScaleDiscriminator.multiband_melgan()) == 4_354_998
    assert count(D.ParallelWaveGANDiscriminator()) == 99_842
    assert count(D.MultiPeriodDiscriminator.univnet()) == 17_444_810
    assert count(D.MultiResolutionDiscriminator.univnet()) == 280_902
    assert count(D.MultiResolutionDiscriminator.vocos()) == 1_413_990


@pytest.mark.parametrize("build", [
    D.MultiPeriodDiscriminator.hifigan, D.MultiScaleDiscriminator.hifigan, D.MultiScaleDiscriminator.melgan,
    D.MultiScaleDiscriminator.multiband_melgan, D.MultiResolutionDiscriminator.univnet,
    D.MultiResolutionDiscriminator.vocos, lambda m: D.ParallelWaveGANDiscriminator(conv_channels=8),
])
def test_discriminators_score_waveforms(build):
    d = build(1 / 16)
    x = torch.randn(2, 4096, requires_grad=True) * 0.1
    outputs = d(x)
    assert outputs and all(score.shape[0] == 2 and torch.isfinite(score).all() for score, _ in outputs)
    total = sum(score.mean() for score, _ in outputs) + sum(f.mean() for _, fmap in outputs for f in fmap)
    total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())


# ------------------------------------------------------------------ objectives


@pytest.mark.parametrize("objective", sorted(TINY))
def test_objective_trains_a_tiny_model(objective, corpus, tracker, tmp_path):
    entry, model, section, segment = tiny(objective)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = train(entry, model, corpus, tmp_path, budget(2, segment), tracker, seed=3, progress=False,
                   training=section)
    assert record["steps"] == 2 and record["objective"] == objective
    losses = record["final_losses"]
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert losses["grad_norm_g"] > 0
    if objective in GANS:
        # the last step is past every warm-up (at most a quarter of the budget)
        assert "loss_d" in losses and losses["grad_norm_d"] > 0
    # the generator moved, and generator.pt reloads into a fresh model
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    fresh = zoo.build(entry, **TINY[objective][1]).from_checkpoint(tmp_path / GENERATOR)
    reloaded = fresh.state_dict()
    assert all(torch.equal(reloaded[k], after[k].cpu()) for k in after)


@pytest.mark.parametrize("objective,key", [
    ("hifigan", "loss_mel"), ("vocos", "loss_mel"), ("univnet", "loss_stft"), ("multiband_melgan", "loss_mag"),
    ("waveglow", "loss"), ("wavernn", "loss"),
])
def test_reconstruction_loss_decreases_on_a_fixed_batch(objective, key, corpus):
    _, model, section, segment = tiny(objective)
    obj = build_objective(section["objective"], model.train(), section | {"discriminator_start": 0.0})
    wave = random_segments(corpus, "train", obj.crop_samples(segment), 2, seed=0)
    values = [obj.step(wave, StepContext(step, 0, step / 10))[key] for step in range(10)]
    assert all(math.isfinite(v) for v in values)
    assert np.mean(values[-3:]) < values[0], values


def test_warm_up_keeps_the_discriminator_out(corpus):
    """Parallel WaveGAN: generator-only steps until a quarter of the budget, then both."""
    _, model, section, segment = tiny("parallel_wavegan")
    obj = build_objective("parallel_wavegan", model.train(), section)
    wave = random_segments(corpus, "train", segment, 1, seed=0)
    early = obj.step(wave, StepContext(0, 0, 0.1))
    assert "loss_d" not in early and "loss_adv" not in early
    later = obj.step(wave, StepContext(1, 0, 0.3))
    assert "loss_d" in later and "loss_adv" in later and obj.adversarial_from == 1
    # a learning-rate milestone at half the budget
    obj.step(wave, StepContext(2, 0, 0.6))
    assert obj.learning_rates()["generator"] == pytest.approx(0.5e-4)


# ------------------------------------------------------------------ the loop


@pytest.fixture(scope="module")
def resumed_runs(corpus, tracker, tmp_path_factory):
    """HiFi-GAN (tiny): 4 steps in one go, and 2 steps then resumed to 4 (checkpoints every 2)."""
    root = tmp_path_factory.mktemp("resume")
    plan = budget(4, 2048, batch_size=2, checkpoint_every=2, eval_points=2, eval_utterances=1, eval_max_seconds=0.5)
    records = {}
    for label, steps in (("straight", [4]), ("resumed", [2, 4])):
        for n in steps:
            entry, model, section, segment = tiny("hifigan", seed=11)
            records[(label, n)] = train(entry, model, corpus, root / label, plan | {"max_steps": n}, tracker,
                                        seed=5, progress=False, training=section)
    return root, records


def test_resume_continues_and_ends_with_the_same_weights(resumed_runs):
    root, records = resumed_runs
    assert records[("resumed", 2)]["steps"] == 2
    final = records[("resumed", 4)]
    assert final["steps"] == 4 and final["resumes"] == 1
    assert final["seconds"] > records[("resumed", 2)]["seconds"]
    assert final["energy_j"] > records[("resumed", 2)]["energy_j"]
    a = flat_state(torch.load(root / "straight" / GENERATOR, weights_only=True))
    b = flat_state(torch.load(root / "resumed" / GENERATOR, weights_only=True))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # byte-stable: DVC sees the same output, so nothing downstream re-runs after a resume
    assert (root / "straight" / GENERATOR).read_bytes() == (root / "resumed" / GENERATOR).read_bytes()
    # the learning curve continues across the resume
    assert [p["step"] for p in final["curve"]] == [1, 2, 4]


def test_training_record(resumed_runs, no_network):
    root, records = resumed_runs
    record = json.loads((root / "straight" / RECORD).read_text())
    assert record == json.loads(json.dumps(records[("straight", 4)]))
    assert record["steps"] == 4 and record["seconds"] > 0 and record["stopped_by"] == "max_steps"
    assert record["wall_seconds"] > record["seconds"] + record["evaluation"]["seconds"] - 1e-9
    energy = record["energy"]
    assert energy["total_j"] > 0 and energy["cpu_j"] > 0 and energy["ram_j"] >= 0 and energy["gpu_j"] >= 0
    assert record["energy_j"] == pytest.approx(energy["total_j"])
    assert record["energy_kwh"] == pytest.approx(record["energy_j"] / 3.6e6)
    assert record["co2e_kg"] > 0 and record["total_energy_kwh"] > record["energy_kwh"]
    assert set(record["methods"]) == {"cpu", "gpu", "ram"}
    assert record["methods"]["cpu"].startswith(("RAPL", "estimate", "Intel", "Windows"))
    assert record["hardware"]["country_iso3"] == "FRA" and record["hardware"]["cpu_count"] >= 1
    assert record["evaluation"]["split"] == "valid"
    for point in record["curve"]:
        assert {"step", "seconds", "energy_j", "loss", "mrstft", "mcd", "pesq"} <= set(point)
        assert point["mrstft"] > 0 and point["mcd"] > 0
    steps = [p["step"] for p in record["curve"]]
    assert steps == [2, 4] and record["curve"][-1]["energy_j"] == pytest.approx(record["energy_j"])


@pytest.fixture
def saved_at(monkeypatch) -> list[int]:
    """The steps at which the runs of a test write their checkpoint, in order."""
    from audiofootprint.training.loop import TrainingRun

    steps, save = [], TrainingRun._save_checkpoint
    monkeypatch.setattr(TrainingRun, "_save_checkpoint", lambda run: steps.append(run.state.step) or save(run))
    return steps


def test_without_resume_state_the_final_checkpoint_is_not_written(resumed_runs, corpus, tracker, tmp_path, saved_at):
    """The training stage's runs: checkpoints while the budget lasts, none once it is spent, and the
    same generator as a run that keeps its resume state."""
    root, _ = resumed_runs
    plan = budget(4, 2048, batch_size=2, checkpoint_every=2, eval_points=2, eval_utterances=1, eval_max_seconds=0.5)
    entry, model, section, _ = tiny("hifigan", seed=11)
    train(entry, model, corpus, tmp_path, plan, tracker, seed=5, progress=False, training=section,
          keep_resume_state=False)
    assert saved_at == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [GENERATOR, RECORD]
    assert (tmp_path / GENERATOR).read_bytes() == (root / "straight" / GENERATOR).read_bytes()


def test_checkpoints_are_written_when_due_not_after_every_evaluation(corpus, tracker, tmp_path, saved_at):
    """Evaluations at steps 2 and 4 and at the end (6), a checkpoint every 4 steps: checkpoints at 4 and
    at the end only (an evaluation ends a measured stretch, but a checkpoint is written when one is due)."""
    entry, model, section, segment = tiny("diffwave")
    record = train(entry, model, corpus, tmp_path, budget(6, segment, checkpoint_every=4, eval_points=3,
                                                           eval_utterances=1, eval_max_seconds=0.5),
                   tracker, seed=1, progress=False, training=section)
    assert [point["step"] for point in record["curve"]] == [2, 4, 6]
    assert saved_at == [4, 6]


def test_checkpoint_is_complete_and_written_atomically(resumed_runs):
    root, _ = resumed_runs
    for folder in ("straight", "resumed"):
        assert sorted(p.name for p in (root / folder).iterdir()) == [CHECKPOINT, GENERATOR, RECORD]
    state = torch.load(root / "straight" / CHECKPOINT, weights_only=True)
    assert state["step"] == 4 and state["objective"] == "hifigan"
    assert {"model", "objective_state", "rng", "history", "energy", "seconds"} <= set(state)
    assert set(state["objective_state"]["optimizers"]) == {"generator", "discriminator"}
    assert {"mpd.discriminators.0.conv_post.bias", "msd.discriminators.0.conv_post.bias"} <= set(
        state["objective_state"]["discriminators"])


def test_a_failed_checkpoint_write_keeps_the_previous_one(corpus, tracker, tmp_path, monkeypatch):
    from contextlib import contextmanager

    from audiofootprint import atomic

    entry, model, section, segment = tiny("diffwave")
    plan = budget(4, segment, checkpoint_every=2)
    real_write, real_atomic_path = Path.write_bytes, atomic.atomic_path
    calls = {"n": 0}
    targets: list[Path] = []  # the output each atomic write is writing (its temporary has no telling name)

    @contextmanager
    def tracked_atomic_path(path):
        targets.append(Path(path))
        try:
            with real_atomic_path(path) as tmp:
                yield tmp
        finally:
            targets.pop()

    def failing_write(path, data):
        if targets and targets[-1].name == CHECKPOINT and path != targets[-1]:
            calls["n"] += 1
            if calls["n"] == 2:  # the second checkpoint: write half a file, then die
                real_write(path, data[: len(data) // 2])
                raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(atomic, "atomic_path", tracked_atomic_path)
    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(KeyboardInterrupt):
        train(entry, model, corpus, tmp_path, plan, tracker, seed=1, progress=False, training=section)
    monkeypatch.setattr(Path, "write_bytes", real_write)
    assert calls["n"] == 2
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]  # no temporary file left
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == 2


def test_an_interrupted_run_resumes_to_the_uninterrupted_weights(corpus, tracker, tmp_path, monkeypatch):
    """Killed during step 4 (checkpoints every 2): the rerun restarts at step 2 and ends where an
    uninterrupted run does."""
    from audiofootprint.training import density_objectives

    plan = budget(5, 2048, checkpoint_every=2)
    entry, model, section, _ = tiny("diffwave", seed=2)
    train(entry, model, corpus, tmp_path / "straight", plan, tracker, seed=9, progress=False, training=section)

    original = density_objectives.DiffWaveObjective.step
    seen = []

    def dying_step(self, wave, ctx):
        seen.append(ctx.step)
        if ctx.step == 3 and len(seen) < 10:
            raise KeyboardInterrupt
        return original(self, wave, ctx)

    monkeypatch.setattr(density_objectives.DiffWaveObjective, "step", dying_step)
    entry, model, section, _ = tiny("diffwave", seed=2)
    with pytest.raises(KeyboardInterrupt):
        train(entry, model, corpus, tmp_path / "killed", plan, tracker, seed=9, progress=False, training=section)
    seen.append("restart")
    entry, model, section, _ = tiny("diffwave", seed=2)
    monkeypatch.setattr(density_objectives.DiffWaveObjective, "step", original)
    record = train(entry, model, corpus, tmp_path / "killed", plan, tracker, seed=9, progress=False, training=section)
    assert seen == [0, 1, 2, 3, "restart"] and record["steps"] == 5 and record["resumes"] == 1
    a = flat_state(torch.load(tmp_path / "straight" / GENERATOR, weights_only=True))
    b = flat_state(torch.load(tmp_path / "killed" / GENERATOR, weights_only=True))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "straight" / GENERATOR).read_bytes() == (tmp_path / "killed" / GENERATOR).read_bytes()


def test_time_budget_stops_training(corpus, tracker, tmp_path):
    entry, model, section, segment = tiny("diffwave")
    record = train(entry, model, corpus, tmp_path, budget(10_000, segment, max_seconds=0.5), tracker,
                   progress=False, training=section)
    assert record["stopped_by"] == "max_seconds" and 0 < record["steps"] < 10_000
    assert 0.5 <= record["seconds"] < 5.0
    # called again with the same budget: nothing more to do, the outputs are rewritten
    again = train(entry, zoo.build(entry, **TINY["diffwave"][1]), corpus, tmp_path,
                  budget(10_000, segment, max_seconds=0.5), tracker, progress=False, training=section)
    assert again["steps"] == record["steps"] and again["energy_j"] == pytest.approx(record["energy_j"])


def _fake_project(root: Path) -> Path:
    """A project whose sources are one line each: the train stage's declared code, and benchmark.py."""
    from audiofootprint.pipeline import STAGES

    code = [Path(c) for c in STAGES["train"].code]
    files = [c for c in code if c.suffix == ".py"] + [c / "loop.py" for c in code if c.suffix != ".py"]
    for part in [*files, Path("src/audiofootprint/training/objectives.py"), Path("src/audiofootprint/benchmark.py")]:
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).write_text(f"# {part}\n")
    return root


def test_stage_code_digest_follows_the_train_stage_code(tmp_path):
    from audiofootprint.training.stage import stage_code_digest

    project = _fake_project(tmp_path / "project")
    package = project / "src/audiofootprint"
    before = stage_code_digest(project)
    assert stage_code_digest(project) == before
    (package / "benchmark.py").write_text("# not a dependency of the train stage\n")
    (package / "training" / "notes.txt").write_text("not Python\n")
    (package / "pipeline.py").write_text("# a new stage described: training does not change\n")
    assert stage_code_digest(project) == before
    (package / "training" / "objectives.py").write_text("# a changed loss\n")
    changed = stage_code_digest(project)
    assert changed != before
    (package / "vocoders" / "new.py").write_text("")
    assert stage_code_digest(project) != changed


def test_changed_training_code_discards_the_checkpoint(tmp_path, monkeypatch):
    """DVC re-runs train@NAME when the training code changes: the old checkpoint must not resume."""
    import shutil

    from audiofootprint.params import load_params
    from audiofootprint.training import stage

    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    params = load_params(ROOT)
    out = tmp_path / stage.MODELS_DIR / "griffinlim_32"
    monkeypatch.setattr(stage, "stage_code_digest", lambda: "code as it was")
    stage.train_model(tmp_path, "griffinlim_32", params)
    (out / CHECKPOINT).write_bytes(b"an interrupted run")
    stage.train_model(tmp_path, "griffinlim_32", params)
    assert (out / CHECKPOINT).read_bytes() == b"an interrupted run"  # same fingerprint: kept to resume
    monkeypatch.setattr(stage, "stage_code_digest", lambda: "code edited since")
    stage.train_model(tmp_path, "griffinlim_32", params)
    assert not (out / CHECKPOINT).exists()
    assert json.loads((out / RECORD).read_text())["steps"] == 0


def test_saved_weights_are_byte_stable(tmp_path):
    """torch.save names the archive's inner folder after the file: through a buffer, two saves of the
    same tensors under different names are the same bytes, and nothing temporary is left."""
    from audiofootprint import atomic

    state = {"conv.weight": torch.arange(12.0).reshape(3, 4), "conv.bias": torch.ones(3)}
    atomic.write_torch(tmp_path / "a" / GENERATOR, state)
    atomic.write_torch(tmp_path / "b" / "other_name.pt", state)
    assert (tmp_path / "a" / GENERATOR).read_bytes() == (tmp_path / "b" / "other_name.pt").read_bytes()
    loaded = torch.load(tmp_path / "a" / GENERATOR, weights_only=True)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [GENERATOR]


@pytest.mark.parametrize("objective, drop, key", [
    ("hifigan", ("loss", "mel"), "training.loss.mel"),
    ("melgan", ("loss",), "training.loss"),
    ("parallel_wavegan", ("loss", "stft_resolutions"), "training.loss.stft_resolutions"),
    ("waveglow", ("sigma",), "training.sigma"),
    ("wavernn", ("seq_len_factor",), "training.seq_len_factor"),
])
def test_a_recipe_value_missing_from_the_yaml_is_named(objective, drop, key):
    """The YAML is the one home of the recipe's values: no hidden default stands in for one."""
    import copy

    entry, model, section, _ = tiny(objective)
    section = copy.deepcopy(section)
    holder = section
    for part in drop[:-1]:
        holder = holder[part]
    del holder[drop[-1]]
    with pytest.raises(ObjectiveError, match=rf"{objective}: {key} is missing: give the recipe's value"):
        build_objective(objective, model.train(), section)
