"""Merge per-model results made on another machine into this checkout's summaries.

Another checkout (rsync'd, or `dvc pull`ed from another machine's pushes) holds trained models
and benchmark results under results/. :func:`merge` copies, for each model,
results/models/TRAINED_BY, results/benchmark/NAME and results/quantize/NAME/SCHEME (for the
schemes this checkout studies, when present), once
it has checked that what decides those results is the same on both sides: the params sections
below and the model's conf/vocoder file. Each metrics.json keeps the hardware and host it was
measured on, so the summary can say which energies compare. Results already here are replaced
only with ``force``; identical ones are left alone.
"""
from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from audiofootprint.params import check_params, differing_keys, load_params
from audiofootprint.paths import BENCHMARK_DIR, MODELS_DIR, QUANTIZE_DIR
from audiofootprint.pipeline import STAGES, commit_command, stage_name

#: params.yaml keys that decide a model's results: the params of the stages that make them.
DECIDING_PARAMS = tuple(dict.fromkeys(key for stage in ("corpus", "train", "benchmark", "quantize")
                                      for key in STAGES[stage].params))


class MergeError(ValueError):
    """Results that cannot be merged; the message says what differs and how to proceed."""


@dataclass
class MergePlan:
    """What a merge copies (source, destination) and what it leaves because it is already here."""

    copies: list[tuple[Path, Path]] = field(default_factory=list)
    identical: list[Path] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)


def _select(params: dict, dotted: str):
    value = params
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def params_differences(here: dict, there: dict) -> list[str]:
    """The deciding params.yaml keys (:data:`DECIDING_PARAMS`) whose values differ between two checkouts."""
    differing = []
    for dotted in DECIDING_PARAMS:
        left, right = _select(here, dotted), _select(there, dotted)
        if isinstance(left, dict) and isinstance(right, dict):
            differing += differing_keys(left, right, f"{dotted}.")
        elif left != right:
            differing.append(dotted)
    return differing


def vocoder_differences(root: Path, other: Path, name: str) -> list[str]:
    """Keys of conf/vocoder/NAME.yaml whose values differ between two checkouts."""
    here, there = (Path(base) / "conf" / "vocoder" / f"{name}.yaml" for base in (root, other))
    if not there.is_file():
        raise MergeError(f"{there} not found: {other} does not configure {name}")
    return [f"conf/vocoder/{name}.yaml:{key}"
            for key in differing_keys(yaml.safe_load(here.read_text()), yaml.safe_load(there.read_text()))]


def _same_tree(left: Path, right: Path) -> bool:
    """True when two folders hold the same files with the same bytes."""
    compared = filecmp.dircmp(left, right)
    if compared.left_only or compared.right_only or compared.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, compared.common_files, shallow=False)
    return not mismatch and not errors and all(_same_tree(left / d, right / d) for d in compared.common_dirs)


