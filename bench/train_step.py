"""TRL GRPO step speed of the demo configuration: steps/s and generated tokens/s on this machine.

Run: PYTHONPATH=src python bench/train_step.py [--steps 12] [--threads 1] [--config configs/train/demo.yaml]
Trains the tiny model on the demo's synthetic mixed data with the real reward; the first step is excluded.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="GRPO steps to time (the first is excluded)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--config", default="configs/train/demo.yaml")
    parser.add_argument("--train-size", type=int, default=64)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. rollout.n=4")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import torch

    from vlmrl.data.build import build_from_examples
    from vlmrl.demo.synthetic import make_examples
    from vlmrl.tiny.qwen2_5_vl import build_tiny_vlm
    from vlmrl.train.config import load_config
    from vlmrl.train.metrics import read_metrics
    from vlmrl.train.trl import backend as trl_backend

    datasets.disable_progress_bars()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = build_tiny_vlm(tmp_path / "tiny", seed=0)
        train = tmp_path / "train.parquet"
        build_from_examples(
            make_examples(args.train_size, "train", seed=0), train, with_images=True, mixed_policy="native"
        )
        cfg = load_config(
            args.config,
            [
                f"model.path={model}",
                f"data.train_files=[{train}]",
                f"trainer.output_dir={tmp_path / 'run'}",
                f"trainer.total_training_steps={args.steps}",
                "trainer.save_freq=-1",
                *args.overrides,
            ],
        )
        t0 = time.perf_counter()
        summary = trl_backend.run(cfg, progress=lambda step, total, _: None)
        wall = time.perf_counter() - t0
        rows = read_metrics(summary.metrics_path)[1:]

    completions = cfg.data.train_batch_size * cfg.rollout.n
    step_time = sum(r["step_time_s"] for r in rows)
    tokens = sum(r["response_length_mean"] * completions for r in rows)
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch threads {args.threads}"
    )
    print(
        f"config: {args.config} (+{args.overrides}): {cfg.data.train_batch_size} prompts x {cfg.rollout.n} "
        f"responses, max {cfg.rollout.max_response_length} tokens, micro-batch "
        f"{cfg.algorithm.ppo_micro_batch_size_per_gpu} prompts"
    )
    print(f"timed steps: {len(rows)} (of {summary.global_step}; first excluded); whole run {wall:.1f} s")
    print(f"steps/s: {len(rows) / step_time:.3f}  (mean step {step_time / len(rows):.2f} s)")
    print(f"generated tokens/s (per second of whole step): {tokens / step_time:.1f}")
    print(f"mean response length: {tokens / completions / len(rows):.1f} tokens")


if __name__ == "__main__":
    main()
