"""AIME 2024 (`HuggingFaceH4/aime_2024`): 30 problems with integer answers; validation and evaluation."""

from __future__ import annotations

from collections.abc import Iterator

from vlmrl.data.example import Example
from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import check_options, make_example, read_options, row_problem
from vlmrl.data.sources._io import iter_records

HUB_ID = "HuggingFaceH4/aime_2024"
DATA_SOURCE = "aime24"
COLUMN_OPTIONS = ("problem_key", "answer_key")


def load(path: str | None = None, split: str = "train", **options) -> Iterator[Example]:
    check_options(DATA_SOURCE, options, COLUMN_OPTIONS)
    problem_key = options.get("problem_key", "problem")
    answer_key = options.get("answer_key", "answer")
    rows = iter_records(
        path, HUB_ID, split, (problem_key, answer_key), **read_options(options, COLUMN_OPTIONS)
    )
    for i, row in enumerate(rows):
        meta = {k: row[k] for k in ("id", "url", "year") if row.get(k) is not None}
        yield make_example(
            DATA_SOURCE, i, split, row[problem_key], [row[answer_key]], meta=meta, problem=row_problem(row)
        )


SOURCE = SourceInfo(DATA_SOURCE, HUB_ID, "train", False, "AIME 2024, 30 problems (eval/validation)", load)
