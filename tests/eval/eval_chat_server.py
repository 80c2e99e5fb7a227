"""A scripted OpenAI-compatible chat server on loopback that records every request (test helper).

Scripted (not a real vLLM) because the faults the tests need — 500s, 429s, refusals, a server
that answers with chosen text — cannot be made to happen on demand with a real one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def chat_reply(
    text: str, completion_tokens: int = 7, finish_reason: str = "stop"
) -> tuple[int, dict[str, Any]]:
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
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[-1]["text"]


class ChatServer:
    """`respond(body) -> (status, json)` decides each answer; bodies and peak concurrency are recorded."""

    def __init__(self, respond: Responder, delay_s: float = 0.0, models: tuple[str, ...] = ("served-model",)):
        self.respond = respond
        self.delay_s = delay_s
        self.models = models
        self.owned_by = "scripted"  # what /v1/models says served each model (vLLM says "vllm")
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    models = [
                        {"id": m, "object": "model", "owned_by": server.owned_by} for m in server.models
                    ]
                    self._send(200, {"object": "list", "data": models})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay_s)
                    with server.lock:
                        code, obj = server.respond(body)
                    self._send(code, obj)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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

    def check(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
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
