"""The package's shape (issue 27): no import circles among its modules, no module over 500
lines, and no private name imported from another module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stvsr_cli"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for every ``from ... import`` of this package in ``path``, module-level
    and inside functions (``TYPE_CHECKING`` blocks too: a circle for a type checker is one)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("stvsr_cli"):
                found.append((target, [a.name for a in node.names]))
    return found


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "bundled_weights" not in p.parts}


def resolve(target: str, names: list[str], known: dict[str, Path]) -> set[str]:
    """The modules an import reaches: ``from pkg import sub`` reaches ``pkg.sub``."""
    out = set()
    for name in names:
        out.add(f"{target}.{name}" if f"{target}.{name}" in known else target)
    return {m for m in out if m in known}


def test_no_module_is_over_500_lines():
    long = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_no_private_name_is_imported_from_another_module():
    used = [
        (name, target, n)
        for name, p in modules().items()
        for target, names in imports(p)
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert not used, used


def test_no_import_circles():
    known = modules()
    graph = {
        name: {m for target, names in imports(p) for m in resolve(target, names, known)} - {name}
        for name, p in known.items()
    }
    # a package's __init__ re-exporting its own modules is not a circle with them
    for name in graph:
        graph[name] = {m for m in graph[name] if not (name.startswith(m + ".") and known[m].name == "__init__.py")}
    seen, stack, cycles = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node) :] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, cycles[:5]
