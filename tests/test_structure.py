"""The shape of the code: layers that import one way, no import circles, a thin command line, bounds in one place.

These read the source with `ast`; nothing is imported or run, so they take milliseconds.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "makemore"
CLI = PACKAGE / "cli"
# imports a function of cli/ may make: optional extras, loaded only when the user asks for them
# (makemore.serve.app needs the `web` extra, FastAPI and uvicorn: `makemore serve` imports it, nothing else does)
LAZY_IMPORTS_ALLOWED = {"torch.utils.tensorboard", "matplotlib", "matplotlib.pyplot", "makemore.serve.app"}
MAX_CLI_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The makemore modules `path` imports, anywhere in it (top level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]  # `from . import x` imports module x
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph, as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    # a package's __init__ importing its submodules is not a circle with them: a submodule importing its own
    # package only for a sibling is the same edge; count the package's own lines as one more module
    return {name: imported_modules(path, set(mods)) for name, path in mods.items()}


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_circle_among_makemore_modules():
    graph = import_graph()
    assert "makemore.cli.common" in graph and graph["makemore.cli.training"]  # the walk sees the package
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_imports_run_one_way_library_never_imports_the_cli():
    graph = import_graph()
    for name, targets in graph.items():
        if not name.startswith("makemore.cli") and name != "makemore.__main__":  # `python -m makemore` runs the CLI
            assert not any(t.startswith("makemore.cli") for t in targets), f"{name} imports the CLI"
    shared = {"makemore.cli.common", "makemore.cli.config"}
    commands = {"makemore.cli.training", "makemore.cli.generation", "makemore.cli.studies", "makemore.cli.serve"}
    for name in shared:  # the shared modules know no command
        assert not graph[name] & commands, f"{name} imports a command module"
    for name in commands:  # command modules know no other command module
        assert not graph[name] & (commands - {name}), f"{name} imports another command module"


# The layers, lowest first: a module may import its own layer and the ones below it, never one above.
LAYERS = (
    ("base", ("makemore", "makemore.errors", "makemore.bounds", "makemore.device")),
    ("data", ("makemore.data",)),
    ("models", ("makemore.models",)),
    ("training", ("makemore.training",)),
    ("generation", ("makemore.generation",)),
    ("run", ("makemore.trained",)),
    ("studies", ("makemore.studies",)),
    ("export", ("makemore.export",)),
    ("front ends", ("makemore.cli", "makemore.serve", "makemore.__main__")),
)
TOP_LEVEL_MODULES_AT_MOST = 6


def layer_of(module: str) -> int:
    """The index in LAYERS of the layer `module` belongs to (the longest prefix that names it)."""
    best, depth = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = i, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a higher layer, as "importer -> imported (layer -> layer)"."""
    bad = []
    for name, targets in sorted(graph.items()):
        if name == "makemore":  # the package's lazy `mm.NAME` table imports nothing at import time
            continue
        for target in sorted(targets):
            if target != "makemore" and layer_of(target) > layer_of(name):
                bad.append(f"{name} -> {target} ({LAYERS[layer_of(name)][0]} -> {LAYERS[layer_of(target)][0]})")
    return bad


def test_every_module_is_in_a_layer_and_imports_run_down_the_layers():
    graph = import_graph()
    assert not layer_violations(graph), "imports against the layers: " + "; ".join(layer_violations(graph))


def test_the_layer_check_catches_an_import_upwards():
    graph = {"makemore.data.items": {"makemore.generation.sampler"}, "makemore.generation.sampler": {"makemore.data.items"},
             "makemore.cli.common": {"makemore.trained"}}
    assert layer_violations(graph) == ["makemore.data.items -> makemore.generation.sampler (data -> generation)"]


def test_the_top_level_holds_at_most_six_modules_and_the_layers_are_folders():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= TOP_LEVEL_MODULES_AT_MOST, top
    for folder in ("data", "models", "training", "generation", "studies", "cli", "serve"):
        assert (PACKAGE / folder / "__init__.py").is_file(), folder


def public_functions_outside_the_front_ends():
    for path in sorted(PACKAGE.rglob("*.py")):
        if {"cli", "serve"} & set(path.relative_to(PACKAGE).parts[:-1]):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                args = node.args
                names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
                yield path.relative_to(PACKAGE), node.name, [n for n in names if n not in ("self", "cls")]


def test_no_public_library_function_takes_more_than_eight_parameters():
    wide = [f"{path}:{name} ({len(params)})" for path, name, params in public_functions_outside_the_front_ends()
            if len(params) > 8]
    assert not wide, f"more than 8 parameters (a request object wants to be made): {wide}"


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+|(?<![\w-])-[io] [A-Z]")


def library_messages():
    """Every string literal inside a `raise` of library code (outside cli/), with where it is."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts[:-1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for sub in ast.walk(node.exc):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        yield f"{path.relative_to(PACKAGE)}:{node.lineno}", sub.value


def test_library_messages_name_parameters_not_flags():
    assert FLAG.search("resume it with makemore train --resume DIR") and FLAG.search("pass it with -i FILE")
    flags = [(where, text) for where, text in library_messages() if FLAG.search(text)]
    assert not flags, f"library messages naming command-line flags: {flags}"


def cli_functions():
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.name, node


@pytest.mark.parametrize("limit", [MAX_CLI_FUNCTION_LINES])
def test_cli_functions_are_short(limit):
    long = [f"{name}:{fn.name} ({fn.end_lineno - fn.lineno + 1} lines)" for name, fn in cli_functions()
            if fn.end_lineno - fn.lineno + 1 > limit]
    assert not long, f"functions in cli/ over {limit} lines: {long}"


def test_cli_imports_inside_functions_are_only_optional_extras():
    inside = []
    for name, fn in cli_functions():
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                inside += [(name, fn.name, a.name) for a in node.names if a.name not in LAZY_IMPORTS_ALLOWED]
            elif isinstance(node, ast.ImportFrom) and (node.level or node.module not in LAZY_IMPORTS_ALLOWED):
                inside.append((name, fn.name, "." * node.level + (node.module or "")))
    assert not inside, f"imports inside cli/ functions: {inside}"
