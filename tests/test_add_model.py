"""Adding, removing and renaming a vocoder, and a model that fails.

Fast tests work in a small project (conf/, a synthetic 16 kHz corpus, the ci profile): a
researcher's own Vocoder subclass in vocoders/ is planned with its module, trains and is
benchmarked; a diverging training, a learning rate torch refuses, an out-of-memory error and a
failing synthesis are recorded with status "failed" while the commands exit 0; the summary lists
failed models with their reason and has no row for a model no longer configured.

Slow tests (`make test-slow`) run the README's workflow through DVC in copies of the project: after
a first `dvc repro` on three models, adding one config file runs only that model's stages and
the summaries, removing and renaming leave no stale row, and a diverging model leaves the
others' results whole.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
import torch

from audiofootprint import atomic, cli
from audiofootprint.benchmark import benchmark_model
from audiofootprint.records import ModelMetrics
from audiofootprint.benchmark_summary import model_table, summarise
from audiofootprint.training.stage import train_model
from audiofootprint.corpus import build_corpus, iter_utterances
from audiofootprint.failures import benchmark_failure
from audiofootprint.params import compose_params, load_params, write_params
from audiofootprint.vocoders import zoo
from audiofootprint.vocoders.base import Vocoder
from conftest import ROOT, copy_project, measured_metrics, run, speechlike

SR = 16000  # the corpus' rate (conf/corpus/allison.yaml)

#: A researcher's own vocoder: a conv on the mel bands, then one transposed conv of a hop's stride.
TINY_MODULE = '''
import torch
from torch import nn

from audiofootprint.vocoders.base import MelSettings, Vocoder, resolve_mel


class TinyVocoder(Vocoder):
    """Mel -> conv (3 taps) -> tanh -> transposed conv (one hop per frame) -> tanh."""

    feature_convention = "hifigan"

    def __init__(self, channels: int = 8, mel=None):
        super().__init__(resolve_mel(mel, MelSettings()))
        self.pre = nn.Conv1d(self.mel.n_mels, channels, 3, padding=1)
        self.up = nn.ConvTranspose1d(channels, 1, self.mel.hop_length, stride=self.mel.hop_length)

    def forward(self, mel):
        return torch.tanh(self.up(torch.tanh(self.pre(mel)))).squeeze(1)
'''
#: Parameters of TinyVocoder(channels=8) on 80 bands, hop 256: 80*8*3 + 8, then 8*1*256 + 1.
TINY_PARAMS = 80 * 8 * 3 + 8 + 8 * 256 + 1

TRAINING = """training:
  objective: hifigan
  segment_samples: 4096
  discriminator_channel_mult: 0.0625
  generator: {{optimizer: adamw, lr: {lr}, betas: [0.8, 0.99]}}
  discriminator: {{optimizer: adamw, lr: {lr}, betas: [0.8, 0.99]}}
  loss: {{mel: 45.0, feature_matching: 2.0, mel_full_band: true}}
