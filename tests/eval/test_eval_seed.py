"""`vlmrl eval seed`: the seed's whole evaluation in one command -- bad input named in one line, the text
half against a server, resume, one results.json and the seed's two tables beside the published rows."""

from __future__ import annotations

import csv
import json
import os
import re

import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.errors import UserError
from vlmrl.eval.results import read_result
from vlmrl.eval.seed import SeedSettings, run_seed
from vlmrl.testing.scripted_judge import ScriptedJudge, chat_reply, last_user_text

AIME = [  # two AIME 2024 problems (AI-MO/aimo-validation-aime layout), with their published answers
    {
        "id": 60,
        "problem": "Every morning Aya goes for a $9$-kilometer-long walk and stops at a coffee shop "
        "afterwards. When she walks at a constant speed of $s$ kilometers per hour, the walk takes her 4 "
        "hours, including $t$ minutes spent in the coffee shop. When she walks $s+2$ kilometers per hour, "
        "the walk takes her 2 hours and 24 minutes, including $t$ minutes spent in the coffee shop. Suppose "
        "Aya walks at $s+\\frac{1}{2}$ kilometers per hour. Find the number of minutes the walk takes her, "
        "including the $t$ minutes spent in the coffee shop.",
        "solution": "...",
        "answer": "204",
        "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1",
    },
    {
        "id": 61,
        "problem": "There exist real numbers $x$ and $y$, both greater than 1, such that "
        "$\\log_x\\left(y^x\\right)=\\log_y\\left(x^{4y}\\right)=10$. Find $xy$.",
        "solution": "...",
        "answer": "25",
        "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_2",
    },
]
MATH500 = [
    {
        "problem": "How many positive whole-number divisors does 196 have?",
        "solution": "...",
        "answer": "9",
        "subject": "Number Theory",
        "level": 3,
        "unique_id": "test/number_theory/572.json",
    }
]
GPQA = {
    "Question": "Which particle carries the electromagnetic force?",
    "Correct Answer": "photon",
    "Incorrect Answer 1": "gluon",
    "Incorrect Answer 2": "W boson",
    "Incorrect Answer 3": "graviton",
}


