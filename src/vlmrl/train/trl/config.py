"""The TRL backend's config mapping: our experiment config -> TRL's `GRPOConfig` and batch layout.

What TRL lacks is refused or noted by `vlmrl.train.backends`; this adds what depends on the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmrl.train.backends import TRL_LOSS_TYPES
from vlmrl.train.config import ConfigError, ExperimentConfig, check_support


@dataclass
class BatchLayout:
    """How our prompt batches become TRL's completion batches (all counts in completions)."""

    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    generation_batch_size: int
    optimizer_steps_per_training_step: int


def resolve_device(cfg: ExperimentConfig) -> str:
    """'cuda' or 'cpu' from `trainer.device` and what this machine has."""
    import torch

    want = cfg.trainer.device
    has_cuda = torch.cuda.is_available()
    if want == "cuda" and not has_cuda:
        raise ConfigError("trainer.device=cuda but torch sees no CUDA device; use trainer.device=cpu or auto")
    if want == "cpu":
        return "cpu"
    return "cuda" if has_cuda else "cpu"


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def batch_layout(cfg: ExperimentConfig, world_size: int = 1) -> BatchLayout:
    """Map train_batch_size / ppo_mini_batch_size / micro-batch (prompts) onto TRL's completion batches.

    One of our training steps generates `train_batch_size * n` completions and takes
    `train_batch_size / ppo_mini_batch_size` optimizer steps over them, like veRL.
    """
    n = cfg.rollout.n
    prompts, mini, micro = (
        cfg.data.train_batch_size,
        cfg.algorithm.ppo_mini_batch_size,
        cfg.algorithm.ppo_micro_batch_size_per_gpu,
    )
    if prompts % mini:
        raise ConfigError(
            f"data.train_batch_size ({prompts}) must be a multiple of algorithm.ppo_mini_batch_size ({mini}) "
            "for the TRL backend"
        )
    mini_completions = mini * n
    if mini_completions % (micro * world_size):
        raise ConfigError(
            f"algorithm.ppo_mini_batch_size * rollout.n = {mini_completions} completions per optimizer step must "
            f"be a multiple of algorithm.ppo_micro_batch_size_per_gpu ({micro}) x {world_size} process(es); "
            "pick a micro-batch size that divides it"
        )
    return BatchLayout(
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=mini_completions // (micro * world_size),
        generation_batch_size=prompts * n,
        optimizer_steps_per_training_step=prompts // mini,
    )


def _report_to(cfg: ExperimentConfig) -> list[str]:
    wanted = [name for name in cfg.trainer.logger if name in ("wandb", "tensorboard")]
    return wanted or ["none"]


def build_grpo_config(
    cfg: ExperimentConfig, output_dir: str | os.PathLike[str] | None = None, max_steps: int | None = None
):
    """TRL `GRPOConfig` for `cfg`, plus notes on knobs TRL handles differently (never silently dropped)."""
    from trl import GRPOConfig

    notes = check_support(cfg)  # refuses what TRL cannot do; notes what it does differently
    algo, rollout, trainer = cfg.algorithm, cfg.rollout, cfg.trainer
    device = resolve_device(cfg)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    layout = batch_layout(cfg, world_size)

    use_vllm = False
    if rollout.engine == "vllm":
        if device == "cuda" and vllm_available():
            use_vllm = True
        else:
            notes.append(
                "rollout.engine=vllm needs vLLM and a CUDA GPU; generating with transformers instead"
                if device == "cpu"
                else "rollout.engine=vllm but vLLM is not installed; generating with transformers instead"
            )

    bf16 = device == "cuda" and cfg.model.dtype == "bfloat16"
    fp16 = device == "cuda" and cfg.model.dtype == "float16"
    if device == "cpu" and cfg.model.dtype != "float32":
        notes.append(f"model.dtype={cfg.model.dtype} on CPU: training in float32")

    # veRL counts warm-up, checkpoints and total steps in training steps (one generation each); TRL
    # counts optimizer steps, of which one training step takes mini-batches x ppo_epochs.
    k = layout.optimizer_steps_per_training_step * algo.ppo_epochs
    if max_steps is None and trainer.total_training_steps is not None:
        max_steps = trainer.total_training_steps * k
    out = Path(output_dir) if output_dir is not None else Path(trainer.resolved_output_dir())
    save = trainer.save_freq > 0
    kwargs: dict[str, Any] = dict(
        output_dir=str(out),
        run_name=trainer.experiment_name,
        seed=trainer.seed,
        data_seed=trainer.seed,
        # Optimiser: AdamW with a linear warm-up then constant, as veRL's actor.
        learning_rate=algo.lr,
        warmup_steps=algo.lr_warmup_steps * k,
        lr_scheduler_type="constant_with_warmup",
        weight_decay=algo.weight_decay,
        max_grad_norm=algo.grad_clip,
        num_train_epochs=trainer.total_epochs,
        max_steps=max_steps if max_steps is not None else -1,
        per_device_train_batch_size=layout.per_device_train_batch_size,
        gradient_accumulation_steps=layout.gradient_accumulation_steps,
        generation_batch_size=layout.generation_batch_size,
        num_iterations=algo.ppo_epochs,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        # GRPO loss
        loss_type=TRL_LOSS_TYPES[algo.loss_agg_mode],
        epsilon=algo.clip_ratio_low,
        epsilon_high=algo.clip_ratio_high,
        beta=algo.kl_loss_coef if algo.use_kl_loss else 0.0,
        scale_rewards="group" if algo.norm_adv_by_std_in_grpo else "none",
        entropy_coef=algo.entropy_coeff,
        # Rollout
        num_generations=rollout.n,
        max_completion_length=rollout.max_response_length,
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        top_k=max(rollout.top_k, 0),
        use_vllm=use_vllm,
        # Data: keep ground_truth / data_source / extra_info for the reward function.
        remove_unused_columns=False,
        shuffle_dataset=cfg.data.shuffle,
        dataloader_num_workers=cfg.data.dataloader_num_workers,
        # Logging and checkpoints
        logging_steps=1,
        report_to=_report_to(cfg),
        save_strategy="steps" if save else "no",
        save_steps=trainer.save_freq * k if save else 500,
        save_total_limit=trainer.max_actor_ckpt_to_keep,
        use_cpu=device == "cpu",
        bf16=bf16,
        fp16=fp16,
        disable_tqdm=True,
    )
    if use_vllm:
        kwargs.update(
            vllm_mode="colocate",
            vllm_gpu_memory_utilization=rollout.gpu_memory_utilization,
            vllm_tensor_parallel_size=rollout.tensor_model_parallel_size,
            vllm_enable_sleep_mode=cfg.model.param_offload,
        )
    if "tensorboard" in kwargs["report_to"]:
        kwargs["logging_dir"] = str(out / "tensorboard")
    if "wandb" in kwargs["report_to"]:
        os.environ.setdefault("WANDB_PROJECT", trainer.project_name)
    try:
        args = GRPOConfig(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"TRL rejected the mapped config: {exc}") from exc
    return args, notes
