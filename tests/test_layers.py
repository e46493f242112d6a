"""The package's layers import only downward (docs: DESIGN.md, Layout), and there are no import circles.

Every ``import glasspipe...`` / ``from glasspipe... import`` in src/glasspipe, at module level or inside a
function, is read with ``ast``; each module belongs to a layer, and an import from a lower layer up to a
higher one fails the test unless it is listed in ALLOWED_UPWARD with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module takes the layer of its longest matching prefix. Within a layer imports go any way
# (but not in circles).
LAYERS: list[tuple[str, ...]] = [
    # Ground floor: config loading, coercion and validation, the plugin registries and what they stand on.
    (
        "glasspipe",
        "glasspipe.config",
        "glasspipe.plugins",
        "glasspipe.datasets",
        "glasspipe.seeds",
        "glasspipe.layout",
        "glasspipe.progress",
        "glasspipe.correlation",
        "glasspipe.statistics",
    ),
    ("glasspipe.io", "glasspipe.potential"),
    ("glasspipe.structure.neighbours", "glasspipe.structure.order", "glasspipe.dynamics"),
    ("glasspipe.md", "glasspipe.energy"),
    ("glasspipe.structure",),
    ("glasspipe.labels",),
    ("glasspipe.importers",),
    # learn/, from the bottom: what a model reads (samples, its graph), the one trainer and what the networks
    # share, the registry, inputs, prediction and evaluation (and the model declarations, zoo/), the models.
    ("glasspipe.learn.samples", "glasspipe.learn.graphs"),
    ("glasspipe.learn.training",),
    ("glasspipe.learn",),
    ("glasspipe.learn.models",),
    ("glasspipe.plugins_all",),
    ("glasspipe.targets", "glasspipe.report", "glasspipe.artifact"),
    # One thin module per stage over everything below it: the report stage calls glasspipe.artifact.build, the
    # transfer stage reads the noise ceilings with the report's own reader (report.summary).
    ("glasspipe.stages",),
    ("glasspipe.cli",),
]

# (importer, imported): why this one import runs upward.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best, layer = -1, None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), index
    assert layer is not None, f"{module} is in no layer: add it to LAYERS"
    return layer


def _imports(path: Path) -> set[str]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("glasspipe")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith("glasspipe"):
                continue
            for alias in node.names:  # 'from glasspipe import config' imports the module glasspipe.config
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _is_module(candidate) else base)
    found.discard(module)
    return found


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted((SRC / "glasspipe").rglob("*.py"))}


def test_no_import_runs_upward():
    upward = sorted(
        (importer, imported)
        for importer, imports in _graph().items()
        for imported in imports
        if _layer(imported) > _layer(importer)
    )
    unexplained = [pair for pair in upward if pair not in ALLOWED_UPWARD]
    assert not unexplained, f"imports from a lower layer up to a higher one: {unexplained}"
    assert len(ALLOWED_UPWARD) <= 2  # issue 17: at most two, each with its reason
    stale = sorted(set(ALLOWED_UPWARD) - set(upward))
    assert not stale, f"ALLOWED_UPWARD lists imports the code no longer has: {stale}"


def test_config_imports_no_feature():
    assert _graph()["glasspipe.config"] <= {"glasspipe", "glasspipe.plugins", "glasspipe.datasets"}
    assert _graph()["glasspipe.plugins"] == set()


def test_no_import_circles():
    graph = _graph()
    # Packages import their own modules from __init__ to register them; a module importing its package's
    # __init__ back is the usual Python idiom, not a circle of design: count modules only.
    graph = {m: {i for i in imports if not m.startswith(i + ".")} for m, imports in graph.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, f"import circles: {circles}"
