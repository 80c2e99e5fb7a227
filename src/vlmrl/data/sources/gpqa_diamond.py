"""GPQA-Diamond (`Idavidrein/gpqa`, config `gpqa_diamond`, gated): 198 science questions.

Options are published unshuffled (correct first), so they are shuffled into A-D with an RNG seeded
by `seed` and the record's own text (question and options), so a question keeps its letters whatever
the file's row order or copy; the ground truth is the letter, `choices` the options' texts in A-D
order (so an answer that names the right option's text scores as its letter).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from vlmrl.data.example import Example
from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import check_options, make_example, read_options, row_problem
from vlmrl.data.sources._io import iter_records

HUB_ID = "Idavidrein/gpqa"
HUB_CONFIG = "gpqa_diamond"
DATA_SOURCE = "gpqa_diamond"
LETTERS = ["A", "B", "C", "D"]
COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def record_digest(question: str, options_text: list[str]) -> str:
    """A record's identity: its question and its options (correct first, as published)."""
    h = hashlib.sha256()
    for part in (question, *options_text):
        h.update(" ".join(part.split()).encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def load(path: str | None = None, split: str = "train", **options) -> Iterator[Example]:
    check_options(DATA_SOURCE, options, ("seed",))
    seed = int(options.get("seed", 0))
    for i, row in enumerate(
        iter_records(path, HUB_ID, split, COLUMNS, config=HUB_CONFIG, **read_options(options))
    ):
        correct = str(row["Correct Answer"] or "").strip()
        options_text = [correct] + [str(row[f"Incorrect Answer {k}"] or "").strip() for k in (1, 2, 3)]
        question = str(row["Question"] or "").strip()
        order = list(range(4))
        random.Random(f"gpqa_diamond:{seed}:{record_digest(question, options_text)}").shuffle(order)
        shuffled = [options_text[j] for j in order]
        letter = LETTERS[order.index(0)] if correct else ""
        body = "\n".join(f"{L}. {text}" for L, text in zip(LETTERS, shuffled, strict=True))
        meta = {"options": dict(zip(LETTERS, shuffled, strict=True)), "correct_text": correct}
        if row.get("Record ID"):
            meta["record_id"] = row["Record ID"]
        yield make_example(
            DATA_SOURCE,
            i,
            split,
            f"{question}\n\n{body}" if question else "",
            [letter],
            choices=shuffled,  # the options' texts in A-D order: the reward maps a text to its letter
            meta=meta,
            problem=row_problem(row),
        )


SOURCE = SourceInfo(
    DATA_SOURCE, HUB_ID, "train", False, "GPQA-Diamond, 198 questions, options shuffled into A-D (eval)", load
)