"""


def tiny_config(module: str, lr: str = "2.0e-4") -> str:
    return (f"family: Tiny\nofficial_params: {TINY_PARAMS}\nofficial_params_source: tests/test_add_model.py\n"
            f"model:\n  _target_: vocoders.{module}.TinyVocoder\n  channels: 8\n" + TRAINING.format(lr=lr))


def hifigan_config(lr: str) -> str:
    """HiFi-GAN V3 with 32 channels instead of 256, trained with learning rate ``lr``."""
    v3 = (ROOT / "conf/vocoder/hifigan_v3.yaml").read_text()
    model = v3[v3.index("model:"):v3.index("training:")].replace("upsample_initial_channel: 256",
                                                                 "upsample_initial_channel: 32")
    return ("family: HiFi-GAN\nofficial_params: 1460000.0\nofficial_params_source: Kong et al. 2020 (V3)\n"
            + model + TRAINING.format(lr=lr))


MODELS = ["griffinlim_32", "griffinlim_60", "tiny_own", "tiny_oom", "hifigan_diverges", "hifigan_bad_lr"]
OVERRIDES = ["profile=ci", f"benchmark.models=[{','.join(MODELS)}]", "benchmark.metrics=[pesq,stoi]"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """conf/ with four more models (two of a class in vocoders/), a synthetic corpus, params.yaml."""
    root = tmp_path_factory.mktemp("addmodel")
    for name in ("conf", "data", "notebooks"):
        shutil.copytree(ROOT / name, root / name)
    (root / "vocoders").mkdir()
    (root / "vocoders/tiny_addmodel.py").write_text(TINY_MODULE)
    (root / "conf/vocoder/tiny_own.yaml").write_text(tiny_config("tiny_addmodel"))
    (root / "conf/vocoder/tiny_oom.yaml").write_text(tiny_config("tiny_addmodel"))
    (root / "conf/vocoder/hifigan_diverges.yaml").write_text(hifigan_config("1.0e+30"))
    (root / "conf/vocoder/hifigan_bad_lr.yaml").write_text(hifigan_config("-1.0e-4"))
    source = root / "source"
    source.mkdir()
    for i in range(8):
        sf.write(str(source / f"utt{i}.wav"), speechlike(1.5, SR, i), SR, subtype="PCM_16")
    build_corpus(source, root / "results/corpus", SR, min_seconds=0.5, split=(0.5, 0.25, 0.25), trim_top_db=None)
    for split in ("train", "valid", "test"):
        assert list(iter_utterances(root / "results/corpus", split)), f"no {split} utterance in the test corpus"
    write_params(root, OVERRIDES)
    return root


def test_own_class_is_planned_with_its_module(project):
    plan = load_params(project)["benchmark"]
    assert plan["models"]["tiny_own"] == {"trained_by": "tiny_own", "code": "vocoders/tiny_addmodel.py"}
    assert plan["models"]["griffinlim_32"]["code"] == "src/audiofootprint/vocoders/griffinlim.py"
    assert plan["training"]["tiny_own"] == {"code": "vocoders/tiny_addmodel.py"}
    model = zoo.build(zoo.load_zoo(project)["tiny_own"])
    assert isinstance(model, Vocoder) and model.num_params() == TINY_PARAMS
    assert model(torch.zeros(1, 80, 5)).shape == (1, 5 * 256)


@pytest.mark.parametrize("target, fragments", [
    ("torch.nn.Identity", ["is not a class of this project", "vocoders/"]),
    ("vocoders.nowhere.TinyVocoder", ["vocoders/nowhere.py does not exist"]),
    ("audiofootprint.vocoders.nowhere.Model", ["src/audiofootprint/vocoders/nowhere.py does not exist"]),
])
def test_a_class_outside_the_project_is_refused_when_composing(project, tmp_path, target, fragments):
    shutil.copytree(project / "conf", tmp_path / "conf")
    path = tmp_path / "conf/vocoder/tiny_own.yaml"
    path.write_text(path.read_text().replace("vocoders.tiny_addmodel.TinyVocoder", target))
    with pytest.raises(ValueError) as info:  # zoo.ConfigError, wrapped by OmegaConf when a resolver raised it
        compose_params(tmp_path, ["benchmark.models=[tiny_own]"])
    assert str(path) in str(info.value) and all(fragment in str(info.value) for fragment in fragments)


def test_own_class_trains_and_is_benchmarked(project, capsys):
    assert cli.main(["--root", str(project), "train", "tiny_own"]) == 0
    record = json.loads((project / "results/models/tiny_own/training.json").read_text())
    assert record["steps"] == 3 and record["stopped_by"] == "max_steps"  # the ci budget: 3 steps
    assert record["energy_kwh"] > 0 and record["methods"]["cpu"] and "status" not in record
    out = project / "results/models/tiny_own"
    # a finished run keeps what later stages read; its resume state (optimisers, discriminators) is gone
    assert sorted(path.name for path in out.iterdir()) == ["generator.pt", "settings.json", "training.json"]
    record_bytes, weights = (out / "training.json").read_bytes(), (out / "generator.pt").read_bytes()
    assert cli.main(["--root", str(project), "train", "tiny_own"]) == 0  # e.g. DVC re-ran it for pipeline.py
    assert "trained already under the same settings (3 steps): kept" in capsys.readouterr().out
    assert (out / "training.json").read_bytes() == record_bytes and (out / "generator.pt").read_bytes() == weights
    assert cli.main(["--root", str(project), "benchmark", "tiny_own"]) == 0
    metrics = json.loads((project / "results/benchmark/tiny_own/metrics.json").read_text())
    assert metrics["params"] == TINY_PARAMS and metrics["family"] == "Tiny"
    assert 1.0 <= metrics["quality"]["pesq"]["mean"] <= 4.65 and 0 <= metrics["quality"]["stoi"]["mean"] <= 1
    assert metrics["energy_j_per_audio_s"]["median"] > 0 and metrics["energy_method"]["cpu"]
    assert metrics["training"]["steps"] == 3 and metrics["training"]["trained_by"] == "tiny_own"
    assert "FAILED" not in capsys.readouterr().err


def test_a_diverging_training_is_recorded_and_the_pipeline_goes_on(project, capsys):
    out = project / "results/models/hifigan_diverges"
    assert cli.main(["--root", str(project), "train", "hifigan_diverges"]) == 0
    err = capsys.readouterr().err
    assert "NonFiniteLossError" in err and "train hifigan_diverges FAILED" in err and "Traceback" in err
    record = json.loads((out / "training.json").read_text())
    # lr 1e30: the discriminator's first update makes every score infinite, the first loss is NaN
    assert record["status"] == "failed" and record["error_type"] == "NonFiniteLossError"
    assert record["message"].startswith("the loss is nan at step 0")
    assert record["steps"] == 0 and record["reason"] == "training failed after 0 steps"
    assert record["energy_kwh"] > 0 and record["energy"]["tasks"] == 1 and record["methods"]["cpu"]
    assert not (out / "generator.pt").exists()

    assert cli.main(["--root", str(project), "benchmark", "hifigan_diverges"]) == 0
    bench = project / "results/benchmark/hifigan_diverges"
    metrics = json.loads((bench / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["failed_stage"] == "train"
    assert metrics["error_type"] == "NonFiniteLossError" and metrics["family"] == "HiFi-GAN"
    assert metrics["training"]["energy_kwh"] == record["energy_kwh"] and metrics["training"]["steps"] == 0
    assert json.loads((bench / "measurement.json").read_text())["status"] == "failed"
    assert (bench / "utterances.csv").read_text() == "id,seconds\n" and not list((bench / "audio").iterdir())
    assert "benchmark hifigan_diverges FAILED: its training (train@hifigan_diverges) failed" in capsys.readouterr().err

    assert cli.main(["--root", str(project), "model-report", "hifigan_diverges"]) == 0
    html = (project / "reports/vocoders/hifigan_diverges.html").read_text()
    assert "failed" in html and "NonFiniteLossError" in html and "steps done" in html


def test_a_learning_rate_torch_refuses_fails_before_the_first_step(project, capsys):
    assert cli.main(["--root", str(project), "train", "hifigan_bad_lr"]) == 0
    record = json.loads((project / "results/models/hifigan_bad_lr/training.json").read_text())
    assert record["status"] == "failed" and record["error_type"] == "ValueError"
    assert record["message"] == "Invalid learning rate: -0.0001"
    assert record["steps"] == 0 and record["energy_kwh"] == 0.0 and "no energy was measured" in record["energy_note"]
    assert "Invalid learning rate" in capsys.readouterr().err


def test_out_of_memory_keeps_the_steps_and_energy_spent(project, monkeypatch):
    from audiofootprint.training import objectives

    original = objectives.HiFiGANObjective.step

    def step(self, wave, ctx):
        if ctx.step == 2:
            raise torch.OutOfMemoryError("CPU out of memory (raised by the test)")
        return original(self, wave, ctx)

    monkeypatch.setattr(objectives.HiFiGANObjective, "step", step)
    record = train_model(project, "tiny_oom", load_params(project))
    assert record["status"] == "failed" and record["error_type"] == "OutOfMemoryError"
    assert record["steps"] == 2 and record["reason"] == "training failed after 2 steps"
    # the stretch that failed is counted: one codecarbon task more than the last checkpoint has (if any:
    # a checkpoint is written after 10 s of training, so whether there is one depends on this machine)
    checkpoint = project / "results/models/tiny_oom/checkpoint.pt"
    before = torch.load(checkpoint, weights_only=True)["energy"]["tasks"] if checkpoint.is_file() else 0
    assert record["energy"]["tasks"] == before + 1 and record["energy_kwh"] > 0 and record["seconds"] > 0
    assert record["budget"]["max_steps"] == 3 and record["methods"]["cpu"]
    assert record == json.loads((project / "results/models/tiny_oom/training.json").read_text())


def test_a_failing_synthesis_is_recorded(project, monkeypatch, capsys):
    from audiofootprint import evaluate

    def synthesize(model, wave, rate, seed):
        raise RuntimeError("synthesis failed (raised by the test)")

    params = load_params(project)
    train_model(project, "griffinlim_60", params)
    monkeypatch.setattr(evaluate, "synthesize", synthesize)
    metrics = benchmark_model(project, "griffinlim_60", params)
    assert not metrics.ok and metrics.status == "failed" and metrics.failed_stage == "benchmark"
    assert metrics.error_type == "RuntimeError" and metrics.message == "synthesis failed (raised by the test)"
    assert metrics.reason == "benchmark@griffinlim_60 failed"
    assert metrics == ModelMetrics.read(project / "results/benchmark/griffinlim_60/metrics.json")
    assert "Traceback" in capsys.readouterr().err


def _ok_metrics(root: Path, name: str, energy: float, pesq: float) -> None:
    measured_metrics(name, energy, pesq, q1=energy, q3=energy).write(root / "results/benchmark" / name / "metrics.json")


@pytest.fixture
def summary_tree(tmp_path):
    """Results of four models, one failed in training and one in benchmark; recordings at PESQ 4.5."""
    shutil.copytree(ROOT / "data", tmp_path / "data")
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    _ok_metrics(tmp_path, "griffinlim_32", energy=0.1, pesq=1.5)
    _ok_metrics(tmp_path, "hifigan_v3", energy=1.0, pesq=3.0)
    training = {"status": "failed", "error_type": "NonFiniteLossError", "message": "the loss is nan at step 4",
                "steps": 4, "seconds": 2.0, "energy_kwh": 2e-5, "co2e_kg": 1e-6, "objective": "melgan"}
    benchmark_failure(tmp_path / "results/benchmark/melgan", "melgan", "MelGAN", "melgan", training)
    benchmark_failure(tmp_path / "results/benchmark/vocos", "vocos", "Vocos", "vocos", {"objective": "vocos"},
                      RuntimeError("synthesis failed"))
    atomic.write_json(tmp_path / "results/recordings/metrics.json", {"pesq": {"mean": 4.5, "ci95": 0.0, "n": 2}})
    return tmp_path


def test_summary_lists_failed_models_with_their_reason(summary_tree):
    params = compose_params(summary_tree, ["benchmark.models=[griffinlim_32,hifigan_v3,melgan,vocos]",
                                           "benchmark.metrics=[pesq]"])
    metrics = summarise(summary_tree, params)
    assert metrics["failed"] == ["melgan", "vocos"]
    assert metrics["failed_reasons"] == {
        "melgan": "its training (train@melgan) failed after 4 steps (NonFiniteLossError: the loss is nan at step 4)",
        "vocos": "benchmark@vocos failed (RuntimeError: synthesis failed)"}
    assert metrics["pareto_inference"] == ["griffinlim_32", "hifigan_v3"]
    table = pd.read_csv(summary_tree / "results/benchmark_summary/models.csv").set_index("model")
    assert table["status"].to_dict() == {"griffinlim_32": "ok", "hifigan_v3": "ok", "melgan": "failed",
                                         "vocos": "failed"}
    assert table.loc["melgan", "failed_stage"] == "train" and table.loc["vocos", "failed_stage"] == "benchmark"
    assert table.loc["melgan", "training_energy_kwh"] == 2e-5 and table.loc["melgan", "training_steps"] == 4
    # hifigan_v3 closes (3.0 - 1.5) / (4.5 - 1.5) = 1/2 of the gap with 1 J per audio second
    assert table.loc["hifigan_v3", "efficiency"] == pytest.approx(0.5)


def test_a_removed_model_leaves_no_row(summary_tree):
    """hifigan_v3's results stay on disk, but it is no longer configured: nothing reads them."""
    params = compose_params(summary_tree, ["benchmark.models=[griffinlim_32,melgan,vocos]", "benchmark.metrics=[pesq]"])
    metrics = summarise(summary_tree, params)
    assert (summary_tree / "results/benchmark/hifigan_v3/metrics.json").is_file()
    table = pd.read_csv(summary_tree / "results/benchmark_summary/models.csv")
    assert list(table["model"]) == ["griffinlim_32", "melgan", "vocos"]
    assert "hifigan_v3" not in json.dumps(metrics) and list(model_table(summary_tree, params)["model"]) == list(
        table["model"])


