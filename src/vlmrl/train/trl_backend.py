"""The TRL backend of `vlmrl train`: GRPO on one machine (a GPU box, or a CPU with the tiny model).

Maps the experiment config onto TRL's `GRPOConfig` / `GRPOTrainer`, logs `metrics.jsonl`, checkpoints, resumes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.train.config import ConfigError, ExperimentConfig

logger = logging.getLogger(__name__)

# veRL's loss aggregation -> TRL's loss_type with the same normalisation.
LOSS_TYPES = {
    "token-mean": "dapo",  # sum over all tokens of the batch / number of tokens
    "seq-mean-token-mean": "grpo",  # per-sequence token mean, then mean over sequences
    "seq-mean-token-sum-norm": "dr_grpo",  # token sum / a constant (max_completion_length)
}

RewardFunc = Callable[..., list[float | None]]


@dataclass
class BatchLayout:
    """How our prompt batches become TRL's completion batches (all counts in completions)."""

    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    generation_batch_size: int
    optimizer_steps_per_training_step: int


@dataclass
class TrainSummary:
    """What a TRL run produced; `vlmrl train` and `vlmrl demo` print it."""

    output_dir: Path
    metrics_path: Path
    final_model_dir: Path
    global_step: int
    device: str
    train_runtime_s: float
    resumed_from: str | None = None
    checkpoints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "metrics_path": str(self.metrics_path),
            "final_model_dir": str(self.final_model_dir),
            "global_step": self.global_step,
            "device": self.device,
            "train_runtime_s": round(self.train_runtime_s, 2),
            "resumed_from": self.resumed_from,
            "checkpoints": self.checkpoints,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------
# Config mapping


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
    if n < 2:
        raise ConfigError(f"rollout.n={n}: GRPO needs at least 2 responses per prompt to form a group")
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

    notes: list[str] = []
    algo, rollout, trainer = cfg.algorithm, cfg.rollout, cfg.trainer
    if algo.adv_estimator != "grpo":
        raise ConfigError(
            f"algorithm.adv_estimator={algo.adv_estimator!r}: the TRL backend trains GRPO only; "
            "set algorithm.adv_estimator=grpo or use backend=verl"
        )
    if algo.loss_agg_mode not in LOSS_TYPES:
        raise ConfigError(
            f"algorithm.loss_agg_mode={algo.loss_agg_mode!r} has no TRL equivalent; use one of "
            f"{', '.join(LOSS_TYPES)} with backend=trl"
        )
    if algo.use_kl_in_reward:
        raise ConfigError(
            "algorithm.use_kl_in_reward=true: TRL has no KL-in-reward; use algorithm.use_kl_loss=true instead"
        )
    if algo.use_kl_loss and algo.kl_loss_type != "low_var_kl":
        notes.append(
            f"algorithm.kl_loss_type={algo.kl_loss_type}: TRL always uses the k3 (low_var_kl) estimator"
        )
    if algo.filter_groups.enable:
        notes.append(
            "algorithm.filter_groups (dynamic sampling) is veRL-only; TRL keeps all groups "
            "(groups with equal scores get zero advantage)"
        )
    if algo.clip_ratio_c != 10.0:
        notes.append("algorithm.clip_ratio_c: TRL has no dual-clip; ignored")
    if algo.use_dynamic_bsz:
        notes.append("algorithm.use_dynamic_bsz: TRL batches by sample count; ignored")

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
    elif rollout.engine == "sglang":
        notes.append("rollout.engine=sglang is veRL-only; TRL generates with transformers")

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
        loss_type=LOSS_TYPES[algo.loss_agg_mode],
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


# ---------------------------------------------------------------------------
# Rewards


