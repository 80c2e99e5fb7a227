"""The TRL backend trains the tiny Qwen3-VL on natively mixed data (text rows without images)."""

from __future__ import annotations

import pytest
import torch

from vlmrl.train.config import load_config
from vlmrl.train.metrics import read_metrics
from vlmrl.train.trl import backend as trl_backend


@pytest.mark.slow
def test_trl_trains_qwen3_vl_on_mixed_rows(tiny_qwen3_vl_path, tmp_path, one_torch_thread):
    from transformers import AutoModelForImageTextToText

    from vlmrl.data.build import build_from_examples
    from vlmrl.demo.synthetic import make_examples

    train = tmp_path / "train.parquet"
    report = build_from_examples(
        make_examples(8, "train", seed=3), train, with_images=True, mixed_policy="native"
    )
    assert report.images == 4  # half the rows carry no image
    cfg = load_config(
        None,
        [
            "backend=trl",
            "trainer.device=cpu",
            f"model.path={tiny_qwen3_vl_path}",
            "model.gradient_checkpointing=false",
            f"data.train_files=[{train}]",
            "data.train_batch_size=4",
            "data.dataloader_num_workers=0",
            "algorithm.ppo_mini_batch_size=4",
            "algorithm.ppo_micro_batch_size_per_gpu=2",  # text-only chunks beside image chunks
            "algorithm.lr=1e-3",
            "algorithm.weight_decay=0.0",
            "rollout.n=2",
            "rollout.max_response_length=12",
            "reward.overlong.len=4",
            "trainer.save_freq=-1",
            "trainer.total_training_steps=2",
            f"trainer.output_dir={tmp_path / 'run'}",
        ],
    )
    summary = trl_backend.run(cfg)
    rows = read_metrics(summary.metrics_path)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["reward_std"] > 0, rows[0]  # right-length and overlong responses: an advantage
    final = AutoModelForImageTextToText.from_pretrained(summary.final_model_dir)
    assert final.config.model_type == "qwen3_vl"
    start = AutoModelForImageTextToText.from_pretrained(tiny_qwen3_vl_path)
    before, after = dict(start.named_parameters()), dict(final.named_parameters())
    # no weight decay: what moved, moved by the gradient, through the language model and the vision tower
    moved = {name for name, p in after.items() if not torch.equal(p, before[name])}
    assert any(".language_model." in n for n in moved) and any(".visual." in n for n in moved), moved
