"""Learning test: GRPO through our TRL backend raises a learnable reward on the tiny model (fixed seed).

If rewards, advantages or the update had the wrong sign, the reward would fall or drift instead.
"""

from __future__ import annotations

import pytest

from vlmrl.train.config import load_config
from vlmrl.train.metrics import read_metrics
from vlmrl.train.trl import backend as trl_backend

STEPS = 20
WINDOW = 5


def digit_rate(completions, **_):
    """Share of the completion's characters that are digits: a target-token reward a tiny model can learn."""
    texts = [c[0]["content"] for c in completions]
    return [sum(ch.isdigit() for ch in t) / max(len(t), 1) for t in texts]


@pytest.mark.slow
def test_grpo_raises_a_learnable_reward(tiny_vlm_path, tmp_path, one_torch_thread):
    from datasets import Dataset

    rows = [{"prompt": [{"role": "user", "content": f"what is {i} + 1?"}]} for i in range(16)]
    cfg = load_config(
        None,
        [
            "backend=trl",
            f"model.path={tiny_vlm_path}",
            "model.dtype=float32",
            "model.gradient_checkpointing=false",
            "rollout.engine=hf",
            "rollout.n=8",
            "rollout.max_response_length=16",
            "data.train_batch_size=4",
            "data.dataloader_num_workers=0",
            "algorithm.ppo_mini_batch_size=4",
            "algorithm.ppo_micro_batch_size_per_gpu=32",
            "algorithm.lr=1e-2",
            "algorithm.lr_warmup_steps=0",
            "algorithm.weight_decay=0",
            "algorithm.filter_groups.enable=false",
            "reward.overlong.enable=false",
            "trainer.save_freq=-1",
            "trainer.resume_mode=disable",
            "trainer.seed=0",
            f"trainer.output_dir={tmp_path / 'run'}",
        ],
    )
    summary = trl_backend.run(
        cfg, train_dataset=Dataset.from_list(rows), reward_funcs=[digit_rate], max_steps=STEPS
    )

    rewards = [row["reward_mean"] for row in read_metrics(summary.metrics_path)]
    assert len(rewards) == STEPS
    first = sum(rewards[:WINDOW]) / WINDOW
    last = sum(rewards[-WINDOW:]) / WINDOW
    print(f"mean reward: first {WINDOW} steps {first:.3f}, last {WINDOW} steps {last:.3f}")
    assert last > first + 0.2, f"reward did not rise: first {first:.3f}, last {last:.3f}, all {rewards}"
