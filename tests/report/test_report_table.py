"""The comparison table: seed's columns in order, rows merged per model, missing cells shown."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.errors import UserError
from vlmrl.eval.results import write_result
from vlmrl.report.table import MISSING, build_table


def _lmms_results(path, model_args, results):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": results, "config": {"model": "vllm", "model_args": model_args}}))
    return path


def _cells(table: str, model: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {model} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_table_has_seed_columns_merges_rows_and_marks_missing(tmp_path):
    base_text = write_result(
        tmp_path / "base_text.json", "base", {"aime24": 5.2083, "math500": 64.6, "gpqa_diamond": 30.7}
    )
    base_mm = _lmms_results(
        tmp_path / "lmms" / "2026-01-01T00-00-00_results.json",
        "model_version=base,chat_template=/t.jinja",
        {
            "mme": {"alias": "mme", "mme_perception_score,none": 1484.1, "mme_cognition_score,none": 703.6},
            "mmstar": {"alias": "mmstar", "average,none": 0.629, "average_stderr,none": "N/A"},
        },
    )
    rl = write_result(tmp_path / "rl.json", "RL text", {"aime24": 6.9, "math500": None})
    table, notes = build_table([base_text, base_mm, rl])
    lines = table.splitlines()
    assert lines[0] == (
        "| model | AIME24 | MATH-500 | GPQA-D | MathVerse | MathVista | MME cognition | MME perception | MMStar |"
    )
    assert _cells(table, "base") == ["5.2", "64.6", "30.7", MISSING, MISSING, "703.6", "1484.1", "62.9"]
    assert _cells(table, "RL text") == ["6.9", MISSING, MISSING, MISSING, MISSING, MISSING, MISSING, MISSING]
    assert sum(1 for line in lines if line.startswith("| base |")) == 1
    assert "not evaluated" in table


def test_names_and_errors(tmp_path):
    a = write_result(tmp_path / "a.json", "/ckpt/global_step_50/hf", {"math500": 70.04})
    result = CliRunner().invoke(
        app, ["report", "table", f"step50={a}", "--digits", "2", "-o", str(tmp_path / "t.md")]
    )
    assert result.exit_code == 0, result.output
    assert "| step50 | — | 70.04 |" in (tmp_path / "t.md").read_text()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "x", "scores": {"aime24": "high"}}))
    with pytest.raises(UserError, match=r"bad.json: scores.aime24"):
        build_table([bad])
    with pytest.raises(UserError, match="no such result file"):
        build_table([tmp_path / "nope.json"])


def test_rows_are_labelled_by_run_name_not_path():
    from vlmrl.report.table import ModelRow, render_table, run_label

    assert run_label("/home/me/runs/mixed-lr2e-6/global_step_300/actor/huggingface") == "actor/huggingface"
    assert run_label("/tmp/x/outputs/demo/train/final") == "train/final"
    assert run_label("/ckpts/my-run") == "my-run"
    assert run_label("Qwen/Qwen2.5-VL-7B-Instruct") == "Qwen/Qwen2.5-VL-7B-Instruct"
    table = render_table([ModelRow("/data/runs/text-grpo/checkpoint-40", {"aime24": 10.0})])
    assert "| text-grpo/checkpoint-40 |" in table and "/data/runs" not in table


def test_judge_failures_mark_the_cell_and_every_judged_task_is_counted(tmp_path):
    judge = {"judge_model": "tiny-verifier", "judge_url": "http://127.0.0.1:8001/v1", "api_type": "openai"}
    result = write_result(
        tmp_path / "mm.json",
        "tiny",
        {"mathverse_testmini": 50.0, "mathvista_testmini_format": None, "mmstar": 50.0},
        judge={
            "mathverse_testmini": {"judged": 1, "failed": 1, "not_needed": 0, "samples": 2, **judge},
            "mathvista_testmini_format": {"judged": 2, "failed": 0, "not_needed": 0, "samples": 2, **judge},
            "mmstar": {"judged": 0, "failed": 0, "not_needed": 2, "samples": 2},
        },
    )
    table, _ = build_table([result])
    cells = _cells(table, "tiny")
    assert cells[3] == "50.0*" and cells[4] == MISSING and cells[7] == "50.0"
    assert "* the judge failed" in table and "lower bound" in table
    line = next(x for x in table.splitlines() if x.startswith("- tiny:"))
    assert "MathVerse 1/1/0" in line and "MathVista 2/0/0" in line and "MMStar 0/0/2" in line
    assert "tiny-verifier at http://127.0.0.1:8001/v1" in line
    clean = write_result(tmp_path / "clean.json", "ok", {"mmstar": 1.0})
    assert "*" not in build_table([clean])[0] and "Judge calls" not in build_table([clean])[0]
