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

from vlmrl.data.images import (
    QWEN_MAX_PIXELS,
    QWEN_MIN_PIXELS,
    VisionSettings,
    family_vision_defaults,
    image_size,
    vision_settings,
)
from vlmrl.data.normalize import answer_list
from vlmrl.data.prompt import count_placeholders, load_processor, prompt_text_tokens
from vlmrl.data.rows import open_parquet
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
    #: How vision tokens were counted (pixel bounds, patch, merge) and from what.
    vision: VisionSettings | None = None
    vision_source: str = ""

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
    pf = open_parquet(p)  # the footer checked against the row contract; rows are read raw below
    processor, tok = load_processor(tokenizer) if tokenizer else (None, None)
    # Without a processor: the bounds `vlmrl data build` resizes into, at the patch and merge sizes of
    # the family the name says (Qwen2.5-VL's when it says none).
    from vlmrl.tiny import family_from_name, local_model_type

    family = (local_model_type(tokenizer) or family_from_name(tokenizer)) if tokenizer else None
    fallback = family_vision_defaults(family)
    vision = vision_settings(
        processor, VisionSettings(QWEN_MIN_PIXELS, QWEN_MAX_PIXELS, fallback.patch, fallback.merge)
    )
    if processor is not None and getattr(processor, "image_processor", None) is not None:
        source = f"{type(processor).__name__} of {tokenizer}"
    else:
        source = f"no processor; {family or 'qwen2_5_vl'} patch size, data build's pixel bounds"
    info = Inspection(
        path=str(p),
        has_images_column="images" in pf.schema_arrow.names,
        vision=vision,
        vision_source=source,
    )
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            info.rows += 1
            info.by_source[row["data_source"]] += 1
            extra = row.get("extra_info") or {}
            info.answer_types[extra.get("answer_type") or "?"] += 1
            try:
                ground_truth = answer_list(
                    (row.get("reward_model") or {}).get("ground_truth"),
                    f"{p} row {info.rows - 1}: reward_model.ground_truth",
                )
            except TypeError as exc:
                raise UserError(str(exc)) from None
            info.multi_answer_rows += len(ground_truth) > 1
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
                n = vision.tokens(w, h)
                row_vision += n
                if blank:
                    info.blank_images += 1
                    info.blank_vision_tokens.append(n)
                else:
                    info.image_widths.append(w)
                    info.image_heights.append(h)
                    info.vision_tokens.append(n)
            if tok is not None:
                info.prompt_tokens.append(prompt_text_tokens(tok, row["prompt"]) + row_vision)
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
