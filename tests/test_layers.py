"""The package's layering: ``core < audio < data, features < model < bundle < app``. A module
imports only from its own package or lower ones, packages of one rank never import each other,
and no import cycle exists (a module graph without cycles can be read bottom up)."""

import ast

import pytest

from .imports import LAYERS, SER, imported_modules

MODULES = sorted(p for p in SER.rglob("*.py") if p.parent != SER)


def package(path) -> str:
    return path.relative_to(SER).parts[0]


def test_every_module_sits_in_a_layered_package():
    assert {p.relative_to(SER).parts[0] for p in SER.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)
    assert sorted(p.name for p in SER.glob("*.py")) == ["__init__.py", "__main__.py"]


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.relative_to(SER).as_posix())
def test_imports_go_down_the_layers_only(module):
    mine = package(module)
    for target in imported_modules(module):
        theirs = package(target)
        assert theirs == mine or LAYERS[theirs] < LAYERS[mine], f"{module.relative_to(SER)} imports {target.relative_to(SER)}"


def test_no_import_cycle():
    graph = {m: imported_modules(m) for m in MODULES}
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "cycle: " + " -> ".join(p.relative_to(SER).as_posix() for p in path + [node])
        state[node] = "open"
        for nxt in graph.get(node, ()):
            visit(nxt, path + [node])
        state[node] = "done"

    for m in MODULES:
        visit(m, [])


def test_package_inits_hold_no_code():
    """Importing ``ser.a.b`` runs ``ser/__init__.py`` and ``ser/a/__init__.py`` too: they hold a
    docstring only, so the DVC dependencies may leave them out."""
    for init in [SER / "__init__.py", *SER.glob("*/__init__.py")]:
        body = ast.parse(init.read_text()).body
        assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) or
                   isinstance(n, ast.Assign) and [t.id for t in n.targets] == ["__version__"] for n in body), init


def test_the_readme_layout_map_lists_every_module():
    """README's "Layout" names every module of every package, and nothing that is not there."""
    import re

    from .imports import ROOT

    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Layout"):]
    block = block[block.index("```\n") + 4:]
    block = block[:block.index("```")]
    described, package = {}, None
    for line in block.splitlines():
        if m := re.match(r"ser/(\w+)/\s+(.*)", line):
            package, line = m.group(1), m.group(2)
        elif not line.startswith(" "):
            package = None
        if package:
            described[package] = described.get(package, "") + " " + line.strip()
    listed = {}
    for package, words in described.items():
        words = re.sub(r"\([^()]*\)", "", words)   # the explanations
        listed[package] = {w.strip().rstrip("/") for w in re.split(r",|:", words) if re.fullmatch(r"\s*[a-z_]+/?\s*", w)}
    actual = {pkg: {p.stem for p in (SER / pkg).glob("*.py") if p.stem != "__init__"}
              | {p.name for p in (SER / pkg).iterdir() if p.is_dir() and p.name != "__pycache__"} for pkg in LAYERS}
    assert listed == actual