# --- the README's workflow through DVC (slow) ---------------------------------------------------

BASE_MODELS = ["griffinlim_32", "hifigan_v3", "melgan"]
#: The same overrides for every `audiofootprint params --write` (quantization kept to two schemes).
PIPELINE_OVERRIDES = ["profile=ci", "quantize.schemes=[fp32,static_int8]"]


def pipeline(command: list[str], project: Path) -> subprocess.CompletedProcess:
    """``command`` in ``project`` running the copy's own src/ (a snapshot), not the editable install's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(project / "src"))
        return run(command, project)


def stages_run(result: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", result.stdout))


def downstream(project: Path, start: str) -> set[str]:
    """Stage ``start`` and every stage that depends on it, directly or not (from `dvc dag --dot`)."""
    edges = re.findall(r'"([^"]+)" -> "([^"]+)"', pipeline(["dvc", "dag", "--dot"], project).stdout)
    found, frontier = {start}, {start}
    while frontier:
        frontier = {b for a, b in edges if a in frontier} - found
        found |= frontier
    return found


def add_config(project: Path, name: str, text: str) -> subprocess.CompletedProcess:
    """The researcher's steps: one file in conf/vocoder/, compose the parameters, reproduce."""
    (project / "conf/vocoder" / f"{name}.yaml").write_text(text)
    pipeline(["audiofootprint", "params", "--write", *PIPELINE_OVERRIDES], project)
    return pipeline(["dvc", "repro"], project)


