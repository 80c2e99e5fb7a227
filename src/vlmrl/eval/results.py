"""The evaluation result file (docs/contracts.md): one JSON per evaluated model, read by `report table`.

Its one writer (`write_result`) and reader (`read_result` = `load_json` + `check_result`; `report table`
reads lmms-eval's raw `*_results.json` too, telling the two apart with `is_lmms_results`).

`{"model": str, "scores": {column: float}, ...}`; the columns are declared by `vlmrl.eval.benchmarks`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.utils.io import write_json_atomic

RESULT_FORMAT = "vlmrl.eval.result/v1"


def write_result(
    path: str | os.PathLike[str], model: str, scores: dict[str, float | None], **extra: Any
) -> Path:
    """Write (or merge into) a result file: existing scores for the same model are kept unless replaced."""
    p = Path(path)
    merged_scores: dict[str, float | None] = {}
    merged: dict[str, Any] = {}
    if p.is_file():
        old = read_result(p)
        if old["model"] == model:
            merged = {k: v for k, v in old.items() if k not in ("model", "scores")}
            merged_scores.update(old["scores"])
    merged_scores.update(scores)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    doc = {
        "format": RESULT_FORMAT,
        "model": model,
        "scores": merged_scores,
        **{k: v for k, v in merged.items() if k != "format"},
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return write_json_atomic(p, doc)


def load_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document of a result file (ours or lmms-eval's); errors name the file."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"{p}: no such result file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read the result file ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def is_lmms_results(doc: Any) -> bool:
    """Whether a loaded document is lmms-eval's raw `*_results.json` rather than our result file."""
    return isinstance(doc, dict) and "results" in doc and "scores" not in doc


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a result file; errors name the file and the key at fault."""
    p = Path(path)
    return check_result(load_json(p), p)


def check_result(doc: Any, p: Path) -> dict[str, Any]:
    """A loaded result file (`load_json`) checked; errors name file `p` and the key at fault."""
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), str):
        raise UserError(f"{p}: a result file needs a string `model` key (written by `vlmrl eval text/mm`)")
    scores = doc.get("scores")
    if not isinstance(scores, dict):
        raise UserError(f"{p}: `scores` must be an object mapping column -> number")
    for key, value in scores.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UserError(f"{p}: scores.{key} must be a number or null, got {value!r}")
    return doc
