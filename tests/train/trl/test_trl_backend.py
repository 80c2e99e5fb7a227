"""TRL backend: config mapping onto GRPOConfig, the overlong penalty, metrics.jsonl, checkpoints and resume."""

from __future__ import annotations

import json

import pytest

from vlmrl.demo.synthetic import IMAGE_SOURCE, TEXT_SOURCE
from vlmrl.train.config import ConfigError, load_config
from vlmrl.train.metrics import CONTRACT_KEYS, contract_row, read_metrics, truncate_after
from vlmrl.train.trl import backend as trl_backend
from vlmrl.train.trl import config as trl_config
from vlmrl.train.trl import loaders as trl_loaders
from vlmrl.train.trl import rewards as trl_rewards

BASE = [
    "backend=trl",
    "trainer.device=cpu",
    "rollout.n=4",
    "data.train_batch_size=4",
    "algorithm.ppo_mini_batch_size=2",
    "algorithm.ppo_micro_batch_size_per_gpu=4",
    "rollout.max_response_length=64",
    "reward.overlong.len=16",
]


def _cfg(*overrides: str):
    return load_config(None, [*BASE, *overrides])


@pytest.mark.parametrize(
    ("mode", "loss_type"),
    [("token-mean", "dapo"), ("seq-mean-token-mean", "grpo"), ("seq-mean-token-sum-norm", "dr_grpo")],
)
def test_loss_agg_mode_maps_to_trl_loss_type(mode, loss_type, tmp_path):
    args, _ = trl_config.build_grpo_config(_cfg(f"algorithm.loss_agg_mode={mode}"), output_dir=tmp_path)
    assert args.loss_type == loss_type


def test_knobs_map_onto_grpo_config(tmp_path):
    cfg = _cfg(
        "algorithm.clip_ratio_low=0.15",
        "algorithm.clip_ratio_high=0.3",
        "algorithm.use_kl_loss=true",
        "algorithm.kl_loss_coef=0.04",
        "algorithm.lr=3e-6",
        "algorithm.lr_warmup_steps=7",
        "algorithm.weight_decay=0.05",
        "algorithm.grad_clip=0.5",
        "algorithm.norm_adv_by_std_in_grpo=false",
        "rollout.temperature=0.9",
        "rollout.top_p=0.95",
        "trainer.total_training_steps=5",
        "trainer.save_freq=3",
        "trainer.max_actor_ckpt_to_keep=2",
        "trainer.logger=[console,tensorboard]",
    )
    args, notes = trl_config.build_grpo_config(cfg, output_dir=tmp_path)
    assert (args.epsilon, args.epsilon_high, args.beta) == (0.15, 0.3, 0.04)
    # warm-up and checkpoints count training steps as in veRL: x2 optimizer steps per training step here
    assert (args.learning_rate, args.warmup_steps, args.weight_decay, args.max_grad_norm) == (
        3e-6,
        14,
        0.05,
        0.5,
    )
    assert args.scale_rewards == "none"
    assert (args.temperature, args.top_p, args.num_generations, args.max_completion_length) == (
        0.9,
        0.95,
        4,
        64,
    )
    # 4 prompts x 4 responses generated per step; 2 prompts x 4 responses per optimizer step in micro-batches of 4
    assert args.generation_batch_size == 16
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 2)
    assert args.max_steps == 10  # 5 training steps x 2 optimizer steps each
    assert (args.save_steps, args.save_total_limit) == (6, 2)
    assert args.use_cpu and not args.use_vllm and not args.bf16
    assert args.report_to == ["tensorboard"]
    assert any("vllm" in n for n in notes)  # asked for vLLM on CPU: said so, not silently swapped
    assert any("filter_groups" in n for n in notes)


def test_ppo_epochs_multiply_optimizer_steps_per_training_step(tmp_path):
    cfg = _cfg("algorithm.ppo_epochs=2", "trainer.total_training_steps=3", "algorithm.lr_warmup_steps=1")
    args, _ = trl_config.build_grpo_config(cfg, output_dir=tmp_path)
    assert args.num_iterations == 2
    # 2 mini-batches x 2 epochs = 4 optimizer steps per training step
    assert (args.max_steps, args.warmup_steps) == (12, 4)


