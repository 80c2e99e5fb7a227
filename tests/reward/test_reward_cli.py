"""`vlmrl reward score` and `vlmrl verifier serve/check` through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.reward import verifier as vf
from vlmrl.testing.scripted_judge import Script, ScriptedJudge

runner = CliRunner()


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vlmrl.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("REWARD_MODEL_URL", raising=False)
    monkeypatch.delenv("REWARD_MODEL_NAME", raising=False)
    vf.reset_state()


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_reward_score_writes_rows_and_summary(data_dir):
    src = data_dir / "responses.jsonl"
    _write(
        src,
        [
            {
                "data_source": "a",
                "response": "<think>x</think><answer>\\boxed{2}</answer>",
                "ground_truth": ["2"],
            },
            {"data_source": "a", "solution_str": "<think>x</think><answer>3</answer>", "ground_truth": "2"},
            {"data_source": "b", "response": "2", "ground_truth": ["2"], "question": "1+1?", "id": 7},
        ],
    )
    out = data_dir / "scored.jsonl"
    result = runner.invoke(app, ["reward", "score", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["acc"] for r in rows] == [1, 0, 0]
    assert [r["verdict"] for r in rows] == ["rule", "rule", "format"]
    assert rows[2]["id"] == 7  # input fields are kept
    assert "format rate" in result.output and "0.6667" in result.output
    assert "verifier errors" in result.output


def test_reward_score_with_verifier(data_dir):
    src = data_dir / "responses.jsonl"
    _write(
        src,
        [
            {
                "data_source": "a",
                "response": "<think>x</think><answer>five apples</answer>",
                "ground_truth": ["five"],
            }
        ],
    )
    out = data_dir / "scored.jsonl"
    with ScriptedJudge() as judge:
        result = runner.invoke(
            app,
            [
                "reward",
                "score",
                str(src),
                "-o",
                str(out),
                "--verifier-url",
                judge.url,
                "--verifier-served-model-name",
                "scripted-judge",
            ],
        )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["verdict"] == "verifier"


def test_reward_score_names_line_and_missing_field(data_dir):
    src = data_dir / "responses.jsonl"
    _write(
        src,
        [{"data_source": "a", "response": "x", "ground_truth": "1"}, {"data_source": "a", "response": "x"}],
    )
    proc = _run("reward", "score", str(src), "-o", str(data_dir / "o.jsonl"))
    assert proc.returncode == 2
    assert f"{src}:2" in proc.stderr and "ground_truth" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (data_dir / "o.jsonl").exists()


def test_reward_score_bad_json_line(data_dir):
    src = data_dir / "responses.jsonl"
    src.write_text('{"data_source": "a"\n')
    proc = _run("reward", "score", str(src), "-o", str(data_dir / "o.jsonl"))
    assert proc.returncode == 2 and f"{src}:1" in proc.stderr and "not valid JSON" in proc.stderr


def test_verifier_serve_dry_run_and_missing_vllm():
    result = runner.invoke(
        app,
        [
            "verifier",
            "serve",
            "--model",
            "/models/xVerify-0.5B-I",
            "--port",
            "9001",
            "--dry-run",
            "--max-num-seqs",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "-m vllm.entrypoints.openai.api_server --model /models/xVerify-0.5B-I" in out
    assert "--served-model-name xVerify-0.5B-I" in out and "--port 9001" in out
    assert "--max-num-seqs 32" in out
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        proc = _run("verifier", "serve", "--model", "/models/x")
        assert proc.returncode == 2
        assert "pip install vllm" in proc.stderr and "vllm.entrypoints.openai.api_server" in proc.stderr


def test_verifier_check_passes_against_a_good_judge():
    def judge(prompt: str) -> str:
        return "Correct" if "3}{4}" in prompt else "Incorrect"

    with ScriptedJudge(Script(judge=judge)) as server:
        result = runner.invoke(app, ["verifier", "check", "--url", server.url])
    assert result.exit_code == 0, result.output
    assert "answers correctly" in result.output


@pytest.mark.parametrize("mode", ["ok", "error500", "undecided"])
def test_verifier_check_fails_on_a_bad_judge(mode):
    # "ok" with the default judge: it calls 3/4 vs 0.75 incorrect, a wrong judgement.
    with ScriptedJudge(Script(mode=mode)) as server:
        result = runner.invoke(app, ["verifier", "check", "--url", server.url, "--model", "scripted-judge"])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output


def test_verifier_check_unreachable():
    result = runner.invoke(app, ["verifier", "check", "--url", "http://127.0.0.1:9/v1", "--timeout-s", "2"])
    assert result.exit_code == 1
    assert "FAIL" in result.output


def test_reward_score_with_the_verifier_down_warns_naming_the_url(data_dir):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens here
    src = data_dir / "responses.jsonl"
    row = {
        "data_source": "a",
        "response": "<think>x</think><answer>five apples</answer>",
        "ground_truth": ["five"],
    }
    _write(src, [row])
    args = ["reward", "score", str(src), "-o", str(data_dir / "out.jsonl"), "--verifier-url", url]
    result = runner.invoke(app, [*args, "--verifier-model", "m", "--verifier-max-retries", "0"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and url in result.stderr and "1 of 1" in result.stderr
    assert "--verifier-model is deprecated; use --verifier-served-model-name" in result.stderr
    assert "--verifier-timeout-s" in result.stderr  # the setting to change when it is only slow
