"""dvc.yaml lists, for every stage, exactly the `ser` modules its script imports (transitively),
so editing a module reruns the stages that use it and no others."""

import ast
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def imported_modules(path: Path) -> set[str]:
    """``ser/<module>.py`` paths that ``path`` imports directly (absolute or relative imports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 or module == "ser" or module.startswith("ser."):
                base = module.removeprefix("ser").lstrip(".")
                names = [base.split(".")[0]] if base else [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("ser.")]
        found |= {f"ser/{name}.py" for name in names if (ROOT / "ser" / f"{name}.py").is_file()}
    return found


def closure(script: Path) -> set[str]:
    seen, todo = set(), list(imported_modules(script))
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imported_modules(ROOT / module))
    return seen


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_are_exactly_its_imports(stage):
    spec = STAGES[stage]
    assert spec["cmd"] == f"python -m stages.{stage}"
    deps = {d if isinstance(d, str) else next(iter(d)) for d in spec["deps"]}
    script = ROOT / "stages" / f"{stage}.py"
    assert f"stages/{stage}.py" in deps
    assert {d for d in deps if d.startswith("ser/")} == closure(script)


def test_the_import_scan_sees_relative_and_absolute_imports(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from ser.io import write_json\nfrom ser import audio\nimport ser.errors\n")
    assert imported_modules(script) == {"ser/io.py", "ser/audio.py", "ser/errors.py"}
    assert "ser/errors.py" in imported_modules(ROOT / "ser" / "config.py")   # `from .errors import ...`
