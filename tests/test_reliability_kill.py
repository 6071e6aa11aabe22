"""Kill at random (issue 16, part 1): for each kind of stage, ``dvc repro`` is started in a temporary
copy of a project whose pipeline has run, the stage's process (and everything it started) is
SIGKILLed at a seeded moment, and ``dvc repro`` is run again, which must run the stage again (its
outputs are taken out of the copy's DVC cache: DVC would otherwise check them out of it). It must complete; the stage's outputs
must equal the uninterrupted run's (bytes; JSON without its timing fields; the training's generator
too, its time budget lifted so that both runs stop at max_steps); nothing half-written may be left anywhere (no temporary, no JSON, CSV, WAV, checkpoint,
notebook, figure or page that does not read whole); and ``dvc status`` must be clean.

Each parametrized case is one kill tried; a passed case is a kill survived (``benchmarks/reliability.py``
counts them by their ``reliability("kill", KIND)`` mark). Moments are 10-90% of the stage process'
lifetime measured when the base project ran, in the same session; a kill that finds the process
already gone is retried once at the same fraction of the lifetime just seen, and fails the case if
it misses again (an uninterrupted run is not counted as a kill survived).

Only one case runs by default (a training killed: about a minute); the others are ``slow``.

Projects: ``trained`` (the ci profile; corpus and train@melgan run) for the training's kills,
``pipeline`` (its copy with the whole pipeline run: griffinlim_32 and melgan benchmarked,
melgan quantized in fp32) for the others. MelGAN: a GAN with its discriminators and optimisers in the
checkpoint, and of the zoo's GANs the quickest to train (a ci run of HiFi-GAN V3 takes twice as long). DVC's run cache is left out of each trial's copy:
with it DVC would restore the killed stage's outputs instead of running it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, copy_project
from kill_support import (
    compare_outputs,
    copy_without_run_cache,
    forget_outputs,
    kill_moment,
    kill_stage,
    leftovers,
    run_in,
    status_clean,
    timed_run,
    unreadable,
)

MARKER = "kill"
#: The moments' seed: the same moments on every run.
SEED = 16
CASES = 3

MODELS = ["griffinlim_32", "melgan"]
TRAINED = "melgan"
#: The ci profile, with its training budget's 20 s lifted: the training then always stops at its 3 steps
#: (max_steps), so an interrupted training's generator can be compared with an uninterrupted one's byte
#: for byte (a run cut by time, as a loaded machine's is, has weights of its own).
OVERRIDES = ["profile=ci", "profile.train.max_seconds=600", f"benchmark.models=[{','.join(MODELS)}]",
             f"quantize.models=[{TRAINED}]", "quantize.schemes=[fp32]", "quantize.calibration_utterances=2"]
#: Kinds whose JSON holds nothing timed: compared byte for byte.
EXACT = ("corpus", "recordings", "notebook", "site")

#: Each kind: its stage, the arguments of its `audiofootprint` process, the base project it is killed in.
KINDS = {
    "corpus": ("corpus", ("corpus",), "pipeline"),
    "train": (f"train@{TRAINED}", ("train", TRAINED), "trained"),
    "recordings": ("recordings", ("recordings",), "pipeline"),
    "benchmark": (f"benchmark@{TRAINED}", ("benchmark", TRAINED), "pipeline"),
    "quantize": (f"quantize@{TRAINED}-fp32", ("quantize", TRAINED, "fp32"), "pipeline"),
    "notebook": ("survey_report", ("notebook", "survey"), "pipeline"),
    "site": ("site", ("site",), "pipeline"),
}
#: The last stage each base project ran (None: the whole pipeline): the re-run and `dvc status` go up to it.
TARGETS = {"trained": f"train@{TRAINED}", "pipeline": None}


def _require_corpus_source() -> None:
    from audiofootprint.corpus import ALLISON_DIR

    if not ALLISON_DIR.is_dir():
        pytest.skip(f"{ALLISON_DIR} missing: `make test` installs asterisk-core-sounds-en-g722 when run as root")


def _sound(project: Path, target: str | None) -> None:
    """A base project must itself be whole: nothing left over, everything readable, status clean."""
    assert leftovers(project) == []
    assert unreadable(project) == []
    status = run_in(project, ["dvc", "status", *([target] if target else [])])
    assert status_clean(status.stdout), status.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The ci profile with corpus and train@TRAINED run; the lifetimes of their stage processes."""
    _require_corpus_source()
    project = copy_project(ROOT, tmp_path_factory.mktemp("kill_trained"))
    run_in(project, ["audiofootprint", "params", "--write", *OVERRIDES])
    _, durations = timed_run(["dvc", "repro", TARGETS["trained"]], project)
    _sound(project, TARGETS["trained"])
    return project, durations


