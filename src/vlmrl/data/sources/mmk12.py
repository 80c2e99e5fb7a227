"""MMK12 (`FanqingM/MMK12`): K-12 multimodal math, one image per question; train ~15.6k, test 2,000.

Answers are LaTeX often wrapped in `$$...$$` (unwrapped here); the question has no `<image>`,
so one is put in front. Test questions are multiple choice: the answer letter becomes a `choice`.
"""

from __future__ import annotations

from collections.abc import Iterator

from vlmrl.data.example import Example
from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import (
    check_options,
    choice_letters,
    make_example,
    read_images,
    read_options,
    row_problem,
    with_placeholders,
)
from vlmrl.data.sources._io import base_dir_of, iter_records

HUB_ID = "FanqingM/MMK12"
DATA_SOURCE = "mmk12"


def load(path: str | None = None, split: str = "train", **options) -> Iterator[Example]:
    check_options(DATA_SOURCE, options, ())
    base = base_dir_of(path)
    rows = iter_records(
        path,
        HUB_ID,
        split,
        ("question", "image", "answer"),
        image_columns=("image",),
        **read_options(options),
    )
    for i, row in enumerate(rows):
        image = row["image"]
        images = read_images([image] if image is not None else [], base)
        question = with_placeholders(str(row["question"] or ""), len(images))
        choices = choice_letters(question)
        meta = {k: row[k] for k in ("id", "subject") if row.get(k) is not None}
        yield make_example(
            DATA_SOURCE, i, split, question, [row["answer"]], images, choices, meta, problem=row_problem(row)
        )


SOURCE = SourceInfo(
    DATA_SOURCE, HUB_ID, "train", True, "MMK12 multimodal K-12 math (train ~15.6k, test 2k)", load
)
