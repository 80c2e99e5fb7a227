"""Running the verifier model as a service: vLLM's OpenAI-compatible server started, probed until
ready and stopped, and a check that a served verifier answers (health, then one known-right and one
known-wrong judgement). `vlmrl verifier serve/check` parse options and print what these return.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vlmrl.errors import UserError
from vlmrl.reward import verifier as vf
from vlmrl.utils import openai_api

PROBES = vf.PROBES  # one easy judgement each way


def served_name(model: str, served_model_name: str | None = None) -> str:
    """The name clients send as `model`: the given one, else the model directory's name (or hub id)."""
    return served_model_name or Path(model.rstrip("/")).name or model


def serve_command(
    model: str,
    *,
    host: str = "0.0.0.0",
    port: int = 8888,
    served_model_name: str | None = None,
    max_model_len: int = 8192,
    gpu_memory_utilization: float = 0.9,
    tensor_parallel_size: int = 1,
    dtype: str = "auto",
    extra: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """The command line of vLLM's OpenAI server for a verifier (`python -m ...`: the `vllm` console
    script needs the distribution to be named `vllm`, which the CPU build is not)."""
    return [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--served-model-name",
        served_model_name or served_name(model),
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
            "retry, or start the server on the GPU host yourself, with a secret of your own as its key:\n  "
            + "VLLM_API_KEY=<secret> "
            + printable(cmd)
            + f"\nthen set REWARD_MODEL_URL=http://<that host>:{port}/v1 REWARD_MODEL_NAME={name} "
            + "REWARD_MODEL_API_KEY=<secret>"
        )


#: The variable the reward, `vlmrl verifier check` and training read the verifier's API key from.
API_KEY_ENV = "REWARD_MODEL_API_KEY"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """Whether a server bound to `host` can be reached from this machine only."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def server_api_key(host: str, api_key: str | None) -> tuple[str | None, bool]:
    """(the API key a server bound to `host` requires, whether it was generated here).

    A server listening beyond loopback (e.g. 0.0.0.0, every interface) always requires one: the
    given key, else a new random one; on loopback only a given key is required.
    """
    if api_key:
        return api_key, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(24), True


def export_lines(host: str, port: int, name: str, api_key: str | None) -> str:
    """The shell line that points the reward (and `vlmrl verifier check`) at this server."""
    where = "127.0.0.1" if is_loopback(host) else "<this host>"
    line = f"export REWARD_MODEL_URL=http://{where}:{port}/v1 REWARD_MODEL_NAME={name}"
    return line + (f" {API_KEY_ENV}={api_key}" if api_key else "")


def client_url(host: str, port: int) -> str:
    """Where a client on this machine reaches a server bound to `host` (0.0.0.0 = every interface)."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{reach}:{port}/v1"


@dataclass
class ServerProcess:
    """A server we started in its own process group, so stopping it also stops its engine workers."""

    command: list[str]
    url: str
    model: str
    process: subprocess.Popen
    log_path: Path | None = None
    api_key: str | None = None  # the key the server requires, sent by the readiness probe

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM to the group, SIGKILL after `grace_s`; returns the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # Engine workers may outlive the API process for a moment; the group goes with them.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def start_server(
    command: Sequence[str],
    url: str,
    model: str,
    *,
    log_path: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start `command` in a new process group; its output goes to `log_path` (else inherited)."""
    log = Path(log_path) if log_path is not None else None
    out = log.open("ab") if log is not None else None
    try:
        process = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise UserError(f"cannot start {command[0]} ({exc})") from exc
    finally:
        if out is not None:
            out.close()
    return ServerProcess(list(command), url, model, process, log)


def wait_until_ready(
    server: ServerProcess,
    timeout_s: float = 900.0,
    poll_s: float = 1.0,
    on_wait: Callable[[float], None] | None = None,
) -> float:
    """Poll <url>/models until it lists the served model; returns the seconds it took.

    Raises `UserError` (with the end of the server's log) when the process exits first or
    `timeout_s` passes; the process is left to the caller to stop.
    """
    start = time.monotonic()
    while True:
        code = server.process.poll()
        if code is not None:
            tail = server.log_tail()
            raise UserError(
                f"the server exited with code {code} before it was ready"
                + (f"; the end of its log ({server.log_path}):\n{tail}" if tail else "")
            )
        try:
            listed = openai_api.list_models(server.url, api_key=server.api_key, timeout_s=max(poll_s, 2.0))
            if server.model in listed:
                return time.monotonic() - start
        except (httpx.HTTPError, ValueError):
            pass
        waited = time.monotonic() - start
        if waited > timeout_s:
            raise UserError(
                f"{server.url} did not list {server.model!r} within {timeout_s:g} s "
                "(raise --ready-timeout for a large model on a slow disk)"
            )
        if on_wait is not None:
            on_wait(waited)
        time.sleep(poll_s)


def serve_verifier(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8888,
    served_model_name: str | None = None,
    api_key: str | None = None,
    log_path: str | os.PathLike[str] | None = None,
    ready_timeout_s: float = 900.0,
    on_wait: Callable[[float], None] | None = None,
    **command_options,
) -> tuple[ServerProcess, float]:
    """Start vLLM serving `model` and wait until it answers; (server, start-up seconds).

    The server requires `api_key` (vLLM's own check, given through `$VLLM_API_KEY`, so the key is
    not on the command line); on a `host` beyond loopback a key is required, a new one when none
    is given (`server_api_key`; `server.api_key` holds it). `command_options` go to
    `serve_command` (max_model_len, dtype, extra, ...). On failure the server is stopped before
    the error is raised.
    """
    name = served_name(model, served_model_name)
    command = serve_command(model, host=host, port=port, served_model_name=name, **command_options)
    require_vllm(command, port, name)
    api_key, _ = server_api_key(host, api_key)
    env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
    if api_key:
        env["VLLM_API_KEY"] = api_key
    server = start_server(command, client_url(host, port), name, log_path=log_path, env=env)
    server.api_key = api_key
    try:
        seconds = wait_until_ready(server, ready_timeout_s, on_wait=on_wait)
    except BaseException:
        server.stop()
        raise
    return server, seconds


@dataclass
class ProbeResult:
    check: str
    expected: str
    got: str
    ok: bool


@dataclass
class VerifierCheck:
    """What `check_verifier` found: one result per check; `model` is the name the judgements used."""

    url: str
    model: str | None
    results: list[ProbeResult] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(not r.ok for r in self.results)


def check_verifier(
    url: str | None, model: str | None = None, timeout_s: float = 30.0, api_key: str | None = None
) -> VerifierCheck:
    """GET /models, then the PROBES judged by `model` (default $REWARD_MODEL_NAME, else the one model
    the server lists). `url` defaults to $REWARD_MODEL_URL, `api_key` to $REWARD_MODEL_API_KEY.

    A server that lists no model (or several) and no name given: the judgements are not sent, and
    the result says why (never a made-up name).
    """
    url = url or os.environ.get("REWARD_MODEL_URL")
    if not url:
        raise UserError("no verifier URL: pass --url http://HOST:PORT/v1 or set $REWARD_MODEL_URL")
    model = model or os.environ.get("REWARD_MODEL_NAME") or None
    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    report = VerifierCheck(url, model)
    listed, detail = openai_api.probe_models(url, timeout_s, "--timeout-s", api_key=api_key)
    if listed is None:
        report.results.append(ProbeResult("GET /models", "200", detail, False))
        return report
    report.results.append(
        ProbeResult("GET /models", "200", ", ".join(listed) or "200, no models listed", True)
    )
    if model is None:
        if len(listed) != 1:
            what = "no model" if not listed else f"{len(listed)} models ({', '.join(listed)})"
            report.results.append(
                ProbeResult(
                    "served model",
                    "one listed, or --served-model-name",
                    f"{what} listed; pass --served-model-name NAME",
                    False,
                )
            )
            return report
        model = report.model = listed[0]
    # `vf.health` asks as the reward would, past its cache and circuit breaker: its listing, then PROBES.
    settings = vf.VerifierSettings(url=url, model=model, timeout_s=timeout_s, api_key=api_key)
    health = asyncio.run(vf.health(settings, listed=listed))
    (listing, listed_ok, seen), judged = health.checks[0], health.checks[1:]
    if not listed_ok:  # a --served-model-name the server does not list
        report.results.append(ProbeResult(listing, "listed", seen, False))
    for (_, output, answer, expected), (_, ok, got) in zip(PROBES, judged, strict=False):
        report.results.append(ProbeResult(f"{output!r} vs {answer}", expected, got, ok))
    return report
