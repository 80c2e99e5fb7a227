"""Our veRL parquet as the dataset TRL's GRPOTrainer takes (records and Features from `data.rows`).

Columns: `prompt` (content parts `{"type": "image"}` / `{"type": "text", "text": ...}` in placeholder
order), `images` (PIL images, `[]` for text rows), `ground_truth`, `data_source`, `extra_info`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlmrl.data.rows import open_parquet, read_rows, trl_features


def _records(paths: list[str], fingerprint: str) -> Iterator[dict[str, Any]]:
    del fingerprint  # only part of the cache key, so a rewritten file is never served stale
    for path in paths:
        for row in read_rows(path):
            yield row.to_trl()


def to_trl_dataset(parquet_paths: str | os.PathLike[str] | list[str | os.PathLike[str]]):
    """A `datasets.Dataset` for `GRPOTrainer(train_dataset=...)` from our parquet file(s).

    Rows stream through an on-disk arrow cache (keyed by the files' size and mtime), so
    memory stays flat; `images` decode to PIL images on access.
    """
    import datasets

    if isinstance(parquet_paths, str | os.PathLike):
        parquet_paths = [parquet_paths]
    paths = [str(Path(p)) for p in parquet_paths]
    for p in paths:
        open_parquet(p)  # a missing or foreign file fails here, naming it, not inside `datasets`
    fingerprint = ";".join(f"{p}:{os.stat(p).st_size}:{os.stat(p).st_mtime_ns}" for p in paths)
    return datasets.Dataset.from_generator(
        _records, features=trl_features(), gen_kwargs={"paths": paths, "fingerprint": fingerprint}
    )
