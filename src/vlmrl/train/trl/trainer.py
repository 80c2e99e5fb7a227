"""TRL's GRPOTrainer as the TRL backend runs it: patched for batches mixing text and image rows, and its
callbacks (one `metrics.jsonl` row per optimizer step; each step's logs to a progress display).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from vlmrl.train.metrics import append_jsonl, contract_row, is_step_log, truncate_after


def grpo_trainer_class():
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


def progress_callback(progress: Callable[[int, int, dict[str, Any]], None]):
    """A TRL callback that hands each step's logs to `progress(step, total, logs)`."""

    class ProgressCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if is_step_log(logs):
                progress(state.global_step, state.max_steps, dict(logs))

    return ProgressCallback()


class MetricsJsonlCallback(TrainerCallback):
    """Writes one `metrics.jsonl` row per optimizer step from TRL's per-step logs."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._last_step_end: float | None = None
        self._step_time: float | None = None
        self.rows_written = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Resumed runs redo the steps after their checkpoint; their old rows would be duplicates.
        truncate_after(self.path, state.global_step)
        self._last_step_end = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self._last_step_end is not None:
            self._step_time = now - self._last_step_end
        self._last_step_end = now

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not is_step_log(logs):
            return
        if not state.is_world_process_zero:
            return
        append_jsonl(self.path, contract_row(state.global_step, logs, self._step_time))
        self.rows_written += 1