@pytest.fixture(scope="module")
def first_repro(tmp_path_factory):
    """The whole pipeline (`dvc repro`) of a project whose conf/vocoder/ holds three models."""
    from audiofootprint.corpus import ALLISON_DIR

    if not ALLISON_DIR.is_dir():
        pytest.skip(f"{ALLISON_DIR} missing: `make test` installs asterisk-core-sounds-en-g722 when run as root")
    project = copy_project(ROOT, tmp_path_factory.mktemp("first_repro"))
    for path in (project / "conf/vocoder").glob("*.yaml"):
        if path.stem not in BASE_MODELS:
            path.unlink()
    pipeline(["audiofootprint", "params", "--write", *PIPELINE_OVERRIDES], project)
    pipeline(["dvc", "repro"], project)
    return project


def copy_of(project: Path, tmp_path: Path) -> Path:
    """A copy of a reproduced project. Files never written in place (DVC's content-addressed cache, weights
    and checkpoints, which are replaced atomically) are hard links, to spare the disk gigabytes."""
    def link_or_copy(source: str, dest: str) -> None:
        if "/.dvc/cache/" in source or source.endswith(".pt"):
            os.link(source, dest)
        else:
            shutil.copy2(source, dest)

    shutil.copytree(project, tmp_path / "project", symlinks=True, copy_function=link_or_copy)
    return tmp_path / "project"


