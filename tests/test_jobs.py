"""Outgrowing one machine: Hydra multirun jobs, DVC's experiment queue on conf/, merging checkouts."""
from __future__ import annotations

import csv
import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from audiofootprint import cli
from audiofootprint.benchmark_summary import model_table, summarise
from audiofootprint.jobs import JobError, check_job, upstream_stages
from audiofootprint.merge import MergeError, merge, plan_merge
from audiofootprint.pipeline import commit_command, stage_name
from audiofootprint.params import StaleParamsError, check_params, compose_params, load_params, write_params
from audiofootprint.records import TrainingRecord
from conftest import ROOT, copy_project, measured_metrics, run
from reliability_support import assert_refused, fingerprint, run_cli

MODELS = ["griffinlim_32", "hifigan_v3"]
CI = ["profile=ci", f"benchmark.models=[{','.join(MODELS)}]", "quantize.models=${quantizable:all}"]


# --- stage names, checks and the dvc commit command --------------------------------------------

PLAN = {"benchmark": {"models": {"diffwave_6": {"trained_by": "diffwave_6"}, "diffwave_50": {"trained_by": "diffwave_6"},
                                 "melgan": {"trained_by": "melgan"}},
                      "training": {"diffwave_6": {}, "melgan": {}}},
        "quantize": {"models": ["melgan"], "schemes": ["fp32", "static_int8"]}}


def test_stage_names_chain_and_commit_command():
    assert stage_name("train", "melgan") == "train@melgan"
    assert stage_name("quantize", "melgan", "static_int8") == "quantize@melgan-static_int8"
    assert upstream_stages(PLAN, "benchmark", "diffwave_50") == ["train@diffwave_6", "benchmark@diffwave_50"]
    assert upstream_stages(PLAN, "model_report", "melgan") == ["train@melgan", "benchmark@melgan",
                                                               "model_report@melgan"]
    assert upstream_stages(PLAN, "quantize", "melgan", "fp32") == ["train@melgan", "quantize@melgan-fp32"]
    stages = upstream_stages(PLAN, "benchmark", "diffwave_6") + upstream_stages(PLAN, "benchmark", "diffwave_50")
    assert commit_command(stages) == "dvc commit -f train@diffwave_6 benchmark@diffwave_6 benchmark@diffwave_50"


def test_check_job_refuses_what_params_yaml_does_not_name():
    check_job(PLAN, "train", "diffwave_6")
    check_job(PLAN, "quantize", "melgan", "fp32")
    with pytest.raises(JobError, match=r"model=diffwave_50 is not in benchmark.training .*diffwave_6, melgan"):
        check_job(PLAN, "train", "diffwave_50")  # benchmarked on diffwave_6's training: no training of its own
    with pytest.raises(JobError, match="model=hifigan_v1 is not in benchmark.models"):
        check_job(PLAN, "benchmark", "hifigan_v1")
    with pytest.raises(JobError, match="scheme=fp16 is not in quantize.schemes"):
        check_job(PLAN, "quantize", "melgan", "fp16")
    with pytest.raises(JobError, match="task=measure: not a task"):
        check_job(PLAN, "measure", "melgan")


# --- the jobs application refuses bad jobs before doing anything ------------------------------

