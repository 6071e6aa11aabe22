"""Keep environment.yml (conda) in step with requirements.lock (pip).

requirements.lock is the pinned environment; environment.yml gives conda users the same
Python and the same pinned packages (through conda's pip section). `make lock` rewrites both;
`python -m audiofootprint.environment` regenerates environment.yml from the lock alone.
"""
from __future__ import annotations

import sys
from pathlib import Path

PYTHON = "3.11"


def read_lock(text: str) -> dict[str, str]:
    """Parse ``name==version`` lines of a lock file into {normalised name: version}."""
    pins = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" not in line:
            raise ValueError(f"requirements.lock line {number}: {line!r} is not pinned with ==")
        name, version = line.split("==", 1)
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def conda_environment(lock_text: str) -> str:
    """The text of environment.yml for the pins in ``lock_text``."""
    pins = read_lock(lock_text)
    lines = [
        "# Generated from requirements.lock by `make lock`; do not edit by hand.",
        "name: audiofootprint",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={PYTHON}",
        "  - pip",
        "  - pip:",
        *[f"      - {name}=={version}" for name, version in sorted(pins.items())],
        "      - -e .",
    ]
    return "\n".join(lines) + "\n"


def main(root: str | Path = ".") -> None:
    root = Path(root)
    text = conda_environment((root / "requirements.lock").read_text(encoding="utf-8"))
    (root / "environment.yml").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:])
