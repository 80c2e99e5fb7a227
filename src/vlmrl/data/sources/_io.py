"""Reading a source's raw records from the hub (`datasets`) or from local parquet/jsonl/json/csv files.

Records stream in batches so memory stays flat; a missing column or unreadable file is a `UserError`
naming the file (or hub id), the column and the options that map columns. A single jsonl line or
JSON item that lacks a field (or is not an object) is a per-row problem: the record comes through
with `ROW_PROBLEM` set, so the build rejects that row and goes on.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError

LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")
BATCH_ROWS = 256
# Key of a record holding what is wrong with it (see `row_problem`).
ROW_PROBLEM = "__vlmrl_row_problem__"
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"


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


def _column_hint(column_options: tuple[str, ...]) -> str:
    if column_options:
        return f"map them with the source's option(s) {', '.join(column_options)}, or fix the file"
    return (
        "this source takes no column options: fix the file, or read it with the `generic` source "
        "(question_key, answer_key, image_key, choices_key)"
    )


def _check_columns(
    have: list[str], need: tuple[str, ...], where: str, column_options: tuple[str, ...]
) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise SourceError(
            f"{where}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(has: {', '.join(have) or 'none'}); {_column_hint(column_options)}"
        )


def _row_with_problem(row: Any, need: tuple[str, ...], where: str) -> dict[str, Any]:
    """The record as it is, or with its missing fields set to None and `ROW_PROBLEM` saying so."""
    if not isinstance(row, dict):
        return {**dict.fromkeys(need), ROW_PROBLEM: f"{where}: not a JSON object ({type(row).__name__})"}
    missing = [c for c in need if c not in row]
    if not missing:
        return row
    have = ", ".join(k for k in row if k != ROW_PROBLEM) or "none"
    problem = f"{where}: missing field(s) {', '.join(repr(c) for c in missing)} (has: {have})"
    return {**row, **dict.fromkeys(missing), ROW_PROBLEM: problem}


def row_problem(row: dict[str, Any]) -> str:
    """What is wrong with a record from `iter_records` ('' = nothing)."""
    return str(row.get(ROW_PROBLEM) or "")


def _read_parquet(path: Path, need: tuple[str, ...], opts: _ReadOptions) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise SourceError(f"{path}: cannot read as parquet ({exc})") from exc
    _check_columns(pf.schema_arrow.names, need, str(path), opts.column_options)
    for batch in pf.iter_batches(batch_size=BATCH_ROWS):
        yield from batch.to_pylist()


def _read_jsonl(path: Path, need: tuple[str, ...], opts: _ReadOptions) -> Iterator[dict[str, Any]]:
    with path.open(encoding=opts.encoding) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield {**dict.fromkeys(need), ROW_PROBLEM: f"{where}: not valid JSON ({exc.msg})"}
                continue
            yield _row_with_problem(row, need, where)


def _read_json(path: Path, need: tuple[str, ...], opts: _ReadOptions) -> Iterator[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding=opts.encoding))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if isinstance(data, dict):
        if all(c in data for c in need):
            data = [data]  # one record per file (e.g. Geometry3K's data.json)
        else:
            lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
            if len(lists) != 1:
                raise SourceError(
                    f"{path}: a JSON object that is neither one record (it lacks "
                    f"{', '.join(repr(c) for c in need if c not in data)}) nor holds one list of "
                    f"records (lists of objects under: {', '.join(lists) or 'none'}); "
                    f"{_column_hint(opts.column_options)}"
                )
            data = data[lists[0]]
    if not isinstance(data, list):
        raise SourceError(f"{path}: expected a JSON list of objects, or one object")
    for i, row in enumerate(data):
        yield _row_with_problem(row, need, f"{path} item {i}")


def _read_csv(path: Path, need: tuple[str, ...], opts: _ReadOptions) -> Iterator[dict[str, Any]]:
    with path.open(encoding=opts.encoding, newline="") as fh:
        reader = csv.DictReader(fh)
        _check_columns(list(reader.fieldnames or []), need, str(path), opts.column_options)
        yield from reader


_READERS = {".parquet": _read_parquet, ".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}


@dataclass(frozen=True)
class _ReadOptions:
    encoding: str = "utf-8"
    column_options: tuple[str, ...] = ()


def _check_not_lfs_pointer(file: Path) -> None:
    with file.open("rb") as fh:
        head = fh.read(len(LFS_POINTER_PREFIX))
    if head == LFS_POINTER_PREFIX:
        raise SourceError(
            f"{file}: a git-LFS pointer file, not the data itself (the clone was made without LFS); "
            "run `git lfs pull` in that clone, or download the file from the hub's web page"
        )


def iter_local(
    path: str | os.PathLike[str],
    split: str | None,
    need: tuple[str, ...],
    *,
    encoding: str = "utf-8",
    column_options: tuple[str, ...] = (),
) -> Iterator[dict[str, Any]]:
    """Rows of a local file or of every data file in a directory (those naming `split` if any do).

    `encoding` applies to jsonl/json/csv; `column_options` (the source's column-mapping options)
    are named in the error when a column is missing.
    """
    try:
        "".encode(encoding)
    except LookupError as exc:
        raise SourceError(f"encoding {encoding!r} is not known to Python (e.g. utf-8, gbk, latin-1)") from exc
    opts = _ReadOptions(encoding, tuple(column_options))
    for file in _files_in(Path(path), split):
        try:
            _check_not_lfs_pointer(file)
            yield from _READERS[file.suffix](file, need, opts)
        except SourceError:
            raise
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{file}: not valid {encoding} text ({exc.reason} at byte {exc.start}); "
                "pass the source option `encoding` with the file's encoding (e.g. encoding: gbk)"
            ) from exc
        except OSError as exc:
            raise SourceError(f"{file}: cannot read ({exc})") from exc


def iter_hub(
    hub_id: str,
    split: str,
    need: tuple[str, ...],
    config: str | None = None,
    image_columns: tuple[str, ...] = (),
    column_options: tuple[str, ...] = (),
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
        _check_columns(names, need, f"hub dataset {hub_id!r}", column_options)
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
            _check_columns(list(row), need, f"hub dataset {hub_id!r}", column_options)
        yield row


def iter_records(
    path: str | os.PathLike[str] | None,
    hub_id: str,
    split: str,
    need: tuple[str, ...],
    config: str | None = None,
    image_columns: tuple[str, ...] = (),
    encoding: str | None = None,
    column_options: tuple[str, ...] = (),
) -> Iterator[dict[str, Any]]:
    """A local path when given (read as `encoding`, default utf-8), else the hub id."""
    if path is not None:
        return iter_local(path, split, need, encoding=encoding or "utf-8", column_options=column_options)
    return iter_hub(
        hub_id, split, need, config=config, image_columns=image_columns, column_options=column_options
    )


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