@pytest.fixture
def configured(tmp_path):
    """conf/ and a params.yaml for two models, without any result."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    write_params(tmp_path, CI)
    return tmp_path


def test_job_refuses_a_model_not_in_params_yaml(configured):
    result = run(["audiofootprint-jobs", "task=benchmark", "model=melgan"], configured, check=False)
    assert result.returncode != 0
    assert "model=melgan is not in benchmark.models of params.yaml (griffinlim_32, hifigan_v3)" in result.stderr
    assert "dvc commit" not in result.stdout  # nothing to record
    assert not (configured / "results" / "benchmark").exists()


def test_job_refuses_a_stale_params_yaml_and_a_missing_corpus(configured):
    result = run(["audiofootprint-jobs", "task=train", "model=griffinlim_32"], configured, check=False)
    assert result.returncode != 0 and "build the corpus first (`dvc repro corpus recordings`)" in result.stderr
    profile = configured / "conf" / "profile" / "ci.yaml"
    profile.write_text(profile.read_text().replace("max_seconds: 20", "max_seconds: 21"))
    result = run(["audiofootprint-jobs", "task=train", "model=griffinlim_32"], configured, check=False)
    assert result.returncode != 0
    assert "params.yaml is stale" in result.stderr and "profile.train.max_seconds" in result.stderr
    outside = run(["audiofootprint-jobs", "task=train", "model=griffinlim_32"], configured / "conf", check=False)
    assert outside.returncode != 0 and "run it from the project root" in outside.stderr


# --- multirun on this machine's cores, then dvc commit ----------------------------------------

def _commit_line(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    return lines[lines.index("audiofootprint-jobs: record the outputs in dvc.lock with:") + 1].split()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Corpus by DVC, then the two models trained by a joblib multirun of two processes."""
    from audiofootprint.corpus import ALLISON_DIR

    if not ALLISON_DIR.is_dir():
        pytest.skip(f"{ALLISON_DIR} missing: `make test` installs asterisk-core-sounds-en-g722 when run as root")
    project = copy_project(ROOT, tmp_path_factory.mktemp("jobs"))
    run(["audiofootprint", "params", "--write", *CI], project)
    run(["dvc", "repro", "corpus"], project)
    jobs = run(["audiofootprint-jobs", "-m", "task=train", f"model={','.join(MODELS)}", "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2"], project)
    return project, jobs


def test_multirun_trains_two_models_and_dvc_commit_records_them(trained):
    project, jobs = trained
    assert "Joblib.Parallel(n_jobs=2" in jobs.stderr + jobs.stdout
    assert "measured under contention" in jobs.stderr
    record = json.loads((project / "results/models/hifigan_v3/training.json").read_text())
    assert record["steps"] > 0 and record["energy_kwh"] > 0 and record["objective"] == "hifigan"
    assert json.loads((project / "results/models/griffinlim_32/training.json").read_text())["objective"] == "none"
    # Hydra's records stay under results/jobs/ (gitignored), one folder per job
    sweeps = list((project / "results/jobs/multirun").iterdir())
    assert len(sweeps) == 1
    overrides = sorted(yaml.safe_load(p.read_text()) for p in sweeps[0].glob("*/.hydra/overrides.yaml"))
    assert overrides == [["task=train", "model=griffinlim_32"], ["task=train", "model=hifigan_v3"]]
    assert not (project / "outputs").exists() and not (project / "multirun").exists()
    assert "results/jobs/" in (ROOT / ".gitignore").read_text().splitlines()

    command = _commit_line(jobs.stdout)
    assert command == ["dvc", "commit", "-f", "train@griffinlim_32", "train@hifigan_v3"]
    assert "train@hifigan_v3" in run(["dvc", "status", "train@hifigan_v3"], project).stdout  # not yet recorded
    run(command, project)
    status = run(["dvc", "status", "corpus", "train@griffinlim_32", "train@hifigan_v3"], project)
    assert "Data and pipelines are up to date." in status.stdout


@pytest.mark.slow
def test_benchmark_jobs_then_dvc_repro_runs_only_the_summary(trained):
    project, _ = trained
    run(["dvc", "commit", "-f", "train@griffinlim_32", "train@hifigan_v3"], project)
    run(["dvc", "repro", "recordings"], project)
    jobs = run(["audiofootprint-jobs", "-m", "task=benchmark", f"model={','.join(MODELS)}", "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2"], project)
    command = _commit_line(jobs.stdout)
    assert command[3:] == ["train@griffinlim_32", "benchmark@griffinlim_32", "train@hifigan_v3", "benchmark@hifigan_v3"]
    run(command, project)
    repro = run(["dvc", "repro", "benchmark_summary"], project)
    assert re.findall(r"Running stage '([^']+)'", repro.stdout) == ["benchmark_summary"]
    with (project / "results/benchmark_summary/models.csv").open() as handle:
        table = {row["model"]: row for row in csv.DictReader(handle)}
    for name in MODELS:
        metrics = json.loads((project / f"results/benchmark/{name}/metrics.json").read_text())
        assert metrics["host"] == socket.gethostname() and metrics["hardware"]
        assert table[name]["host"] == socket.gethostname() and table[name]["hardware"] == metrics["hardware"]
    summary = json.loads((project / "results/benchmark_summary/metrics.json").read_text())
    assert summary["pareto_inference_measured_on"]["comparable"] is True
    assert "pareto_inference_warning" not in summary


