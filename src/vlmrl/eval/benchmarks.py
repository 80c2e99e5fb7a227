"""The text benchmarks `vlmrl eval text` knows: each a small declarative entry (source, prompt,
extraction, grading). Adding a benchmark = one `register(Benchmark(...))` call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vlmrl.errors import UserError


@dataclass(frozen=True)
class Benchmark:
    """One benchmark.

    source/split/options: read through `vlmrl.data.sources.load_examples(source, path, split, **options)`
      (hub by default, or a local file given with `--data NAME=PATH`).
    prompt: "training" = the question plus the reasoning instruction exactly as training rows are
      built (`vlmrl.data.rows.example_to_row`); the instruction itself is configurable.
    extraction: "answer_tag" = the reward's format gate and `<answer>` extraction.
    grading: "reward" = `vlmrl.reward` rules (+ verifier when configured), as in training;
      multiple choice is graded on the option letter (the example's `answer_type` is `choice`).
    column: the result/table column (docs/contracts.md), None for benchmarks outside the seed's table.
    """

    name: str
    title: str
    source: str
    split: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    prompt: str = "training"
    extraction: str = "answer_tag"
    grading: str = "reward"
    column: str | None = None
    notes: str = ""


REGISTRY: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    if benchmark.name in REGISTRY:
        raise ValueError(f"benchmark {benchmark.name!r} is registered twice")
    REGISTRY[benchmark.name] = benchmark
    return benchmark


def get_benchmark(name: str) -> Benchmark:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(REGISTRY))} "
            "(or evaluate any parquet file in our row schema with --rows NAME=FILE)"
        ) from None


register(
    Benchmark("aime24", "AIME 2024", source="aime24", column="aime24", notes="30 problems, integer answers")
)
register(Benchmark("math500", "MATH-500", source="math500", column="math500", notes="500 problems"))
register(
    Benchmark(
        "gpqa_diamond",
        "GPQA-Diamond",
        source="gpqa_diamond",
        # Published options are unshuffled (correct first): a seeded shuffle into A-D, answer = letter.
        options={"seed": 0},
        column="gpqa_diamond",
        notes="198 questions, gated on the hub; options shuffled into A-D with seed 0",
    )
)
