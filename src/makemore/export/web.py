"""The `.mjs` module and the `.html` page: one JavaScript runtime (`assets/`) with a run's bundle inlined.

The runtime is the files of RUNTIME concatenated, in order: `core.js` (reading a bundle, numeric helpers, the
model registry), the model files (each model's forward pass), `api.js` (sample, score, next). The module adds
the bundle and exports the operations; the page adds the bundle as JSON data and its own interface
(`page.js`, `page.css`, `page.html`).

The page runs opened from disk with no network: its Content-Security-Policy allows nothing but its own inline
script and style, named by their SHA-256 hashes (`default-src 'none'`), so nothing can be loaded or sent, and
no other script can run even if one found its way into the page. Everything from the data (characters,
labels, training items) reaches the page inside the bundle's JSON, escaped for a <script> element
(`bundle.inline_json`), and the interface writes it into the document as text, never as markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from importlib import resources
from pathlib import Path
from typing import Any

from .bundle import inline_json

RUNTIME = ("core.js", "models_windowed.js", "models_sequence.js", "api.js")
# the look of makemore serve's page, one style sheet for both: read as a file (the server's code is not imported)
SHARED_STYLE = Path(__file__).resolve().parent.parent / "serve" / "static" / "style.css"


def asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def runtime_js() -> str:
    """The runtime's source: every file of RUNTIME, in order."""
    return "\n".join(asset(name) for name in RUNTIME)


def module_text(bundle: dict[str, Any]) -> str:
    """An ES module with no dependencies: `import {sample, score, next, info} from "./run.mjs"` in Node 18+ or a
    browser."""
    return (f"// makemore export of {bundle['run']['name']} ({bundle['model']}): sample, score, next, info, probs.\n"
            f"{runtime_js()}\n"
            f"const BUNDLE = {inline_json(bundle)};\n"
            "const RUN = load(BUNDLE);\n"
            "export const info = () => RUN.info();\n"
            "export const sample = (options = {}) => RUN.sample(options);\n"
            "export const score = (items, options = {}) => RUN.score(items, options);\n"
            "export const next = (prefix = \"\", options = {}) => RUN.next(prefix, options);\n"
            "export const probs = (prefix = \"\", label = null) => RUN.probs(prefix, label);\n"
            "export default { info, sample, score, next, probs };\n")


def page_text(bundle: dict[str, Any]) -> str:
    """One self-contained HTML page: the bundle, the runtime and the interface inlined, a CSP that forbids the
    network."""
    script = f"{runtime_js()}\n{asset('page.js')}"
    style = SHARED_STYLE.read_text(encoding="utf-8") + "\n" + asset("page.css")
    csp = (f"default-src 'none'; script-src '{_hash(script)}'; style-src '{_hash(style)}'; img-src data:; "
           f"base-uri 'none'; form-action 'none'")
    title = f"makemore — {bundle['run']['name']} ({bundle['model']})"
    parts = {"CSP": html.escape(csp, quote=False).replace('"', "&quot;"),  # its own quotes are single ones
             "TITLE": html.escape(title, quote=False), "STYLE": style, "BUNDLE": inline_json(bundle), "SCRIPT": script}
    # one pass: a placeholder's text inside what is inserted (an item "{{SCRIPT}}") stays as it is
    return re.sub(r"\{\{(CSP|TITLE|STYLE|BUNDLE|SCRIPT)\}\}", lambda m: parts[m[1]], asset("page.html"))


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


__all__ = ["module_text", "page_text", "runtime_js", "RUNTIME"]
