"""The benchmark registry: one file per benchmark, and the columns, tasks and footer derived from it."""

from __future__ import annotations

import pytest

from vlmrl.errors import UserError
from vlmrl.eval.benchmarks import LMMS, TEXT, benchmarks, columns, get_benchmark, registry, table_footnote
from vlmrl.eval.mm import DEFAULT_TASKS, JUDGED_TASKS
from vlmrl.utils.registry import module_names


def test_every_file_declares_its_benchmark():
    assert list(registry()) != [] and set(registry()) == set(module_names("vlmrl.eval.benchmarks"))
    assert [b.name for b in benchmarks(TEXT)] == ["aime24", "math500", "gpqa_diamond"]
    assert get_benchmark("gpqa_diamond").source == "gpqa_diamond"
    assert get_benchmark("gpqa_diamond").options == {"seed": 0}


def test_the_seed_table_comes_from_the_declarations():
    assert list(columns()) == [
        "aime24",
        "math500",
        "gpqa_diamond",
        "mathverse_testmini",
        "mathvista_testmini_format",
        "mme_cognition",
        "mme_perception",
        "mmstar",
    ]
    assert columns()["mme_perception"].unit == "sum, max 2000"
    assert table_footnote() == (
        "AIME24, MATH-500, GPQA-D: Pass@1 (mean accuracy over n samples, %); MathVerse, MathVista, MMStar: %; "
        "MME: lmms-eval sums (cognition max 800, perception max 2000)."
    )
    assert DEFAULT_TASKS == ("mathverse_testmini", "mathvista_testmini_format", "mme", "mmstar")
    assert set(JUDGED_TASKS) == {"mathverse_testmini", "mathvista_testmini_format"}


def test_unknown_or_wrong_harness_is_an_error():
    with pytest.raises(UserError, match="unknown benchmark 'aime25'; known: aime24, math500, gpqa_diamond"):
        get_benchmark("aime25")
    with pytest.raises(UserError, match="unknown benchmark 'mme'"):
        get_benchmark("mme")  # an lmms-eval task, not a `vlmrl eval text` benchmark
    assert get_benchmark("mme", LMMS).columns[0].metric == "mme_cognition_score"


def test_eval_help_describes_every_declared_benchmark(monkeypatch):
    from typer.testing import CliRunner

    from vlmrl.cli import app

    monkeypatch.setenv("COLUMNS", "4000")  # one line per option: nothing wrapped
    group = CliRunner().invoke(app, ["eval", "--help"]).output
    text = CliRunner().invoke(app, ["eval", "text", "--help"]).output
    for b in benchmarks(TEXT):
        assert b.header in group and f"{b.name} ({b.title}: {b.notes})" in text
    for b in benchmarks(LMMS):
        assert b.label in group
