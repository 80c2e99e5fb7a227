"""Geometry3K: diagram geometry; train 2,101 / validation 300 / test 601. Two published layouts:

- the hub copy (`hiyouga/geometry3k`): rows with an `images` list, a `problem` that already holds
  `<image>`, the free-form `answer` (the ground truth) and the option strings `choices`;
- the original release (Inter-GPS): one folder per problem, `<split>/<id>/data.json` (`problem_text`,
  `choices`, `answer` = the letter of the right choice) beside `img_diagram.png`; the ground truth
  is the text of that choice, as in the hub copy. Its validation folder is named `val`.

The option strings stay in `meta["choices_text"]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from vlmrl.data.example import Example
from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import (
    check_options,
    make_example,
    read_images,
    read_options,
    row_problem,
    with_placeholders,
)
from vlmrl.data.sources._io import SourceError, base_dir_of, iter_records

HUB_ID = "hiyouga/geometry3k"
DATA_SOURCE = "geometry3k"
DIAGRAM = "img_diagram.png"
# The original release's folder names for the hub's split names.
_FOLDER_SPLITS = {"validation": ("validation", "val"), "val": ("val", "validation")}


def _problem_dirs(root: Path, split: str) -> list[Path] | None:
    """Per-problem folders of the original layout (those of `split` when split folders exist), or None."""
    if not root.is_dir():
        return None
    files = list(root.rglob("data.json"))
    if not files:
        return None
    for name in _FOLDER_SPLITS.get(split, (split,)):
        if (root / name).is_dir():
            files = [f for f in files if f.relative_to(root).parts[0] == name]
            break

    def order(path: Path) -> tuple[int, str]:
        name = path.parent.name
        return (int(name), "") if name.isdigit() else (1 << 30, path.as_posix())

    return [f.parent for f in sorted(files, key=order)]


def _load_folders(dirs: list[Path], split: str, encoding: str) -> Iterator[Example]:
    for i, folder in enumerate(dirs):
        where = folder / "data.json"
        try:
            record = json.loads(where.read_text(encoding=encoding))
        except json.JSONDecodeError as exc:
            raise SourceError(f"{where}: not valid JSON ({exc.msg})") from exc
        except UnicodeDecodeError as exc:
            raise SourceError(f"{where}: not valid {encoding} text; pass the option `encoding`") from exc
        problems = []
        if not isinstance(record, dict):
            record, problems = {}, [f"{where}: not a JSON object"]
        choices = [str(c) for c in record.get("choices") or []]
        letter = str(record.get("answer") or "").strip().upper()
        answer = ""
        if len(letter) == 1 and 0 <= ord(letter) - ord("A") < len(choices):
            answer = choices[ord(letter) - ord("A")]
        elif "answer" not in record:
            problems.append(f"{where}: missing field 'answer'")
        else:
            problems.append(f"{where}: answer {letter!r} is not the letter of one of {len(choices)} choices")
        if "problem_text" not in record:
            problems.append(f"{where}: missing field 'problem_text'")
        diagram = folder / DIAGRAM
        images = read_images([diagram], None) if diagram.is_file() else []
        if not diagram.is_file():
            problems.append(f"{folder}: no {DIAGRAM}")
        question = with_placeholders(str(record.get("problem_text") or ""), len(images))
        meta = {"id": record.get("id", folder.name), "choices_text": choices, "answer_letter": letter}
        yield make_example(
            DATA_SOURCE, i, split, question, [answer], images, meta=meta, problem="; ".join(problems)
        )


def load(path: str | None = None, split: str = "train", **options) -> Iterator[Example]:
    check_options(DATA_SOURCE, options, ())
    if path is not None:
        dirs = _problem_dirs(Path(path), split)
        if dirs is not None:
            yield from _load_folders(dirs, split, options.get("encoding") or "utf-8")
            return
    base = base_dir_of(path)
    rows = iter_records(
        path,
        HUB_ID,
        split,
        ("images", "problem", "answer"),
        image_columns=("images",),
        **read_options(options),
    )
    for i, row in enumerate(rows):
        images = read_images(list(row["images"] or []), base)
        question = with_placeholders(str(row["problem"] or ""), len(images))
        meta = {}
        if row.get("id") is not None:
            meta["id"] = row["id"]
        if row.get("choices"):
            meta["choices_text"] = [str(c) for c in row["choices"]]
        yield make_example(
            DATA_SOURCE, i, split, question, [row["answer"]], images, meta=meta, problem=row_problem(row)
        )


SOURCE = SourceInfo(
    DATA_SOURCE, HUB_ID, "train", True, "Geometry3K diagrams (train 2.1k / val 300 / test 601)", load
)
