"""Decontamination and dedup: drop training questions that match an evaluation set or repeat.

A training question is contaminated by an evaluation set when its normalised text equals one of
the set's (exact) or when at least `threshold` of its word n-grams occur in the set (n-gram).
"""

from __future__ import annotations

from collections.abc import Iterable

from vlmrl.data.normalize import normalize_question, question_ngrams


class EvalIndex:
    """Normalised questions and n-grams of one evaluation set."""

    def __init__(self, name: str, questions: Iterable[str], ngram: int):
        self.name = name
        self.ngram = ngram
        self.exact: set[str] = set()
        self.ngrams: set[tuple[str, ...]] = set()
        for q in questions:
            norm = normalize_question(q)
            if norm:
                self.exact.add(norm)
                self.ngrams |= question_ngrams(norm, ngram)

    def __len__(self) -> int:
        return len(self.exact)


class Decontaminator:
    """Checks one training question against every evaluation index; first match wins."""

    def __init__(self, indexes: list[EvalIndex], threshold: float = 0.5):
        if not 0 < threshold <= 1:
            raise ValueError("decontamination threshold must be in (0, 1]")
        self.indexes = indexes
        self.threshold = threshold

    def match(self, question: str) -> tuple[str, str] | None:
        """(`exact` | `ngram`, evaluation set name), or None when clean."""
        norm = normalize_question(question)
        if not norm:
            return None
        for index in self.indexes:
            if norm in index.exact:
                return "exact", index.name
        grams_by_n: dict[int, set[tuple[str, ...]]] = {}
        for index in self.indexes:
            grams = grams_by_n.setdefault(index.ngram, question_ngrams(norm, index.ngram))
            if grams and len(grams & index.ngrams) / len(grams) >= self.threshold:
                return "ngram", index.name
        return None