def test_kl_off_by_default_gives_beta_zero(tmp_path):
    args, _ = trl_config.build_grpo_config(_cfg(), output_dir=tmp_path)
    assert args.beta == 0.0 and args.scale_rewards == "group"


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("algorithm.loss_agg_mode=seq-mean-token-sum", "loss_agg_mode"),
        ("algorithm.adv_estimator=rloo", "adv_estimator"),
        ("algorithm.use_kl_in_reward=true", "use_kl_in_reward"),
        ("algorithm.ppo_micro_batch_size_per_gpu=3", "ppo_micro_batch_size_per_gpu"),
        ("rollout.n=1", "rollout.n"),
    ],
)
def test_unmappable_config_is_a_clear_error(override, needle, tmp_path):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        trl_config.build_grpo_config(_cfg(override), output_dir=tmp_path)


def test_train_batch_must_split_into_mini_batches(tmp_path):
    with pytest.raises(ConfigError, match="multiple of algorithm.ppo_mini_batch_size"):
        trl_config.build_grpo_config(
            _cfg("data.train_batch_size=3", "algorithm.ppo_mini_batch_size=2"), output_dir=tmp_path
        )


def test_overlong_penalty_ramps_over_the_buffer():
    penalty = trl_rewards.overlong_penalty(max_response_length=20, buffer_len=10, penalty_factor=1.0)
    lengths = [5, 10, 15, 20]
    assert penalty(completion_ids=[[1] * n for n in lengths]) == [0.0, 0.0, -0.5, -1.0]


def test_contract_row_maps_trl_names():
    logs = {
        "reward": 0.5,
        "reward_std": 0.1,
        "acc": 0.25,
        "format_rate": 0.75,
        "verifier_error_rate": 0.0,
        "completions/mean_length": 12.0,
        "completions/max_length": 20.0,
        "clip_ratio/low_mean": 0.01,
        "clip_ratio/high_mean": 0.02,
        "kl": 0.003,
        "entropy": 2.5,
        "learning_rate": 1e-6,
        "rewards/overlong_penalty/mean": -0.1,
        "modality/image/format_rate": 0.5,
        "judge/calls": 2.0,
        "loss": float("nan"),
    }
    row = contract_row(7, logs, step_time_s=1.5)
    assert set(CONTRACT_KEYS) <= set(row)
    assert row["step"] == 7 and row["acc_mean"] == 0.25 and row["format_rate"] == 0.75
    assert row["rewards/overlong_penalty/mean"] == -0.1
    assert row["modality/image/format_rate"] == 0.5 and row["judge/calls"] == 2.0


def test_truncate_after_drops_redone_steps_and_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)) + '{"step": 4, "rew')
    assert truncate_after(path, 2) == 2
    assert [r["step"] for r in read_metrics(path)] == [1, 2]


def test_missing_train_files_name_the_key(tmp_path):
    cfg = _cfg(f"data.train_files=[{tmp_path / 'nope.parquet'}]")
    with pytest.raises(ConfigError, match="nope.parquet"):
        trl_loaders.load_train_dataset(cfg)


def _mixed_parquet(path):
    from vlmrl.data.build import build_from_examples
    from vlmrl.demo.synthetic import make_examples

    report = build_from_examples(
        make_examples(8, "train", seed=3), path, with_images=True, mixed_policy="native"
    )
    assert report.kept == 8 and report.images == 4
    return path


