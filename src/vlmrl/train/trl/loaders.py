"""The TRL backend's loaders: processor, model (LoRA, frozen vision tower), training dataset with its
overlong-prompt filter, and the checkpoint to resume from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.train.config import ConfigError, ExperimentConfig


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
