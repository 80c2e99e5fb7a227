"""The canonical example every source yields, before it becomes a veRL row or a TRL record.

One shape for training and evaluation sets alike, so later stages read every benchmark the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANSWER_TYPES = ("number", "expression", "choice", "text")


@dataclass
class Example:
    """One question with its images and every acceptable answer.

    `question` holds one `<image>` placeholder per entry of `images` and no reasoning
    instruction. `images` are encoded image files (bytes), in placeholder order.
    `answers` are normalised, non-empty in a valid example, first one canonical.
    For `answer_type == "choice"`, `answers` holds the option letter and `choices` the letters.
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

    @property
    def answer(self) -> str:
        """The first acceptable answer ('' when there is none)."""
        return self.answers[0] if self.answers else ""
