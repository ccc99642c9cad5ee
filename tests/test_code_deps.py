"""dvc.yaml's code deps equal each stage's import closure (so no code change can leave a stale output)."""
from pathlib import Path

from ruamel.yaml import YAML

from pipeline.core.code_deps import closure, differences, rewrite

from conftest import REPO_ROOT


def _doc():
    return YAML().load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))


def test_every_stage_declares_exactly_its_import_closure():
    diff = differences(REPO_ROOT, _doc())
    assert not diff, ("code deps differ from the import closure; run `python -m pipeline.core.code_deps --write`:\n"
                      + "\n".join(f"{k}: {v}" for k, v in diff.items()))


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pipeline" / "room").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "pipeline" / "__init__.py").write_text("")
    (root / "pipeline" / "room" / "__init__.py").write_text('"""room"""\n')
    (root / "models" / "__init__.py").write_text("")
    (root / "models" / "net.py").write_text("import torch\n")
    (root / "pipeline" / "room" / "helper.py").write_text("from models import net\n")
    (root / "pipeline" / "room" / "unused.py").write_text("")
    (root / "pipeline" / "room" / "stage.py").write_text(
        "import sys\nfrom pipeline.room.helper import x\n\ndef main():\n    from . import lazy\n")
    (root / "pipeline" / "room" / "lazy.py").write_text("")
    return root


def test_closure_follows_from_imports_lazy_and_relative_imports_and_packages(tmp_path):
    root = _project(tmp_path)
    assert closure(root, "pipeline.room.stage") == [
        "models/__init__.py", "models/net.py", "pipeline/__init__.py", "pipeline/room/__init__.py",
        "pipeline/room/helper.py", "pipeline/room/lazy.py", "pipeline/room/stage.py"]


def test_a_missing_and_an_extra_dep_are_both_reported_and_rewrite_fixes_them(tmp_path):
    root = _project(tmp_path)
    text = ("stages:\n  s:\n    cmd: python -m pipeline.room.stage --x 1\n    deps:\n"
            "      - pipeline/room/stage.py\n      - pipeline/room/unused.py\n      - data/in.csv  # input\n")
    doc = YAML().load(text)
    diff = differences(root, doc)["s"]
    assert "pipeline/room/helper.py" in diff["missing"] and diff["extra"] == ["pipeline/room/unused.py"]
    assert rewrite(root, doc) == 1
    assert not differences(root, doc)
    assert list(doc["stages"]["s"]["deps"])[-1] == "data/in.csv"  # data deps are kept, after the code
