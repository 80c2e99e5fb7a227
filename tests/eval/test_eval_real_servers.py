"""`vlmrl eval text` against servers the project did not write: vLLM on CPU, `transformers serve`,
and (scripted, for its strictness) a server holding to OpenAI's request schema; plus vLLM in-process.

The tiny model's text is random: the tests check the protocol (every sample generated, graded,
counted, the run completes), not the answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from real_servers import free_port
from vlmrl.testing.scripted_judge import chat_reply, strict_openai

PROBLEMS = [
    {"problem": "What is $2 + 3$?", "solution": "5", "answer": "5", "subject": "Algebra", "level": 1,
     "unique_id": "test/algebra/1.json"},
    {"problem": "Compute $4 \\times 6$.", "solution": "24", "answer": "24", "subject": "Prealgebra",
     "level": 1, "unique_id": "test/prealgebra/2.json"},
]  # fmt: skip


@pytest.fixture
def math500_file(tmp_path):
    """Two problems in MATH-500's published jsonl layout (`test.jsonl` of HuggingFaceH4/MATH-500)."""
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    return path


def run_eval(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vlmrl.cli", "eval", "text", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, COLUMNS="200", NO_COLOR="1", **(env or {})),
    )


def common(math500_file, out_dir, n=2, max_new_tokens=12):
    return [
        "--benchmarks", "math500", "--data", f"math500={math500_file}", "--n", str(n),
        "--max-new-tokens", str(max_new_tokens), "--temperature", "0.7", "--out-dir", str(out_dir),
        "--max-retries", "1",
    ]  # fmt: skip


def assert_completed(result, out_dir, n=2, max_new_tokens=12):
    assert result.returncode == 0, result.stdout + result.stderr
    samples = [json.loads(line) for line in (out_dir / "math500" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == len(PROBLEMS) * n
    generations = [
        json.loads(line) for line in (out_dir / "math500" / "generations.jsonl").read_text().splitlines()
    ]
    assert len(generations) == len(PROBLEMS) * n
    results = json.loads((out_dir / "results.json").read_text())
    assert 0.0 <= results["scores"]["math500"] <= 100.0
    assert results["benchmarks"]["math500"]["num_problems"] == len(PROBLEMS)
    return samples, generations


@pytest.mark.slow
def test_eval_text_against_vllm_server_resolves_the_model_and_completes(vllm_server, math500_file, tmp_path):
    out = tmp_path / "eval"
    # No --served-model-name: the one model vLLM lists is used. The server (on every interface)
    # requires its API key, which the OpenAI backend sends from $OPENAI_API_KEY.
    result = run_eval(
        "--model", vllm_server.url.removesuffix("/v1"), *common(math500_file, out),
        env={"OPENAI_API_KEY": vllm_server.api_key},
    )  # fmt: skip
    _, generations = assert_completed(result, out)
    for g in generations:
        assert 1 <= g["num_tokens"] <= 12
        assert g["finish_reason"] in ("stop", "length")
    run = json.loads((out / "run.json").read_text())
    assert run["model"].startswith("http://127.0.0.1")


@pytest.mark.slow
def test_eval_text_against_transformers_serve(transformers_server, math500_file, tmp_path):
    out = tmp_path / "eval"
    # Its /v1/models lists no model loaded from a local path: the name must be given.
    result = run_eval(
        "--model", transformers_server.url, "--served-model-name", transformers_server.model,
        *common(math500_file, out),
    )  # fmt: skip
    assert_completed(result, out)


@pytest.mark.slow
def test_transformers_serve_refusing_top_k_is_one_clear_line(transformers_server, math500_file, tmp_path):
    result = run_eval(
        "--model", transformers_server.url, "--served-model-name", transformers_server.model,
        "--top-k", "5", *common(math500_file, tmp_path / "eval", n=1),
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "422" in line]
    assert lines, result.stderr
    assert "top_k" in lines[0] and "--top-k" in lines[0]


@pytest.mark.slow
def test_transformers_serve_without_a_model_name_says_to_pass_one(
    transformers_server, math500_file, tmp_path
):
    result = run_eval("--model", transformers_server.url, *common(math500_file, tmp_path / "eval", n=1))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--served-model-name" in result.stderr


def test_eval_text_against_a_strict_openai_schema_server(chat_server, math500_file, tmp_path):
    server = chat_server(
        strict_openai(lambda body: chat_reply("<think>\nok\n</think>\n<answer>\n5\n</answer>"))
    )
    out = tmp_path / "eval"
    result = run_eval("--model", server.url, *common(math500_file, out), timeout=120)
    samples, _ = assert_completed(result, out)
    assert sum(s["acc"] for s in samples) == 2  # "5" is right for the first problem only (n=2)
    for body in server.bodies:
        assert "top_k" not in body and "repetition_penalty" not in body
        assert body["temperature"] == 0.7 and body["max_tokens"] == 12


def test_strict_server_refusing_a_set_field_names_it_in_one_line(chat_server, math500_file, tmp_path):
    server = chat_server(strict_openai(lambda body: chat_reply("x")))
    result = run_eval(
        "--model", server.url, "--repetition-penalty", "1.1", *common(math500_file, tmp_path / "e", n=1),
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = next(line for line in result.stderr.splitlines() if "HTTP 400" in line)
    assert "repetition_penalty" in line and "--repetition-penalty" in line
    assert len(server.bodies) <= len(PROBLEMS)  # a refusal is not retried


@pytest.mark.parametrize("with_name", [False, True])
def test_server_down_is_one_line_naming_the_url(math500_file, tmp_path, with_name):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    name = ["--served-model-name", "m"] if with_name else []
    result = run_eval("--model", url, *name, *common(math500_file, tmp_path / "e", n=1), timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "httpx" not in result.stderr
    message = result.stderr.strip().splitlines()
    assert any(url in line and "ConnectError" in line for line in message), result.stderr


@pytest.mark.slow
def test_eval_text_with_the_vllm_backend_in_process(tiny_vlm_path, math500_file, tmp_path):
    out = tmp_path / "eval"
    result = run_eval(
        "--backend", "vllm", "--model", str(tiny_vlm_path), "--enforce-eager", "--skip-mm-profiling",
        "--dtype", "float32",
        "--max-model-len", "1024", *common(math500_file, out),
        timeout=420, env={"VLLM_CPU_KVCACHE_SPACE": "1"},
    )  # fmt: skip
    _, generations = assert_completed(result, out)
    for g in generations:
        assert 1 <= g["num_tokens"] <= 12
        assert g["finish_reason"] in ("stop", "length")
