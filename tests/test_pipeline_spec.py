"""dvc.yaml against the pipeline as the package describes it (audiofootprint.pipeline): the same
stages, the same params, and code dependencies that are exactly what each stage's code imports."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from audiofootprint import pipeline
from audiofootprint.paths import BENCHMARK_DIR, CORPUS_DIR, MODELS_DIR, QUANTIZE_DIR
from conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _body(name: str) -> dict:
    stage = DVC[name]
    return stage.get("do", stage)


def _covers(dependency: str, file: str) -> bool:
    return file == dependency or file.startswith(dependency.rstrip("/") + "/")


def test_dvc_yaml_has_the_stages_the_package_describes():
    assert list(DVC) == list(pipeline.STAGES)
    for name, stage in pipeline.STAGES.items():
        assert ("foreach" in DVC[name] or "matrix" in DVC[name]) == (stage.per is not None), name


@pytest.mark.parametrize("name", list(pipeline.STAGES))
def test_code_dependencies_are_what_the_stage_imports(name):
    stage = pipeline.STAGES[name]
    declared = [d for d in _body(name).get("deps", []) if d.startswith(str(pipeline.SOURCE))]
    assert sorted(declared) == sorted(stage.code), f"dvc.yaml {name}: code deps differ from pipeline.STAGES"
    imported = [str(f) for f in pipeline.imported_files(stage.entry)]
    missing = [f for f in imported if not any(_covers(d, f) for d in declared)]
    assert not missing, f"{name} runs code dvc.yaml does not make it depend on: {missing}"
    needless = [d for d in declared if not any(_covers(d, f) for f in imported)]
    assert not needless, f"{name} depends on code it never imports: {needless}"
    for dependency in declared:
        assert (ROOT / dependency).exists(), dependency
    for notebook in (e for e in stage.entry if e.endswith(".py")):
        assert notebook in _body(name)["deps"], f"{name}: its notebook {notebook} is not a dependency"


@pytest.mark.parametrize("name", list(pipeline.STAGES))
def test_params_are_the_ones_the_package_describes(name):
    assert sorted(_body(name).get("params", [])) == sorted(pipeline.STAGES[name].params), name


def test_imported_files_follows_imports_inside_functions_and_skips_glue():
    files = {str(f) for f in pipeline.imported_files(("audiofootprint.benchmark_summary",))}
    assert "src/audiofootprint/carbon.py" in files  # imported inside published_mos_axis
    assert "src/audiofootprint/survey.py" in files  # through carbon
    assert "src/audiofootprint/params.py" not in files and "src/audiofootprint/cli.py" not in files
    assert "src/audiofootprint/evaluate.py" not in files  # the summary reads results, it evaluates nothing


def test_the_stage_modules_take_their_paths_from_one_place():
    """No module but paths.py spells a results/ or reports/ folder in its code (docstrings aside)."""
    for file in sorted((ROOT / "src/audiofootprint").rglob("*.py")):
        if file.name == "paths.py":
            continue
        tree = ast.parse(file.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert node.value not in ("results", "reports"), f"{file}:{node.lineno}: {node.value!r}"
                assert not (node.value.startswith(("results/", "reports/")) and " " not in node.value), \
                    f"{file}:{node.lineno}: {node.value!r}: take it from audiofootprint.paths"


def test_stage_names_and_commit_command():
    assert pipeline.stage_name("train", "melgan") == "train@melgan"
    assert pipeline.stage_name("quantize", "melgan", "static_int8") == "quantize@melgan-static_int8"
    with pytest.raises(KeyError, match="survey is not a per-model stage"):
        pipeline.stage_name("survey", "melgan")
    assert pipeline.commit_command(["train@a", "benchmark@a", "train@a"]) == "dvc commit -f train@a benchmark@a"
    assert set(pipeline.PER_MODEL_STAGES) == {"train", "benchmark", "model_report", "quantize"}


def test_paths_are_the_ones_dvc_yaml_writes():
    assert str(MODELS_DIR / "${key}") in [next(iter(o)) if isinstance(o, dict) else o for o in _body("train")["outs"]]
    assert str(CORPUS_DIR) in _body("corpus")["outs"]
    assert f"{BENCHMARK_DIR}/${{key}}/metrics.json" in [next(iter(m)) for m in _body("benchmark")["metrics"]]
    assert f"{QUANTIZE_DIR}/${{item.model}}/${{item.scheme}}/variant" in _body("quantize")["outs"]


def test_code_files_lists_the_python_files_of_a_stage():
    files = pipeline.code_files("corpus")
    assert [f.name for f in files] == ["atomic.py", "audio.py", "corpus.py", "data.py"]
    assert all(isinstance(f, Path) and f.is_file() for f in files)
