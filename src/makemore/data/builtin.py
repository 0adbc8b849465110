"""Built-in dataset names: `-i names` finds the essay's names.txt without anyone copying it around.

Where it looks, in order: the folders given (the CLI passes $MAKEMORE_DATA), the
user cache folder, and finally a download from the karpathy/makemore repository,
kept only if its sha256 matches. This module reads no environment variable itself:
the caller says where to look, or hands its environment to `locate_input`, which is
how the command line and the benchmark scripts all find `names` the same way.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .atomic import atomic_write
from ..errors import MakemoreError


@dataclass(frozen=True)
class BuiltinDataset:
    filename: str  # the file's name in a data or cache folder
    url: str  # where to download it from
    sha256: str  # checksum of the exact file the essay used


BUILTIN = {
    "names": BuiltinDataset(
        filename="names.txt",
        url="https://raw.githubusercontent.com/karpathy/makemore/master/names.txt",
        sha256="0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
    ),
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_input(spec: str, *, data_dirs: list[Path], cache_dir: Path, download: bool = True, timeout: float = 20.0) -> Path:
    """A path for `spec`: an existing file as given, else a built-in dataset found or fetched."""
    path = Path(spec)
    if spec not in BUILTIN or path.exists():
        return path
    ds = BUILTIN[spec]
    for folder in [*data_dirs, cache_dir]:
        candidate = Path(folder) / ds.filename
        if candidate.is_file():
            if sha256_of(candidate) != ds.sha256:
                raise MakemoreError(
                    f"{candidate} is not the {spec} dataset (sha256 mismatch); remove it, or give its path to read it as a plain file"
                )
            return candidate
    target = cache_dir / ds.filename
    hint = f"put {ds.filename} in {cache_dir} or set MAKEMORE_DATA to the folder holding it (source: {ds.url})"
    if not download:
        raise MakemoreError(f"dataset {spec!r} not found; {hint}")
    try:
        with urllib.request.urlopen(ds.url, timeout=timeout) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise MakemoreError(f"dataset {spec!r} not found locally and download failed ({reason}); {hint}") from None
    if hashlib.sha256(payload).hexdigest() != ds.sha256:
        raise MakemoreError(f"downloaded {ds.filename} failed its sha256 check; {hint}")
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(payload))
    return target


def data_dirs_from(environ: Mapping[str, str]) -> list[Path]:
    """The folders of $MAKEMORE_DATA (os.pathsep-separated) in the environment given."""
    return [Path(p) for p in environ.get("MAKEMORE_DATA", "").split(os.pathsep) if p]


def cache_dir_from(environ: Mapping[str, str]) -> Path:
    """makemore's cache folder: $XDG_CACHE_HOME/makemore, else ~/.cache/makemore, in the environment given."""
    home = environ.get("HOME")
    base = environ.get("XDG_CACHE_HOME") or (Path(home) / ".cache" if home else Path.home() / ".cache")
    return Path(base) / "makemore"


def locate_input(spec: str, environ: Mapping[str, str], *, download: bool = True) -> Path:
    """`resolve_input` looking where the environment says: $MAKEMORE_DATA, then the cache folder.

    The caller passes its environment (`os.environ`): the command line and the benchmarks find
    the built-in datasets by this one rule.
    """
    return resolve_input(spec, data_dirs=data_dirs_from(environ), cache_dir=cache_dir_from(environ), download=download)
