"""The package's imports run one way: no cycles, no import from a higher layer.

Layers, bottom to top (a module may import its own layer and those below):
ground (linalg, robust, gaussian, modes, adjoint, paths, metrics, io, tiling, progress, heap) -> engine (factors,
messages, schedules, factor_graph, backward; the package root re-exports these) -> grid ->
modules / nets -> vision -> tasks -> pretrained / demo / cli. Imports inside functions count.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gbp_torch"

LAYERS = [
    ["linalg", "robust", "gaussian", "modes", "adjoint", "paths", "metrics", "io", "tiling", "progress", "heap"],
    ["", "factors", "messages", "schedules", "factor_graph", "backward"],
    ["grid"],
    ["modules", "nets", "refine"],
    ["vision"],
    ["tasks"],
    ["pretrained", "demo", "cli"],
]
RANK = {top: rank for rank, tops in enumerate(LAYERS) for top in tops}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (relative imports resolved; ``from p import m``
    counts m when it is a module of the package; a module's own ancestor packages are not
    counted: Python runs them first anyway)."""
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                deps.add(base)
                deps |= {f"{base}.{a.name}" for a in node.names}
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = {d for d in deps if d in files and d != name and d not in ancestors}
    return graph


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top not in RANK:
        raise KeyError(f"module {module} has no layer: add {top!r} to LAYERS in tests/test_layers.py")
    return RANK[top]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
                  for m, deps in graph.items() for d in deps if layer_of(d) > layer_of(m))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_package_has_no_import_cycles():
    assert cycles(import_graph(PACKAGE)) == []


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports(import_graph(PACKAGE)) == []


def test_the_checks_catch_a_planted_cycle_and_an_upward_import():
    graph = {"gbp_torch.grid.a": {"gbp_torch.grid.b"}, "gbp_torch.grid.b": {"gbp_torch.grid.a"},
             "gbp_torch.linalg": {"gbp_torch.tasks.x"}, "gbp_torch.tasks.x": set()}
    assert cycles(graph) == [["gbp_torch.grid.a", "gbp_torch.grid.b"]]
    assert upward_imports(graph) == ["gbp_torch.linalg (layer 0) imports gbp_torch.tasks.x (layer 5)"]


def test_graph_resolves_relative_imports(tmp_path):
    pkg = tmp_path / "gbp_torch"
    (pkg / "grid").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "linalg.py").write_text("")
    (pkg / "grid" / "__init__.py").write_text("from .solve import solve\n")
    (pkg / "grid" / "solve.py").write_text("from .. import linalg\nfrom . import blocks\n\ndef f():\n"
                                           "    from ..linalg import x\n")
    (pkg / "grid" / "blocks.py").write_text("import gbp_torch.linalg\n")
    graph = import_graph(pkg)
    assert graph["gbp_torch.grid.solve"] == {"gbp_torch.linalg", "gbp_torch.grid.blocks"}
    assert graph["gbp_torch.grid.blocks"] == {"gbp_torch.linalg"}
    assert graph["gbp_torch.grid"] == {"gbp_torch.grid.solve"}