def overlong_penalty(max_response_length: int, buffer_len: int, penalty_factor: float) -> RewardFunc:
    """DAPO's soft overlong punishment as a TRL reward function (added to the task reward).

    0 up to `max_response_length - buffer_len` tokens, then a linear ramp down to `-penalty_factor`
    at the limit; the same rule veRL's `dapo` reward manager applies.
    """
    expected = max_response_length - buffer_len

    def overlong_penalty(completion_ids: list[list[int]], **_: Any) -> list[float]:
        out = []
        for ids in completion_ids:
            exceed = len(ids) - expected
            out.append(min(-exceed / buffer_len * penalty_factor, 0.0) if buffer_len > 0 else 0.0)
        return out

    return overlong_penalty


def default_reward_funcs(cfg: ExperimentConfig) -> list[RewardFunc]:
    """Our math reward through the TRL adapter, plus DAPO's overlong penalty when configured."""
    try:
        from vlmrl.reward.trl_adapter import make_trl_reward
    except ImportError as exc:  # pragma: no cover - only before the reward stage is installed
        raise UserError(f"the TRL backend needs vlmrl.reward.trl_adapter ({exc})") from exc
    funcs: list[RewardFunc] = [make_trl_reward(**cfg.reward.reward_kwargs())]
    ov = cfg.reward.overlong
    if ov.enable and cfg.reward.manager == "dapo":
        funcs.append(overlong_penalty(cfg.rollout.max_response_length, ov.len, ov.penalty_factor))
    return funcs


# ---------------------------------------------------------------------------
# Model, processor, data


def load_processor(cfg: ExperimentConfig):
    from transformers import AutoProcessor

    kwargs: dict[str, Any] = {"trust_remote_code": cfg.model.trust_remote_code}
    if cfg.data.min_pixels is not None:
        kwargs["min_pixels"] = cfg.data.min_pixels
    if cfg.data.max_pixels is not None:
        kwargs["max_pixels"] = cfg.data.max_pixels
    try:
        processor = AutoProcessor.from_pretrained(cfg.model.path, **kwargs)
    except OSError as exc:
        raise UserError(f"model.path={cfg.model.path!r}: cannot load its processor ({exc})") from exc
    # Generation pads on the left so every prompt ends where its completion starts.
    processor.tokenizer.padding_side = "left"
    return processor


def load_model(cfg: ExperimentConfig, device: str):
    import torch
    from transformers import AutoModelForImageTextToText

    dtype = torch.float32 if device == "cpu" else getattr(torch, cfg.model.dtype)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            cfg.model.path, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code
        )
    except OSError as exc:
        raise UserError(f"model.path={cfg.model.path!r}: cannot load the model ({exc})") from exc
    if cfg.model.freeze_vision_tower:
        visual = getattr(model, "visual", None) or getattr(getattr(model, "model", None), "visual", None)
        if visual is None:
            raise ConfigError(f"model.freeze_vision_tower=true but {cfg.model.path} has no vision tower")
        for p in visual.parameters():
            p.requires_grad_(False)
    return model


def lora_config(cfg: ExperimentConfig):
    """A peft `LoraConfig` when `model.lora_rank > 0`, else None."""
    if cfg.model.lora_rank <= 0:
        return None
    try:
        from peft import LoraConfig
    except ImportError as exc:
        raise UserError("model.lora_rank > 0 needs the `peft` package: pip install peft") from exc
    return LoraConfig(
        r=cfg.model.lora_rank,
        lora_alpha=cfg.model.lora_alpha,
        target_modules=cfg.model.lora_target_modules,
        task_type="CAUSAL_LM",
    )


def load_train_dataset(cfg: ExperimentConfig):
    """The training parquet files as a TRL dataset (conversational prompt + images + reward columns)."""
    if not cfg.data.train_files:
        raise ConfigError("data.train_files is empty: give the parquet files from `vlmrl data build`")
    missing = [f for f in cfg.data.train_files if not Path(f).is_file()]
    if missing:
        raise ConfigError(f"data.train_files: file(s) not found: {', '.join(missing)}")
    from vlmrl.data.trl_view import to_trl_dataset

    return to_trl_dataset(cfg.data.train_files)


def prompt_length(processor, row: dict[str, Any]) -> int:
    """Prompt tokens of one TRL row, vision tokens included, as the policy will see it."""
    text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    images = row.get("images") or None
    enc = processor(text=[text], images=images)
    return len(enc["input_ids"][0])


