"""Our veRL parquet as the dataset TRL's GRPOTrainer takes: conversational prompt with image parts.

Columns: `prompt` (content parts `{"type": "image"}` / `{"type": "text", "text": ...}` in placeholder
order), `images` (PIL images, `[]` for text rows), `ground_truth`, `data_source`, `extra_info`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from vlmrl.data.prompt import count_placeholders, split_on_images
from vlmrl.errors import UserError

REQUIRED = ("data_source", "prompt", "reward_model")


def _features():
    from datasets import Features, Image, List, Value

    return Features(
        {
            "prompt": List(
                {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
            ),
            "images": List(Image()),
            "ground_truth": List(Value("string")),
            "data_source": Value("string"),
            "extra_info": {
                "index": Value("int64"),
                "split": Value("string"),
                "question": Value("string"),
                "answer": Value("string"),
                "answer_type": Value("string"),
                "choices": List(Value("string")),
            },
        }
    )


def trl_record(row: dict[str, Any], where: str = "row") -> dict[str, Any]:
    """One TRL record from one of our veRL rows (images stay encoded; the dataset decodes them to PIL)."""
    images = [img["bytes"] if isinstance(img, dict) else img for img in (row.get("images") or [])]
    prompt = []
    n_placeholders = 0
    for message in row["prompt"]:
        content = message["content"]
        n_placeholders += count_placeholders(content)
        prompt.append({"role": message["role"], "content": split_on_images(content)})
    if n_placeholders != len(images):
        raise UserError(f"{where}: {n_placeholders} <image> placeholder(s) but {len(images)} image(s)")
    ground_truth = row["reward_model"]["ground_truth"]
    if isinstance(ground_truth, str):
        ground_truth = [ground_truth]
    extra = dict(row.get("extra_info") or {})
    extra.setdefault("choices", [])
    return {
        "prompt": prompt,
        "images": [{"bytes": b, "path": None} for b in images],
        "ground_truth": [str(g) for g in ground_truth],
        "data_source": row["data_source"],
        "extra_info": {
            k: extra.get(k) for k in ("index", "split", "question", "answer", "answer_type", "choices")
        },
    }


def _records(paths: list[str], fingerprint: str) -> Iterator[dict[str, Any]]:
    del fingerprint  # only part of the cache key, so a rewritten file is never served stale
    for path in paths:
        pf = pq.ParquetFile(path)
        missing = [c for c in REQUIRED if c not in pf.schema_arrow.names]
        if missing:
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)}; build it with `vlmrl data build`"
            )
        n = 0
        for batch in pf.iter_batches(batch_size=256):
            for row in batch.to_pylist():
                yield trl_record(row, f"{path} row {n}")
                n += 1


def to_trl_dataset(parquet_paths: str | os.PathLike[str] | list[str | os.PathLike[str]]):
    """A `datasets.Dataset` for `GRPOTrainer(train_dataset=...)` from our parquet file(s).

    Rows stream through an on-disk arrow cache (keyed by the files' size and mtime), so
    memory stays flat; `images` decode to PIL images on access.
    """
    import datasets

    if isinstance(parquet_paths, (str, os.PathLike)):
        parquet_paths = [parquet_paths]
    paths = [str(Path(p)) for p in parquet_paths]
    for p in paths:
        if not Path(p).is_file():
            raise UserError(f"{p}: no such parquet file; build it with `vlmrl data build`")
    fingerprint = ";".join(f"{p}:{os.stat(p).st_size}:{os.stat(p).st_mtime_ns}" for p in paths)
    return datasets.Dataset.from_generator(
        _records, features=_features(), gen_kwargs={"paths": paths, "fingerprint": fingerprint}
    )
