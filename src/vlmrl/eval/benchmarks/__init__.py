"""The benchmarks vlmrl evaluates and reports: each one small file here declaring a `Benchmark`.

Adding a benchmark = adding `NAME.py` with `BENCHMARK = Benchmark("NAME", ...)` (and its test);
its result columns, table header, unit and table footnote come from that one declaration.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vlmrl.errors import UserError
from vlmrl.utils.registry import load_declared

TEXT = "text"  # `vlmrl eval text`: our generation, graded by the training reward
LMMS = "lmms-eval"  # `vlmrl eval mm`: an lmms-eval 0.7.3 task
PASS_AT_1 = "Pass@1 (mean accuracy over n samples, %)"


@dataclass(frozen=True)
class Column:
    """One result column (docs/contracts.md) and how a harness's number becomes it.

    metric/scale (lmms-eval only): the key in lmms-eval's `results[task]` without the `,none`
    filter suffix, and the factor that turns its number into our unit.
    """

    key: str
    header: str
    unit: str = "percent"
    metric: str | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class Benchmark:
    """One benchmark.

    harness: TEXT = read through `vlmrl.data.sources.load_examples(source, path, split, **options)`
      (hub by default, or a local file with `--data NAME=PATH`), prompted exactly as training rows
      are built (the question plus the reasoning instruction), graded by `vlmrl.reward` (format
      gate, `<answer>` extraction, rules, verifier when configured); multiple choice is graded on the
      option letter. LMMS = the lmms-eval task `name`, run by `vlmrl eval mm`.
    title: its full name (`eval text --help` lists it; the default column header).
    position: orders its columns in the table (the seed's order).
    columns: its result/table columns (default: one, keyed by `name`, headed `header`).
    label/footnote: what the table footer says its number is (default: the header, and Pass@1 for
      TEXT); benchmarks with the same footnote share one clause.
    source: the data source (default: `name`, TEXT only).
    judged: lmms-eval scores it with an LLM judge (API_TYPE, OPENAI_API_*, MODEL_VERSION).
    notes: TEXT: what it holds, listed in `eval text --help`; LMMS: a note printed with every run.
    """

    name: str
    title: str
    harness: str
    position: int
    header: str = ""
    columns: tuple[Column, ...] = ()
    label: str = ""
    footnote: str = ""
    source: str | None = None
    split: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    judged: bool = False
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.columns:
            object.__setattr__(self, "columns", (Column(self.name, self.header or self.title),))
        object.__setattr__(self, "label", self.label or self.header or self.columns[0].header)
        if self.harness == TEXT:
            object.__setattr__(self, "footnote", self.footnote or PASS_AT_1)
            object.__setattr__(self, "source", self.source or self.name)

    @property
    def column(self) -> str:
        """The result column of a one-column benchmark (every text benchmark)."""
        (column,) = self.columns
        return column.key


@functools.cache
def registry() -> dict[str, Benchmark]:
    """Every declared benchmark by name, in table order."""
    declared = load_declared(__name__, "BENCHMARK")
    for module, bench in declared.items():
        if bench.name != module:
            raise TypeError(
                f"{__name__}.{module} declares BENCHMARK named {bench.name!r}; name it after its file"
            )
    return dict(sorted(declared.items(), key=lambda kv: kv[1].position))


def benchmarks(harness: str) -> list[Benchmark]:
    return [b for b in registry().values() if b.harness == harness]


def get_benchmark(name: str, harness: str = TEXT) -> Benchmark:
    bench = registry().get(name)
    if bench is None or bench.harness != harness:
        known = ", ".join(b.name for b in benchmarks(harness))
        hint = (
            " (or evaluate any parquet file in our row schema with --rows NAME=FILE)"
            if harness == TEXT
            else ""
        )
        raise UserError(f"unknown benchmark {name!r}; known: {known}{hint}")
    return bench


def columns() -> dict[str, Column]:
    """Every result column, in table order."""
    return {c.key: c for b in registry().values() for c in b.columns}


def table_footnote() -> str:
    """What each column's number is, one clause per footnote: `AIME24, MATH-500: Pass@1 ...; ...`."""
    groups: dict[str, list[str]] = {}
    for b in registry().values():
        groups.setdefault(b.footnote, []).append(b.label)
    return "; ".join(f"{', '.join(labels)}: {note}" for note, labels in groups.items()) + "."
