"""Geometry3K (`hiyouga/geometry3k`): diagram geometry; train 2,101 / validation 300 / test 601.

Rows carry an `images` list and a `problem` that already holds `<image>`; the free-form `answer`
is the ground truth (the published option strings stay in `meta["choices_text"]`).
"""

from __future__ import annotations

from collections.abc import Iterator

from vlmrl.data.example import Example
from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import check_options, make_example, read_images, with_placeholders
from vlmrl.data.sources._io import base_dir_of, iter_records

HUB_ID = "hiyouga/geometry3k"
DATA_SOURCE = "geometry3k"


def load(path: str | None = None, split: str = "train", **options) -> Iterator[Example]:
    check_options(DATA_SOURCE, options, ())
    base = base_dir_of(path)
    rows = iter_records(path, HUB_ID, split, ("images", "problem", "answer"), image_columns=("images",))
    for i, row in enumerate(rows):
        images = read_images(list(row["images"] or []), base)
        question = with_placeholders(str(row["problem"] or ""), len(images))
        meta = {}
        if row.get("id") is not None:
            meta["id"] = row["id"]
        if row.get("choices"):
            meta["choices_text"] = [str(c) for c in row["choices"]]
        yield make_example(DATA_SOURCE, i, split, question, [row["answer"]], images, meta=meta)


SOURCE = SourceInfo(
    DATA_SOURCE, HUB_ID, "train", True, "Geometry3K diagrams (train 2.1k / val 300 / test 601)", load
)