def assert_listed(project: Path, names: list[str], absent: list[str] = ()) -> None:
    """``names`` have a row in models.csv and appear in the summary notebook; ``absent`` appear nowhere."""
    table = pd.read_csv(project / "results/benchmark_summary/models.csv")
    assert sorted(table["model"]) == sorted(names)
    html = (project / "reports/benchmark.html").read_text()
    texts = {"models.csv": (project / "results/benchmark_summary/models.csv").read_text(),
             "metrics.json": (project / "results/benchmark_summary/metrics.json").read_text(),
             "benchmark.html": html, "index.html": (project / "reports/index.html").read_text()}
    for name in names:
        assert re.search(rf"\b{name}\b", html), f"{name} missing from reports/benchmark.html"
        assert re.search(rf"\b{name}\b", texts["index.html"]), f"{name} missing from reports/index.html"
    for name in absent:
        for label, text in texts.items():
            assert not re.search(rf"\b{name}\b", text), f"stale {name} in {label}"


@pytest.mark.slow
def test_adding_one_config_runs_only_that_model(first_repro, tmp_path):
    project = copy_of(first_repro, tmp_path)
    second = add_config(project, "hifigan_v3_small", hifigan_config("2.0e-4"))
    ran = stages_run(second)
    must = {"train@hifigan_v3_small", "benchmark@hifigan_v3_small", "model_report@hifigan_v3_small",
            "benchmark_summary", "benchmark_report", "check_params"}  # check_params: conf/ changed
    assert must <= ran <= {"check_params"} | downstream(project, "train@hifigan_v3_small"), ran
    assert not [name for name in ran if re.search(rf"@({'|'.join(BASE_MODELS)})(-|$)", name)]  # no other model's
    assert_listed(project, BASE_MODELS + ["hifigan_v3_small"])
    assert (project / "reports/vocoders/hifigan_v3_small.html").is_file()
    assert "Running stage" not in pipeline(["dvc", "repro"], project).stdout


