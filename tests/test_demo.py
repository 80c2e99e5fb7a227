"""`vlmrl demo` end to end at a reduced size: data, warm-up, eval, GRPO, curves, eval, summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end_at_reduced_size(tmp_path, tiny_vlm_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vlmrl.cli",
            "demo",
            "--out",
            str(out),
            "--model-dir",  # the session's tiny model: same seed, so the demo reuses it
            str(tiny_vlm_path),
            "--model-size",
            "tiny",
            "--steps",
            "2",
            "--train-size",
            "8",
            "--eval-size",
            "4",
            "--warmup-steps",
            "3",
            "--eval-samples",
            "2",
            "trainer.save_freq=1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "before and after GRPO" in proc.stdout and "artifacts" in proc.stdout

    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["train"]["steps"] == 2
    assert summary["train"]["lr"] == 5e-4 and summary["train"]["family_overrides"] == []  # demo.yaml's own
    assert summary["data"] == {"train": {"kept": 8, "rejected": 0}, "test": {"kept": 4, "rejected": 0}}
    for when in ("before", "after"):
        assert set(summary[when]) == {"grader", "pass@1", "format_rate", "by_kind"}
        assert summary[when]["grader"] == "reward"  # the demo grades as training does, and says so
        by_kind = summary[when]["by_kind"]
        assert set(by_kind) == {"text", "image"}
        assert sum(k["problems"] for k in by_kind.values()) == 4
        # the overall Pass@1 is the per-kind Pass@1s weighted by their problems
        weighted = sum(k["pass@1"] * k["problems"] for k in by_kind.values()) / 4
        assert weighted == pytest.approx(summary[when]["pass@1"])
        results = json.loads((out / "eval" / when / "results.json").read_text())
        assert "demo_test" in results["scores"]

    # the held-out questions are new: no (prompt, images) pair of the test file is in the train file
    def questions(split):
        rows = pq.read_table(out / "data" / f"{split}.parquet").to_pylist()
        return {(json.dumps(r["prompt"]), tuple(i["bytes"] for i in r["images"])) for r in rows}

    assert len(questions("test")) == 4 and not questions("test") & questions("train")
    metrics = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all("reward_mean" in m and "response_length_mean" in m for m in metrics)
    for name in ("reward", "response_length"):
        png = out / "curves" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "train" / "checkpoint-2").is_dir() and (out / "train" / "final" / "config.json").is_file()
    for path in summary["artifacts"].values():
        for one in path.split(", "):
            assert Path(one).exists(), one


def test_demo_verl_stage_config_passes_verls_own_validation(tmp_path, tiny_vlm_path):
    """The config `vlmrl demo --backend verl` hands veRL, composed and checked by veRL's own Hydra config
    and `validate_config` with the CPU settings (no veRL run: the demo itself is timed by hand, and
    veRL's trainer runs on CPU in tests/train/verl/test_verl_cpu_e2e.py)."""
    from vlmrl.demo.pipeline import VERL_DEMO_STEPS, DemoSettings, default_config_path, verl_demo_config
    from vlmrl.train.verl.launch import plan

    overrides = [
        f"model.path={tiny_vlm_path}",
        f"data.train_files=[{tmp_path / 'train.parquet'}]",
        f"trainer.output_dir={tmp_path / 'train'}",
    ]
    cfg = verl_demo_config(default_config_path(), overrides, DemoSettings())
    assert cfg.backend == "verl" and VERL_DEMO_STEPS >= 2
    c = plan(cfg, on_cpu=True).verl_config
    assert c.trainer.total_training_steps == VERL_DEMO_STEPS
    assert c.trainer.save_freq == VERL_DEMO_STEPS  # the checkpoint the after-eval exports
    assert c.trainer.device == "cpu" and c.actor_rollout_ref.rollout.name == "vllm"
    # no validation set: veRL gets a placeholder file it never reads (test_freq -1, none before training)
    assert c.trainer.test_freq == -1 and c.trainer.val_before_train is False
    # the same GRPO recipe as the TRL stage: prompts, group size, response length
    assert c.data.train_batch_size == cfg.data.train_batch_size == 4
    assert c.actor_rollout_ref.rollout.n == cfg.rollout.n
    assert c.actor_rollout_ref.rollout.response_length == cfg.rollout.max_response_length
    steps = verl_demo_config(default_config_path(), overrides, DemoSettings(steps=2))
    assert plan(steps, on_cpu=True).verl_config.trainer.total_training_steps == 2
