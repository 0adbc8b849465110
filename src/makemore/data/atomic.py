"""Writing files so that an interruption never leaves half of one."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename over `path`: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def disk_hint(e: OSError) -> str:
    """What to do about a failed write, by its cause."""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):  # no space, or over quota
        return " (the disk is full: free some space)"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return " (not writable: choose a writable location or fix its permissions)"
    return ""


def json_text(obj: Any, indent: int = 2) -> str:
    """Indented JSON, non-ASCII kept readable; a path that is not valid Unicode (a surrogate) is escaped instead."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, indent=indent) + "\n"
    return text


def remove_stale_temporaries(folder: Path, names) -> None:
    """Delete the temporaries of files `names` that a killed writer left in `folder` (hold the folder's lock)."""
    for name in names:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass
