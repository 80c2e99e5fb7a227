"""`vlmrl eval text` end to end: tiny model on CPU (hf), a scripted server (openai), resume, results."""

from __future__ import annotations

import json
import re
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.errors import UserError
from vlmrl.eval.results import read_result
from vlmrl.eval.text import evaluate, rows_to_items
from vlmrl.testing.scripted_judge import chat_reply, last_user_text

INSTRUCTION = "Respond as <think>\n...\n</think>\n<answer>\n...\n</answer>"


def _row(index: int, question: str, answers: list[str], images: list[bytes] | None = None, **extra):
    row = {
        "data_source": "held_out",
        "prompt": [{"role": "user", "content": f"{question} {INSTRUCTION}"}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": answers},
        "extra_info": {
            "index": index,
            "split": "test",
            "question": question,
            "answer": answers[0],
            "answer_type": extra.get("answer_type", "number"),
            "choices": extra.get("choices", []),
        },
    }
    if images is not None:
        row["images"] = [{"bytes": b} for b in images]
    return row


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (56, 56), (10, 200, 10)).save(buf, format="PNG")
    return buf.getvalue()


def _write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _lines(path):
    return path.read_text().splitlines()


def write_benchmark_files(root):
    """Local copies of the hub files, in the hub's columns (what `--data NAME=PATH` reads)."""
    import csv

    root.mkdir(parents=True, exist_ok=True)
    aime = root / "aime24.jsonl"
    aime.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": 60, "problem": "What is 2 + 2?", "answer": "4", "year": 2024},
                {"id": 61, "problem": "Name 5 + 2.", "answer": "7", "year": 2024},
            ]
        )
        + "\n"
    )
    gpqa = root / "gpqa_diamond.csv"
    with gpqa.open("w", newline="") as fh:
        writer = csv.DictWriter(
            fh,
            ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"],
        )
        writer.writeheader()
        writer.writerow(
            {
                "Question": "Which particle carries the electromagnetic force?",
                "Correct Answer": "photon",
                "Incorrect Answer 1": "gluon",
                "Incorrect Answer 2": "W boson",
                "Incorrect Answer 3": "graviton",
            }
        )
    return {"aime24": str(aime), "gpqa_diamond": str(gpqa)}


@pytest.mark.slow
def test_hf_backend_benchmark_files_resume_and_more_samples(tiny_vlm_path, tmp_path):
    rows = [  # a `native` mixed file: text rows carry `images: []`
        _row(0, "<image>How many squares?", ["1"], images=[_png()]),
        _row(1, "Compute 3 * 3.", ["9"], images=[]),
    ]
    parquet = _write_parquet(tmp_path / "held_out.parquet", rows)
    out = tmp_path / "eval"
    kwargs = dict(
        benchmarks=["aime24", "gpqa_diamond"],
        data_paths=write_benchmark_files(tmp_path / "bench"),
        rows_or_parquet=parquet,
        backend="hf",
        n=2,
        temperature=1.0,
        max_new_tokens=8,
        out_dir=out,
        model_name="tiny",
    )
    first = evaluate(str(tiny_vlm_path), **kwargs)
    assert {k: (b.generated, b.reused) for k, b in first.benchmarks.items()} == {
        "aime24": (4, 0),
        "gpqa_diamond": (2, 0),
        "held_out": (4, 0),
    }
    from vlmrl.data.prompt import DEFAULT_INSTRUCTION, INSTRUCTION_SEPARATOR

    for name, problems in (("aime24", 2), ("gpqa_diamond", 1), ("held_out", 2)):
        samples = [json.loads(line) for line in _lines(out / name / "samples.jsonl")]
        assert len(samples) == 2 * problems
        for s in samples:
            assert {"prompt", "response", "extracted", "acc", "format_ok", "verdict", "num_tokens"} <= set(s)
            assert 1 <= s["num_tokens"] <= 8
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert (metrics["num_problems"], metrics["n"]) == (problems, 2)
        assert metrics["pass@1"] == pytest.approx(100 * sum(s["acc"] for s in samples) / len(samples))
    aime_prompt = json.loads(_lines(out / "aime24" / "samples.jsonl")[0])["prompt"][0]["content"]
    # exactly as training rows are built
    assert aime_prompt == f"What is 2 + 2?{INSTRUCTION_SEPARATOR}{DEFAULT_INSTRUCTION}"
    gpqa = json.loads(_lines(out / "gpqa_diamond" / "samples.jsonl")[0])
    assert gpqa["ground_truth"][0] in "ABCD" and "photon" in gpqa["prompt"][0]["content"]
    result = read_result(out / "results.json")
    assert result["model"] == "tiny"
    assert set(result["scores"]) == {"aime24", "gpqa_diamond", "held_out"}
    summary = (out / "summary.md").read_text()
    assert "| aime24 | 2 | 2 |" in summary and "| gpqa_diamond | 1 | 2 |" in summary

    # Second run: everything is found, nothing generated (the journals do not grow).
    journal = _lines(out / "aime24" / "generations.jsonl")
    second = evaluate(str(tiny_vlm_path), **kwargs)
    assert [b.generated for b in second.benchmarks.values()] == [0, 0, 0]
    assert _lines(out / "aime24" / "generations.jsonl") == journal
    assert second.scores == first.scores

    # More samples: only the missing ones are generated.
    third = evaluate(str(tiny_vlm_path), **{**kwargs, "n": 3})
    assert {k: b.generated for k, b in third.benchmarks.items()} == {
        "aime24": 2,
        "gpqa_diamond": 1,
        "held_out": 2,
    }
    assert third.benchmarks["aime24"].metrics["n"] == 3

    with pytest.raises(UserError, match=r"other settings.*temperature"):
        evaluate(str(tiny_vlm_path), **{**kwargs, "temperature": 0.6})

    # A model retrained or re-exported into the same directory is not taken for the one that made the samples.
    import os
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_vlm_path, model)
    small = dict(rows_or_parquet=parquet, backend="hf", n=1, max_new_tokens=4, out_dir=tmp_path / "eval2")
    evaluate(str(model), **small)
    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000_000))
    with pytest.raises(UserError, match=r"other settings.*model_fingerprint"):
        evaluate(str(model), **small)


def _answer_server(answers: dict[str, str]):
    """Answers each question (matched by its first words) with a fixed response."""

    def respond(body):
        text = last_user_text(body)
        for question, reply in answers.items():
            if text.startswith(question):
                return chat_reply(reply, completion_tokens=len(reply.split()))
        return 500, {"error": "unknown question"}

    return respond


GOOD = "<think>\n2 and 2 make 4\n</think>\n<answer>\n4\n</answer>"
WRONG = "<think>\nguess\n</think>\n<answer>\n7\n</answer>"
UNFORMATTED = "The answer is 9."


def test_openai_backend_grades_with_the_training_reward(chat_server, tmp_path):
    server = chat_server(
        _answer_server({"What is 2 + 2?": GOOD, "Compute 3 * 3.": UNFORMATTED, "Name 5 + 2.": WRONG})
    )
    rows = [_row(0, "What is 2 + 2?", ["4"]), _row(1, "Compute 3 * 3.", ["9"]), _row(2, "Name 5 + 2.", ["8"])]
    res = evaluate(
        server.url,
        rows_or_parquet=rows,
        rows_name="toy",
        backend="openai",
        n=4,
        out_dir=tmp_path / "e",
        backend_options={"concurrency": 4},
        grader="reward",
    )
    m = res.benchmarks["toy"].metrics
    assert m["pass@1"] == pytest.approx(100 / 3)
    assert m["pass@4"] == pytest.approx(100 / 3)
    assert m["format_rate"] == pytest.approx(200 / 3)
    assert m["response_length"]["mean"] == pytest.approx(
        (len(GOOD.split()) + len(UNFORMATTED.split()) + len(WRONG.split())) / 3
    )
    samples = {
        json.loads(line)["problem_id"]: json.loads(line)
        for line in _lines(tmp_path / "e" / "toy" / "samples.jsonl")
    }
    assert samples["0"]["acc"] == 1 and samples["0"]["extracted"] == "4"
    assert samples["1"]["format_ok"] == 0 and samples["1"]["verdict"] == "format"
    assert samples["2"]["acc"] == 0 and samples["2"]["extracted"] == "7"
    assert len(server.bodies) == 12
    assert all(b["temperature"] == 0.6 and "top_k" not in b and b["top_p"] == 1.0 for b in server.bodies)


def test_interrupted_run_resumes_with_only_the_missing_samples(chat_server, tmp_path):
    down = {"on": True}

    def respond(body):
        if down["on"] and last_user_text(body).startswith("Compute"):
            return 503, {"error": "down"}
        return chat_reply(GOOD)

    server = chat_server(respond)
    rows = [_row(0, "What is 2 + 2?", ["4"]), _row(1, "Compute 3 * 3.", ["9"])]
    kwargs = dict(
        rows_or_parquet=rows,
        rows_name="toy",
        backend="openai",
        n=3,
        out_dir=tmp_path / "e",
        backend_options={"max_retries": 1, "retry_backoff_s": 0.01, "concurrency": 1},
    )
    with pytest.raises(UserError, match="re-run the same command to resume"):
        evaluate(server.url, **kwargs)
    saved = _lines(tmp_path / "e" / "toy" / "generations.jsonl")
    assert 1 <= len(saved) <= 3 and all(json.loads(line)["key"].startswith("0/") for line in saved)
    down["on"] = False
    before = len(server.bodies)
    res = evaluate(server.url, **kwargs)
    assert res.benchmarks["toy"].generated == 6 - len(saved)
    assert len(server.bodies) - before == 6 - len(saved)
    assert res.benchmarks["toy"].metrics["pass@1"] == pytest.approx(
        50.0
    )  # GOOD says 4: right once, wrong once

    # Same problem id, new question: generated afresh, never an old response graded against a new answer.
    rows[1] = _row(1, "Compute 2 * 2.", ["4"])
    again = evaluate(server.url, **kwargs)
    assert (again.benchmarks["toy"].generated, again.benchmarks["toy"].reused) == (3, 3)
    assert again.benchmarks["toy"].metrics["pass@1"] == pytest.approx(100.0)


