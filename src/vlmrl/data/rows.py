"""The row format of docs/contracts.md, in one place: its schema, one reader and checker, and the views
each engine reads (veRL's parquet rows, TRL's dataset records and Features, evaluation's problems).

One explicit arrow schema, so every chunk of a file has the same types (empty lists, nulls included).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from vlmrl.data.example import Example
from vlmrl.data.normalize import answer_list
from vlmrl.data.prompt import (
    DEFAULT_INSTRUCTION,
    IMAGE_PLACEHOLDER,
    build_prompt,
    count_placeholders,
    placeholder_mismatch,
    split_on_images,
)
from vlmrl.errors import UserError

ABILITY = "math"
REBUILD_HINT = "see docs/contracts.md (rows) or rebuild with `vlmrl data build`"

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
EXTRA_INFO_KEYS = tuple(f.name for f in _EXTRA_INFO)
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


@dataclass
class Row:
    """One row, decoded and checked: every engine's view is made from this.

    `prompt` holds chat messages whose string content keeps one `<image>` per entry of `images`
    (encoded image files); `ground_truth` is every acceptable answer.
    """

    data_source: str
    prompt: list[dict[str, str]]
    images: list[bytes]
    ground_truth: list[str]
    extra_info: dict[str, Any]

    def check(self, where: str) -> Row:
        """Raise a `UserError` naming `where` when the row breaks the contract; return the row."""
        if not self.ground_truth:
            raise UserError(f"{where}: `reward_model.ground_truth` must be a non-empty list of answers")
        mismatch = placeholder_mismatch("".join(m["content"] for m in self.prompt), len(self.images))
        if mismatch:
            raise UserError(f"{where}: {mismatch}")
        return self

    def to_verl(self, with_images: bool | None = None) -> dict[str, Any]:
        """The parquet/veRL row. `with_images` False drops `images`; None keeps it when there are images."""
        row: dict[str, Any] = {"data_source": self.data_source, "prompt": self.prompt}
        if with_images or (with_images is None and self.images):
            row["images"] = [{"bytes": b} for b in self.images]
        row["ability"] = ABILITY
        row["reward_model"] = {"style": "rule", "ground_truth": list(self.ground_truth)}
        row["extra_info"] = self.extra_info
        return row

    def to_trl(self) -> dict[str, Any]:
        """The TRL record (`trl_features()`): content parts per message; images stay encoded until read."""
        return {
            "prompt": [{"role": m["role"], "content": split_on_images(m["content"])} for m in self.prompt],
            "images": [{"bytes": b, "path": None} for b in self.images],
            "ground_truth": list(self.ground_truth),
            "data_source": self.data_source,
            "extra_info": {k: self.extra_info.get(k) for k in EXTRA_INFO_KEYS},
        }


def extra_info(example: Example) -> dict[str, Any]:
    """The `extra_info` struct of an example's row."""
    return {
        "index": int(example.index),
        "split": example.split,
        "question": example.question,
        "answer": example.answer,
        "answer_type": example.answer_type,
        "choices": list(example.choices),
        **source_fields(example),
    }


def row_from_example(
    example: Example,
    images: list[bytes] | None = None,
    instruction: str | None = DEFAULT_INSTRUCTION,
    blank_image: bytes | None = None,
) -> Row:
    """The row of one example. `images` overrides the example's (e.g. prepared bytes).

    `blank_image` given and the example has no image: the row gets that image and an `<image>`
    in front of the question (the `blank` mixing policy); `extra_info.question` stays the original.
    """
    image_list = list(example.images if images is None else images)
    question = example.question
    if blank_image is not None and not image_list:
        image_list = [blank_image]
        question = f"{IMAGE_PLACEHOLDER}\n{question}"
    return Row(
        data_source=example.source,
        prompt=build_prompt(question, instruction),
        images=image_list,
        ground_truth=list(example.answers),
        extra_info=extra_info(example),
    )


def example_to_row(
    example: Example,
    images: list[bytes] | None = None,
    instruction: str | None = DEFAULT_INSTRUCTION,
    blank_image: bytes | None = None,
    with_images: bool | None = None,
) -> dict[str, Any]:
    """One veRL row (`row_from_example(...).to_verl(with_images)`)."""
    return row_from_example(example, images, instruction, blank_image).to_verl(with_images)


# ---------------------------------------------------------------- reading and checking


