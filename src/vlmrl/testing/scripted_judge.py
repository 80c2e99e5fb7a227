"""A scripted OpenAI-compatible judge on loopback, for tests and benchmarks of the verifier client.

It speaks real HTTP (`/v1/models`, `/v1/chat/completions`) and can be slow, fail with 500s, drop
connections or reply garbage -- the faults a real vLLM server cannot be made to show on demand.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_OUTPUT_RE = re.compile(r'Output sentence: """(.*?)"""', re.DOTALL)
_ANSWER_RE = re.compile(r"Correct answer: (.*?)\n\nJudgement:", re.DOTALL)


def substring_judge(prompt: str) -> str:
    """'Correct' when any '|'-separated correct answer appears in the output sentence."""
    out = _OUTPUT_RE.search(prompt)
    gold = _ANSWER_RE.search(prompt)
    if not out or not gold:
        return "Incorrect"
    answers = [a.strip() for a in gold.group(1).split("|") if a.strip()]
    return "Correct" if any(a in out.group(1) for a in answers) else "Incorrect"


@dataclass
class Script:
    """What the server does next: `mode` is ok | error500 | drop | garbage | undecided."""

    mode: str = "ok"
    delay_s: float = 0.0
    judge: Callable[[str], str] = substring_judge
    fail_first: int = 0  # the first N chat requests fail with 500, later ones follow `mode`
    requests: int = 0
    inflight: int = 0
    max_inflight: int = 0  # most chat requests the server was handling at once
    prompts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms to
        # every keep-alive request (uvicorn, under vLLM, sets it too).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            body = {"object": "list", "data": [{"id": self.server.model_name, "object": "model"}]}
            self._send(200, json.dumps(body).encode())
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        script = self.server.script
        with script.lock:
            script.requests += 1
            n = script.requests
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": "not found"}')
            return
        try:
            prompt = json.loads(raw)["messages"][-1]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            self._send(400, b'{"error": "bad request"}')
            return
        with script.lock:
            script.prompts.append(prompt)
            script.inflight += 1
            script.max_inflight = max(script.max_inflight, script.inflight)
        try:
            self._reply(script, n, prompt)
        except OSError:
            pass  # the client gave up (timeout) and closed the connection
        finally:
            with script.lock:
                script.inflight -= 1

    def _reply(self, script: Script, n: int, prompt: str) -> None:
        if script.delay_s:
            time.sleep(script.delay_s)
        mode = "error500" if n <= script.fail_first else script.mode
        if mode == "error500":
            self._send(500, b'{"error": "internal"}')
        elif mode == "drop":
            self.close_connection = True
            self.connection.close()
        elif mode == "garbage":
            self._send(200, b"<html>\x00\xff not json", "text/html")
        else:
            content = "maybe, it depends" if mode == "undecided" else script.judge(prompt)
            body = {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "model": self.server.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            }
            self._send(200, json.dumps(body).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    script: Script
    model_name: str


class ScriptedJudge:
    """Run with `with ScriptedJudge() as judge:`; `judge.url` is the base URL (…/v1)."""

    def __init__(self, script: Script | None = None, model_name: str = "scripted-judge") -> None:
        self.script = script or Script()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.script = self.script
        self._server.model_name = model_name
        self.model_name = model_name
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedJudge:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    """Serve in its own process (benchmarks: keeps the server off the client's GIL); prints the URL."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible judge on 127.0.0.1.")
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--mode", default="ok")
    args = parser.parse_args()
    with ScriptedJudge(Script(mode=args.mode, delay_s=args.delay_s)) as judge:
        print(judge.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin or exits


if __name__ == "__main__":
    main()
