"""Atomic file writes (a crash or Ctrl-C never leaves a half-written output behind), and the one
jsonl reader and YAML-mapping loader (errors name the file and line).

Every file vlmrl produces goes through `atomic_path` (temp file in the same
directory, then `os.replace`), so readers see either the old file or the new one,
with the permissions the umask gives a new file (0644 under umask 022), not the
temp file's private 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (else set and restored)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    The temp file lives in the same directory so the final rename is atomic on
    POSIX. On any exception the temp file is removed and `path` is untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        # mkstemp makes the file 0600; a plain open() would have given 0666 & ~umask.
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=str) + "\n")


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write `rows` as JSON lines atomically; returns the number of rows written."""
    n = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            n += 1
    return n


class JsonlError(UserError, ValueError):
    """A jsonl file with a line that is not one JSON object; the message names file and line."""


def iter_jsonl(
    path: str | os.PathLike[str],
    *,
    torn_tail_notes: list[str] | None = None,
    hint: str = "fix or remove that line",
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a jsonl file.

    A bad line raises `JsonlError` naming file and line, with `hint` as the fix.
    Journals appended by a running (or killed) process may end in a partial
    line: pass `torn_tail_notes` to skip such a last line and record a note
    there instead of failing.
    """
    p = Path(path)
    with p.open(encoding="utf-8") as fh:
        lines = fh.readlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if torn_tail_notes is not None and lineno == len(lines) and not line.endswith("\n"):
                torn_tail_notes.append(f"{p}:{lineno}: incomplete last line (interrupted write) skipped")
                return
            raise JsonlError(f"{p}:{lineno}: not valid JSON ({exc.msg}); {hint}") from exc
        if not isinstance(obj, dict):
            raise JsonlError(f"{p}:{lineno}: expected one JSON object per line, got {type(obj).__name__}")
        yield lineno, obj


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield JSON objects from a jsonl file; a bad line raises naming file and line."""
    for _, obj in iter_jsonl(path):
        yield obj


def read_yaml_mapping(
    path: str | os.PathLike[str], kind: str, hint: str = "", error: type[Exception] = UserError
) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (empty file: {}); errors name the file and what is wrong.

    `kind` names the file in messages ("config", "recipe"); `hint` follows a missing-file message.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: {kind} file not found{hint}")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{p}: not valid YAML ({exc})") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise error(f"{p}: top level must be a mapping of {kind} keys, got {type(loaded).__name__}")
    return loaded
