"""The pipeline described once: what each stage is called, which code and which params.yaml
sections decide its outputs (where it writes is :mod:`audiofootprint.paths`).

dvc.yaml runs the stages; this module is what the package knows of them, and
``tests/test_pipeline_spec.py`` checks dvc.yaml against :data:`STAGES`: the same stages, the
same params, and code dependencies that cover everything the stage's code imports
(:func:`imported_files`) and nothing it does not.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The package's sources, relative to the project root (as dvc.yaml names them).
SOURCE = Path("src/audiofootprint")

#: Modules no stage depends on through its imports: the command-line dispatcher, the reader of
#: params.yaml (a stage's params are declared one by one), and the package marker.
GLUE_MODULES = ("audiofootprint", "audiofootprint.cli", "audiofootprint.params", "audiofootprint.resolvers")


@dataclass(frozen=True)
class Stage:
    """One stage of dvc.yaml (``per`` names a foreach/matrix stage's key: ``train@NAME``).

    ``entry`` is what the stage runs (modules, or a notebook file); ``code`` its code
    dependencies as dvc.yaml lists them, which must cover every package file ``entry`` imports;
    ``params`` the params.yaml keys it reads.
    """

    name: str
    entry: tuple[str, ...]
    code: tuple[str, ...]
    params: tuple[str, ...] = ()
    per: str | None = None


def _src(*parts: str) -> tuple[str, ...]:
    return tuple(str(SOURCE / part) for part in parts)


#: What evaluating a vocoder imports (:mod:`audiofootprint.evaluate`); the model's own class enters
#: through the stage's ${item.code} dependency, which may lie outside the package.
_EVALUATION = ("atomic.py", "audio.py", "corpus.py", "data.py", "energy", "evaluate.py", "failures.py", "features.py",
               "paths.py", "quality.py", "records.py", "runtime.py", "vocoders")
#: The benchmark stage's own code besides evaluation.
_BENCHMARK = ("benchmark.py",)
#: Params of a stage that measures energy: the harness' windows, the threads it runs on, the tracker.
_MEASURING = ("profile.measure", "profile.torch_threads", "profile.seed", "profile.device", "energy")
#: Every rendered notebook runs through report.py.
_REPORT = ("report.py", "paths.py", "atomic.py")

STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("check_params", (), ()),
    Stage("survey", ("audiofootprint.survey",), _src("survey.py", "data.py", "atomic.py", "paths.py"), ("survey",)),
    Stage("survey_report", ("notebooks/survey.py", "audiofootprint.report"), _src(*_REPORT, "survey.py", "data.py")),
    Stage("training_carbon", ("audiofootprint.carbon",),
          _src("carbon.py", "pareto.py", "survey.py", "data.py", "atomic.py", "paths.py"), ("carbon",)),
    Stage("carbon_report", ("notebooks/carbon.py", "audiofootprint.report"), _src(*_REPORT)),
    Stage("corpus", ("audiofootprint.corpus",), _src("corpus.py", "audio.py", "data.py", "atomic.py"), ("corpus",)),
    Stage("train", ("audiofootprint.training.stage",),
          _src("training", "vocoders", "energy", "atomic.py", "audio.py", "corpus.py", "data.py", "failures.py", "features.py",
               "paths.py", "pipeline.py", "quality.py", "records.py", "runtime.py"),
          ("profile.train", "profile.seed", "profile.device", "profile.torch_threads", "energy"), per="model"),
    Stage("recipe_cost", ("audiofootprint.training.recipe_stage",),
          _src("training", "vocoders", "energy", "atomic.py", "audio.py", "corpus.py", "data.py", "failures.py", "features.py",
               "paths.py", "quality.py", "records.py", "runtime.py"),
          ("profile.recipe_cost", "profile.seed", "profile.device", "profile.torch_threads", "benchmark.training",
           "corpus.sample_rate", "energy")),
    Stage("recordings", ("audiofootprint.benchmark",), _src(*_BENCHMARK, *_EVALUATION),
          ("benchmark.metrics", "profile.benchmark")),
    Stage("benchmark", ("audiofootprint.benchmark",), _src(*_BENCHMARK, *_EVALUATION),
          ("benchmark.metrics", "profile.benchmark", *_MEASURING), per="model"),
    Stage("model_report", ("notebooks/vocoder.py", "notebooks/vocoder_failed.py", "audiofootprint.model_report"),
          _src(*_REPORT, "model_report.py", "records.py", "failures.py", "features.py", "quality.py", "vocoders"),
          per="model"),
    Stage("benchmark_summary", ("audiofootprint.benchmark_summary",),
          _src("benchmark_summary.py", "atomic.py", "carbon.py", "data.py", "failures.py", "pareto.py", "paths.py",
               "quality.py", "records.py", "survey.py", "features.py", "vocoders"), ("benchmark", "carbon.published_mos")),
    Stage("benchmark_report", ("notebooks/benchmark.py", "audiofootprint.report"), _src(*_REPORT, "quality.py"),
          ("carbon.recipe_runs",)),
    Stage("quantize", ("audiofootprint.quantization.study",),
          _src("quantization/__init__.py", "quantization/base.py", "quantization/schemes.py",
               "quantization/onnx_schemes.py", "quantization/polyphase.py", "quantization/registry.py",
               "quantization/study.py", "engines.py",
               *_EVALUATION),
          ("quantize.calibration_utterances", "quantize.calibration_seconds", "quantize.mixed_precision",
           "benchmark.metrics",
           "profile.benchmark", "profile.quantize", *_MEASURING), per="model-scheme"),
    Stage("quantize_summary", ("audiofootprint.quantization.summary",),
          _src("quantization/__init__.py", "quantization/summary.py", "atomic.py", "failures.py", "pareto.py",
               "paths.py", "quality.py", "records.py"), ("quantize", "benchmark.quality_axis")),
    Stage("quantize_report", ("notebooks/quantize.py", "audiofootprint.report"),
          _src(*_REPORT, "quantization/__init__.py", "quantization/devices.py", "data.py", "quality.py")),
    Stage("site", ("audiofootprint.site",),
          _src("site.py", "paths.py", "atomic.py", "energy", "records.py", "failures.py"),
          ("benchmark.models", "benchmark.quality_axis", "profile.name", "profile.scope", "quantize.models",
           "quantize.schemes")),
)}

#: The per-model stages a job (``audiofootprint-jobs``) can run.
PER_MODEL_STAGES = tuple(name for name, stage in STAGES.items() if stage.per)


def stage_name(stage: str, model: str, scheme: str | None = None) -> str:
    """The dvc.yaml name of one model's stage: ``train@MODEL``, or ``quantize@MODEL-SCHEME``."""
    if STAGES[stage].per is None:
        raise KeyError(f"{stage} is not a per-model stage ({', '.join(PER_MODEL_STAGES)})")
    return f"{stage}@{model}-{scheme}" if STAGES[stage].per == "model-scheme" else f"{stage}@{model}"


def commit_command(stages: list[str]) -> str:
    """``dvc commit -f`` for these stages, each once, in order: records outputs made outside ``dvc repro``."""
    return "dvc commit -f " + " ".join(dict.fromkeys(stages))


def code_files(stage: str, root: Path | None = None) -> list[Path]:
    """The Python files of a stage's code dependencies (:attr:`Stage.code`), sorted."""
    base = PACKAGE_DIR.parents[1] if root is None else Path(root)
    files = []
    for dependency in STAGES[stage].code:
        path = base / dependency
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return sorted(set(files))


def _module_file(module: str) -> Path | None:
    path = PACKAGE_DIR.parent.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(file: Path, module: str) -> set[str]:
    """The audiofootprint modules ``file`` imports, at module level or inside functions."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "audiofootprint" and _module_file(name)}


def imported_files(entry: tuple[str, ...], root: Path | None = None) -> list[Path]:
    """Every package file a stage's entry (modules or notebook files) imports, directly or not,
    except :data:`GLUE_MODULES`; paths relative to the project root."""
    base = PACKAGE_DIR.parents[1] if root is None else Path(root)
    todo = [name for name in entry if not name.endswith(".py")]
    for notebook in (name for name in entry if name.endswith(".py")):
        todo += sorted(_imports(base / notebook, "notebook"))
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen or module in GLUE_MODULES:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:end]) for end in range(1, len(parts))]  # parent packages run first
        file = _module_file(module)
        if file is not None:
            todo += sorted(_imports(file, module))
    files = {_module_file(name) for name in seen} - {None}
    return sorted(file.relative_to(PACKAGE_DIR.parents[1]) for file in files)
