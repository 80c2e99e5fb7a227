"""Format warm-up for the demo: a few supervised steps so the random tiny model writes `<think>/<answer>`.

A randomly initialised model never passes the reward's format gate, so every GRPO group would score
alike and carry no signal; after the warm-up, answers vary in correctness and GRPO has something to learn.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _images(row: dict[str, Any]) -> list:
    from PIL import Image

    out = []
    for image in row.get("images") or []:
        if isinstance(image, dict):  # {"bytes": ...} as stored in parquet
            image = Image.open(io.BytesIO(image["bytes"])).convert("RGB")
        out.append(image)
    return out


def encode_batch(processor, rows: Sequence[dict[str, Any]], responses: Sequence[str]) -> dict[str, Any]:
    """A right-padded batch of prompt + response + end of turn; labels cover only the responses."""
    prompts = [
        processor.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in rows
    ]
    fulls = [p + resp + "<|im_end|>" for p, resp in zip(prompts, responses, strict=True)]
    images = [_images(r) for r in rows]
    flat = [im for ims in images for im in ims] or None
    prompt_lens = [
        len(processor(text=[p], images=ims or None)["input_ids"][0])
        for p, ims in zip(prompts, images, strict=True)
    ]
    processor.tokenizer.padding_side = "right"
    try:
        enc = processor(text=fulls, images=flat, padding=True, return_tensors="pt")
    finally:
        processor.tokenizer.padding_side = "left"
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    for i, n in enumerate(prompt_lens):
        labels[i, :n] = -100
    enc["labels"] = labels
    return dict(enc)


def warm_up(
    model_path: str | os.PathLike[str],
    rows: Sequence[dict[str, Any]],
    responses: Sequence[str],
    output_dir: str | os.PathLike[str],
    steps: int = 60,
    lr: float = 3e-3,
    seed: int = 0,
    batch_size: int = 8,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Path, list[float]]:
    """Fine-tune `model_path` on (TRL-format row, response) pairs; saves to `output_dir`, returns losses."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if len(rows) != len(responses) or not rows:
        raise ValueError(
            f"warm_up needs one response per row, got {len(rows)} rows, {len(responses)} responses"
        )
    torch.manual_seed(seed)
    rng = random.Random(seed)
    processor = AutoProcessor.from_pretrained(model_path)
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    order: list[int] = []
    losses = []
    for step in range(steps):
        if len(order) < batch_size:
            order = list(range(len(rows)))
            rng.shuffle(order)
        picked = [order.pop() for _ in range(min(batch_size, len(order)))]
        batch = encode_batch(processor, [rows[i] for i in picked], [responses[i] for i in picked])
        optimiser.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    out = Path(output_dir)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out, losses
