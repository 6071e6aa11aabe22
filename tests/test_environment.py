"""The pinned environment: lock fully pinned, environment.yml agrees with it, right torch pair."""
from __future__ import annotations

import re

import pytest
import yaml

from audiofootprint.environment import conda_environment, read_lock


def test_environment_yml_mirrors_the_lock(root):
    lock = (root / "requirements.lock").read_text()
    assert (root / "environment.yml").read_text() == conda_environment(lock), \
        "environment.yml is out of date: run `python src/audiofootprint/environment.py .`"
    env = yaml.safe_load((root / "environment.yml").read_text())
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    conda_pins = dict(line.split("==") for line in pip_section if "==" in line)
    assert conda_pins == read_lock(lock)
    assert "python=3.11" in env["dependencies"]


def test_lock_pins_every_direct_dependency(root):
    pins = read_lock((root / "requirements.lock").read_text())
    for line in (root / "requirements.in").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = re.split(r"[=<>!~\[ ]", line, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pins, f"{name} (requirements.in) is not pinned in requirements.lock: run `make lock`"
    # The pair measured to work together on the CPU (../shared/ENVIRONMENT.md).
    assert pins["torch"].startswith("2.14.1") and pins["torchaudio"].startswith("2.11.0")


def test_unpinned_lock_line_is_rejected():
    with pytest.raises(ValueError, match="line 2"):
        read_lock("a==1\nb>=2\n")
