"""`vlmrl data inspect`: what is in one of our parquet files, to check it before training.

Counts by source and answer type, image sizes and vision tokens (blank images apart), prompt-token
percentiles with an optional tokenizer, and a few rows rendered as the model will read them.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from vlmrl.data.images import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, image_size, vision_tokens
from vlmrl.data.prompt import count_placeholders, strip_placeholders
from vlmrl.errors import UserError


@dataclass
class Inspection:
    path: str
    rows: int = 0
    by_source: Counter = field(default_factory=Counter)
    answer_types: Counter = field(default_factory=Counter)
    images_per_row: Counter = field(default_factory=Counter)
    multi_answer_rows: int = 0
    image_widths: list[int] = field(default_factory=list)
    image_heights: list[int] = field(default_factory=list)
    vision_tokens: list[int] = field(default_factory=list)
    blank_images: int = 0
    blank_vision_tokens: list[int] = field(default_factory=list)
    undecodable_images: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    has_images_column: bool = False

    @staticmethod
    def percentiles(values: list[int]) -> dict[str, float]:
        if not values:
            return {}
        arr = np.asarray(values)
        return {
            "min": float(arr.min()),
            "p50": float(np.percentile(arr, 50)),
            "p90": float(np.percentile(arr, 90)),
            "p99": float(np.percentile(arr, 99)),
            "max": float(arr.max()),
        }


def _pixel_bounds(processor: Any) -> tuple[int, int]:
    ip = getattr(processor, "image_processor", None)
    if ip is None:
        return QWEN_MIN_PIXELS, QWEN_MAX_PIXELS
    lo = getattr(ip, "min_pixels", None) or (getattr(ip, "size", None) or {}).get("shortest_edge")
    hi = getattr(ip, "max_pixels", None) or (getattr(ip, "size", None) or {}).get("longest_edge")
    return int(lo or QWEN_MIN_PIXELS), int(hi or QWEN_MAX_PIXELS)


def _load_processor(name: str) -> tuple[Any, Any]:
    from transformers import AutoProcessor, AutoTokenizer

    try:
        processor = AutoProcessor.from_pretrained(name)
    except Exception:
        processor = None
    try:
        tokenizer = getattr(processor, "tokenizer", None) or AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise UserError(f"tokenizer {name!r} cannot be loaded ({exc}); give a local model directory") from exc
    return processor, tokenizer


def _size_or_none(image: Any) -> tuple[int, int] | None:
    try:
        return image_size(image["bytes"])
    except Exception:
        return None


def inspect_parquet(
    path: str | os.PathLike[str], tokenizer: str | None = None, samples: int = 3
) -> Inspection:
    """Read the whole file in batches (flat memory) and describe it; `tokenizer` adds prompt tokens.

    Vision tokens use the tokenizer's processor pixel bounds when it has one, else Qwen2.5-VL's defaults.
    A blank image is one a text row got under the `blank` policy (its question has no `<image>`).
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    try:
        pf = pq.ParquetFile(p)
    except Exception as exc:
        raise UserError(f"{p}: cannot read as parquet ({exc})") from exc
    for col in ("data_source", "prompt", "reward_model"):
        if col not in pf.schema_arrow.names:
            raise UserError(f"{p}: missing column {col!r}; is it a file from `vlmrl data build`?")
    processor, tok = _load_processor(tokenizer) if tokenizer else (None, None)
    min_pixels, max_pixels = _pixel_bounds(processor)
    info = Inspection(path=str(p), has_images_column="images" in pf.schema_arrow.names)
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            info.rows += 1
            info.by_source[row["data_source"]] += 1
            extra = row.get("extra_info") or {}
            info.answer_types[extra.get("answer_type") or "?"] += 1
            ground_truth = (row.get("reward_model") or {}).get("ground_truth") or []
            info.multi_answer_rows += isinstance(ground_truth, list) and len(ground_truth) > 1
            images = row.get("images") or []
            info.images_per_row[len(images)] += 1
            blank = bool(images) and count_placeholders(extra.get("question") or "") == 0
            row_vision = 0
            for img in images:
                try:
                    w, h = image_size(img["bytes"])
                except Exception:
                    info.undecodable_images += 1
                    continue
                n = vision_tokens(w, h, min_pixels, max_pixels)
                row_vision += n + 2
                if blank:
                    info.blank_images += 1
                    info.blank_vision_tokens.append(n)
                else:
                    info.image_widths.append(w)
                    info.image_heights.append(h)
                    info.vision_tokens.append(n)
            if tok is not None:
                text = strip_placeholders("".join(m["content"] for m in row["prompt"]))
                ids = tok.apply_chat_template(
                    [{"role": "user", "content": text}], tokenize=True, add_generation_prompt=True
                )
                if hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                info.prompt_tokens.append(len(ids) + row_vision)
            if len(info.samples) < samples:
                info.samples.append(
                    {
                        "data_source": row["data_source"],
                        "prompt": row["prompt"],
                        "images": [_size_or_none(i) for i in images[:4]],
                        "ground_truth": ground_truth,
                        "answer_type": extra.get("answer_type"),
                    }
                )
    return info
