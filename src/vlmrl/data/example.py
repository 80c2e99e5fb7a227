"""The canonical example every source yields, before it becomes a veRL row or a TRL record.

One shape for training and evaluation sets alike, so later stages read every benchmark the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlmrl.data.normalize import infer_answer_type, normalize_answers, option_letters

ANSWER_TYPES = ("number", "expression", "choice", "text")


@dataclass
class Example:
    """One question with its images and every acceptable answer.

    `question` holds one `<image>` placeholder per entry of `images` and no reasoning
    instruction. `images` are encoded image files (bytes), in placeholder order.
    `answers` are normalised, non-empty in a valid example, first one canonical.
    For `answer_type == "choice"`, `answers` holds the option letter (or the right option's text) and
    `choices` the letters, or the options' texts in letter order when the source has them.
    """

    source: str
    index: int
    split: str
    question: str
    answers: list[str]
    images: list[bytes] = field(default_factory=list)
    answer_type: str = "expression"
    choices: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # what is wrong with the published record (e.g. a missing field); "" = nothing

    @property
    def answer(self) -> str:
        """The first acceptable answer ('' when there is none)."""
        return self.answers[0] if self.answers else ""


def make_example(
    source: str,
    index: int,
    split: str,
    question: Any,
    raw_answers: list[Any],
    images: list[bytes] | None = None,
    choices: list[str] | None = None,
    meta: dict[str, Any] | None = None,
    problem: str = "",
) -> Example:
    """An `Example` from raw published fields: answers normalised, answer type inferred.

    `raw_answers` may hold several acceptable answers (all kept, first canonical); a single-letter
    answer among `choices` makes a `choice` example. `problem` says what is wrong with the record
    (the build rejects it with that reason). Sources and synthetic data both build through this.
    """
    answers = normalize_answers(raw_answers)
    choices = list(choices or [])
    answer = answers[0] if answers else ""
    letters = option_letters(choices)
    if choices and answer.upper() in letters and len(answer) == 1:
        answers = [a.upper() if len(a) == 1 else a for a in answers]
        answer = answers[0]
    return Example(
        source=source,
        index=index,
        split=split,
        question=str(question or "").strip(),
        answers=answers,
        images=list(images or []),
        answer_type=infer_answer_type(answer, choices) if answer else "text",
        choices=choices if (choices and (answer in choices or answer in letters)) else [],
        meta=dict(meta or {}),
        problem=problem,
    )