def _plain(value: Any) -> Any:
    """numpy arrays / pyarrow scalars from parquet readers -> plain Python lists and dicts."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def check_row(raw: Mapping[str, Any], where: str = "row") -> Row:
    """A decoded row (from pyarrow, pandas or hand-made) checked against the contract; errors name
    `where` and the key at fault. The ground truth is read by the one rule of every door,
    `vlmrl.data.normalize.answer_list` (a string, as other tools write it, is one answer)."""
    row = _plain(dict(raw))
    prompt = row.get("prompt")
    if not isinstance(prompt, list) or not prompt or not all(isinstance(m, dict) for m in prompt):
        raise UserError(f"{where}: `prompt` must be a non-empty list of {{role, content}} messages")
    for m in prompt:
        if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise UserError(f"{where}: each prompt message needs string `role` and `content`")
    reward_model = row.get("reward_model")
    gt = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    try:
        gt = answer_list(gt, f"{where}: `reward_model.ground_truth`")
    except TypeError as exc:
        raise UserError(str(exc)) from None
    extra = row.get("extra_info") or {}
    if not isinstance(extra, dict):
        raise UserError(f"{where}: `extra_info` must be a struct/dict")
    extra.setdefault("choices", [])
    images = []
    for j, img in enumerate(row.get("images") or []):
        data = img.get("bytes") if isinstance(img, dict) else img
        if not isinstance(data, bytes | bytearray):
            raise UserError(f"{where}: images[{j}] must be {{'bytes': ...}} (encoded image file)")
        images.append(bytes(data))
    return Row(
        data_source=str(row.get("data_source") or ""),
        prompt=[{"role": m["role"], "content": m["content"]} for m in prompt],
        images=images,
        ground_truth=gt,
        extra_info=extra,
    ).check(where)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def check_schema(
    schema: pa.Schema, where: str, prompt_key: str = "prompt", image_key: str = "images"
) -> bool:
    """Check an arrow schema (a file's footer) against the row contract; returns whether it has images.

    Accepts what veRL reads too (large types, image paths as strings); errors name `where` and the column.
    """
    names = set(schema.names)

    def fail(msg: str) -> UserError:
        return UserError(f"{where}: {msg}; {REBUILD_HINT}")

    for col in ("data_source", prompt_key, "reward_model", "extra_info"):
        if col not in names:
            raise fail(f"missing column {col!r} (has {sorted(names)})")
    source_type = schema.field("data_source").type
    if not pa.types.is_string(source_type) and not pa.types.is_large_string(source_type):
        raise fail(f"column 'data_source' must be a string, is {source_type}")
    prompt_type = schema.field(prompt_key).type
    if not _is_list(prompt_type) or not pa.types.is_struct(prompt_type.value_type):
        raise fail(f"column {prompt_key!r} must be a list of {{role, content}} messages, is {prompt_type}")
    message_fields = {f.name for f in prompt_type.value_type}
    if not {"role", "content"} <= message_fields:
        raise fail(f"messages in {prompt_key!r} need 'role' and 'content', have {sorted(message_fields)}")
    rm_type = schema.field("reward_model").type
    if not pa.types.is_struct(rm_type) or rm_type.get_field_index("ground_truth") < 0:
        raise fail(f"column 'reward_model' must be a struct with 'ground_truth', is {rm_type}")
    gt_type = rm_type.field("ground_truth").type
    if not (_is_list(gt_type) or pa.types.is_string(gt_type) or pa.types.is_large_string(gt_type)):
        raise fail(
            "reward_model.ground_truth must be a list of strings (every acceptable answer) or a string "
            f"(one answer, as veRL's own preprocessors write it), is {gt_type}"
        )
    if not pa.types.is_struct(schema.field("extra_info").type):
        raise fail(f"column 'extra_info' must be a struct, is {schema.field('extra_info').type}")
    has_images = image_key in names
    if has_images:
        img_type = schema.field(image_key).type
        ok = _is_list(img_type) and (
            (pa.types.is_struct(img_type.value_type) and img_type.value_type.get_field_index("bytes") >= 0)
            or pa.types.is_string(img_type.value_type)
        )
        if not ok:
            raise fail(f"column {image_key!r} must be a list of {{bytes}} images (or paths), is {img_type}")
    return has_images


def open_parquet(path: str | os.PathLike[str], prompt_key: str = "prompt", image_key: str = "images"):
    """A `pyarrow.parquet.ParquetFile` whose footer passed `check_schema` (nothing else is read)."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such parquet file; build it with `vlmrl data build` or fix the path")
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{p}: not a readable parquet file ({exc})") from None
    check_schema(pf.schema_arrow, str(p), prompt_key, image_key)
    return pf


def check_file(
    path: str | os.PathLike[str], prompt_key: str = "prompt", image_key: str = "images"
) -> tuple[int, bool]:
    """(rows, has_image_column) of one parquet file whose footer has our schema (the rows are not read)."""
    pf = open_parquet(path, prompt_key, image_key)
    return pf.metadata.num_rows, image_key in pf.schema_arrow.names


def read_rows(path: str | os.PathLike[str], batch_size: int = 256) -> Iterator[Row]:
    """Every row of one of our parquet files, checked (errors name the file and row), in batches."""
    pf = open_parquet(path)
    n = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for raw in batch.to_pylist():
            yield check_row(raw, f"{path} row {n}")
            n += 1


def trl_features():
    """`datasets.Features` of `Row.to_trl()` records; `extra_info` follows the arrow schema above."""
    from datasets import Features, Image, List, Value

    extra = Features.from_arrow_schema(pa.schema([("extra_info", _EXTRA_INFO)]))["extra_info"]
    return Features(
        {
            "prompt": List(
                {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
            ),
            "images": List(Image()),
            "ground_truth": List(Value("string")),
            "data_source": Value("string"),
            "extra_info": extra,
        }
    )


#: The kinds of rows training metrics report apart (`modality/<kind>/...`).
MODALITIES = ("text", "image")


def row_modality(extra_info: Any, has_images: bool = False) -> str:
    """'image' for a question that shows an image, else 'text'.

    The question's own `<image>` placeholders decide (`extra_info.question` keeps the original
    question), so a text row that carries the `blank` policy's blank image is still 'text'. Rows
    without `extra_info.question` (files written by other tools) fall back to `has_images`.
    """
    question = extra_info.get("question") if isinstance(extra_info, Mapping) else None
    if isinstance(question, str) and question.strip():
        return "image" if count_placeholders(question) else "text"
    return "image" if has_images else "text"
