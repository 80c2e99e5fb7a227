"""veRL rows from examples: the parquet schema of docs/contracts.md and the row builder.

One explicit arrow schema, so every chunk of a file has the same types (empty lists, nulls included).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from vlmrl.data.example import Example
from vlmrl.data.prompt import DEFAULT_INSTRUCTION, IMAGE_PLACEHOLDER, build_prompt

ABILITY = "math"

_PROMPT = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_IMAGES = pa.list_(pa.struct([("bytes", pa.binary())]))
_REWARD_MODEL = pa.struct([("style", pa.string()), ("ground_truth", pa.list_(pa.string()))])
_EXTRA_INFO = pa.struct(
    [
        ("index", pa.int64()),
        ("split", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("answer_type", pa.string()),
        ("choices", pa.list_(pa.string())),
        ("source_id", pa.string()),
        ("source_meta", pa.string()),
    ]
)
# Where each published copy keeps its record id (AIME `id`, MATH-500 `unique_id`, GPQA `Record ID`).
_SOURCE_ID_KEYS = ("id", "unique_id", "record_id", "original_index")


def source_fields(example: Example) -> dict[str, str]:
    """`extra_info.source_id` (the record's id in its published copy, '' when it has none) and
    `source_meta` (its other published fields, e.g. AIME's `url` and `year`, as a JSON object)."""
    meta = example.meta
    key = next((k for k in _SOURCE_ID_KEYS if meta.get(k) not in (None, "")), None)
    return {
        "source_id": "" if key is None else str(meta[key]),
        "source_meta": json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str),
    }


def row_schema(with_images: bool) -> pa.Schema:
    """Arrow schema of our parquet files; text-only files have no `images` column."""
    fields = [("data_source", pa.string()), ("prompt", _PROMPT)]
    if with_images:
        fields.append(("images", _IMAGES))
    fields += [("ability", pa.string()), ("reward_model", _REWARD_MODEL), ("extra_info", _EXTRA_INFO)]
    return pa.schema(fields)


def example_to_row(
    example: Example,
    images: list[bytes] | None = None,
    instruction: str | None = DEFAULT_INSTRUCTION,
    blank_image: bytes | None = None,
    with_images: bool | None = None,
) -> dict[str, Any]:
    """One veRL row. `images` overrides the example's (e.g. prepared bytes).

    `blank_image` given and the example has no image: the row gets that image and an `<image>`
    in front of the question (the `blank` mixing policy); `extra_info.question` stays the original.
    `with_images` False drops the `images` key (text-only files); None keeps it when there are images.
    """
    image_list = list(example.images if images is None else images)
    question = example.question
    if blank_image is not None and not image_list:
        image_list = [blank_image]
        question = f"{IMAGE_PLACEHOLDER}\n{question}"
    row: dict[str, Any] = {
        "data_source": example.source,
        "prompt": build_prompt(question, instruction),
    }
    if with_images or (with_images is None and image_list):
        row["images"] = [{"bytes": b} for b in image_list]
    row["ability"] = ABILITY
    row["reward_model"] = {"style": "rule", "ground_truth": list(example.answers)}
    row["extra_info"] = {
        "index": int(example.index),
        "split": example.split,
        "question": example.question,
        "answer": example.answer,
        "answer_type": example.answer_type,
        "choices": list(example.choices),
        **source_fields(example),
    }
    return row
