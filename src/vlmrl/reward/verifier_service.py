"""Running the verifier model as a service: vLLM's server command, and a check that a served verifier
answers (health, then one known-right and one known-wrong judgement). `vlmrl verifier` prints these.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from vlmrl.errors import UserError
from vlmrl.reward import verifier as vf

# (question, model output, correct answer, expected verdict): one easy pair each way.
PROBES = (
    ("What is 1/2 + 1/4?", "Adding the fractions gives \\frac{3}{4}.", "0.75", "correct"),
    ("What is 1/2 + 1/4?", "Adding the fractions gives \\frac{2}{6}.", "0.75", "incorrect"),
)


def served_name(model: str, served_model_name: str | None = None) -> str:
    """The name clients send as `model`: the given one, else the model directory's name."""
    return served_model_name or Path(model.rstrip("/")).name or model


def serve_command(
    model: str,
    host: str,
    port: int,
    served_model_name: str,
    max_model_len: int,
    gpu_memory_utilization: float,
    tensor_parallel_size: int,
    dtype: str,
    extra: list[str],
) -> list[str]:
    """vLLM's OpenAI-compatible server for the verifier, as an argument list (`extra` goes to vLLM)."""
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--served-model-name",
        served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--gpu-memory-utilization",
        str(gpu_memory_utilization),
        "--tensor-parallel-size",
        str(tensor_parallel_size),
        "--dtype",
        dtype,
        "--enable-chunked-prefill",
        # Without this vLLM applies the model's generation_config.json to every request field we
        # leave out; the reward sends xVerify's own temperature/top_p and wants nothing else.
        "--generation-config",
        "vllm",
        *extra,
    ]


def printable(cmd: list[str]) -> str:
    """The command as a user would type it (`python`, not this interpreter's path)."""
    return shlex.join(["python"] + cmd[1:])


def require_vllm(cmd: list[str], port: int, name: str) -> None:
    """Raise a `UserError` saying how to serve the verifier elsewhere when vLLM is not installed here."""
    if importlib.util.find_spec("vllm") is None:
        raise UserError(
            "vLLM is not installed in this environment. On a GPU machine run `pip install vllm` and "
            "retry, or start the server on the GPU host yourself with:\n  "
            + printable(cmd)
            + f"\nthen set REWARD_MODEL_URL=http://<that host>:{port}/v1 REWARD_MODEL_NAME={name}"
        )


@dataclass
class ProbeResult:
    check: str
    expected: str
    got: str
    ok: bool


@dataclass
class VerifierCheck:
    url: str
    model: str | None
    results: list[ProbeResult]

    @property
    def failures(self) -> int:
        return sum(not r.ok for r in self.results)


def check_verifier(url: str | None, model: str | None = None, timeout_s: float = 30.0) -> VerifierCheck:
    """GET /models, then the PROBES judged by `model` (default $REWARD_MODEL_NAME, else the first listed).

    `url` defaults to $REWARD_MODEL_URL; the probes are skipped when the health check fails.
    """
    url = url or os.environ.get("REWARD_MODEL_URL")
    if not url:
        raise UserError("no verifier URL: pass --url http://HOST:PORT/v1 or set $REWARD_MODEL_URL")
    ok, detail = asyncio.run(vf.health(url, timeout_s))
    results = [ProbeResult("GET /models", "200", detail, ok)]
    model = model or os.environ.get("REWARD_MODEL_NAME") or (detail.split(", ")[0] if ok else None)
    if ok and model:
        settings = vf.VerifierSettings(url=url, model=model, timeout_s=timeout_s, max_retries=0)
        vf.reset_state()

        async def probe_all() -> list[vf.Judgement]:
            try:
                return list(await asyncio.gather(*(vf.judge(settings, q, o, a) for q, o, a, _ in PROBES)))
            finally:
                await vf.close_clients()

        for (_, output, answer, expected), j in zip(PROBES, asyncio.run(probe_all()), strict=True):
            got = j.verdict or (f"error: {j.detail}" if j.error else f"undecided: {j.detail}")
            results.append(ProbeResult(f"{output!r} vs {answer}", expected, got, j.verdict == expected))
    return VerifierCheck(url, model, results)
