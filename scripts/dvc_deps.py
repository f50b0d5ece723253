"""Rewrite the ``ser/`` dependencies of every stage in dvc.yaml from the stage script's imports
(``tests/imports.py``, the scan tests/test_dvc_deps.py holds dvc.yaml to). Run after moving or
importing a module:  python scripts/dvc_deps.py"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.imports import closure, relative  # noqa: E402


def main():
    path = ROOT / "dvc.yaml"
    out, stage = [], None
    for line in path.read_text().split("\n"):
        if m := re.match(r"^  ([a-z_]+):$", line):
            stage = m.group(1)
        if line.startswith("      - ser/"):
            continue   # replaced below, after the stage's own script
        out.append(line)
        if re.match(rf"^      - stages/{stage}\.py$", line):
            out += [f"      - {dep}" for dep in sorted(relative(closure(ROOT / "stages" / f"{stage}.py")))]
    path.write_text("\n".join(out))


if __name__ == "__main__":
    main()