def filter_overlong(dataset, processor, max_prompt_length: int):
    """Drop rows whose prompt exceeds `max_prompt_length` tokens; returns (dataset, rejected indices)."""
    lengths = [prompt_length(processor, dataset[i]) for i in range(len(dataset))]
    rejected = [i for i, n in enumerate(lengths) if n > max_prompt_length]
    if rejected:
        keep = [i for i, n in enumerate(lengths) if n <= max_prompt_length]
        dataset = dataset.select(keep)
    return dataset, rejected


def find_resume_checkpoint(cfg: ExperimentConfig, output_dir: Path) -> str | None:
    """The checkpoint to resume from per `trainer.resume_mode`, or None for a fresh start."""
    from transformers.trainer_utils import get_last_checkpoint

    mode = cfg.trainer.resume_mode
    if mode == "disable":
        return None
    if mode == "resume_path":
        path = cfg.trainer.resume_from_path
        if not path or not Path(path).is_dir():
            raise ConfigError(
                f"trainer.resume_mode=resume_path but trainer.resume_from_path={path!r} is not a directory"
            )
        return str(path)
    if output_dir.is_dir():
        return get_last_checkpoint(str(output_dir))
    return None


# ---------------------------------------------------------------------------
# Run


def _grpo_trainer_class():
    """TRL's GRPOTrainer, fixed so text-only and image rows mix in one batch without blank images.

    Two gaps in TRL 1.16 with transformers 5.x: (1) `_tokenize_prompts` marks a text-only prompt's
    images as None, which the processor call building the forward pass rejects inside a list of image
    lists (`[]` is accepted); (2) a forward chunk holding only text rows still gets an empty
    `pixel_values`, and Qwen2.5-VL's vision tower fails on zero images. Chunks without images are
    run as plain text forwards instead.
    """
    from trl import GRPOTrainer

    class MixedBatchGRPOTrainer(GRPOTrainer):
        def _generate(self, prompts):
            out = list(super()._generate(prompts))
            images = out[6]
            if images is not None:
                out[6] = [image_list if image_list is not None else [] for image_list in images]
            return tuple(out)

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, **kw):
            import torch

            pixel_values, grid, num_images = (
                kw.get("pixel_values"),
                kw.get("image_grid_thw"),
                kw.get("num_images"),
            )
            plain = super()._get_per_token_logps_and_entropies
            if pixel_values is None or grid is None or num_images is None or all(n > 0 for n in num_images):
                return plain(model, input_ids, attention_mask, logits_to_keep, **kw)
            n_rows = input_ids.size(0)
            chunk = kw.pop("batch_size", None) or n_rows
            rows_per_image = grid.prod(dim=-1).tolist()
            logps, entropies, aux = [], [], []
            image_at, row_at = 0, 0
            for start in range(0, n_rows, chunk):
                end = min(start + chunk, n_rows)
                n_img = sum(num_images[start:end])
                n_pix = int(sum(rows_per_image[image_at : image_at + n_img]))
                part = dict(kw)
                for key in ("token_type_ids", "mm_token_type_ids"):
                    if part.get(key) is not None:
                        part[key] = part[key][start:end]
                if n_img:
                    part.update(
                        pixel_values=pixel_values[row_at : row_at + n_pix],
                        image_grid_thw=grid[image_at : image_at + n_img],
                        num_images=list(num_images[start:end]),
                    )
                else:
                    part.update(pixel_values=None, image_grid_thw=None, num_images=None)
                lp, ent, ax = plain(
                    model,
                    input_ids[start:end],
                    attention_mask[start:end],
                    logits_to_keep,
                    batch_size=end - start,
                    **part,
                )
                logps.append(lp)
                if ent is not None:
                    entropies.append(ent)
                if ax is not None:
                    aux.append(ax)
                image_at += n_img
                row_at += n_pix
            return (
                torch.cat(logps, dim=0),
                torch.cat(entropies, dim=0) if entropies else None,
                torch.stack(aux).mean() if aux else None,
            )

    return MixedBatchGRPOTrainer