def plan_merge(root: str | Path, other: str | Path, models: list[str] | None = None, force: bool = False) -> MergePlan:
    """Check that ``other``'s results of ``models`` (default: every benchmarked one) can join this
    checkout, and list what to copy. Raise :class:`MergeError` naming what differs."""
    root, other = Path(root), Path(other)
    if root.resolve() == other.resolve():
        raise MergeError(f"{other} is this checkout: give another one")
    if not (other / "params.yaml").is_file():
        raise MergeError(f"{other / 'params.yaml'} not found: give the root of another checkout of this project")
    check_params(root)
    here, there = load_params(root), load_params(other)
    differing = params_differences(here, there)
    if differing:
        raise MergeError(f"{other} was run with other parameters: {', '.join(differing)} differ from this "
                         f"checkout's params.yaml; its results do not compare with these (compose both with the same "
                         f"conf/ and overrides, or re-run the models here)")
    available = sorted(p.parent.name for p in (other / BENCHMARK_DIR).glob("*/metrics.json"))
    if models is None:
        models = [name for name in available if name in here["benchmark"]["models"]]
        if not models:
            raise MergeError(f"{other / BENCHMARK_DIR} holds no results of this checkout's benchmark.models "
                             f"({', '.join(here['benchmark']['models'])})")
    for name in models:
        if name not in here["benchmark"]["models"]:
            raise MergeError(f"{name} is not in benchmark.models of {root / 'params.yaml'}: add it in conf/ "
                             f"and run `make params` first")
        if name not in available:
            raise MergeError(f"{other / BENCHMARK_DIR / name / 'metrics.json'} not found: {other} has no "
                             f"benchmark results of {name}")
    plan = MergePlan()
    for name in models:
        trained_by = here["benchmark"]["models"][name]["trained_by"]
        if (there["benchmark"]["models"].get(name) or {}).get("trained_by") != trained_by:
            raise MergeError(f"{name} is trained by {trained_by} here but not in {other}: its results differ")
        differing = [key for model in dict.fromkeys([name, trained_by]) for key in vocoder_differences(root, other, model)]
        if differing:
            raise MergeError(f"{name}: {', '.join(differing)} differ between {root} and {other}; results of two "
                             f"different configurations do not merge")
        # quantized variants of the schemes this checkout studies (quantize@NAME-SCHEME stages)
        quantize = here.get("quantize") or {}
        schemes = [scheme for scheme in quantize.get("schemes", []) if name in quantize.get("models", [])
                   and (other / QUANTIZE_DIR / name / scheme / "metrics.json").is_file()]
        folders = [MODELS_DIR / trained_by, BENCHMARK_DIR / name] + [QUANTIZE_DIR / name / s for s in schemes]
        for folder in folders:
            source, dest = other / folder, root / folder
            if not source.is_dir():
                raise MergeError(f"{source} not found: {other} has benchmark results of {name} but not this folder")
            check_contained(source, other)
            if dest.exists() and _same_tree(source, dest):
                plan.identical.append(folder)
            elif dest.exists() and not force:
                raise MergeError(f"{dest} already holds results that differ from {source}: pass --force to replace "
                                 f"them (nothing was copied)")
            else:
                plan.copies.append((source, dest))
        plan.stages += [stage_name("train", trained_by), stage_name("benchmark", name)]
        plan.stages += [stage_name("quantize", name, scheme) for scheme in schemes]
    return plan


def check_contained(folder: Path, other: Path) -> None:
    """Refuse a folder of the other checkout that is, or holds, a link leading outside that checkout
    (a link into its own DVC cache is fine: it is copied as the file it points to)."""
    inside = other.resolve()
    for path in [folder, *folder.rglob("*")]:
        if not path.resolve().is_relative_to(inside):
            raise MergeError(f"{path} leads to {path.resolve()}, outside {other}: merge copies only files of the "
                             f"other checkout (replace the link by the file it should hold, or remove it)")


def copy_tree(source: Path, dest: Path) -> None:
    """Replace ``dest`` by a copy of ``source`` (files, not links into a DVC cache) in one rename."""
    staging, previous = dest.with_name(f".{dest.name}.merging"), dest.with_name(f".{dest.name}.replaced")
    for leftover in (staging, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, staging, symlinks=False)
    if dest.exists():
        os.replace(dest, previous)
    os.replace(staging, dest)
    shutil.rmtree(previous, ignore_errors=True)


def merge(root: str | Path, other: str | Path, models: list[str] | None = None, force: bool = False) -> MergePlan:
    """Copy ``other``'s per-model results into this checkout (see :func:`plan_merge`); return the plan.

    Everything is checked before anything is copied. Afterwards ``dvc commit -f`` of
    ``plan.stages`` (:func:`audiofootprint.pipeline.commit_command`) records them in dvc.lock.
    """
    plan = plan_merge(root, other, models, force)
    for source, dest in plan.copies:
        copy_tree(source, dest)
    return plan


def describe(plan: MergePlan, root: str | Path) -> str:
    """What a merge did, and the command that records it in dvc.lock."""
    lines = [f"copied {dest.relative_to(Path(root))}" for _, dest in plan.copies]
    lines += [f"already here, identical: {folder}" for folder in plan.identical]
    lines.append(f"record them in dvc.lock (then `dvc repro` runs only the summaries):\n  {commit_command(plan.stages)}")
    return "\n".join(lines)