def test_registry_benchmarks_grade_gpqa_letters_through_the_shuffle(chat_server, tmp_path):
    def respond(body):
        text = last_user_text(body)
        letter = re.search(r"^([A-D])\. photon$", text, re.M)
        if letter:  # the server knows physics: answers with whatever letter "photon" was shuffled to
            return chat_reply(f"<think>\nlight\n</think>\n<answer>\n{letter.group(1)}\n</answer>")
        return chat_reply(GOOD)  # says 4: right for the first AIME problem, wrong for the second

    server = chat_server(respond)
    res = evaluate(
        server.url,
        ["aime24", "gpqa_diamond"],
        data_paths=write_benchmark_files(tmp_path / "bench"),
        backend="openai",
        n=2,
        out_dir=tmp_path / "e",
    )
    assert res.scores == {"aime24": 50.0, "gpqa_diamond": 100.0}
    result = read_result(tmp_path / "e" / "results.json")
    assert result["scores"] == {"aime24": 50.0, "gpqa_diamond": 100.0}
    assert result["benchmarks"]["aime24"]["pass@2"] == 50.0


def test_rows_are_checked_with_row_and_key_named():
    good = _row(0, "q", ["1"])
    with pytest.raises(UserError, match=r"row 1: `reward_model.ground_truth`"):
        rows_to_items([good, {**good, "reward_model": {"ground_truth": []}}], "b")
    with pytest.raises(UserError, match=r"row 0: 1 <image> placeholder\(s\) but 0 image"):
        rows_to_items([_row(0, "<image>q", ["1"])], "b")
    with pytest.raises(UserError, match=r"row 0: `prompt`"):
        rows_to_items([{**good, "prompt": "just text"}], "b")
    with pytest.raises(UserError, match="unknown benchmark 'aime25'"):
        evaluate("m", ["aime25"], out_dir="/nonexistent")


def test_missing_benchmark_file_names_the_benchmark_and_path(tmp_path):
    with pytest.raises(UserError, match=r"benchmark aime24: .*nope\.jsonl"):
        evaluate("m", ["aime24"], data_paths={"aime24": str(tmp_path / "nope.jsonl")}, out_dir=tmp_path / "o")


def test_cli_eval_text_against_a_server(chat_server, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # $COLUMNS would set the table's width
    server = chat_server(_answer_server({"What is 2 + 2?": GOOD}))
    parquet = _write_parquet(tmp_path / "toy.parquet", [_row(0, "What is 2 + 2?", ["4"])])
    out = tmp_path / "cli"
    args = ["eval", "text", "--model", server.url, "--rows", f"toy={parquet}", "--n", "2", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"toy .*100\.0", result.output)
    assert read_result(out / "results.json")["scores"] == {"toy": 100.0}
    header = next(line for line in result.stdout.splitlines() if "benchmark" in line)
    for column in ("problems", "Pass@1", "pass@2", "format", "trunc.", "length", "new/old"):
        assert column in header, header  # whole, though stdout is not a terminal
    assert "…" not in result.stdout


def test_cli_eval_mm_without_lmms_eval_prints_the_command(tmp_path):
    bare = tmp_path / "bare"  # a venv directory whose python has no lmms-eval
    (bare / "bin").mkdir(parents=True)
    (bare / "bin" / "python").symlink_to(sys.executable)
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "mm",
            "--model",
            "/ckpt/hf",
            "--tasks",
            "mme",
            "-o",
            str(tmp_path),
            "--instruction",
            "Think.",
            "--lmms-python",
            str(bare),
        ],
    )
    assert result.exit_code == 3
    assert "-m lmms_eval --model vllm" in result.output
    assert "vlmrl eval mm --setup" in result.output
    dry = CliRunner().invoke(
        app,
        ["eval", "mm", "--model", "/ckpt/hf", "-o", str(tmp_path), "--instruction", "Think.", "--dry-run"],
    )
    assert dry.exit_code == 0, dry.output
    # the judge-scored tasks run under vlmrl's wrapper yamls (they count each judge call), found
    # through --include_path; MME and MMStar run as lmms-eval ships them
    assert "--tasks vlmrl_mathverse_testmini,vlmrl_mathvista_testmini_format,mme,mmstar" in dry.output
    assert "--include_path" in dry.output
    assert (tmp_path / "chat_template.jinja").is_file()
