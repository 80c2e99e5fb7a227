"""The TRL backend of `vlmrl train`: GRPO on one machine (a GPU box, or a CPU with the tiny model).

`run` trains and returns a `TrainSummary`; the pieces mirror veRL's side: `trl_config` (config
mapping), `rewards`, `loaders`, `trainer` (the patched GRPOTrainer).
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
from vlmrl.train.trl.config import build_grpo_config
from vlmrl.train.trl.loaders import (
    filter_overlong,
    find_resume_checkpoint,
    load_model,
    load_processor,
    load_train_dataset,
    lora_config,
)
from vlmrl.train.trl.rewards import RewardFunc, default_reward_funcs
from vlmrl.train.trl.trainer import MetricsJsonlCallback, grpo_trainer_class, progress_callback

logger = logging.getLogger(__name__)


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
        cbs.append(progress_callback(progress))

    trainer = grpo_trainer_class()(
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