# --- DVC's own composition of conf/ (dvc exp run) --------------------------------------------

def _dvc_compose(project: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    """Compose params.yaml exactly as `dvc exp run -S ...` does, in a fresh process (plugins discovered)."""
    code = ("import sys; from dvc.utils.hydra import compose_and_dump; "
            "compose_and_dump(sys.argv[1] + '/params.yaml', sys.argv[1] + '/conf', None, 'config', sys.argv[1], "
            "sys.argv[2:])")
    return subprocess.run([sys.executable, "-c", code, str(project), *overrides], capture_output=True, text=True)


class _AnyCode:
    """Equal to any module path of the zoo (benchmark.models.NAME.code)."""

    def __eq__(self, other):
        return isinstance(other, str) and other.startswith("src/audiofootprint/vocoders/")


ANY_CODE = _AnyCode()


def test_dvc_composition_writes_a_params_yaml_check_params_accepts(configured):
    overrides = ["profile=ci", "benchmark.models=${vocoders:[griffinlim_32,hifigan_v3]}",
                 "quantize.models=${quantizable:all}", "profile.train.max_seconds=10"]
    result = _dvc_compose(configured, overrides)
    assert result.returncode == 0, result.stderr
    text = (configured / "params.yaml").read_text()
    assert not text.startswith("# Generated")  # DVC's own dump, not ours
    written = load_params(configured)
    assert written == compose_params(configured, overrides)
    assert written["overrides"] == overrides
    assert written["benchmark"]["models"] == {"griffinlim_32": {"trained_by": "griffinlim_32", "code": ANY_CODE},
                                              "hifigan_v3": {"trained_by": "hifigan_v3", "code": ANY_CODE}}
    assert list(written["benchmark"]["training"]) == MODELS
    assert written["quantize"]["models"] == ["hifigan_v3"]  # griffinlim_32 has no weights to quantize
    assert written["profile"]["train"]["max_seconds"] == 10
    check_params(configured)
    # conf/ edited afterwards: stale, naming the key
    profile = configured / "conf" / "profile" / "ci.yaml"
    profile.write_text(profile.read_text().replace("max_steps: 3", "max_steps: 4"))
    with pytest.raises(StaleParamsError, match=r"at profile\.train\.max_steps\. Edit conf/"):
        check_params(configured)


def test_dvc_composition_with_a_plain_list_of_models_says_how_to_write_it(configured):
    result = _dvc_compose(configured, ["benchmark.models=[griffinlim_32]"])
    assert result.returncode != 0
    assert "-S 'benchmark.models=${vocoders:[griffinlim_32]}'" in result.stderr


def test_another_hydra_program_composing_conf_is_told_how(configured):
    with initialize_config_dir(config_dir=str(configured / "conf"), version_base="1.3"):
        cfg = compose(config_name="config")
    with pytest.raises(Exception, match="compose it with `audiofootprint params --write"):
        OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.slow
def test_experiment_queue_runs_a_two_point_sweep_on_two_workers(tmp_path):
    from audiofootprint.corpus import ALLISON_DIR

    if not ALLISON_DIR.is_dir():
        pytest.skip(f"{ALLISON_DIR} missing")
    project = copy_project(ROOT, tmp_path / "exp")
    run(["dvc", "config", "--unset", "core.no_scm"], project)
    run(["git", "init", "-q"], project)
    run(["git", "config", "user.email", "test@example.org"], project)
    run(["git", "config", "user.name", "test"], project)
    run(["audiofootprint", "params", "--write", *CI], project)
    run(["dvc", "repro", "corpus"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline"], project)
    before = (project / "params.yaml").read_text()
    queued = run(["dvc", "exp", "run", "--queue", "-S", "profile=ci", "-S",
                  "benchmark.models=${vocoders:[griffinlim_32,hifigan_v3]}", "-S", "profile.train.max_seconds=10,20",
                  "train@griffinlim_32"], project)
    assert queued.stdout.count("Queued experiment") == 2
    ran = run(["dvc", "exp", "run", "--run-all", "-j", "2"], project)
    assert ran.stdout.count("Running stage 'train@griffinlim_32'") == 2, ran.stdout
    assert (project / "params.yaml").read_text() == before  # the workspace is left as it was
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    experiments = [rev for commit in shown for exp in (commit.get("experiments") or []) for rev in exp["revs"]]
    params = {rev["data"]["params"]["params.yaml"]["data"]["profile"]["train"]["max_seconds"]: rev for rev in experiments}
    assert sorted(params) == [10, 20]
    for seconds, rev in params.items():
        data = rev["data"]["params"]["params.yaml"]["data"]
        assert data["profile"]["name"] == "ci" and list(data["benchmark"]["models"]) == MODELS
        assert data["overrides"][0] == "profile=ci" and data["overrides"][-1] == f"profile.train.max_seconds={seconds}"
    queue = run(["dvc", "queue", "status"], project).stdout
    assert queue.count("Success") == 2


# --- merging the results of two checkouts -----------------------------------------------------

def _metrics(hardware: str, host: str, energy: float, pesq: float, trained_by: str) -> dict:
    return measured_metrics("test", energy, pesq, trained_by=trained_by, q1=energy * 0.9, q3=energy * 1.1,
                            hardware=hardware, host=host).as_dict()


def _checkout(path: Path, params: list[str], results: dict[str, dict]) -> Path:
    """A checkout with conf/, data/published, params.yaml and per-model results."""
    shutil.copytree(ROOT / "conf", path / "conf")
    shutil.copytree(ROOT / "data" / "published", path / "data" / "published")
    write_params(path, params)
    for name, metrics in results.items():
        TrainingRecord.nothing_to_learn(name).write(TrainingRecord.path_of(path, name))
        (path / "results/benchmark" / name).mkdir(parents=True)
        (path / "results/benchmark" / name / "metrics.json").write_text(json.dumps(metrics))
        (path / "results/benchmark" / name / "utterances.csv").write_text("id,seconds,pesq\nu1,2.0,1.0\n")
    return path


@pytest.fixture
def checkouts(tmp_path):
    here = _checkout(tmp_path / "here", CI, {"griffinlim_32": _metrics("CPU A", "host-a", 2.0, 1.5, "griffinlim_32")})
    there = _checkout(tmp_path / "there", CI, {"hifigan_v3": _metrics("CPU B", "host-b", 1.0, 2.5, "hifigan_v3")})
    return here, there


def test_merge_copies_results_and_the_summary_keeps_each_rows_hardware(checkouts, capsys):
    here, there = checkouts
    for scheme in ("fp32", "int3"):  # a scheme this checkout studies, and one it does not
        (there / "results/quantize/hifigan_v3" / scheme).mkdir(parents=True)
        (there / "results/quantize/hifigan_v3" / scheme / "metrics.json").write_text('{"status": "ok"}')
    assert cli.main(["--root", str(here), "merge", str(there)]) == 0
    out = capsys.readouterr().out
    assert "copied results/benchmark/hifigan_v3" in out and "copied results/models/hifigan_v3" in out
    assert "dvc commit -f train@hifigan_v3 benchmark@hifigan_v3 quantize@hifigan_v3-fp32\n" in out
    assert (here / "results/quantize/hifigan_v3/fp32/metrics.json").is_file()
    assert not (here / "results/quantize/hifigan_v3/int3").exists()
    assert (here / "results/benchmark/hifigan_v3/utterances.csv").read_text() == \
        (there / "results/benchmark/hifigan_v3/utterances.csv").read_text()

    params = load_params(here)
    table = model_table(here, params).set_index("model")
    assert table.loc["griffinlim_32", ["hardware", "host"]].tolist() == ["CPU A", "host-a"]
    assert table.loc["hifigan_v3", ["hardware", "host"]].tolist() == ["CPU B", "host-b"]
    (here / "results/recordings").mkdir(parents=True)
    (here / "results/recordings/metrics.json").write_text(json.dumps({"pesq": {"mean": 4.5, "ci95": 0.0, "n": 2}}))
    summary = summarise(here, params)
    assert summary["pareto_inference"] == ["hifigan_v3"]  # 1.0 J and PESQ 2.5 beat 2.0 J and PESQ 1.5
    assert summary["pareto_inference_measured_on"] == {"hardware": ["CPU A", "CPU B"], "hosts": ["host-a", "host-b"],
                                                       "comparable": False}
    assert "measured on 2 kinds of hardware (CPU A; CPU B): they are not comparable" in \
        summary["pareto_inference_warning"]
    written = (here / "results/benchmark_summary/models.csv").read_text().splitlines()
    assert "hardware,host" in written[0] and any("CPU B,host-b" in line for line in written[1:])

    # merging again changes nothing; a changed result is not overwritten without force
    assert plan_merge(here, there).copies == []
    metrics = there / "results/benchmark/hifigan_v3/metrics.json"
    metrics.write_text(json.dumps(_metrics("CPU B", "host-b", 1.2, 2.5, "hifigan_v3")))
    with pytest.raises(MergeError, match=r"hifigan_v3 already holds results that differ .* pass --force"):
        merge(here, there)
    assert json.loads((here / "results/benchmark/hifigan_v3/metrics.json").read_text())["energy_j_per_audio_s"][
        "median"] == 1.0
    merge(here, there, ["hifigan_v3"], force=True)
    assert json.loads((here / "results/benchmark/hifigan_v3/metrics.json").read_text())["energy_j_per_audio_s"][
        "median"] == 1.2


def test_merge_refuses_results_made_with_other_parameters(tmp_path, capsys):
    here = _checkout(tmp_path / "here", CI, {})
    there = _checkout(tmp_path / "there", [*CI, "profile.train.max_seconds=10", "energy.country_iso3=DEU"],
                      {"hifigan_v3": _metrics("CPU B", "host-b", 1.0, 2.5, "hifigan_v3")})
    assert cli.main(["--root", str(here), "merge", str(there)]) == 2
    error = capsys.readouterr().err
    assert "profile.train.max_seconds, energy.country_iso3 differ" in error
    assert not (here / "results/benchmark/hifigan_v3").exists()

    same = _checkout(tmp_path / "same", CI, {"hifigan_v3": _metrics("CPU B", "host-b", 1.0, 2.5, "hifigan_v3")})
    vocoder = same / "conf/vocoder/hifigan_v3.yaml"
    vocoder.write_text(vocoder.read_text().replace("upsample_initial_channel: 256", "upsample_initial_channel: 128"))
    with pytest.raises(MergeError, match=r"conf/vocoder/hifigan_v3.yaml:model.upsample_initial_channel differ"):
        merge(here, same)
    with pytest.raises(MergeError, match="melgan is not in benchmark.models"):
        merge(here, same, ["melgan"])
    with pytest.raises(MergeError, match="is this checkout"):
        merge(here, here)


@pytest.mark.reliability("merge", "untrusted_checkout")
@pytest.mark.parametrize("link", ["file", "folder", "dotdot"])
def test_merge_refuses_links_that_lead_outside_the_other_checkout(checkouts, tmp_path, link):
    """An untrusted checkout must not make merge copy files from elsewhere on this machine."""
    here, there = checkouts
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "utterances.csv").write_text("id\nprivate\n")
    results = there / "results/benchmark/hifigan_v3"
    if link == "file":
        (results / "utterances.csv").unlink()
        (results / "utterances.csv").symlink_to(secret / "utterances.csv")
    elif link == "folder":
        shutil.rmtree(there / "results/models/hifigan_v3")
        (there / "results/models/hifigan_v3").symlink_to(secret)
    else:
        (results / "audio").symlink_to(Path("..") / ".." / ".." / ".." / "secret")
    before = fingerprint(here)
    assert_refused(run_cli(["--root", str(here), "merge", str(there)]), "leads to", str(secret), "outside")
    assert fingerprint(here) == before and not (here / "results/benchmark/hifigan_v3").exists()


def test_merge_copies_a_link_into_the_other_checkouts_dvc_cache_as_its_file(checkouts):
    here, there = checkouts
    cached = there / ".dvc/cache/files/md5/ab/cdef"
    cached.parent.mkdir(parents=True)
    cached.write_text("id,seconds,pesq\nu1,2.0,1.0\n")
    results = there / "results/benchmark/hifigan_v3"
    (results / "utterances.csv").unlink()
    (results / "utterances.csv").symlink_to(cached)
    merge(here, there)
    copied = here / "results/benchmark/hifigan_v3/utterances.csv"
    assert not copied.is_symlink() and copied.read_text() == cached.read_text()
