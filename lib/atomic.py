"""Every file the workbook writes appears whole or not at all.

`atomic_path(target)` yields a unique temporary path beside `target` (same
folder, so the final rename never crosses file systems); write a file or a
whole folder there, and on a clean exit it is renamed over `target` in one
step. A crash, a Ctrl-C or a SIGKILL leaves the old `target` untouched and, at
worst, a temporary named `.<name>.tmp-<pid>-<random>`, which
`clean_stale_temporaries` removes once its process is gone. Names are unique
per process and call, so two writers never share a temporary.

`locked(path)` is a cross-process lock (the `filelock` package) for
read-modify-write of shared files and for claiming a run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

TMP_MARK = ".tmp-"
OLD = "-old"  # suffix of a folder moved aside while a new one takes its place


@contextlib.contextmanager
def atomic_path(target: Path | str, replace_dir: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary path; rename it onto `target` when the block succeeds.

    For a folder, an existing `target` is replaced (moved aside, the new one renamed in, then the old deleted; a
    kill between the two renames leaves the aside copy, which `clean_stale_temporaries` restores) unless
    `replace_dir` is False, in which case the existing folder wins and
    the new one is discarded (the first of two concurrent writers is kept).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if tmp.is_dir() and target.is_dir():
            if not replace_dir:
                shutil.rmtree(tmp)
                return
            old = target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{OLD}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(target: Path | str, text: str) -> Path:
    """Write a text file atomically; return its path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(folder: Path) -> int:
    """Delete temporaries left in `folder` by processes that no longer run; return how many.

    A folder being replaced is first moved aside (`…-old`); a process killed between that rename and the next leaves
    the aside copy and no target. Such a copy is the record: it is renamed back, not deleted."""
    removed = 0
    if not folder.is_dir():
        return 0
    for path in sorted(folder.glob(f".*{TMP_MARK}*"), key=lambda p: not p.name.endswith(OLD)):  # asides first
        try:
            pid = int(path.name.split(TMP_MARK, 1)[1].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        target = folder / path.name[1:].split(TMP_MARK, 1)[0]
        if path.name.endswith(OLD) and not target.exists():
            os.replace(path, target)  # the old record survives an interrupted replacement
        else:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        removed += 1
    return removed


def locked(path: Path | str, timeout: float = -1) -> FileLock:
    """A lock file beside `path` (`<path>.lock`); use as `with locked(p): ...`.

    `timeout=0` tries once and raises `filelock.Timeout` if another process holds it.
    """
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock, timeout=timeout)
