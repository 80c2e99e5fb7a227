"""The two grading protocols of `vlmrl eval text`: the field's final-answer protocol (default) and the
training reward (`--grader reward`), on real MATH-500 problems answered the way a base model answers."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.errors import UserError
from vlmrl.eval.grading import final_statement, grade_final_answer
from vlmrl.eval.results import read_result
from vlmrl.eval.text import evaluate
from vlmrl.report.table import build_table
from vlmrl.testing.scripted_judge import chat_reply, last_user_text

# Six problems of HuggingFaceH4/MATH-500 (test.jsonl), typed in with their published answers, each with
# the response a base model gives: worked prose, the right answer in \boxed{}, no <think>/<answer> tags.
MATH500 = [
    (
        {
            "problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.  Enter "
            "your answer in the form $(r,\\theta),$ where $r > 0$ and $0 \\le \\theta < 2 \\pi.$",
            "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
            "subject": "Precalculus",
            "level": 2,
            "unique_id": "test/precalculus/807.json",
        },
        "We have $r = \\sqrt{0^2 + 3^2} = 3$. The point lies on the positive $y$-axis, so "
        "$\\theta = \\frac{\\pi}{2}$. Therefore the polar coordinates are "
        "$\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$.",
    ),
    (
        {
            "problem": "Define\n\\[p = \\sum_{k = 1}^\\infty \\frac{1}{k^2} \\quad \\text{and} \\quad q = "
            "\\sum_{k = 1}^\\infty \\frac{1}{k^3}.\\]Find a way to write\n\\[\\sum_{j = 1}^\\infty "
            "\\sum_{k = 1}^\\infty \\frac{1}{(j + k)^3}\\]in terms of $p$ and $q.$",
            "answer": "p - q",
            "subject": "Intermediate Algebra",
            "level": 5,
            "unique_id": "test/intermediate_algebra/1994.json",
        },
        "Group the terms by $n = j + k$. For each $n \\ge 2$ there are $n - 1$ pairs, so the sum is\n"
        "$$\\sum_{n=2}^\\infty \\frac{n-1}{n^3} = \\sum_{n=2}^\\infty \\frac{1}{n^2} - "
        "\\sum_{n=2}^\\infty \\frac{1}{n^3} = (p - 1) - (q - 1).$$\nThe answer is $\\boxed{p - q}$.",
    ),
    (
        {
            "problem": "If $f(x) = \\frac{3x-2}{x-2}$, what is the value of $f(-2) +f(-1)+f(0)$? Express "
            "your answer as a common fraction.",
            "answer": "\\frac{14}{3}",
            "subject": "Algebra",
            "level": 3,
            "unique_id": "test/algebra/2584.json",
        },
        "$f(-2) = \\frac{-8}{-4} = 2$, $f(-1) = \\frac{-5}{-3} = \\frac{5}{3}$ and "
        "$f(0) = \\frac{-2}{-2} = 1$. Adding them, $2 + \\frac{5}{3} + 1 = \\boxed{\\frac{14}{3}}$.",
    ),
    (
        {
            "problem": "How many positive whole-number divisors does 196 have?",
            "answer": "9",
            "subject": "Number Theory",
            "level": 3,
            "unique_id": "test/number_theory/572.json",
        },
        "Since $196 = 2^2 \\cdot 7^2$, it has $(2+1)(2+1) = \\boxed{9}$ divisors.\n\nI hope this helps!",
    ),
    (
        {
            "problem": "A regular hexagon can be divided into six equilateral triangles. If the perimeter "
            "of one of the triangles is 21 inches, what is the perimeter, in inches, of the regular "
            "hexagon?",
            "answer": "42",
            "subject": "Prealgebra",
            "level": 2,
            "unique_id": "test/prealgebra/1622.json",
        },
        "Each side of a triangle is $21 / 3 = 7$ inches, and the hexagon has six such sides, so its "
        "perimeter is $6 \\cdot 7 = \\boxed{42}$ inches.",
    ),
    (
        {
            "problem": "What is the smallest positive perfect cube that can be written as the sum of three "
            "consecutive integers?",
            "answer": "27",
            "subject": "Number Theory",
            "level": 3,
            "unique_id": "test/number_theory/515.json",
        },
        "The sum of three consecutive integers $(k-1) + k + (k+1) = 3k$ is a multiple of 3. The smallest "
        "positive cube divisible by 3 is $3^3 = 27 = 8 + 9 + 10$, so the answer is $\\boxed{27}$.",
    ),
]


def base_model_server():
    """Answers each MATH-500 problem (matched by its first words) like a base model: prose, boxed."""
    answers = {p["problem"][:40]: r for p, r in MATH500}

    def respond(body):
        text = last_user_text(body)
        for head, response in answers.items():
            if text.startswith(head):
                return chat_reply(response, completion_tokens=len(response.split()))
        return 500, {"error": "unknown question"}

    return respond


@pytest.fixture
def math500_file(tmp_path):
    """The problems in MATH-500's published layout (`test.jsonl` of HuggingFaceH4/MATH-500)."""
    path = tmp_path / "math500" / "test.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps({**p, "solution": r}) + "\n" for p, r in MATH500))
    return path


