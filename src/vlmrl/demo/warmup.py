"""Warm-up for the demo: supervised steps so the random tiny model writes `<think>/<answer>` and partly solves.

A randomly initialised model never passes the reward's format gate, so every GRPO group would score
alike and carry no signal; after the warm-up, answers vary in correctness and GRPO has something to learn.
The answer's tokens can weigh more than the format's (`answer_weight`): the format is learned in a few
steps, and under a plain token mean the one-token answer gets a small share of every step's gradient.
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


def _answer_span(response: str) -> tuple[int, int]:
    """Character span of the final answer inside `<answer>...</answer>` (empty when there is none)."""
    start = response.rfind("<answer>")
    end = response.find("</answer>", start)
    if start < 0 or end < 0:
        return 0, 0
    return start + len("<answer>"), end


def encode_batch(
    processor, rows: Sequence[dict[str, Any]], responses: Sequence[str], answer_weight: float = 1.0
) -> dict[str, Any]:
    """A right-padded batch of prompt + response + end of turn; labels cover only the responses.

    With `answer_weight` != 1 the batch also holds `loss_weights` (one per token): the tokens of the
    answer inside `<answer>...</answer>` weigh `answer_weight`, every other response token 1.
    """
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
    if answer_weight != 1.0:
        enc["loss_weights"] = _answer_weights(
            processor, enc["input_ids"], prompt_lens, responses, answer_weight
        )
    return dict(enc)


def _answer_weights(
    processor, input_ids, prompt_lens: Sequence[int], responses: Sequence[str], weight: float
):
    import torch

    weights = torch.ones(input_ids.shape, dtype=torch.float32)
    for i, (n, response) in enumerate(zip(prompt_lens, responses, strict=True)):
        enc = processor.tokenizer(
            response + "<|im_end|>", add_special_tokens=False, return_offsets_mapping=True
        )
        ids = enc["input_ids"]
        if input_ids[i, n : n + len(ids)].tolist() != ids:
            raise ValueError(
                f"warm-up row {i}: the response tokenizes differently after its prompt, so its answer "
                "tokens cannot be found; use answer_weight=1"
            )
        lo, hi = _answer_span(response)
        for j, (a, b) in enumerate(enc["offset_mapping"]):
            if a < hi and b > lo:
                weights[i, n + j] = weight
    return weights


def weighted_loss(logits, labels, loss_weights):
    """Next-token cross-entropy over the labelled tokens, each weighted by `loss_weights`."""
    import torch

    logits, labels, loss_weights = logits[:, :-1], labels[:, 1:], loss_weights[:, 1:]
    ce = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(labels.shape)
    w = loss_weights * (labels != -100)
    return (ce * w).sum() / w.sum().clamp_min(1e-8)


def warm_up(
    model_path: str | os.PathLike[str],
    rows: Sequence[dict[str, Any]],
    responses: Sequence[str],
    output_dir: str | os.PathLike[str],
    steps: int = 60,
    lr: float = 3e-3,
    seed: int = 0,
    batch_size: int = 8,
    answer_weight: float = 1.0,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Path, list[float]]:
    """Fine-tune `model_path` on (TRL-format row, response) pairs; saves to `output_dir`, returns losses.

    `answer_weight`: how much more the answer's tokens weigh in the loss than the format's (1 = plain
    token mean). The format is a dozen tokens the model learns in a few steps; the answer is one or two,
    so under a plain mean it gets a small share of every step's gradient.
    """
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
        batch = encode_batch(
            processor, [rows[i] for i in picked], [responses[i] for i in picked], answer_weight
        )
        optimiser.zero_grad()
        weights = batch.pop("loss_weights", None)
        if weights is None:
            loss = model(**batch).loss
        else:
            labels = batch.pop("labels")
            loss = weighted_loss(model(**batch).logits, labels, weights)
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
