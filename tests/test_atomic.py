"""Atomic writes (audiofootprint.atomic): all or nothing, ordinary file modes, and no temporary left
behind by a writer that was killed before its clean-up could run."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from audiofootprint import atomic


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    """SIGKILL skips ``finally``: the temporary of that write stays until the next write of the same target."""
    target = tmp_path / "report.html"
    stale = tmp_path / ".report.k1ll3d.tmp.html"  # the name atomic_path gives its temporaries
    stale.write_text("<html>half")
    other = tmp_path / ".other.k1ll3d.tmp.html"  # another target's temporary: not ours to remove
    other.write_text("x")
    atomic.write_text(target, "<html></html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.k1ll3d.tmp.html", "report.html"]


def test_written_files_get_the_mode_of_an_ordinary_file(tmp_path):
    """mkstemp makes its files 0600; an output must be readable as any file the user writes (0666 less umask)."""
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_a_writer_killed_mid_write_leaves_nothing(tmp_path):
    """atomic.atomic_path writes an unnamed file (O_TMPFILE) where it can: a writer SIGKILLed while
    writing leaves neither a temporary nor a changed target, with no later write needed to clean up
    (a killed stage's outputs may come back from DVC's cache without the stage running again)."""
    target = tmp_path / "report.html"
    target.write_text("<html>before</html>")
    code = ("import os, signal, sys\nfrom audiofootprint import atomic\n"
            "with atomic.atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('<html>half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert target.read_text() == "<html>before</html>"
