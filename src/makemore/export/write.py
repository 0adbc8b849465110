"""Writing an export: the format from the file's suffix (or given), never over an existing file unless asked,
atomically (a reader, or an interrupted export, sees the old file or the new one, never half of one)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.atomic import atomic_write_text
from ..errors import MakemoreError, ParameterError
from ..trained import Run
from .bundle import bundle
from .web import module_text, page_text

FORMATS = {".html": "html", ".htm": "html", ".mjs": "js", ".js": "js", ".onnx": "onnx"}


@dataclass(frozen=True)
class Exported:
    """What `export_run` wrote."""

    path: Path  # the main file (.html, .mjs/.js or .onnx)
    format: str  # "html", "js" or "onnx"
    size: int  # its bytes
    model: str  # the run's registry name
    vocab_size: int  # characters + the boundary
    extra: tuple[Path, ...] = ()  # files written beside it (the .onnx's .json)


def format_of(path: Path, format: str | None = None) -> str:
    """The export format: the one given, else the one the suffix names; a ParameterError of `format` for neither."""
    if format is not None:
        if format not in ("html", "js", "onnx"):
            raise ParameterError("format", f"{format!r} is not an export format: html, js or onnx")
        return format
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise ParameterError("format", f"cannot be told from {path.name!r}: name the file .html, .mjs (or .js) or "
                                       f".onnx, or give the format")
    return found


def export_run(run: Run, path: str | Path, *, format: str | None = None, overwrite: bool = False,
               with_training_items: bool = False) -> Exported:
    """Write `run` as a page (html), an ES module (js) or an ONNX graph with its .json (onnx) at `path`."""
    path = Path(path)
    kind = format_of(path, format)
    if run.meta.get("status", "complete") != "complete":
        raise MakemoreError(f"{run.name} is unfinished (its training stopped at step {run.meta.get('step', '?')}): "
                            f"resume it to the end, then export it")
    if with_training_items and kind == "onnx":
        raise ParameterError("with_training_items", "applies to html and js exports only (ONNX holds the step alone)")
    targets = [path] + ([path.with_suffix(".json")] if kind == "onnx" else [])
    for target in targets:
        if target.exists() and not overwrite:
            raise ParameterError("overwrite", f"is needed to replace {target}, which exists (or choose another name)")
        if target.is_dir():
            raise MakemoreError(f"{target} is a folder: give a file name")
    if kind == "onnx":
        from .onnx import export_onnx  # torch.onnx and onnx only when asked for

        export_onnx(run, path)
    else:
        data = bundle(run, with_training_items=with_training_items)
        atomic_write_text(path, page_text(data) if kind == "html" else module_text(data))
    return Exported(path, kind, path.stat().st_size, run.meta["model"], run.vocab.size, tuple(targets[1:]))


__all__ = ["export_run", "Exported", "format_of", "FORMATS"]
