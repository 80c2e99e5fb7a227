"""MATH-500 (`HuggingFaceH4/MATH-500`): 500 competition problems; validation and evaluation."""

from __future__ import annotations

from collections.abc import Iterator

from vlmrl.data.example import Example
from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import check_options, make_example, read_options, row_problem
from vlmrl.data.sources._io import iter_records

HUB_ID = "HuggingFaceH4/MATH-500"
DATA_SOURCE = "math500"


def load(path: str | None = None, split: str = "test", **options) -> Iterator[Example]:
    check_options(DATA_SOURCE, options, ())
    for i, row in enumerate(
        iter_records(path, HUB_ID, split, ("problem", "answer"), **read_options(options))
    ):
        meta = {k: row[k] for k in ("unique_id", "subject", "level") if row.get(k) is not None}
        yield make_example(
            DATA_SOURCE, i, split, row["problem"], [row["answer"]], meta=meta, problem=row_problem(row)
        )


SOURCE = SourceInfo(DATA_SOURCE, HUB_ID, "test", False, "MATH-500, 500 problems (eval/validation)", load)
