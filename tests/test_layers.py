"""The package's layering (tools/check_layers.py): no stage imports a later one, engine rooms apart, no cycles."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "check_layers.py"


def run(src: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), str(src)], capture_output=True, text=True, check=False)


def test_the_package_is_layered():
    done = run(ROOT / "src")
    assert done.returncode == 0, done.stdout


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "vlmrl" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_later_stage_an_engine_crossing_and_a_cycle_are_named(tmp_path):
    src = _write(
        tmp_path,
        {
            "__init__.py": "",
            "data/__init__.py": "",
            "data/rows.py": "from vlmrl.eval import text\n",  # data imports a later stage
            "eval/__init__.py": "",
            "eval/text.py": "from vlmrl.eval import grade\n",
            "eval/grade.py": "from vlmrl.eval import text\n",  # cycle text <-> grade
            "train/__init__.py": "",
            "train/verl/__init__.py": "",
            "train/verl/launch.py": "def f():\n    from vlmrl.train.trl import backend\n",
            "train/trl/__init__.py": "",
            "train/trl/backend.py": "",
        },
    )
    done = run(src)
    assert done.returncode == 1
    assert "stage 'data' imports the later stage vlmrl.eval" in done.stdout
    assert "engine room vlmrl.train.verl imports the other engine vlmrl.train.trl" in done.stdout
    cycles = [line for line in done.stdout.splitlines() if line.startswith("import cycle:")]
    assert any("vlmrl.eval.grade" in line and "vlmrl.eval.text" in line for line in cycles), done.stdout
