"""Any jsonl/json/csv/parquet file (or hub id) with a column mapping: bring your own questions.

Options: `question_key`, `answer_key` (a string, a list, or a string holding a literal list),
`image_key` (one image or a list; bytes, {"bytes"}, or paths relative to the file), `choices_key`
(option letters), `data_source` (the row's `data_source`), `hub_id`, `hub_config`, `encoding`
(of local jsonl/json/csv files, default utf-8).
"""

from __future__ import annotations

from collections.abc import Iterator

from vlmrl.data.example import Example
from vlmrl.data.normalize import option_texts, parse_answer_list
from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import (
    check_options,
    make_example,
    read_images,
    read_options,
    row_problem,
    with_placeholders,
)
from vlmrl.data.sources._io import ROW_PROBLEM, base_dir_of, iter_records
from vlmrl.errors import UserError

OPTIONS = (
    "question_key",
    "answer_key",
    "image_key",
    "choices_key",
    "data_source",
    "hub_id",
    "hub_config",
    "encoding",
)


def load(path: str | None = None, split: str = "train", **options) -> Iterator[Example]:
    check_options("generic", options, OPTIONS)
    if path is None and not options.get("hub_id"):
        raise UserError("source 'generic' needs a local `path` or the option `hub_id`")
    question_key = options.get("question_key", "question")
    answer_key = options.get("answer_key", "answer")
    image_key = options.get("image_key")
    choices_key = options.get("choices_key")
    data_source = options.get("data_source") or "generic"
    need = tuple(k for k in (question_key, answer_key, image_key) if k)
    base = base_dir_of(path)
    images_cols = (image_key,) if image_key else ()
    rows = iter_records(
        path,
        options.get("hub_id") or "",
        split,
        need,
        options.get("hub_config"),
        images_cols,
        **read_options(options, ("question_key", "answer_key", "image_key", "choices_key")),
    )
    for i, row in enumerate(rows):
        images: list[bytes] = []
        if image_key:
            value = row[image_key]
            values = value if isinstance(value, (list, tuple)) else ([] if value is None else [value])
            images = read_images(list(values), base)
        question = with_placeholders(str(row[question_key] or ""), len(images))
        raw_choices = [str(c).strip() for c in (row.get(choices_key) or [])] if choices_key else []
        # Option letters are upper-cased; options' texts are kept as written (`option_texts`).
        choices = raw_choices if option_texts(raw_choices) else [c.upper() for c in raw_choices]
        meta = {
            k: v
            for k, v in row.items()
            if k not in need and k != ROW_PROBLEM and isinstance(v, (str, int, float, bool))
        }
        answers = parse_answer_list(row[answer_key])
        problem = row_problem(row)
        yield make_example(data_source, i, split, question, answers, images, choices, meta, problem)


SOURCE = SourceInfo("generic", "", "train", False, "any jsonl/json/csv/parquet with a column mapping", load)
