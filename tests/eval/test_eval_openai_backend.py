"""The openai backend against a scripted loopback server that records every request.

A scripted server is used because the faults tested (500s, 429s, a bad request) cannot be
made to happen on demand with a real vLLM server.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vlmrl.errors import UserError
from vlmrl.eval.generation import GenerationRequest, OpenAIBackend, SamplingParams, make_backend

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


class Script:
    """What the server does: fail some requests a number of times, record bodies and concurrency."""

    def __init__(self, fail_times=None, status=500, delay_s=0.05):
        self.fail_times = dict(fail_times or {})  # first user text -> how many times to fail
        self.status = status
        self.delay_s = delay_s
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0


def _serve(script: Script):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, obj):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "served-model"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.bodies.append(body)
                script.in_flight += 1
                script.max_in_flight = max(script.max_in_flight, script.in_flight)
            try:
                time.sleep(script.delay_s)
                content = body["messages"][-1]["content"]
                key = content if isinstance(content, str) else content[-1]["text"]
                with script.lock:
                    left = script.fail_times.get(key, 0)
                    if left:
                        script.fail_times[key] = left - 1
                if key == "bad request":
                    self._send(400, {"error": {"message": "max_tokens is too large"}})
                elif left:
                    self._send(script.status, {"error": "overloaded"})
                else:
                    self._send(
                        200,
                        {
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": f"echo {key}"},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                        },
                    )
            finally:
                with script.lock:
                    script.in_flight -= 1

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def server_factory():
    servers = []

    def make(script):
        server = _serve(script)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def _requests(texts):
    return [
        GenerationRequest(key=f"r{i}", messages=({"role": "user", "content": t},))
        for i, t in enumerate(texts)
    ]


def test_every_request_carries_sampling_params_bounded_concurrency_and_retries(server_factory):
    script = Script(fail_times={"q1": 2, "q5": 1}, status=500)
    url = server_factory(script)
    backend = make_backend("openai", url, concurrency=3, max_retries=3, retry_backoff_s=0.01)
    params = SamplingParams(temperature=0.6, top_p=0.95, top_k=20, max_new_tokens=123, seed=None)
    got = {}
    backend.generate(_requests([f"q{i}" for i in range(12)]), params, lambda r, c: got.__setitem__(r.key, c))

    assert sorted(got) == sorted(f"r{i}" for i in range(12))
    assert got["r1"].text == "echo q1" and got["r1"].num_tokens == 7 and got["r1"].finish_reason == "stop"
    assert len(script.bodies) == 12 + 2 + 1  # q1 retried twice, q5 once
    for body in script.bodies:
        assert body["model"] == "served-model"  # resolved from /v1/models
        assert body["temperature"] == 0.6
        assert body["top_p"] == 0.95
        assert body["top_k"] == 20
        assert body["max_tokens"] == 123
        assert body["n"] == 1
        assert body["repetition_penalty"] == 1.0
    assert script.max_in_flight == 3  # bounded, and the bound is used


def test_429_is_retried_and_seeds_differ_per_sample(server_factory):
    script = Script(fail_times={"q0": 1}, status=429, delay_s=0.0)
    url = server_factory(script) + "/v1"
    backend = OpenAIBackend(url, model="m", concurrency=2, retry_backoff_s=0.01)
    got = {}
    backend.generate(_requests(["q0", "q0"]), SamplingParams(seed=7), lambda r, c: got.__setitem__(r.key, c))
    assert len(got) == 2 and len(script.bodies) == 3
    assert {b["model"] for b in script.bodies} == {"m"}
    seeds = {b["seed"] for b in script.bodies if b["messages"][0]["content"] == "q0"}
    assert len(seeds) == 2  # same prompt, different samples -> different seeds


def test_persistent_server_errors_give_up_with_a_clear_error(server_factory):
    script = Script(fail_times={"q0": 100}, status=503, delay_s=0.0)
    url = server_factory(script)
    backend = OpenAIBackend(url, model="m", max_retries=2, retry_backoff_s=0.01)
    with pytest.raises(
        UserError, match=r"failed after 2 retries \(HTTP 503.*re-run the same command to resume"
    ):
        backend.generate(_requests(["q0"]), SamplingParams(), lambda r, c: None)
    assert len(script.bodies) == 3


def test_client_errors_are_not_retried(server_factory):
    script = Script(delay_s=0.0)
    url = server_factory(script)
    backend = OpenAIBackend(url, model="m", retry_backoff_s=0.01)
    with pytest.raises(UserError, match="HTTP 400.*max_tokens is too large"):
        backend.generate(_requests(["bad request"]), SamplingParams(), lambda r, c: None)
    assert len(script.bodies) == 1


def test_connection_refused_is_retried_then_reported():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    backend = OpenAIBackend(f"http://127.0.0.1:{port}", model="m", max_retries=1, retry_backoff_s=0.01)
    with pytest.raises(UserError, match="ConnectError"):
        backend.generate(_requests(["q"]), SamplingParams(), lambda r, c: None)


def test_images_become_data_urls_at_their_placeholder(server_factory):
    script = Script(delay_s=0.0)
    url = server_factory(script)
    backend = OpenAIBackend(url, model="m")
    request = GenerationRequest("img", ({"role": "user", "content": "<image>What is shown?"},), images=(PNG,))
    got = []
    backend.generate([request], SamplingParams(), lambda r, c: got.append(c))
    content = script.bodies[0]["messages"][0]["content"]
    assert content[0]["type"] == "image_url"
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert content[1] == {"type": "text", "text": "What is shown?"}


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="http"):
        OpenAIBackend("localhost:8000")
    with pytest.raises(UserError, match="top_k"):
        SamplingParams(top_k=0)
    with pytest.raises(UserError, match="unknown backend"):
        make_backend("sglang", "x")
