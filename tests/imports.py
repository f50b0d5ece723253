"""The `ser` modules a file imports, read from its source (never by importing it): the basis of
the DVC dependency test and the layering test."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SER = ROOT / "ser"

# Lower packages never import higher ones; packages of one rank do not import each other.
LAYERS = {"core": 0, "audio": 1, "data": 2, "features": 2, "model": 3, "bundle": 4, "app": 5}


def module_file(dotted: str) -> Path | None:
    """``ser/a/b.py`` for ``ser.a.b`` (None when it is a package or not a module of ``ser``)."""
    path = ROOT.joinpath(*dotted.split(".")).with_suffix(".py")
    return path if path.is_file() else None


def imported_modules(path: Path) -> set[Path]:
    """The ``ser`` module files ``path`` imports directly: ``from ser.a.b import x``,
    ``from ser.a import b``, ``import ser.a.b`` and relative forms, at any depth (lazy imports
    inside functions count: the code runs when the stage calls it)."""
    package = ".".join(path.resolve().relative_to(ROOT).parent.parts) if path.resolve().is_relative_to(SER) else ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != "ser" and not base.startswith("ser."):
                continue
            for alias in node.names:
                target = module_file(f"{base}.{alias.name}") or module_file(base)
                if target:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found |= {f for a in node.names if a.name.startswith("ser.") and (f := module_file(a.name))}
    return found


def closure(script: Path) -> set[Path]:
    """Every ``ser`` module file ``script`` imports, directly or through other modules."""
    seen, todo = set(), list(imported_modules(script))
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imported_modules(module))
    return seen


def relative(paths) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in paths}