def _progress_callback(progress: Callable[[int, int, dict[str, Any]], None]):
    """A TRL callback that hands each step's logs to `progress(step, total, logs)`."""
    from transformers import TrainerCallback

    from vlmrl.train.metrics import is_step_log

    class ProgressCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if is_step_log(logs):
                progress(state.global_step, state.max_steps, dict(logs))

    return ProgressCallback()


def run(
    cfg: ExperimentConfig,
    *,
    train_dataset=None,
    reward_funcs: Sequence[RewardFunc] | None = None,
    max_steps: int | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainSummary:
    """Train `cfg` with TRL's GRPOTrainer; returns where the metrics, checkpoints and final model went.

    `train_dataset` (a TRL-format `datasets.Dataset`) and `reward_funcs` replace the parquet files and
    our reward when given; `max_steps` counts optimizer steps and overrides the config's length.
    """
    if cfg.backend != "trl":
        raise ConfigError(f"backend={cfg.backend!r}: trl_backend.run needs backend=trl")
    from transformers import set_seed

    from vlmrl.train.config import dump_config
    from vlmrl.train.metrics import MetricsJsonlCallback
    from vlmrl.utils.io import write_text_atomic

    args, notes = build_grpo_config(cfg, output_dir=output_dir, max_steps=max_steps)
    # Without a caller's progress display, TRL's own bar shows the run (`vlmrl train`).
    args.disable_tqdm = progress is not None
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.use_cpu else "cuda"
    set_seed(cfg.trainer.seed)

    processor = load_processor(cfg)
    if train_dataset is None:
        train_dataset = load_train_dataset(cfg)
    if len(train_dataset) == 0:
        raise UserError("the training dataset has no rows")
    if cfg.data.filter_overlong_prompts:
        train_dataset, rejected = filter_overlong(train_dataset, processor, cfg.data.max_prompt_length)
        if rejected:
            notes.append(
                f"dropped {len(rejected)} training prompt(s) longer than data.max_prompt_length="
                f"{cfg.data.max_prompt_length} tokens (rows {rejected[:10]}{'...' if len(rejected) > 10 else ''})"
            )
        if len(train_dataset) == 0:
            raise UserError(
                f"every training prompt is longer than data.max_prompt_length={cfg.data.max_prompt_length}"
            )
    if reward_funcs is None:
        reward_funcs = default_reward_funcs(cfg)

    model = load_model(cfg, device)
    resume = find_resume_checkpoint(cfg, out)
    metrics_path = out / "metrics.jsonl"
    if resume is None and metrics_path.exists():
        # A fresh start owns the log; rows of an earlier run would mix into its curves.
        metrics_path.unlink()
    cbs: list[Any] = [MetricsJsonlCallback(metrics_path), *callbacks]
    if progress is not None:
        cbs.append(_progress_callback(progress))

    trainer = _grpo_trainer_class()(
        model=model,
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=lora_config(cfg),
        callbacks=cbs,
    )
    if progress is not None:
        from transformers.trainer_callback import PrinterCallback

        # The caller shows progress; TRL's printer would write every step's raw log dict through it.
        trainer.remove_callback(PrinterCallback)
    for note in notes:
        logger.warning(note)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    runtime = time.perf_counter() - t0

    final_dir = out / "final"
    trainer.save_model(str(final_dir))
    processor.save_pretrained(str(final_dir))
    write_text_atomic(out / "config.yaml", dump_config(cfg))
    checkpoints = sorted(
        (str(p) for p in out.glob("checkpoint-*") if p.is_dir()), key=lambda s: int(s.rsplit("-", 1)[1])
    )
    return TrainSummary(
        output_dir=out,
        metrics_path=metrics_path,
        final_model_dir=final_dir,
        global_step=trainer.state.global_step,
        device=device,
        train_runtime_s=runtime,
        resumed_from=resume,
        checkpoints=checkpoints,
        notes=notes,
    )
