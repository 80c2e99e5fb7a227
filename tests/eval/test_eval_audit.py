"""Rule versus judge (`vlmrl eval audit`, and the counts `eval text` records when a judge is configured):
real `vlmrl reward score` output, a judge played by the scripted loopback server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.eval.audit import read_scored, stratified
from vlmrl.eval.results import read_result
from vlmrl.eval.text import evaluate
from vlmrl.testing.scripted_judge import Script, ScriptedJudge, chat_reply, last_user_text


def fmt(answer: str) -> str:
    return f"<think>\nworking\n</think>\n<answer>\n{answer}\n</answer>"


# (response, ground truth): the scripted judge says Correct when a ground truth appears in the output.
RESPONSES = [
    (fmt("\\boxed{4}"), ["4"]),  # rule right, judge correct
    (fmt("\\boxed{7}"), ["7"]),  # rule right, judge correct
    (fmt("\\boxed{0.5}"), ["\\frac{1}{2}"]),  # rule right (math-verify), judge incorrect: disagree
    (fmt("\\boxed{9}"), ["8"]),  # rule wrong, judge incorrect
    (fmt("\\boxed{5} or \\boxed{6}"), ["5"]),  # rule wrong (a hedge), judge correct: disagree
    ("no tags, just 3", ["3"]),  # failed the format gate: not a rule verdict, not audited
]


@pytest.fixture
def scored(tmp_path):
    """`vlmrl reward score` output for RESPONSES (the real command, rules only)."""
    src = tmp_path / "responses.jsonl"
    src.write_text(
        "".join(
            json.dumps({"data_source": "toy", "response": r, "ground_truth": g, "question": f"q{i}"}) + "\n"
            for i, (r, g) in enumerate(RESPONSES)
        )
    )
    out = tmp_path / "scored.jsonl"
    result = CliRunner().invoke(app, ["reward", "score", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_audit_prints_the_matrix_and_the_disagreeing_samples(scored, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    samples, total = read_scored([scored])
    assert total == 6 and [s.rule_right for s in samples] == [True, True, True, False, False]
    with ScriptedJudge() as judge:
        out = tmp_path / "audit.json"
        args = ["eval", "audit", str(scored), "--verifier-url", judge.url, "-o", str(out)]  # its one model
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert len(judge.script.prompts) == 5
    doc = json.loads(out.read_text())
    assert doc["matrix"] == {
        "rule_right_judge_correct": 2,
        "rule_right_judge_incorrect": 1,
        "rule_right_judge_failed": 0,
        "rule_wrong_judge_correct": 1,
        "rule_wrong_judge_incorrect": 1,
        "rule_wrong_judge_failed": 0,
    }
    assert doc["agreement"] == pytest.approx(60.0) and doc["judged"] == 5
    assert sorted(
        (d["source"].rsplit(":", 1)[1], d["rule"], d["judge"]) for d in doc["disagreeing_samples"]
    ) == [
        ("3", "right", "incorrect"),
        ("5", "wrong", "correct"),
    ]
    assert "agreement: 60.0% of 5 judged; 2 disagree" in result.stdout
    assert "disagreeing samples" in result.stdout and f"{scored}:5" in result.stdout


def test_a_judge_outage_is_counted_not_taken_as_a_verdict(scored):
    with ScriptedJudge(Script(mode="error500")) as judge:
        args = ["eval", "audit", str(scored), "--verifier-url", judge.url]
        args += ["--verifier-served-model-name", judge.model_name, "--timeout-s", "2"]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "agreement: — of 0 judged; 0 disagree; judge failed on 5" in result.stdout


def test_sample_is_stratified_and_reproducible(scored):
    samples, _ = read_scored([scored])
    two = stratified(samples, 2, seed=3)
    assert sorted(s.rule_right for s in two) == [False, True]
    assert two == stratified(samples, 2, seed=3)
    four = stratified(samples, 4)
    assert sum(s.rule_right for s in four) == 2  # half and half while both sides last


def test_missing_judge_and_unscored_input_are_named(scored, tmp_path, monkeypatch):
    monkeypatch.delenv("REWARD_MODEL_URL", raising=False)
    result = CliRunner().invoke(app, ["eval", "audit", str(scored)])
    assert "no judge: pass --verifier-url" in str(result.exception)
    raw = tmp_path / "raw.jsonl"
    raw.write_text(json.dumps({"response": "x", "verdict": "rule"}) + "\n")
    args = [
        "eval",
        "audit",
        str(raw),
        "--verifier-url",
        "http://127.0.0.1:9/v1",
        "--verifier-served-model-name",
        "j",
    ]
    result = CliRunner().invoke(app, args)
    assert f"{raw}:1: a scored record needs `response`" in str(result.exception)


def test_eval_text_records_the_audit_when_a_judge_is_configured(chat_server, tmp_path):
    answers = {
        "What is 2 + 2?": "So it is \\boxed{4}.",
        "Half of one?": "It is $\\boxed{0.5}$.",
        "Nine?": "8",
    }

    def respond(body):
        text = last_user_text(body)
        return chat_reply(next(a for q, a in answers.items() if text.startswith(q)))

    server = chat_server(respond)
    rows = [
        {
            "data_source": "toy",
            "prompt": [{"role": "user", "content": q}],
            "reward_model": {"style": "rule", "ground_truth": [g]},
            "extra_info": {"index": i, "question": q},
        }
        for i, (q, g) in enumerate(
            [("What is 2 + 2?", "4"), ("Half of one?", "\\frac{1}{2}"), ("Nine?", "9")]
        )
    ]
    with ScriptedJudge() as judge:
        res = evaluate(
            server.url,
            rows_or_parquet=rows,
            rows_name="toy",
            backend="openai",
            n=1,
            out_dir=tmp_path / "e",
            reward_kwargs={"verifier_url": judge.url, "verifier_model": judge.model_name},
        )
    audit = res.benchmarks["toy"].metrics["audit"]
    assert audit["matrix"]["rule_right_judge_correct"] == 1  # 4
    assert audit["matrix"]["rule_right_judge_incorrect"] == 1  # 0.5 vs \frac{1}{2}: the judge disagrees
    assert audit["matrix"]["rule_wrong_judge_incorrect"] == 1  # 8 vs 9
    assert audit["agreement"] == pytest.approx(200 / 3)
    saved = read_result(tmp_path / "e" / "results.json")["benchmarks"]["toy"]["audit"]
    assert saved["matrix"] == audit["matrix"]
    disagreeing = json.loads((tmp_path / "e" / "toy" / "audit.json").read_text())["disagreeing_samples"]
    assert [d["pred"] for d in disagreeing] == ["0.5"]
