"""Built-in dataset names: `-i names` finds the essay's names.txt without anyone copying it around.

Where it looks, in order: the folders given (the CLI passes $MAKEMORE_DATA), the
user cache folder, and finally a download from the karpathy/makemore repository,
kept only if its sha256 matches. This module reads no environment variable itself:
the caller says where to look.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write
from .errors import MakemoreError


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
                    f"{candidate} is not the {spec} dataset (sha256 mismatch); remove it or point -i at it as a plain file"
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
