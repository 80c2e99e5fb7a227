"""The verifier against real servers: `vlmrl verifier serve` starts vLLM (CPU, tiny model), `verifier
check` and the reward's verifier path make real judgement round trips; `transformers serve`, which
lists no model, shows that `verifier check` asks for a name instead of inventing one.

The tiny model's verdict text is random, so the tests check the protocol, not the verdicts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from vlmrl.reward import compute_score
from vlmrl.reward import verifier as vf

pytestmark = pytest.mark.slow


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vlmrl.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, COLUMNS="250", NO_COLOR="1"),
    )


def _requests_served(url: str) -> float:
    """vLLM's own count of finished requests (its Prometheus /metrics)."""
    text = httpx.get(url.removesuffix("/v1") + "/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total")
    )


def test_verifier_serve_started_vllm_and_reported_it(vllm_server):
    log = vllm_server.log()
    assert "ready in" in log and "REWARD_MODEL_NAME=tiny-verifier" in log
    assert vllm_server.inner_pid is not None and vllm_server.inner_pid != vllm_server.process.pid
    os.kill(vllm_server.inner_pid, 0)  # vLLM runs as its own process
    models = httpx.get(f"{vllm_server.url}/models", headers=vllm_server.headers, timeout=5).json()["data"]
    assert [(m["id"], m["owned_by"]) for m in models] == [("tiny-verifier", "vllm")]
    print(f"vLLM (CPU) ready after {vllm_server.startup_s:.0f} s")


def test_verifier_check_without_a_model_uses_the_listed_one(vllm_server):
    before = _requests_served(vllm_server.url)
    result = _cli(
        "verifier", "check", "--url", vllm_server.url, "--timeout-s", "60", "--api-key", vllm_server.api_key
    )
    out = result.stdout
    assert "tiny-verifier" in out  # the GET /models row, then the model the judgements used
    assert "(no models listed)" not in out
    assert "error:" not in out, out  # both judgements came back (their words are the tiny model's)
    assert result.returncode in (0, 1)
    assert ("answers correctly" in out) == (result.returncode == 0)
    assert _requests_served(vllm_server.url) >= before + 2


def test_reward_verifier_path_round_trips_through_vllm(vllm_server):
    settings = vf.VerifierSettings(
        url=vllm_server.url, model="tiny-verifier", timeout_s=60, max_retries=0, api_key=vllm_server.api_key
    )
    vf.reset_state()

    async def ask() -> vf.Judgement:
        try:
            return await vf.judge(settings, "What is 2+3?", "The answer is five apples.", "5")
        finally:
            await vf.close_clients()

    before = _requests_served(vllm_server.url)
    judgement = asyncio.run(ask())
    assert not judgement.error, judgement.detail
    assert judgement.verdict in ("correct", "incorrect") or judgement.detail.startswith("undecided reply")
    # The rules cannot compare "five apples" with 5: compute_score asks the verifier.
    score = compute_score(
        "a",
        "<think>x</think><answer>five apples</answer>",
        ["5"],
        verifier_url=vllm_server.url,
        verifier_model="tiny-verifier",
        verifier_max_retries=0,
        verifier_timeout_s=60,
        verifier_api_key=vllm_server.api_key,
    )
    assert score["verifier_error"] == 0
    assert score["verdict"] in ("verifier", "rule", "none")
    assert _requests_served(vllm_server.url) >= before + 1


def test_a_wrong_model_name_is_a_verifier_error_not_a_verdict(vllm_server):
    score = compute_score(
        "a",
        "<think>x</think><answer>five apples</answer>",
        ["5"],
        verifier_url=vllm_server.url,
        verifier_model="no-such-model",
        verifier_max_retries=0,
        verifier_api_key=vllm_server.api_key,
    )
    assert score["verifier_error"] == 1 and score["acc"] == 0


def _listening_on_every_interface(port: int) -> bool:
    """Whether the kernel has a listening TCP socket on 0.0.0.0:`port` (/proc/net/tcp: local address
    00000000, state 0A = LISTEN)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(
        fields[1] == f"00000000:{port:04X}" and fields[3] == "0A"
        for fields in (line.split() for line in lines)
    )


def test_a_server_on_every_interface_lets_in_only_requests_with_its_key(vllm_server):
    """`vlmrl verifier serve --host 0.0.0.0` (no key given): the key it generated and printed is the only
    way in; vLLM's own --api-key check refuses the rest; the reward's request carries it."""
    assert vllm_server.host == "0.0.0.0" and _listening_on_every_interface(vllm_server.port)
    key = vllm_server.api_key
    assert key and len(key) >= 24
    assert f"REWARD_MODEL_NAME=tiny-verifier REWARD_MODEL_API_KEY={key}" in vllm_server.log()
    assert f"--api-key {key}" not in vllm_server.log()  # handed to vLLM through its environment

    body = {"model": "tiny-verifier", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    chat = f"{vllm_server.url}/chat/completions"
    assert httpx.get(f"{vllm_server.url}/models", timeout=5).status_code == 401
    assert httpx.post(chat, json=body, timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    assert httpx.post(chat, json=body, headers=wrong, timeout=30).status_code == 401

    # The reward without the key: an error naming the refusal, never a verdict.
    vf.reset_state()
    keyless = vf.VerifierSettings(url=vllm_server.url, model="tiny-verifier", timeout_s=60, max_retries=0)

    async def ask(settings: vf.VerifierSettings) -> vf.Judgement:
        try:
            return await vf.judge(settings, "What is 2+3?", "The answer is five apples.", "5")
        finally:
            await vf.close_clients()

    refused = asyncio.run(ask(keyless))
    assert refused.error and "HTTP 401" in refused.detail and "API key" in refused.detail
    # With the key (from $REWARD_MODEL_API_KEY, as training sets it): served.
    vf.reset_state()
    score = compute_score(
        "a",
        "<think>x</think><answer>five apples</answer>",
        ["5"],
        verifier_url=vllm_server.url,
        verifier_model="tiny-verifier",
        verifier_max_retries=0,
        verifier_timeout_s=60,
        verifier_api_key=key,
    )
    assert score["verifier_error"] == 0
    # `vlmrl verifier check` without the key says so.
    result = _cli("verifier", "check", "--url", vllm_server.url, "--timeout-s", "60")
    assert result.returncode == 1 and "HTTP 401" in result.stdout and "API key" in result.stdout


def test_verifier_check_asks_for_a_name_when_the_server_lists_none(transformers_server):
    assert httpx.get(f"{transformers_server.url}/models", timeout=5).json()["data"] == []
    seen = len(transformers_server.log())
    result = _cli("verifier", "check", "--url", transformers_server.url)
    assert result.returncode == 1
    assert "no model listed; pass --served-model-name NAME" in result.stdout
    assert "(no models listed)" not in result.stdout
    assert "POST /v1/chat/completions" not in transformers_server.log()[seen:]  # no judgement sent
