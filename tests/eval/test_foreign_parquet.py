"""A veRL parquet written by another tool (string ground truth, no vlmrl columns) at every door:
`vlmrl data inspect`, `vlmrl eval text --rows` and `compute_score`."""

from __future__ import annotations

import re

import datasets
import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.errors import UserError
from vlmrl.eval.results import read_result
from vlmrl.eval.text import rows_to_items
from vlmrl.reward import compute_score, score_batch
from vlmrl.testing.scripted_judge import chat_reply, last_user_text

QUESTIONS = [("What is 2 + 2?", "4"), ("What is 6 * 7?", "42")]


def _verl_example_parquet(path):
    """As veRL's `examples/data_preprocess/gsm8k.py` writes it: a `datasets` map to veRL's columns,
    `reward_model.ground_truth` one string, `extra_info` with split/index/answer/question only."""
    raw = datasets.Dataset.from_list(
        [{"question": q, "answer": f"Some working.\n#### {a}"} for q, a in QUESTIONS]
    )

    def process(example, idx):
        solution = example.pop("answer").split("#### ")[-1]
        question = example.pop("question")
        return {
            "data_source": "openai/gsm8k",
            "prompt": [{"role": "user", "content": question + " Answer in <think> and <answer> tags."}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": solution},
            "extra_info": {"split": "test", "index": idx, "answer": solution, "question": question},
        }

    raw.map(process, with_indices=True).to_parquet(str(path))
    return path


def _reply(answer: str) -> str:
    return f"<think>\nworking\n</think>\n<answer>\nThe answer is \\boxed{{{answer}}}.\n</answer>"


def test_data_inspect_reads_a_string_ground_truth(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    path = _verl_example_parquet(tmp_path / "gsm8k.parquet")
    result = CliRunner().invoke(app, ["data", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "openai/gsm8k" in result.output and re.search(r"\b2\b", result.output)


def test_eval_text_rows_scores_a_string_ground_truth(chat_server, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    path = _verl_example_parquet(tmp_path / "gsm8k.parquet")
    answers = dict(QUESTIONS)

    def respond(body):
        text = last_user_text(body)
        question = next(q for q in answers if text.startswith(q))
        return chat_reply(_reply(answers[question]))

    server = chat_server(respond)
    out = tmp_path / "out"
    args = ["eval", "text", "--model", server.url, "--rows", f"gsm8k={path}", "--n", "1", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_result(out / "results.json")["scores"] == {"gsm8k": 100.0}


def test_compute_score_takes_a_string_as_one_answer():
    info = {"question": "q"}
    assert compute_score("openai/gsm8k", _reply("3"), "3", info)["acc"] == 1
    assert compute_score("openai/gsm8k", _reply("4"), "3", info)["acc"] == 0
    assert compute_score("s", _reply("3"), ["three", "3"], info)["acc"] == 1  # a list: several
    batch = score_batch([{"solution_str": _reply("3"), "ground_truth": "3"}])
    assert batch[0]["acc"] == 1
    with pytest.raises(TypeError, match="string .* or a list"):
        compute_score("s", _reply("3"), 3, info)
    with pytest.raises(TypeError, match="dict"):
        compute_score("s", _reply("3"), {"answer": "3"}, info)


def test_a_ground_truth_that_is_neither_names_the_row():
    row = {
        "data_source": "x",
        "prompt": [{"role": "user", "content": "q"}],
        "reward_model": {"style": "rule", "ground_truth": 3},
        "extra_info": {},
    }
    with pytest.raises(UserError, match=r"row 0: `reward_model.ground_truth` must be a string .* got int"):
        rows_to_items([row], "b")
