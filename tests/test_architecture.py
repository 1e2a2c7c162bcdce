"""The package's shape, checked: the design document's module table names every module, imports
only point upstream in its data-flow order (so there is no cycle), and no module calls another
module's private (``_name``) functions."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "didlearn"
DESIGN = ROOT / "docs" / "DESIGN.md"


def components() -> dict[str, list[Path]]:
    """Top-level units of the package: a module file, or a subpackage with all its files."""
    units: dict[str, list[Path]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem not in ("__init__", "__main__"):
            units[path.stem] = [path]
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        units[folder.name] = sorted(folder.rglob("*.py"))
    return units


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[str, list[str]]]:
    """``(absolute module, imported names)`` of every import in the file, lazy ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [a.name for a in node.names]
            if module.startswith("didlearn"):
                found.append((module, names))
                # `from . import faces` imports the module didlearn.faces
                found += [(f"{module}.{n}", []) for n in names if not n.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("didlearn")]
    return found


def unit_of(module: str, units: dict[str, list[Path]]) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in units else None


def design_order() -> list[str]:
    """The data-flow order of the design document's module table (upstream first)."""
    text = DESIGN.read_text()
    table = text.split("## Module ownership", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", table, flags=re.M)


def test_the_design_documents_every_module_in_data_flow_order():
    order = design_order()
    assert sorted(order) == sorted(components()), (
        "docs/DESIGN.md's module table and the package disagree: "
        f"only in the table {sorted(set(order) - set(components()))}, "
        f"only in the package {sorted(set(components()) - set(order))}"
    )
    assert len(order) == len(set(order))


def test_imports_point_upstream_only():
    order = {name: i for i, name in enumerate(design_order())}
    units = components()
    wrong = []
    for unit, files in units.items():
        for path in files:
            for module, _ in imported_modules(path):
                other = unit_of(module, units)
                if other is not None and other != unit and order[other] > order[unit]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {module} (downstream)")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_the_import_graph_has_no_cycle():
    """Module by module (subpackages' files included), lazy imports counted."""
    files = sorted(PACKAGE.rglob("*.py"))
    names = {module_name(p) for p in files}
    graph = {module_name(p): set() for p in files}
    for path in files:
        for module, _ in imported_modules(path):
            if module in names and module != module_name(path):
                graph[module_name(path)].add(module)
    # a package imports its own submodules to re-export them; that is not a cycle of knowledge
    for name in graph:
        graph[name] = {m for m in graph[name] if not (m.startswith(name + "."))}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, stack + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, " -> ".join(cycle[cycle.index(cycle[-1]) :])


def test_no_module_calls_another_modules_private_names():
    units = components()
    wrong = []
    for unit, files in units.items():
        for path in files:
            tree = ast.parse(path.read_text())
            aliases = {}  # local name -> didlearn module it is bound to
            for module, names in imported_modules(path):
                other = unit_of(module, units)
                if other == unit:
                    continue  # inside one module or subpackage, private helpers are shared
                wrong += [
                    f"{path.name}: from {module} import {n}"
                    for n in names
                    if n.startswith("_") and not n.startswith("__")
                ]
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module is None:
                    aliases.update({a.asname or a.name: a.name for a in node.names})
                elif isinstance(node, ast.ImportFrom) and node.level:
                    continue
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in aliases
                    and aliases[node.value.id] in units
                    and aliases[node.value.id] != unit
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                ):
                    wrong.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not wrong, "\n".join(sorted(set(wrong)))
