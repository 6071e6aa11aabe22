"""Write outputs so that an interrupted run never leaves a half-written file."""
from __future__ import annotations

import glob
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _temporaries(path: Path) -> tuple[str, str]:
    """The prefix and suffix of the temporary files that :func:`atomic_path` writes beside ``path``
    (the real suffix last, so tools that check extensions, papermill and pandas, accept them)."""
    return f".{path.stem}.", f".tmp{path.suffix}"


def _file_mode() -> int:
    """The mode an ordinary new file gets (0666 less the umask), not mkstemp's private 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _unnamed_file(folder: Path) -> int | None:
    """A descriptor of a new file without a name in ``folder`` (Linux ``O_TMPFILE``), or None where the
    system or the file system has none. The kernel frees such a file with its last descriptor, so a
    writer killed by SIGKILL leaves nothing behind, not even when the next run does not write the same
    target again (DVC checks a killed stage's outputs out of its cache instead of running it)."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR, _file_mode())
    except OSError:  # EOPNOTSUPP, EISDIR or EINVAL: no unnamed files here
        return None


def _link_unnamed(fd: int, path: Path, prefix: str, suffix: str) -> None:
    """Give the unnamed file ``fd`` the name ``path``, replacing a file there at once: linked under a
    temporary name first (linkat cannot replace), then renamed over ``path``."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(100):
            name = f"{prefix}{os.urandom(6).hex()}{suffix}"
            try:  # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: the documented way to name an O_TMPFILE file
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder, follow_symlinks=True)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free temporary name beside {path}")
        try:
            os.replace(name, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            os.unlink(name, dir_fd=folder)
            raise
    finally:
        os.close(folder)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path for ``path``; it becomes ``path`` only on success.

    Where the system has unnamed files (Linux ``O_TMPFILE``), the temporary is one, written through
    ``/proc/self/fd/N`` (a path this process only can open): a writer that is killed leaves nothing.
    Elsewhere it is a named file beside ``path`` (``.STEM.*.tmpSUFFIX``), renamed over it. A named
    temporary left by a run that was killed (SIGKILL skips the clean-up) is removed first: a stage
    has one writer at a time (DVC's lock), so any temporary of the same target is stale."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temporaries(path)
    for stale in path.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        stale.unlink(missing_ok=True)
    fd = _unnamed_file(path.parent)
    if fd is not None:
        tmp = Path(f"/proc/self/fd/{fd}")
        try:
            yield tmp
            _link_unnamed(fd, path, prefix, suffix)
        except OSError as error:
            _name_output(error, path, tmp)
            raise
        finally:
            os.close(fd)
        return
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as error:
        _name_output(error, path, None)
        raise
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except OSError as error:
        _name_output(error, path, tmp)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _name_output(error: OSError, path: Path, tmp: Path | None) -> None:
    """Make ``error`` name the output ``path`` where it named no file (a write or close on a full disk
    names none) or the temporary, which the user never sees: the command line's message names it."""
    named = Path(error.filename) if isinstance(error.filename, (str, os.PathLike)) else None
    if error.filename is None or (named is not None and (named == tmp if tmp is not None
                                                         else named.parent == path.parent)):
        error.filename = str(path)


def write_text(path: str | Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj) -> None:
    """Atomically write ``obj`` as indented JSON with sorted keys (stable bytes)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, frame) -> None:
    """Atomically write a pandas DataFrame as CSV without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_torch(path: str | Path, obj) -> None:
    """Atomically ``torch.save`` ``obj`` to ``path`` with stable bytes: the same tensors give the
    same file (saved through a buffer, so the archive's inner folder does not take the random
    name of the temporary file)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
