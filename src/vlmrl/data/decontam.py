"""Decontamination and dedup: drop training questions that match an evaluation set or repeat.

A training question is contaminated by an evaluation set when its normalised text equals one of
the set's (exact) or when at least `threshold` of its word n-grams occur in one of the set's
problems (n-gram); the match names that problem. A duplicate is the same question with the same
images and the same ground truth: MathVerse asks one question of many diagrams, Geometry3K says
"Find x." hundreds of times, and those rows are different problems.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from vlmrl.data.example import Example
from vlmrl.data.normalize import normalize_question, question_ngrams


def dedup_key(example: Example) -> str:
    """What makes two rows the same problem: normalised question, image bytes, set of ground truths."""
    h = hashlib.sha256(normalize_question(example.question).encode("utf-8", "replace"))
    for image in example.images:
        h.update(b"\0img\0" + hashlib.sha256(image).digest())
    for answer in sorted(set(example.answers)):
        h.update(b"\0ans\0" + answer.encode("utf-8", "replace"))
    return h.hexdigest()


@dataclass(frozen=True)
class EvalProblem:
    """An evaluation problem a training question matched: its position in the set and its text."""

    index: int
    question: str

    def describe(self, limit: int = 120) -> str:
        text = " ".join(self.question.split())
        return f"#{self.index} {text[:limit]!r}" + ("..." if len(text) > limit else "")


@dataclass(frozen=True)
class Match:
    kind: str  # `exact` | `ngram`
    eval_name: str
    problem: EvalProblem
    overlap: float  # share of the training question's n-grams found in that problem (1.0 for exact)


class EvalIndex:
    """Normalised questions and n-grams of one evaluation set, each n-gram mapped to its problems."""

    def __init__(self, name: str, questions: Iterable[str], ngram: int):
        self.name = name
        self.ngram = ngram
        self.problems: list[EvalProblem] = []
        self.exact: dict[str, int] = {}
        self.ngrams: dict[tuple[str, ...], list[int]] = {}
        for i, q in enumerate(questions):
            norm = normalize_question(q)
            if not norm:
                continue
            pos = len(self.problems)
            self.problems.append(EvalProblem(i, q))
            self.exact.setdefault(norm, pos)
            for gram in question_ngrams(norm, ngram):
                self.ngrams.setdefault(gram, []).append(pos)

    def __len__(self) -> int:
        return len(self.exact)


class Decontaminator:
    """Checks one training question against every evaluation index; first match wins."""

    def __init__(self, indexes: list[EvalIndex], threshold: float = 0.5):
        if not 0 < threshold <= 1:
            raise ValueError("decontamination threshold must be in (0, 1]")
        self.indexes = indexes
        self.threshold = threshold

    def match(self, question: str) -> Match | None:
        """The evaluation problem `question` matches (exact text, else n-gram overlap), or None."""
        norm = normalize_question(question)
        if not norm:
            return None
        for index in self.indexes:
            if norm in index.exact:
                return Match("exact", index.name, index.problems[index.exact[norm]], 1.0)
        grams_by_n: dict[int, set[tuple[str, ...]]] = {}
        for index in self.indexes:
            grams = grams_by_n.setdefault(index.ngram, question_ngrams(norm, index.ngram))
            if not grams:
                continue
            hits: dict[int, int] = {}
            for gram in grams:
                for pos in index.ngrams.get(gram, ()):
                    hits[pos] = hits.get(pos, 0) + 1
            if not hits:
                continue
            best = max(hits, key=lambda pos: (hits[pos], -pos))
            overlap = hits[best] / len(grams)
            if overlap >= self.threshold:
                return Match("ngram", index.name, index.problems[best], overlap)
        return None
