"""Per-model work as Hydra jobs: the work of one ``train@``, ``benchmark@``, ``model_report@`` or
``quantize@`` stage, launched on this machine's cores (joblib) or on a cluster (submitit)::

    audiofootprint-jobs -m task=train model=griffinlim_32,hifigan_v3 hydra/launcher=joblib hydra.launcher.n_jobs=2
    audiofootprint-jobs -m task=benchmark model=hifigan_v1,melgan hydra/launcher=submitit_slurm \\
        hydra.launcher.partition=cpu hydra.launcher.timeout_min=60 hydra.launcher.cpus_per_task=2

The configuration is conf/jobs.yaml (it does not enter params.yaml). Each job reads params.yaml,
refuses a stale one as every stage does, refuses a model or scheme params.yaml does not name, and
calls the stage's own function (:func:`audiofootprint.training.stage.train_model` ...), so it
writes exactly what the stage writes. At the end, :class:`CommitHint` prints the
``dvc commit -f STAGE ...`` command that records those outputs in dvc.lock, after which
``dvc repro`` runs only what follows them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from audiofootprint.paths import CORPUS_MANIFEST
from audiofootprint.pipeline import PER_MODEL_STAGES, commit_command, stage_name


class JobError(RuntimeError):
    """A job that cannot run; the message says why and how to fix it."""


def check_job(params: dict, task: str, model: str, scheme: str | None = None) -> None:
    """Raise :class:`JobError` unless params.yaml names this model (and scheme) for this task."""
    if task not in PER_MODEL_STAGES:  # a task is a per-model stage of dvc.yaml
        raise JobError(f"task={task}: not a task (choose one of {', '.join(PER_MODEL_STAGES)})")
    bench = params["benchmark"]
    names = {"train": ("benchmark.training", bench["training"]),
             "benchmark": ("benchmark.models", bench["models"]),
             "model_report": ("benchmark.models", bench["models"]),
             "quantize": ("quantize.models", params.get("quantize", {}).get("models", []))}
    key, allowed = names[task]
    if model not in allowed:
        raise JobError(f"model={model} is not in {key} of params.yaml ({', '.join(allowed)}): choose one of "
                       f"those, or add it in conf/ and run `make params`")
    if task == "quantize":
        schemes = params["quantize"]["schemes"]
        if scheme not in schemes:
            raise JobError(f"scheme={scheme} is not in quantize.schemes of params.yaml ({', '.join(schemes)})")


def upstream_stages(params: dict, task: str, model: str, scheme: str | None = None) -> list[str]:
    """The per-model stages whose outputs this job read or wrote, first to last: committing them all
    records a chain of jobs (train, then benchmark, ...) in dvc.lock in one go."""
    if task == "train":
        return [stage_name(task, model)]
    if task == "quantize":
        return [stage_name("train", model), stage_name(task, model, scheme)]
    chain = [stage_name("train", params["benchmark"]["models"][model]["trained_by"]), stage_name("benchmark", model)]
    return chain + [stage_name("model_report", model)] if task == "model_report" else chain


def run_job(root: str | Path, task: str, model: str, scheme: str | None = None) -> str:
    """Do the work of one stage for one model with the stage's own function; return the stage name."""
    from audiofootprint.params import check_params, load_params

    root = Path(root)
    check_params(root)
    params = load_params(root)
    check_job(params, task, model, scheme)
    if not (root / CORPUS_MANIFEST).is_file():
        raise JobError(f"{root / CORPUS_MANIFEST} not found: build the corpus first (`dvc repro corpus recordings`); "
                       f"jobs do the per-model work only")
    if task == "train":
        from audiofootprint.training.stage import train_model

        train_model(root, model, params)
    elif task == "benchmark":
        from audiofootprint.benchmark import benchmark_model

        benchmark_model(root, model, params)
    elif task == "model_report":
        from audiofootprint.model_report import render_model_report

        render_model_report(root, model)
    else:
        from audiofootprint.quantization.study import run_variant

        run_variant(root, model, str(scheme), params)
    return stage_name(task, model, scheme)


def _job(cfg) -> str:
    return run_job(HydraConfig.get().runtime.cwd, cfg.task, cfg.model, cfg.scheme)


def _jobs_of_sweep(config) -> list[dict]:
    """Task, model and scheme of every job of a multirun, from its sweep overrides."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    defaults = {key: OmegaConf.select(config, key, throw_on_missing=False) for key in ("task", "model", "scheme")}
    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    jobs = []
    for batch in BasicSweeper.split_arguments(parsed, None):
        for overrides in batch:
            values = dict(override.split("=", 1) for override in overrides)
            jobs.append({key: values.get(key, default) for key, default in defaults.items()})
    return jobs


class CommitHint(Callback):
    """Prints the ``dvc commit`` command of the jobs that ran, and warns when jobs share cores."""

    def on_multirun_start(self, config, **kwargs) -> None:
        launcher = config.hydra.launcher
        if "Joblib" in str(launcher.get("_target_", "")) and launcher.get("n_jobs", -1) != 1:
            print("audiofootprint-jobs: parallel jobs share this machine's cores, so each one's time and energy "
                  "are measured under contention; for figures you publish, run benchmark and quantize jobs with "
                  "hydra.launcher.n_jobs=1 or one job per node", file=sys.stderr)

    def on_run_end(self, config, job_return: JobReturn | None = None, **kwargs) -> None:
        if job_return is not None and job_return.status == JobStatus.COMPLETED:  # Hydra calls it after a failure too
            self._print(config, [{"task": config.task, "model": config.model, "scheme": config.scheme}])

    def on_multirun_end(self, config, **kwargs) -> None:
        self._print(config, _jobs_of_sweep(config))

    @staticmethod
    def _print(config, jobs: list[dict]) -> None:
        from audiofootprint.params import load_params

        params = load_params(config.hydra.runtime.cwd)
        stages = [stage for job in jobs for stage in upstream_stages(params, **job)]
        print(f"audiofootprint-jobs: record the outputs in dvc.lock with:\n  {commit_command(stages)}", flush=True)


def main() -> None:
    """Entry point of `audiofootprint-jobs`: a Hydra application on conf/jobs.yaml of the current folder."""
    conf = Path.cwd() / "conf"
    if not (conf / "jobs.yaml").is_file():
        sys.exit(f"audiofootprint-jobs: {conf / 'jobs.yaml'} not found: run it from the project root "
                 f"(the folder holding conf/ and params.yaml)")
    hydra.main(version_base="1.3", config_path=str(conf), config_name="jobs")(_job)()