@pytest.mark.slow
def test_own_class_through_dvc_and_editing_its_module(first_repro, tmp_path):
    project = copy_of(first_repro, tmp_path)
    (project / "vocoders/tiny_own.py").write_text(TINY_MODULE)
    second = add_config(project, "tiny_own", tiny_config("tiny_own"))
    assert {"train@tiny_own", "benchmark@tiny_own", "model_report@tiny_own"} <= stages_run(second)
    assert json.loads((project / "results/benchmark/tiny_own/metrics.json").read_text())["params"] == TINY_PARAMS
    assert_listed(project, BASE_MODELS + ["tiny_own"])
    # the model's own module is its dependency: editing it re-runs that model (from scratch) only
    module = project / "vocoders/tiny_own.py"
    module.write_text(module.read_text() + "\n# edited: any change to the module re-runs the model\n")
    third = pipeline(["dvc", "repro"], project)
    assert {"train@tiny_own", "benchmark@tiny_own"} <= stages_run(third) <= {"check_params"} | downstream(
        project, "train@tiny_own")
    assert json.loads((project / "results/models/tiny_own/training.json").read_text())["resumes"] == 0


@pytest.mark.slow
def test_removing_and_renaming_leave_no_stale_row(first_repro, tmp_path):
    project = copy_of(first_repro, tmp_path)
    (project / "conf/vocoder/melgan.yaml").unlink()
    (project / "conf/vocoder/hifigan_v3.yaml").rename(project / "conf/vocoder/hifigan_v3_renamed.yaml")
    pipeline(["audiofootprint", "params", "--write", *PIPELINE_OVERRIDES], project)
    ran = stages_run(pipeline(["dvc", "repro"], project))
    assert {"train@hifigan_v3_renamed", "benchmark_summary", "benchmark_report"} <= ran
    assert_listed(project, ["griffinlim_32", "hifigan_v3_renamed"], absent=["hifigan_v3", "melgan"])
    summary = json.loads((project / "results/benchmark_summary/metrics.json").read_text())
    assert summary["failed"] == [] and set(summary["pareto_inference"]) <= {"griffinlim_32", "hifigan_v3_renamed"}


@pytest.mark.slow
def test_a_diverging_model_is_listed_failed_and_the_others_stay(first_repro, tmp_path):
    project = copy_of(first_repro, tmp_path)
    before = pd.read_csv(project / "results/benchmark_summary/models.csv").set_index("model")
    v3 = (project / "conf/vocoder/hifigan_v3.yaml").read_text()
    second = add_config(project, "hifigan_diverges", v3.replace("lr: 2.0e-4", "lr: 1.0e+30"))
    assert "NonFiniteLossError" in second.stderr and "hifigan_diverges FAILED" in second.stderr
    assert {"train@hifigan_diverges", "benchmark@hifigan_diverges", "benchmark_summary"} <= stages_run(second)
    record = json.loads((project / "results/models/hifigan_diverges/training.json").read_text())
    assert record["status"] == "failed" and record["energy_kwh"] > 0
    summary = json.loads((project / "results/benchmark_summary/metrics.json").read_text())
    assert summary["failed"] == ["hifigan_diverges"] and "NonFiniteLossError" in summary["failed_reasons"][
        "hifigan_diverges"]
    after = pd.read_csv(project / "results/benchmark_summary/models.csv").set_index("model")
    assert after.loc["hifigan_diverges", "status"] == "failed"
    for name in BASE_MODELS:  # the others' results are untouched
        assert after.loc[name, "status"] == "ok"
        assert after.loc[name, "energy_j_per_audio_s"] == before.loc[name, "energy_j_per_audio_s"]
    html = (project / "reports/benchmark.html").read_text()
    assert "Failed models" in html and "hifigan_diverges" in html and "NonFiniteLossError" in html
    assert "NonFiniteLossError" in (project / "reports/vocoders/hifigan_diverges.html").read_text()
    assert "Running stage" not in pipeline(["dvc", "repro"], project).stdout  # recorded as done, not retried
