"""What the reliability suite's tests share: running the command line as a user would, checking that
a refusal is one clear line, and fingerprinting the outputs a refusal must leave alone.

Every reliability test carries ``@pytest.mark.reliability(part, kind)`` (part: what is tried, e.g.
``merge`` or ``bad_input``; kind: which input or stage), so that the cases can be counted per part.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import traceback
from dataclasses import dataclass
from pathlib import Path

#: The folders a stage writes into; a refused input must leave them byte for byte as they were.
OUTPUT_FOLDERS = ("results", "reports")


@dataclass
class CliResult:
    """What a user sees from one `audiofootprint` command: its exit status and its two streams."""

    code: int
    stdout: str
    stderr: str
    crashed: bool  # an exception escaped main(): the user would have seen a Python traceback

    @property
    def message_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(argv: list[str]) -> CliResult:
    """Run ``audiofootprint ARGV`` in this process, as its console script would, and capture what it prints."""
    from audiofootprint import cli

    out, err = io.StringIO(), io.StringIO()
    crashed = False
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse's own refusal of an argument: usage and one error line
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # noqa: BLE001 - exactly what must not reach a user
            traceback.print_exc()
            code, crashed = 1, True
    return CliResult(code, out.getvalue(), err.getvalue(), crashed)


def assert_refused(result: CliResult, *names: str) -> str:
    """A user's mistake was refused well: non-zero exit, no traceback, one error line naming ``names``."""
    assert not result.crashed and "Traceback" not in result.stderr, result.stderr
    assert result.code != 0, f"accepted (exit 0):\n{result.stdout}\n{result.stderr}"
    errors = [line for line in result.message_lines if "error" in line.lower()]
    assert len(errors) == 1, f"expected one error line, got:\n{result.stderr}"
    for name in names:
        assert name in errors[0], f"{name!r} not named in: {errors[0]}"
    return errors[0]


def fingerprint(root: Path, folders: tuple[str, ...] = OUTPUT_FOLDERS) -> dict[str, str]:
    """sha256 of every file under ``folders`` of ``root``, by relative path (no file: no entry)."""
    digests = {}
    for folder in folders:
        base = root / folder
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests
