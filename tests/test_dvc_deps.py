"""dvc.yaml lists, for every stage, exactly the `ser` modules its script imports (transitively),
so editing a module reruns the stages that use it and no others."""

import pytest
import yaml

from .imports import ROOT, closure, imported_modules, relative

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_are_exactly_its_imports(stage):
    spec = STAGES[stage]
    assert spec["cmd"] == f"python -m stages.{stage}"
    deps = {d if isinstance(d, str) else next(iter(d)) for d in spec["deps"]}
    script = ROOT / "stages" / f"{stage}.py"
    assert f"stages/{stage}.py" in deps
    assert {d for d in deps if d.startswith("ser/")} == relative(closure(script)), "run python scripts/dvc_deps.py"


def test_the_import_scan_sees_relative_absolute_and_lazy_imports(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from ser.core.files import write_json\nfrom ser.audio import decode\nimport ser.core.errors\n"
                      "def f():\n    from ser.model import network\n")
    assert relative(imported_modules(script)) == {"ser/core/files.py", "ser/audio/decode.py", "ser/core/errors.py",
                                                  "ser/model/network.py"}
    module = ROOT / "ser" / "audio" / "x.py"   # relative imports resolve against the file's package
    try:
        module.write_text("from .dsp import resample\nfrom ..core import errors\n")
        assert relative(imported_modules(module)) == {"ser/audio/dsp.py", "ser/core/errors.py"}
    finally:
        module.unlink()


def test_model_stages_do_not_depend_on_the_corpus_parsers():
    """Editing a corpus parser reruns the manifest (and what reads its output), not the code of
    the model stages: they never import ser/data/corpora.py or ser/data/tables.py."""
    for stage in ("featurize", "egemaps", "encoder", "embed", "cv", "loco", "train"):
        deps = relative(closure(ROOT / "stages" / f"{stage}.py"))
        assert not deps & {"ser/data/corpora.py", "ser/data/tables.py", "ser/data/manifest.py"}, stage
