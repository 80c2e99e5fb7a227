"""Reading a source's raw records from the hub (`datasets`) or from local parquet/jsonl/json/csv files.

Records stream in batches so memory stays flat; a missing column or unreadable file is a `UserError`
naming the file (or hub id) and the column.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.utils.io import iter_jsonl

LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")
BATCH_ROWS = 256


class SourceError(UserError):
    """A source's input is missing, unreadable or lacks a column."""


def _files_in(path: Path, split: str | None) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory; point the source's `path` at a local copy")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in LOCAL_SUFFIXES)
    if not files:
        raise SourceError(f"{path}: no {'/'.join(LOCAL_SUFFIXES)} files inside")
    if split:
        # Hub snapshots name files by split (data/train-00000-of-00001.parquet, test.jsonl, ...).
        matching = [p for p in files if split in p.relative_to(path).as_posix()]
        if matching:
            return matching
    return files


def _check_columns(have: list[str], need: tuple[str, ...], where: str) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise SourceError(
            f"{where}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(has: {', '.join(have) or 'none'}); map them with the source's options or fix the file"
        )


def _read_parquet(path: Path, need: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise SourceError(f"{path}: cannot read as parquet ({exc})") from exc
    _check_columns(pf.schema_arrow.names, need, str(path))
    for batch in pf.iter_batches(batch_size=BATCH_ROWS):
        yield from batch.to_pylist()


def _read_jsonl(path: Path, need: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    for lineno, row in iter_jsonl(path):
        _check_columns(list(row), need, f"{path}:{lineno}")
        yield row


def _read_json(path: Path, need: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}: not valid JSON ({exc.msg})") from exc
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list):
        raise SourceError(f"{path}: expected a JSON list of objects")
    for i, row in enumerate(data):
        _check_columns(list(row) if isinstance(row, dict) else [], need, f"{path} item {i}")
        yield row


def _read_csv(path: Path, need: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        _check_columns(list(reader.fieldnames or []), need, str(path))
        yield from reader


_READERS = {".parquet": _read_parquet, ".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}


def iter_local(
    path: str | os.PathLike[str], split: str | None, need: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    """Rows of a local file or of every data file in a directory (those naming `split` if any do)."""
    for file in _files_in(Path(path), split):
        try:
            yield from _READERS[file.suffix](file, need)
        except SourceError:
            raise
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"{file}: cannot read ({exc})") from exc


def iter_hub(
    hub_id: str,
    split: str,
    need: tuple[str, ...],
    config: str | None = None,
    image_columns: tuple[str, ...] = (),
) -> Iterator[dict[str, Any]]:
    """Rows of a hub dataset, streamed; image columns arrive as encoded bytes (no decode/re-encode)."""
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, config, split=split, streaming=True)
    except Exception as exc:
        raise SourceError(
            f"cannot load {hub_id!r} (split {split!r}) from the hub ({type(exc).__name__}: {exc}); "
            "download it and pass a local `path` instead"
        ) from exc
    names = list(ds.features or {}) if ds.features is not None else None
    if names is not None:
        _check_columns(names, need, f"hub dataset {hub_id!r}")
        for col in image_columns:
            feature = ds.features.get(col)
            if isinstance(feature, datasets.Image):
                ds = ds.cast_column(col, datasets.Image(decode=False))
            elif isinstance(getattr(feature, "feature", None), datasets.Image) or (
                isinstance(feature, list) and feature and isinstance(feature[0], datasets.Image)
            ):
                ds = ds.cast_column(col, datasets.List(datasets.Image(decode=False)))
    for i, row in enumerate(ds):
        if i == 0 and names is None:
            _check_columns(list(row), need, f"hub dataset {hub_id!r}")
        yield row


def iter_records(
    path: str | os.PathLike[str] | None,
    hub_id: str,
    split: str,
    need: tuple[str, ...],
    config: str | None = None,
    image_columns: tuple[str, ...] = (),
) -> Iterator[dict[str, Any]]:
    """A local path when given, else the hub id."""
    if path is not None:
        return iter_local(path, split, need)
    return iter_hub(hub_id, split, need, config=config, image_columns=image_columns)


def image_bytes(value: Any, base_dir: Path | None = None) -> bytes:
    """Encoded image bytes from what datasets store: bytes, {"bytes", "path"}, a path, or a PIL image."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path"):
            return image_bytes(value["path"], base_dir)
        raise ValueError("image entry has neither bytes nor path")
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        return p.read_bytes()
    if hasattr(value, "save"):  # PIL image
        out = io.BytesIO()
        value.save(out, format="PNG")
        return out.getvalue()
    raise ValueError(f"unsupported image value of type {type(value).__name__}")


def base_dir_of(path: str | os.PathLike[str] | None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    return p if p.is_dir() else p.parent
