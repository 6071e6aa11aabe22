"""conf/ composes; params.yaml is exactly what it composes to; a stale params.yaml is caught."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from audiofootprint import cli
from audiofootprint.params import StaleParamsError, check_params, compose_params, render_params, write_params


def _choices(root: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (root / "conf" / group).glob("*.yaml"))


def test_committed_params_yaml_is_what_conf_composes_to(root):
    assert (root / "params.yaml").read_text() == render_params(compose_params(root))
    check_params(root)


def test_every_config_composes(root):
    groups = [p.name for p in (root / "conf").iterdir() if p.is_dir()]
    assert {"profile", "survey", "carbon", "energy", "vocoder"} <= set(groups)
    defaults = compose_params(root)
    for group in groups:
        for choice in _choices(root, group):
            # groups outside the root defaults list (vocoder) are added with '+'
            override = f"{group}={choice}" if group in defaults else f"+{group}={choice}"
            params = compose_params(root, [override])
            assert group in params, f"conf/{group}/{choice}.yaml did not compose into key {group}"
    for profile in ("ci", "default", "full", "paper"):
        assert compose_params(root, [f"profile={profile}"])["profile"]["name"] == profile


@pytest.fixture
def project(tmp_path, root):
    shutil.copytree(root / "conf", tmp_path / "conf")
    write_params(tmp_path)
    return tmp_path


def test_stale_params_stops_with_how_to_fix(project, capsys):
    survey = project / "conf" / "survey" / "default.yaml"
    survey.write_text(survey.read_text().replace("first_year: 2016", "first_year: 2018"))
    with pytest.raises(StaleParamsError, match="make params"):
        check_params(project)
    assert cli.main(["--root", str(project), "params", "--check"]) == 2
    assert "params.yaml is stale" in capsys.readouterr().err
    write_params(project)
    check_params(project)


def test_a_passed_check_is_remembered_until_an_input_changes(project, monkeypatch):
    from audiofootprint import params
    from audiofootprint.paths import PARAMS_CHECKED

    check_params(project)
    assert not (project / PARAMS_CHECKED).exists()  # not a DVC project: nowhere to remember it
    (project / ".dvc").mkdir()
    check_params(project)
    assert (project / PARAMS_CHECKED).read_text() == params.composition_fingerprint(project)
    real_compose = params.compose_params
    calls = []
    monkeypatch.setattr(params, "compose_params", lambda *a, **k: calls.append(a) or real_compose(*a, **k))
    check_params(project)
    assert calls == []  # the same inputs: not composed again
    (project / "vocoders").mkdir()
    (project / "vocoders" / "mine.py").write_text("# a user's vocoder module\n")
    check_params(project)
    assert len(calls) == 1  # a new file of the project's vocoders/ package: composed again
    survey = project / "conf" / "survey" / "default.yaml"
    survey.write_text(survey.read_text().replace("first_year: 2016", "first_year: 2018"))
    with pytest.raises(StaleParamsError, match="first_year"):
        check_params(project)
    with pytest.raises(StaleParamsError):  # a failed check is not remembered
        check_params(project)
    assert len(calls) == 3


def test_overrides_are_recorded_and_rechecked(project):
    write_params(project, ["profile=ci"])
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["overrides"] == ["profile=ci"] and params["profile"]["name"] == "ci"
    check_params(project)  # recomposes with the recorded overrides
    text = (project / "params.yaml").read_text().replace("name: ci", "name: cx")
    (project / "params.yaml").write_text(text)
    with pytest.raises(StaleParamsError, match="profile=ci"):
        check_params(project)


def test_unknown_override_is_an_error(project):
    with pytest.raises(Exception, match="nonexistent"):
        compose_params(project, ["profile=nonexistent"])


def test_quantization_selections(root):
    """`pretrained` takes the models with published weights; `all` adds those trained here (not
    Griffin-Lim, nothing to learn; not DiffWave-50, which samples DiffWave-6's weights)."""
    models = "benchmark.models=${vocoders:[griffinlim_32,hifigan_v3,hifigan_v1_ljspeech,diffwave_6,diffwave_50]}"
    pretrained = compose_params(root, [models, "profile.scope.quantize_models=pretrained"])["quantize"]["models"]
    assert pretrained == ["hifigan_v1_ljspeech"]
    everything = compose_params(root, [models, "quantize.models=${quantizable:all}"])["quantize"]["models"]
    assert everything == ["hifigan_v3", "hifigan_v1_ljspeech", "diffwave_6"]
    with pytest.raises(ValueError, match="'most' is not a selection"):
        compose_params(root, [models, "quantize.models=${quantizable:most}"])
    with pytest.raises(ValueError, match="diffwave_50 reuses diffwave_6's weights"):
        compose_params(root, [models, "quantize.models=${quantizable:[diffwave_50]}"])


def test_profile_scope_chooses_what_the_run_covers(root):
    """The default profile covers a part of the study; `full` is the same profile over the whole zoo and
    every scheme of the registry, its converged models scored on the whole test split; a scheme the
    registry does not know is refused by name."""
    from audiofootprint.quantization.registry import SCHEMES
    from audiofootprint.vocoders.zoo import config_paths, selection

    default, full = compose_params(root), compose_params(root, ["profile=full"])
    scope, every = default["profile"]["scope"], selection(config_paths(root), "all")
    assert sorted(default["benchmark"]["models"]) == sorted(set(every) - set(scope["models_left_out"]))
    assert default["quantize"]["models"] == ["hifigan_v1_ljspeech"] and default["quantize"]["schemes"] == scope["quantize_schemes"]
    assert "fp32" in scope["quantize_schemes"] and sorted(full["benchmark"]["models"]) == every
    assert full["quantize"]["schemes"] == list(SCHEMES) and full["quantize"]["models"] == ["hifigan_v1_ljspeech",
                                                                                         "hifigan_v1_universal"]
    assert full["profile"]["benchmark"]["converged"] == {"test_utterances": None, "max_test_seconds": None}
    assert default["profile"]["benchmark"]["converged"]["max_test_seconds"] == 45.0
    for profile in (default, full):
        profile["profile"]["benchmark"].pop("converged")
    same = {key: value for key, value in full["profile"].items() if key not in ("name", "scope")}
    assert same == {key: value for key, value in default["profile"].items() if key not in ("name", "scope")}
    with pytest.raises(ValueError, match="profile.scope.models_left_out names 'wavenet', not in conf/vocoder/"):
        compose_params(root, ["profile.scope.models_left_out=[wavenet]"])
    with pytest.raises(ValueError, match="quantize.schemes names 'int3', not a scheme; use all or names of: fp32, "):
        compose_params(root, ["profile.scope.quantize_schemes=[fp32,int3]"])
    with pytest.raises(ValueError, match="quantize.schemes names 'int3'"):
        compose_params(root, ["quantize.schemes=[int3]"])
