"""`vlmrl demo --model-family qwen3_vl`: the whole loop on the tiny Qwen3-VL, at a reduced size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_on_the_tiny_qwen3_vl(tmp_path, tiny_qwen3_vl_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable, "-m", "vlmrl.cli", "demo", "--model-family", "qwen3_vl", "--out", str(out),
            "--model-dir", str(tiny_qwen3_vl_path),  # the session's tiny Qwen3-VL: same seed, reused
            "--model-size", "tiny", "--steps", "2", "--train-size", "8", "--eval-size", "4",
            "--warmup-steps", "3", "--eval-samples", "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["settings"]["model_family"] == "qwen3_vl" and summary["train"]["steps"] == 2
    # the family's own GRPO lr (demo.yaml's 5e-4 collapsed one seed of three on the tiny Qwen3-VL)
    assert summary["train"]["lr"] == 2.5e-4 and summary["train"]["family_overrides"] == [
        "algorithm.lr=2.5e-4"
    ]
    for when in ("before", "after"):
        assert set(summary[when]["by_kind"]) == {"text", "image"}
    trained = json.loads((out / "train" / "final" / "config.json").read_text())
    assert trained["model_type"] == "qwen3_vl"


def test_demo_refuses_an_unknown_family(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vlmrl.cli", "demo", "--model-family", "llava", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "--model-family" in proc.stderr and "qwen3_vl" in proc.stderr


def test_build_model_only_builds_the_familys_tiny_model(tmp_path):
    proc = subprocess.run(
        [
            sys.executable, "-m", "vlmrl.cli", "demo", "--build-model-only", "--model-family", "qwen3_vl",
            "--model-size", "tiny", "--model-dir", str(tmp_path / "tiny"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "tiny" / "config.json").read_text())["model_type"] == "qwen3_vl"
    assert "tiny offline Qwen3-VL" in proc.stdout and "parameters" in proc.stdout
