"""Scripted OpenAI-compatible servers on loopback, for tests and benchmarks of our HTTP clients.

One server (`ChatServer`: real HTTP, `/v1/models` and `/v1/chat/completions`, every request body
recorded) answers with whatever a responder function decides; `ScriptedJudge` is that server playing
a verifier model that can be slow, fail with 500s, drop connections or reply garbage -- the faults a
real vLLM server cannot be made to show on demand. `strict_openai` refuses request fields outside
OpenAI's published schema, as api.openai.com does.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: A responder's reply that closes the connection without answering.
DROP = object()
#: respond(body) -> (HTTP status, reply) or (HTTP status, reply, headers): a dict is sent as JSON,
#: bytes as they are, `DROP` closes; `headers` (e.g. Retry-After) are added to the answer.
Responder = Callable[[dict[str, Any]], tuple[Any, ...]]


class ChatServer:
    """An OpenAI-compatible chat server on 127.0.0.1 whose answers `respond(body)` decides.

    Every chat request body is kept in `bodies`; `max_in_flight` is the most handled at once. With
    `serialize` (the default) the responder runs under the server's lock, so it may keep state freely.
    `url` is the server's root (clients add `/v1`).
    """

    def __init__(
        self,
        respond: Responder,
        delay_s: float = 0.0,
        models: tuple[str, ...] = ("served-model",),
        *,
        serialize: bool = True,
        api_key: str | None = None,
    ):
        self.respond = respond
        self.api_key = api_key  # when set, requests without `Authorization: Bearer <it>` get 401, as vLLM's
        self.delay_s = delay_s
        self.models = models
        self.serialize = serialize
        self.owned_by = "scripted"  # what /v1/models says served each model (vLLM says "vllm")
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.chat = self
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def answer(self, body: dict[str, Any]) -> tuple[Any, ...]:
        with self.lock:
            self.bodies.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if not self.serialize:
                return self.respond(body)
            with self.lock:
                return self.respond(body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

    def _send(self, status: int, reply: Any, headers: dict[str, str] | None = None) -> None:
        if reply is DROP:
            self.close_connection = True
            self.connection.close()
            return
        is_json = not isinstance(reply, bytes)
        body = json.dumps(reply).encode() if is_json else reply
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if is_json else "text/html")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _refused(self) -> bool:
        key = self.server.chat.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return False
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(401, {"error": "Unauthorized"})
        return True

    def do_GET(self) -> None:
        chat = self.server.chat
        if self._refused():
            return
        if self.path.rstrip("/").endswith("/models"):
            models = [{"id": m, "object": "model", "owned_by": chat.owned_by} for m in chat.models]
            self._send(200, {"object": "list", "data": models})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self._refused():
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": "not found"})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": "bad request"})
            return
        # OSError: the client gave up (timeout) and closed the connection.
        with contextlib.suppress(OSError):
            self._send(*self.server.chat.answer(body))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    chat: ChatServer


def chat_reply(
    text: str, completion_tokens: int = 7, finish_reason: str = "stop"
) -> tuple[int, dict[str, Any]]:
    """A chat-completions answer holding `text`, with usage counts."""
    return 200, {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": completion_tokens,
            "total_tokens": 5 + completion_tokens,
        },
    }


def last_user_text(body: dict[str, Any]) -> str:
    """The text of a request's last message (plain, or the last text part)."""
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[-1]["text"]


# The request fields of OpenAI's chat-completions API (its published reference); anything else is
# refused the way api.openai.com refuses it.
OPENAI_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias",
        "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "n",
        "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key", "reasoning_effort",
        "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
        "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
        "verbosity", "web_search_options",
    }
)  # fmt: skip


def strict_openai(respond: Responder) -> Responder:
    """Wrap `respond` with OpenAI's schema check: 400 "Unrecognized request argument" on unknown fields."""

    def check(body: dict[str, Any]) -> tuple[int, Any]:
        for key in body:
            if key not in OPENAI_CHAT_FIELDS:
                return 400, {
                    "error": {
                        "message": f"Unrecognized request argument supplied: {key}",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                }
        return respond(body)

    return check


# ---------------------------------------------------------------------------
# The judge

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
    """What the judge does next: `mode` is ok | error500 | drop | garbage | undecided."""

    mode: str = "ok"
    delay_s: float = 0.0
    judge: Callable[[str], str] = substring_judge
    fail_first: int = 0  # the first N chat requests fail with 500, later ones follow `mode`
    requests: int = 0
    prompts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, body: dict[str, Any], model_name: str) -> tuple[int, Any]:
        with self.lock:
            self.requests += 1
            n = self.requests
        try:
            prompt = body["messages"][-1]["content"]
        except (KeyError, IndexError, TypeError):
            return 400, {"error": "bad request"}
        with self.lock:
            self.prompts.append(prompt)
        if self.delay_s:
            time.sleep(self.delay_s)
        mode = "error500" if n <= self.fail_first else self.mode
        if mode == "error500":
            return 500, {"error": "internal"}
        if mode == "drop":
            return 0, DROP
        if mode == "garbage":
            return 200, b"<html>\x00\xff not json"
        content = "maybe, it depends" if mode == "undecided" else self.judge(prompt)
        return 200, {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "model": model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        }


class ScriptedJudge:
    """A verifier model played by a `ChatServer`: `with ScriptedJudge() as judge:`; `judge.url` is …/v1."""

    def __init__(self, script: Script | None = None, model_name: str = "scripted-judge") -> None:
        self.script = script or Script()
        self.model_name = model_name
        self._server = ChatServer(
            lambda body: self.script.respond(body, model_name), models=(model_name,), serialize=False
        )
        self.url = f"{self._server.url}/v1"

    @property
    def max_in_flight(self) -> int:
        """The most chat requests the judge was handling at once (its server counts them)."""
        return self._server.max_in_flight

    def __enter__(self) -> ScriptedJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()


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
