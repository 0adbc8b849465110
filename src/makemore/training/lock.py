"""One writer per run directory.

A lock file held with an OS-level lock (flock on POSIX, msvcrt on Windows): the
kernel releases it when its process ends, however it ends, so a crashed or killed
owner never leaves a stale lock behind.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ..data.atomic import disk_hint
from ..errors import MakemoreError

LOCK = ".lock"


@contextmanager
def run_lock(run_dir: str | Path):
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise MakemoreError(f"cannot use the run directory {run_dir}: {e.strerror or e}{disk_hint(e)}") from None
    try:
        try:
            _lock(fd)
        except OSError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise MakemoreError(f"{run_dir} is in use by process {owner} (training into it); wait for it or choose another run directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