def test_base_style_answers_score_100_under_the_field_protocol_and_0_under_the_reward(
    chat_server, math500_file, tmp_path
):
    server = chat_server(base_model_server())
    common = dict(data_paths={"math500": str(math500_file)}, backend="openai", n=2)
    field = evaluate(server.url, ["math500"], out_dir=tmp_path / "field", **common)
    m = field.benchmarks["math500"].metrics
    assert m["num_problems"] == len(MATH500)
    assert (m["pass@1"], m["format_rate"], m["grader"]) == (100.0, 0.0, "final-answer")

    asked = len(server.bodies)
    reward = evaluate(server.url, ["math500"], out_dir=tmp_path / "field", grader="reward", **common)
    assert len(server.bodies) == asked  # re-graded from the same samples: nothing generated again
    m = reward.benchmarks["math500"].metrics
    assert (m["pass@1"], m["format_rate"], m["grader"]) == (0.0, 0.0, "reward")
    samples = [json.loads(line) for line in (tmp_path / "field" / "math500" / "samples.jsonl").open()]
    assert {s["verdict"] for s in samples} == {"format"}

    again = evaluate(server.url, ["math500"], out_dir=tmp_path / "field", **common)
    assert again.scores == {"math500": 100.0}
    samples = [json.loads(line) for line in (tmp_path / "field" / "math500" / "samples.jsonl").open()]
    assert {s["verdict"] for s in samples} == {"rule"}
    assert samples[0]["extracted"] == "\\left(3, \\frac{\\pi}{2}\\right)"

    result = read_result(tmp_path / "field" / "results.json")
    assert result["scores"] == {"math500": 100.0} and result["graders"] == {"math500": "final-answer"}
    assert "final-answer" in (tmp_path / "field" / "summary.md").read_text()


def test_cli_grader_option_and_the_table_say_which_grader(chat_server, math500_file, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    server = chat_server(base_model_server())
    outputs = {}
    for grader in ("final-answer", "reward"):
        out = tmp_path / grader
        args = ["eval", "text", "--model", server.url, "-b", "math500", "--data", f"math500={math500_file}"]
        args += ["--n", "1", "-o", str(out), "--model-name", f"base {grader}"]
        result = CliRunner().invoke(app, [*args, *(["--grader", grader] if grader == "reward" else [])])
        assert result.exit_code == 0, result.output
        assert f"graded by {grader}" in result.stdout
        outputs[grader] = out / "results.json"
    table, _ = build_table([outputs["final-answer"], outputs["reward"]])
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| base")}
    assert re.search(r"\| 100\.0 \|.*\| final-answer \|", rows["base final-answer"])
    assert re.search(r"\| 0\.0 \|.*\| reward \|", rows["base reward"])
    assert "final-answer" in table.split("\n\n")[-1]  # the footnote says what each grader is

    bad = CliRunner().invoke(app, ["eval", "text", "--model", server.url, "-b", "math500", "--grader", "x"])
    assert isinstance(bad.exception, UserError)
    assert "unknown grader 'x'; choose one of: final-answer, reward" in str(bad.exception)


@pytest.mark.parametrize(
    ("response", "statement"),
    [
        ("So $x = \\boxed{5}$. Let me double-check: yes.", "So $x = \\boxed{5}$."),
        ("<think>\nthe answer might be 6\n</think>\n<answer>\n5\n</answer>", "5"),
        ("The answer is:\n\n$\\frac{1}{2}$\n\nHope this helps.", "The answer is:\n\n$\\frac{1}{2}$"),
        ("Option A fails, option B too.\nTherefore, the correct answer is (C).", "Therefore, the correct answer is (C)."),
        ("Thus the total is 12 apples.\n\nThat is all.", "Thus the total is 12 apples."),
        ("I do not know.", ""),
    ],
)  # fmt: skip
def test_final_statement_reads_the_whole_response(response, statement):
    assert final_statement(response) == statement


def test_final_answer_grader_keeps_the_rewards_guards_and_reads_letters():
    items = [
        ("Hence the answer is $\\boxed{5}$ or $6$.", ["5"], {}),  # a hedge stays wrong
        ("I think the answer is not $\\boxed{5}$.", ["5"], {}),  # taken back
        ("A is out and so is B. The correct answer is (C).", ["C"], {"answer_type": "choice"}),
        ("Therefore, the answer is $\\frac{2}{4}$.", ["\\frac{1}{2}"], {}),  # math-verify decides
        ("<think>\nx\n</think>\n<answer>\n\\boxed{7}\n</answer>", ["7"], {}),
        ("B looks close, but the units rule it out.\n\n**Answer: C**", ["C"], {"answer_type": "choice"}),
        ("Therefore\n$$\n\\boxed{12}\n$$", ["12"], {}),  # a box in display math
    ]
    got = grade_final_answer([{"response": r, "ground_truth": g, "extra_info": e} for r, g, e in items])
    assert [g["acc"] for g in got] == [0, 0, 1, 1, 1, 1, 1]
    assert [g["format_ok"] for g in got] == [0, 0, 0, 0, 1, 0, 0]


def test_unknown_grader_is_an_error():
    with pytest.raises(UserError, match="unknown grader 'boxed'"):
        evaluate("m", ["math500"], out_dir="/nonexistent", grader="boxed")
