"""Real OpenAI-compatible servers on 127.0.0.1 for the tests: vLLM (CPU) and `transformers serve`.

Each is started once per test session (the session fixtures in tests/conftest.py) and stopped by
its process id. vLLM is started the way a user starts the verifier, through `vlmrl verifier serve`,
so the fixture itself exercises that command: the CLI must bring vLLM up and take it down again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

VLLM_READY_TIMEOUT_S = 420.0
TRANSFORMERS_READY_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vlmrl_command() -> list[str]:
    """The `vlmrl` console script of this interpreter (PYTHONPATH carries a worktree through)."""
    return [sys.executable, "-m", "vlmrl.cli"]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class RunningServer:
    """A server the tests started: its base URL (…/v1), served model name, process and log."""

    url: str
    model: str
    port: int
    process: subprocess.Popen
    log_path: Path
    startup_s: float
    inner_pid: int | None = None  # vLLM's own pid, as `vlmrl verifier serve` reported it
    api_key: str | None = None  # the key the server requires, as `vlmrl verifier serve` printed it
    host: str = "127.0.0.1"  # the interface it listens on (reached over 127.0.0.1 either way)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _wait_listed(
    url: str,
    model: str | None,
    process: subprocess.Popen,
    timeout_s: float,
    log: Path,
    key: Callable[[], str | None] = lambda: None,
) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"server exited with {process.returncode} before it was ready:\n{tail}")
        try:
            if model is None:
                if httpx.get(url.rsplit("/v1", 1)[0] + "/health", timeout=2).status_code == 200:
                    return time.monotonic() - start
            else:
                headers = {"Authorization": f"Bearer {key()}"}
                ids = [m["id"] for m in httpx.get(f"{url}/models", headers=headers, timeout=2).json()["data"]]
                if model in ids:
                    return time.monotonic() - start
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"{url} not ready within {timeout_s:.0f} s; log: {log}")


def printed_key(log: Path) -> str | None:
    """The API key `vlmrl verifier serve` generated and printed in its export line."""
    match = re.search(r"REWARD_MODEL_API_KEY=(\S+)", log.read_text(errors="replace"))
    return match.group(1) if match else None


def start_vllm_via_cli(model_dir: Path, log_dir: Path) -> RunningServer:
    """`vlmrl verifier serve` on the tiny model, CPU settings, on every interface (0.0.0.0), so with
    the API key it generates and prints; reached over 127.0.0.1; waits until it is ready."""
    port = free_port()
    host = "0.0.0.0"
    log = log_dir / "verifier_serve.log"
    vllm_log = log_dir / "vllm.log"
    cmd = [
        *vlmrl_command(),
        "verifier",
        "serve",
        "--model",
        str(model_dir),
        "--served-model-name",
        "tiny-verifier",
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        # lmms-eval's MathVerse judge asks for up to 1024 new tokens on top of its prompt.
        "2048",
        "--dtype",
        "float32",
        "--ready-timeout",
        str(VLLM_READY_TIMEOUT_S),
        "--log-file",
        str(vllm_log),
        "--",
        "--enforce-eager",
        # A judge reads text only: no vision encoder to profile at start-up (minutes on a busy CPU).
        "--language-model-only",
    ]
    # No key given (and none inherited): the CLI must generate one, since 0.0.0.0 is beyond loopback.
    process = _spawn(
        cmd, log, drop=("REWARD_MODEL_API_KEY", "VLLM_API_KEY"), VLLM_CPU_KVCACHE_SPACE="1", NO_COLOR="1",
        COLUMNS="200",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        startup = _wait_listed(
            url, "tiny-verifier", process, VLLM_READY_TIMEOUT_S + 30, log, key=lambda: printed_key(log)
        )
        # The CLI prints its ready line once its own probe passed; wait for it (and vLLM's pid).
        deadline = time.monotonic() + 30
        while "ready in" not in log.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.2)
    except BaseException:
        stop_cli(process)
        raise
    match = re.search(r"\(pid (\d+)\)", log.read_text(errors="replace"))
    return RunningServer(
        url,
        "tiny-verifier",
        port,
        process,
        log,
        startup,
        int(match.group(1)) if match else None,
        api_key=printed_key(log),
        host=host,
    )


def _spawn(cmd: list[str], log: Path, drop: tuple[str, ...] = (), **env: str) -> subprocess.Popen:
    """Start `cmd` in its own process group, output to `log`, with `env` over this environment
    (less the variables in `drop`)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**{k: v for k, v in os.environ.items() if k not in drop}, **env},
            start_new_session=True,
        )


def stop_cli(process: subprocess.Popen, grace_s: float = 60.0) -> int | None:
    """SIGTERM to the CLI process only (it must stop vLLM itself); SIGKILL after `grace_s`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            kill_group(process.pid)
            process.wait(10)
    return process.returncode


def start_transformers_serve(model_dir: Path, log_dir: Path, hub_cache: Path) -> RunningServer:
    """`transformers serve MODEL` on 127.0.0.1 (CPU); the served name is the model path."""
    port = free_port()
    log = log_dir / "transformers_serve.log"
    exe = Path(sys.executable).with_name("transformers")
    cmd = [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    # A hub cache directory that exists: without one its /v1/models answers 500.
    process = _spawn(cmd, log, HF_HUB_CACHE=str(hub_cache), HF_HUB_OFFLINE="1")
    url = f"http://127.0.0.1:{port}/v1"
    try:
        startup = _wait_listed(url, None, process, TRANSFORMERS_READY_TIMEOUT_S, log)
    except BaseException:
        kill_group(process.pid)
        process.wait(10)
        raise
    return RunningServer(url, str(model_dir), port, process, log, startup)


def stop_group(process: subprocess.Popen, grace_s: float = 20.0) -> None:
    """Stop a server we started in its own session: SIGTERM to its group, SIGKILL after `grace_s`."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    kill_group(process.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