def write_text_benchmarks(root):
    """Local copies in each hub dataset's columns: {name: path} for --data."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "aime24.jsonl").write_text("".join(json.dumps(r) + "\n" for r in AIME))
    (root / "math500.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MATH500))
    with (root / "gpqa_diamond.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, list(GPQA))
        writer.writeheader()
        writer.writerow(GPQA)
    return {
        "aime24": str(root / "aime24.jsonl"),
        "math500": str(root / "math500.jsonl"),
        "gpqa_diamond": str(root / "gpqa_diamond.csv"),
    }


def base_model(body):
    """A base-style model: the right answer in plain prose (AIME: only the first one), no tags."""
    text = last_user_text(body)
    if text.startswith("Every morning Aya"):
        return chat_reply("She walks 9 km in 3 hours at 3 km/h, so the walk takes $\\boxed{204}$ minutes.")
    if text.startswith("There exist real numbers"):
        return chat_reply("Taking logs, $xy = \\boxed{20}$.")
    if text.startswith("How many positive"):
        return chat_reply("Since $196 = 2^2 \\cdot 7^2$, it has $\\boxed{9}$ divisors.")
    letter = re.search(r"^([A-D])\. photon$", text, re.M)
    if letter:
        return chat_reply(f"The photon mediates it, so the answer is ({letter.group(1)}).")
    return 500, {"error": "unknown question"}


def test_text_half_results_tables_and_resume(chat_server, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    server = chat_server(base_model)
    data = write_text_benchmarks(tmp_path / "data")
    out = tmp_path / "seed"
    args = ["eval", "seed", "--model", "org/base-model", "--model-name", "base", "-b", "text"]
    args += ["--text-url", server.url, "--n", "2", "-o", str(out)]
    for name, path in data.items():
        args += ["--data", f"{name}={path}"]
    with ScriptedJudge() as judge:  # a judge by URL also audits the text half's rule verdicts
        result = CliRunner().invoke(app, [*args, "--judge-url", judge.url])
    assert result.exit_code == 0, result.output
    assert len(server.bodies) == 2 * (2 + 1 + 1)

    doc = read_result(out / "results.json")
    assert doc["model"] == "base"
    assert doc["scores"] == {"aime24": 50.0, "math500": 100.0, "gpqa_diamond": 100.0}
    assert doc["graders"] == dict.fromkeys(doc["scores"], "final-answer")
    assert doc["benchmarks"]["aime24"]["metrics"]["format_rate"] == 0.0
    audit = doc["benchmarks"]["aime24"]["metrics"]["audit"]
    assert audit["sampled"] == {"rule_right": 2, "rule_wrong": 2} and audit["agreement"] == 100.0
    assert audit["judge"]["model"] == judge.model_name

    # The seed's two tables: published rows first, then this checkpoint's, the grader named.
    text_table, mm_table = result.stdout.split("### Multimodal")
    assert "| Qwen2.5-VL-7B-Instruct (published) | 5.2 | 64.6 | 30.7 | R1-Evaluation |" in text_table
    assert "| base | 50.0 | 100.0 | 100.0 | final-answer |" in text_table
    assert "| Qwen2.5-VL-7B-Instruct (published) | 46.7 | 56.0 | 1484.1 | 703.6 | 62.9 |" in mm_table
    assert "| base | — | — | — | — | — |" in mm_table
    assert "MME perception | MME cognition" in mm_table and "swapped" in mm_table
    assert (out / "seed_tables.md").read_text() == result.stdout

    # Resume: every benchmark finished, nothing is asked again; a new grader re-runs the text half
    # from the saved samples (re-graded, not regenerated).
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(server.bodies) == 8 and "finished earlier: aime24, math500, gpqa_diamond" in again.output
    reward = CliRunner().invoke(app, [*args, "--grader", "reward"])
    assert reward.exit_code == 0, reward.output
    assert len(server.bodies) == 8
    assert read_result(out / "results.json")["scores"] == {"aime24": 0.0, "math500": 0.0, "gpqa_diamond": 0.0}
    assert "| base | 0.0 | 0.0 | 0.0 | reward |" in reward.stdout

    # `report table` over several checkpoints: the seed's before/after comparison.
    base = tmp_path / "base_results.json"
    base.write_bytes((out / "results.json").read_bytes())
    both = CliRunner().invoke(
        app, ["report", "table", "--published", f"rl={out / 'results.json'}", f"base={base}"]
    )
    assert both.exit_code == 0, both.output
    assert "| Qwen2.5-VL-7B-Instruct-RL-Text (published) | 6.9 | 68.0 | 35.5 | R1-Evaluation |" in both.stdout
    assert "| rl | 0.0 | 0.0 | 0.0 | reward |" in both.stdout and "| base | 0.0 |" in both.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"benchmarks": ["aime24", "aime25"]}, "unknown benchmark 'aime25' in --benchmarks; the seed's are"),
        ({"benchmarks": ["mme"], "data": {"mmstar": "/x"}}, "--data mmstar=...: 'mmstar' is not among"),
        ({"benchmarks": ["mme"], "data": {"mme": "/nonexistent/MME"}}, "--data mme=/nonexistent/MME: no such directory"),
        ({"benchmarks": ["mathvista_testmini_format"]}, "mathvista_testmini_format are scored by an LLM judge and none is given: pass --judge-model"),
        ({"judge_model": "a", "judge_url": "http://b"}, "--judge-model and --judge-url both given"),
        ({"grader": "boxed"}, "unknown grader 'boxed'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_it(change, message, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = SeedSettings(model="m", out_dir=tmp_path / "o", **change)
    with pytest.raises(UserError) as info:
        run_seed(settings)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "o").exists()  # nothing started, nothing written


def test_missing_lmms_eval_is_named_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMRL_LMMS_PYTHON", str(tmp_path / "no-such-python"))
    settings = SeedSettings(
        model="m", out_dir=tmp_path / "o", benchmarks=["mme"], lmms_python=str(tmp_path / "none")
    )
    with pytest.raises(
        UserError,
        match=r"lmms-eval python .*none: not found.*or run only the text benchmarks with --benchmarks aime24",
    ):
        run_seed(settings)


@pytest.mark.slow
def test_seed_runs_text_and_the_judged_tasks_for_real(vllm_server, tiny_vlm_path, tmp_path, monkeypatch):
    """The tiny model end to end: the text half against a real vLLM server, MMStar, MathVerse and
    MathVista through the real lmms-eval (one run) judged by `vlmrl verifier serve`'s vLLM; then a
    re-run that finds everything finished and starts nothing. (`bench/seed_eval.py` runs all seven
    with the servers started by the command itself.)"""
    import lmms_hub_copies as hub

    from vlmrl.eval.lmms_env import LMMS_EVAL_VERSION, find_lmms_python, probe

    python = find_lmms_python()
    info = probe(python) if python else None
    if info is None or info.version != LMMS_EVAL_VERSION or info.vllm is None:
        pytest.skip(f"no lmms-eval {LMMS_EVAL_VERSION} venv with vLLM; create it with `make lmms-env`")
    for var, value in {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "OPENAI_API_KEY": vllm_server.api_key or "local",  # the text client and the judge send it
    }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("COLUMNS", raising=False)
    data = write_text_benchmarks(tmp_path / "data")
    data["mmstar"] = str(hub.write_mmstar_copy(tmp_path / "MMStar"))
    data["mathverse_testmini"] = str(hub.write_mathverse_copy(tmp_path / "MathVerse"))
    mm = ["mmstar", "mathverse_testmini"]
    if not info.missing_for(["mathvista_testmini_format"]) or os.environ.get("VLMRL_REQUIRE_LMMS") == "1":
        mm.append(
            "mathvista_testmini_format"
        )  # its task imports Levenshtein (`vlmrl eval mm --setup` adds it)
        data["mathvista_testmini_format"] = str(hub.write_mathvista_copy(tmp_path / "MathVista"))
    out = tmp_path / "seed"
    args = ["eval", "seed", "--model", str(tiny_vlm_path), "--model-name", "tiny", "-o", str(out)]
    args += ["-b", ",".join(["text", *mm]), "--n", "2"]
    args += ["--text-url", vllm_server.url, "--served-model-name", vllm_server.model]
    args += ["--judge-url", vllm_server.url, "--judge-served-model-name", vllm_server.model]
    args += [
        "--max-new-tokens",
        "16",
        "--max-model-len",
        "1024",
        "--mm-batch-size",
        "8",
        "--lmms-python",
        python,
    ]
    for engine_arg in (
        "dtype=float32",
        "enforce_eager=True",
        'limit_mm_per_prompt={"image":1,"video":0}',
        'mm_processor_kwargs={"max_pixels":12544}',
    ):
        args += ["--model-arg", engine_arg]
    for name, path in data.items():
        args += ["--data", f"{name}={path}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output[-4000:]

    doc = read_result(out / "results.json")
    assert set(doc["scores"]) == {"aime24", "math500", "gpqa_diamond", *mm}
    assert doc["graders"] == dict.fromkeys(["aime24", "math500", "gpqa_diamond"], "final-answer")
    assert doc["benchmarks"]["aime24"]["metrics"]["num_samples"] == 2 * len(AIME)
    for task in mm[1:]:
        counts = doc["judge"][task]
        assert counts["samples"] == 2 and counts["judged"] + counts["failed"] + counts["not_needed"] == 2
        assert counts["judge_model"] == vllm_server.model
    assert doc["judge"]["mmstar"]["not_needed"] == doc["judge"]["mmstar"]["samples"]
    text_table, mm_table = result.stdout.split("### Multimodal")
    assert re.search(r"\| tiny \| \d+\.\d \| \d+\.\d \| \d+\.\d \| final-answer \|", text_table)
    assert (
        "| Qwen2.5-VL-7B-Instruct-RL-Text-Multimodal (published) | 51.8 | 71.4 | 1603.5 | 606.4 | 64.5 |"
        in mm_table
    )
    tiny = next(line for line in mm_table.splitlines() if line.startswith("| tiny"))
    assert tiny.count("—") == 2 + (len(mm) == 2)  # MME (and MathVista when it cannot run here): not run

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output[-3000:]
    assert f"ran: none; finished earlier: aime24, math500, gpqa_diamond, {', '.join(mm)}" in again.output
    assert read_result(out / "results.json")["scores"] == doc["scores"]


def test_a_failing_benchmark_leaves_the_finished_ones_in_results(chat_server, tmp_path):
    def respond(body):
        if "photon" in last_user_text(body):
            return 400, {"error": {"message": "this server refuses GPQA"}}
        return base_model(body)

    server = chat_server(respond)
    settings = SeedSettings(
        model="org/base-model",
        out_dir=tmp_path / "seed",
        benchmarks=["aime24", "math500", "gpqa_diamond"],
        data=write_text_benchmarks(tmp_path / "data"),
        text_url=server.url,
        n=1,
    )
    with pytest.raises(UserError, match="refuses GPQA"):
        run_seed(settings)
    assert read_result(tmp_path / "seed" / "results.json")["scores"] == {"aime24": 50.0, "math500": 100.0}
