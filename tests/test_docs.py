"""The README and the documentation site say what is there: the README stays a short front door whose test
command is the one CI runs, every test and every `mm.` name they cite exists, the site's navigation lists every
page, and no page tells history. These read files only: nothing of makemore is imported, so they take
milliseconds."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
CI = ROOT / ".ci" / "run"
MAX_README_LINES = 300

# `tests/test_x.py::test_name`, or `::test_name` naming a test of the file cited last before it
CITATION = re.compile(r"`(tests/[\w/]+\.py)?::(\w+)`")
HISTORY = [re.compile(p, re.IGNORECASE) for p in (
    r"before\s+this\s+issue", r"\bthis issue\b", r"the\s+code\s+before", r"\bpre-issue\b",
    r"\bcommit\s+[0-9a-f]{7,}\b",  # a hash: the pages say what is true now, not against which commit
)]


def pages() -> list[Path]:
    """README.md and every Markdown page of the site."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """Every fenced code block of a Markdown text: (info string, content, line number of its opening fence)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^(`{3,}|~{3,})\s*(\S*)", lines[i])
        if opening:
            fence, info, start = opening.group(1), opening.group(2), i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith(fence):
                body.append(lines[i])
                i += 1
            blocks.append((info, "\n".join(body), start + 1))
        i += 1
    return blocks


def ci_test_command() -> str:
    """The one command line of .ci/run that runs pytest."""
    found = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()
             if "pytest" in line and not line.lstrip().startswith("#")]
    assert len(found) == 1, f".ci/run should run pytest on exactly one line, found {len(found)}"
    return found[0]


def test_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES, f"README.md has {len(text.splitlines())} lines"
    bash = [(body, line) for info, body, line in fenced_blocks(text) if info == "bash"]
    assert len(bash) >= 2 and bash[1][1] <= 30, "README.md should open with two fenced bash commands"
    (setup, _), (tests, _) = bash[:2]
    assert "\n" not in setup.strip() and "makemore reproduce" in setup, "the first command runs makemore reproduce"
    assert "\n" not in tests.strip(), "the README's test command is one line, as .ci/run runs it"
    assert tests.strip() == ci_test_command(), "README.md's second command must be .ci/run's, verbatim"
    for page in sorted(DOCS.rglob("*.md")):  # a page that shows the test command shows that one too
        for info, body, _ in fenced_blocks(page.read_text(encoding="utf-8")):
            for line in body.splitlines():
                if info == "bash" and "-m pytest" in line and "pip install" in line:
                    assert line.strip() == ci_test_command(), f"{page.name} shows another test command than .ci/run's"


def test_readme_links_resolve():
    """README.md is not built by MkDocs: its relative links and images must name files that are there."""
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    for target in targets:
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        assert (ROOT / path).exists(), f"README.md links to {target}, which is not there"


def cited_tests(path: Path) -> list[tuple[str, str]]:
    """(test file, test name) of every test a page cites, a bare `::name` taking the last file cited before it."""
    cited, current = [], None
    for file, name in CITATION.findall(path.read_text(encoding="utf-8")):
        current = file or current
        assert current, f"{path.name} cites ::{name} before naming any test file"
        cited.append((current, name))
    return cited


def test_every_cited_test_exists():
    cited = [(page, file, name) for page in pages() for file, name in cited_tests(page)]
    assert len(cited) >= 20, "the guarantees cite their tests; too few citations found"
    for page, file, name in cited:
        source = ROOT / file
        assert source.is_file(), f"{page.relative_to(ROOT)} cites {file}, which does not exist"
        assert re.search(rf"^\s*(async\s+)?def {name}\(", source.read_text(encoding="utf-8"), re.MULTILINE), \
            f"{page.relative_to(ROOT)} cites {file}::{name}, which does not exist"


def api_names() -> set[str]:
    """The names `import makemore as mm` offers (its __all__: `_API`'s keys and __version__), read with ast."""
    tree = ast.parse((ROOT / "src" / "makemore" / "__init__.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_API" for t in node.targets):
            return {key.value for key in node.value.keys} | {"__version__", "__all__"}
    raise AssertionError("makemore/__init__.py has no _API table")


def test_every_mm_name_the_docs_use_exists():
    used = {(page, name) for page in pages() for name in re.findall(r"\bmm\.(\w+)", page.read_text(encoding="utf-8"))}
    assert len({name for _, name in used}) >= 10
    offered = api_names()
    missing = sorted(f"{page.relative_to(ROOT)}: mm.{name}" for page, name in used if name not in offered)
    assert not missing, f"the docs use names `import makemore as mm` does not offer: {missing}"


def simple_nav(text: str) -> list[str]:
    """The .md files the `nav:` of a mkdocs.yml names, read without a YAML library: every indented line under
    `nav:` up to the next top-level key, taking what follows its last ': ' (or '- ')."""
    entries, inside = [], False
    for line in text.splitlines():
        if re.match(r"^nav:\s*$", line):
            inside = True
            continue
        if inside and line and not line[0].isspace() and not line.startswith("#"):
            break
        match = re.search(r"(?:-\s+|:\s+)([\w./-]+\.md)\s*$", line) if inside else None
        if match:
            entries.append(match.group(1))
    return entries


def yaml_nav(text: str) -> list[str]:
    yaml = pytest.importorskip("yaml")

    def walk(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [page for item in node for page in walk(item)]
        if isinstance(node, dict):
            return [page for value in node.values() for page in walk(value)]
        return []

    return [page for page in walk(yaml.safe_load(text)["nav"]) if page.endswith(".md")]


def nav_pages() -> list[str]:
    text = MKDOCS.read_text(encoding="utf-8")
    try:
        import yaml  # noqa: F401  (mkdocs depends on PyYAML; without it, the simple reader)
    except ImportError:
        return simple_nav(text)
    return yaml_nav(text)


def test_the_nav_lists_every_page():
    text = MKDOCS.read_text(encoding="utf-8")
    assert re.search(r"^docs_dir:\s*docs\s*$", text, re.MULTILINE) and re.search(r"^site_name:", text, re.MULTILINE)
    nav = nav_pages()
    on_disk = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert len(nav) == len(set(nav)), f"a page is in the nav twice: {nav}"
    missing = [page for page in nav if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml's nav names pages that are not in docs/: {missing}"
    left_out = sorted(set(on_disk) - set(nav))
    assert not left_out, f"pages in docs/ that mkdocs.yml's nav does not list: {left_out}"


def test_the_simple_nav_reader_agrees_with_yaml():
    text = MKDOCS.read_text(encoding="utf-8")
    assert simple_nav(text) == yaml_nav(text)


def test_no_page_tells_history():
    for page in pages():
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for pattern in HISTORY:
                assert not pattern.search(line), \
                    f"{page.relative_to(ROOT)}:{number} tells history ({pattern.pattern}): say what is true now"