@pytest.fixture(scope="module")
def pipeline(trained, tmp_path_factory):
    """``trained`` with the whole pipeline run; the lifetimes of all its stage processes."""
    base, durations = trained
    project = tmp_path_factory.mktemp("kill_pipeline")
    shutil.copytree(base, project, symlinks=True, dirs_exist_ok=True)
    _, more = timed_run(["dvc", "repro"], project)
    _sound(project, TARGETS["pipeline"])
    return project, {**durations, **more}


def stage_outs(project: Path, stage: str) -> list[str]:
    """The outputs dvc.lock records for ``stage`` (metrics included)."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return [out["path"] for out in lock["stages"][stage].get("outs", [])]


def _stopped_by(project: Path) -> str | None:
    record = project / "results/models" / TRAINED / "training.json"
    return json.loads(record.read_text()).get("stopped_by") if record.is_file() else None


def kill_and_rerun(request, kind: str, case: int, tmp_path: Path) -> None:
    stage, argv, base_name = KINDS[kind]
    base, durations = request.getfixturevalue(base_name)
    target = TARGETS[base_name]
    lifetime = durations[argv]
    moment = kill_moment(SEED, f"{kind}-{case}", lifetime)
    project = copy_without_run_cache(base, tmp_path / "project")

    def prepare() -> None:
        if kind == "train":  # persist: DVC keeps a finished run, which the stage would only keep: train afresh
            shutil.rmtree(project / "results/models" / TRAINED, ignore_errors=True)

    assert forget_outputs(project, stage), f"no cached output of {stage} in {project}"
    prepare()
    kill = kill_stage(project, stage, argv, moment)
    if not kill.killed:  # the process ended early (a quicker machine): once more, at the same fraction of it
        print(kill.describe(), "- retried")
        prepare()
        kill = kill_stage(project, stage, argv, moment / lifetime * kill.lived_s)
    print(kill.describe())
    request.node.user_properties.append(("kill", kill.describe()))
    assert kill.killed, f"no kill landed: {kill.describe()}"
    assert kill.dvc_code != 0, f"dvc did not see the kill:\n{kill.dvc_output}"

    rerun = run_in(project, ["dvc", "repro", *([target] if target else [])])
    assert f"Running stage '{stage}'" in rerun.stdout, f"{stage} was not run again:\n{rerun.stdout}"
    status = run_in(project, ["dvc", "status", *([target] if target else [])])
    assert status_clean(status.stdout), f"dvc status after the re-run:\n{status.stdout}"
    assert leftovers(project) == [], "left over after the kill and re-run"
    assert unreadable(project) == [], "unreadable after the kill and re-run"

    outs = stage_outs(base, stage)
    assert outs == stage_outs(project, stage)
    if kind == "train":
        assert (_stopped_by(base), _stopped_by(project)) == ("max_steps", "max_steps")
    problems = compare_outputs(base, project, outs, json_exact=kind in EXACT)
    assert problems == [], f"{kill.describe()}\n" + "\n".join(problems) + f"\n{rerun.stdout}"


def cases(kind: str, default: int | None = None):
    """The seeded cases of ``kind``; the case ``default`` runs in the default set, the others are slow."""
    marks = [pytest.mark.reliability(MARKER, kind)]
    return [pytest.param(kind, case, id=f"{kind}-{case}",
                         marks=marks if case == default else [*marks, pytest.mark.slow]) for case in range(CASES)]


@pytest.mark.parametrize("kind, case", [
    *cases("train", default=0),
    *cases("corpus"), *cases("recordings"), *cases("benchmark"), *cases("quantize"), *cases("notebook"),
    *cases("site"),
])
def test_killed_stage_resumes(request, kind, case, tmp_path):
    """SIGKILL a stage at a seeded moment; the next ``dvc repro`` completes with the same outputs, whole."""
    kill_and_rerun(request, kind, case, tmp_path)


# -- a fix the kills asked for, checked in a second (no stage run; not a kill case) -----------------

def test_a_corpus_build_killed_in_its_folder_is_discarded_by_the_next(tmp_path):
    """A corpus built where none was is built in its own folder, marked until complete: the folder of a
    build that was killed is discarded by the next build, and nothing is ever left beside it."""
    import soundfile as sf

    from audiofootprint.corpus import BUILDING, build_corpus
    from conftest import speechlike

    source = tmp_path / "source"
    source.mkdir()
    for seed in (1, 2, 3):
        sf.write(source / f"utt{seed}.wav", speechlike(1.5, 16000, seed), 16000)
    out = tmp_path / "results" / "corpus"
    out.mkdir(parents=True)
    (out / BUILDING).touch()  # what a killed build leaves: its mark and part of its files
    (out / "manifest.csv").write_text("id,split\nutt1,")
    result = build_corpus(source, out, 16000, min_seconds=0.5)
    assert not result.reused and len(result.manifest) == 3
    assert not (out / BUILDING).exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["corpus"]