@pytest.mark.slow
def test_trl_steps_on_mixed_parquet_write_metrics_checkpoints_and_resume(
    tiny_vlm_path, tmp_path, one_torch_thread
):
    from transformers import AutoModelForImageTextToText

    train = _mixed_parquet(tmp_path / "train.parquet")
    out = tmp_path / "run"
    overrides = [
        "backend=trl",
        f"model.path={tiny_vlm_path}",
        "model.gradient_checkpointing=false",
        f"data.train_files=[{train}]",
        "data.train_batch_size=4",  # 4 prompts: with 8 shuffled rows, 2 text + 2 image on average per step
        "data.dataloader_num_workers=0",
        "algorithm.ppo_mini_batch_size=4",
        # One prompt group per forward chunk: text-only chunks beside image chunks (TRL 1.16 crashed on those).
        "algorithm.ppo_micro_batch_size_per_gpu=2",
        "rollout.n=2",
        "rollout.max_response_length=12",
        "reward.overlong.len=4",
        "trainer.save_freq=1",
        "trainer.max_actor_ckpt_to_keep=2",
        f"trainer.output_dir={out}",
    ]
    cfg = load_config(None, [*overrides, "trainer.total_training_steps=2"])
    summary = trl_backend.run(cfg)
    assert summary.global_step == 2 and summary.resumed_from is None
    rows = read_metrics(summary.metrics_path)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        for key in CONTRACT_KEYS:
            if key not in ("kl",):  # TRL logs KL only when beta > 0
                assert key in row, (key, row)
        # The tiny random model never passes the format gate: our reward scored every response -1.
        assert row["rewards/math_reward/mean"] == -1.0
        assert row["reward_mean"] == pytest.approx(-1.0 + row["rewards/overlong_penalty/mean"])
        assert row["format_rate"] == 0.0 and row["acc_mean"] == 0.0
        assert 1 <= row["response_length_max"] <= 12
        # per row kind and source (train.metrics.reward_metrics through TRL's log_metric): 4 prompts x 2
        kinds = [k for k in ("text", "image") if f"modality/{k}/count" in row]
        counts = {k: row[f"modality/{k}/count"] for k in kinds}
        assert sum(counts.values()) == 8, row
        for k in kinds:
            assert row[f"modality/{k}/reward_mean"] == -1.0 and row[f"modality/{k}/format_rate"] == 0.0
            source = IMAGE_SOURCE if k == "image" else TEXT_SOURCE
            assert row[f"source/{source}/count"] == counts[k]
        lengths = sum(row[f"modality/{k}/response_length_mean"] * counts[k] for k in kinds)
        assert lengths / 8 == pytest.approx(row["response_length_mean"])
        assert row["judge/calls"] == 0 and "judge/latency_p50_s" not in row
    # the two steps cover the 8 rows (4 text, 4 image) once
    assert {k for row in rows for k in ("text", "image") if f"modality/{k}/count" in row} == {"text", "image"}
    assert [p.rsplit("-", 1)[1] for p in summary.checkpoints] == ["1", "2"]
    AutoModelForImageTextToText.from_pretrained(summary.checkpoints[-1])
    AutoModelForImageTextToText.from_pretrained(summary.final_model_dir)

    resumed = trl_backend.run(load_config(None, [*overrides, "trainer.total_training_steps=3"]))
    assert resumed.resumed_from == summary.checkpoints[-1]
    assert resumed.global_step == 3
    assert [r["step"] for r in read_metrics(resumed.metrics_path)] == [1, 2, 3]


@pytest.mark.slow
def test_every_optimizer_step_gets_a_metrics_row(tiny_vlm_path, tmp_path, one_torch_thread):
    """Two mini-batches per training step: TRL generates once, steps twice; both steps are logged."""
    train = _mixed_parquet(tmp_path / "train.parquet")
    cfg = load_config(
        None,
        [
            "backend=trl",
            f"model.path={tiny_vlm_path}",
            "model.gradient_checkpointing=false",
            f"data.train_files=[{train}]",
            "data.train_batch_size=4",
            "data.dataloader_num_workers=0",
            "algorithm.ppo_mini_batch_size=2",
            "algorithm.ppo_micro_batch_size_per_gpu=2",
            "rollout.n=2",
            "rollout.max_response_length=8",
            "reward.overlong.len=2",
            "trainer.save_freq=-1",
            "trainer.total_training_steps=1",
            f"trainer.output_dir={tmp_path / 'run'}",
        ],
    )
    summary = trl_backend.run(cfg)
    rows = read_metrics(summary.metrics_path)
    assert [r["step"] for r in rows] == [1, 2]
    assert "reward_mean" in rows[0]  # the generating step carries the rewards
    assert "reward_mean" not in rows[1] and "lr" in rows[1]  # the second step still has its own row


def test_lora_rank_builds_a_peft_config():
    assert trl_loaders.lora_config(_cfg()) is None
    lora = trl_loaders.lora_config(
        _cfg("model.lora_rank=8", "model.lora_alpha=16", "model.lora_target_modules=[q_proj]")
    )
    assert (lora.r, lora.lora_alpha, set(lora.target_modules)) == (8, 16, {"q_proj"})


def test_freeze_vision_tower_leaves_only_the_language_model_trainable(tiny_vlm_path):
    model = trl_loaders.load_model(
        _cfg(f"model.path={tiny_vlm_path}", "model.freeze_vision_tower=true"), "cpu"
    )
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(".visual." in f".{name}" for name in trainable)
    assert any("visual" in name for name, p in model.named_parameters() if not p.requires_grad)


def test_overlong_prompts_are_dropped_and_counted(tiny_processor, data_dir):
    from vlmrl.data.trl_view import to_trl_dataset

    dataset = to_trl_dataset(_mixed_parquet(data_dir / "train.parquet"))
    lengths = [trl_loaders.prompt_length(tiny_processor, dataset[i]) for i in range(len(dataset))]
    limit = min(lengths)  # image rows carry vision tokens, so some rows are longer than the shortest
    kept, rejected = trl_loaders.filter_overlong(dataset, tiny_processor, limit)
    assert rejected == [i for i, n in enumerate(lengths) if n > limit] and rejected
    assert len(kept) + len(rejected) == len(dataset)
