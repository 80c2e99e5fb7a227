"""The openai backend against the scripted loopback server: explicit sampling, bounded concurrency, retries."""

from __future__ import annotations

import socket

import pytest

from vlmrl.errors import UserError
from vlmrl.eval.generation import GenerationRequest, OpenAIBackend, SamplingParams, make_backend
from vlmrl.testing.scripted_judge import chat_reply, last_user_text

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def failing(fail_times: dict[str, int], status: int = 500):
    """Respond with `status` the first fail_times[text] times a prompt is seen, then echo it."""
    left = dict(fail_times)

    def respond(body):
        text = last_user_text(body)
        if text == "bad request":
            return 400, {"error": {"message": "max_tokens is too large"}}
        if left.get(text, 0) > 0:
            left[text] -= 1
            return status, {"error": "overloaded"}
        return chat_reply(f"echo {text}")

    return respond


def _requests(texts):
    return [
        GenerationRequest(key=f"r{i}", messages=({"role": "user", "content": t},))
        for i, t in enumerate(texts)
    ]


def test_every_request_carries_sampling_params_bounded_concurrency_and_retries(chat_server):
    server = chat_server(failing({"q1": 2, "q5": 1}), delay_s=0.05)
    backend = make_backend("openai", server.url, concurrency=3, max_retries=3, retry_backoff_s=0.01)
    params = SamplingParams(temperature=0.6, top_p=0.95, top_k=20, max_new_tokens=123, seed=None)
    got = {}
    backend.generate(_requests([f"q{i}" for i in range(12)]), params, lambda r, c: got.__setitem__(r.key, c))

    assert sorted(got) == sorted(f"r{i}" for i in range(12))
    assert got["r1"].text == "echo q1" and got["r1"].num_tokens == 7 and got["r1"].finish_reason == "stop"
    assert len(server.bodies) == 12 + 2 + 1  # q1 retried twice, q5 once
    for body in server.bodies:
        assert body["model"] == "served-model"  # resolved from /v1/models
        assert body["temperature"] == 0.6
        assert body["top_p"] == 0.95
        assert body["top_k"] == 20
        assert body["max_tokens"] == 123
        assert body["n"] == 1
        assert "repetition_penalty" not in body  # not set, and not a standard OpenAI field
    assert server.max_in_flight == 3  # bounded, and the bound is used


def test_vllm_servers_get_the_off_values_explicitly(chat_server):
    # vLLM fills what a request leaves out from generation_config.json (Qwen2.5-VL: top_k 1), so a
    # server whose /v1/models says `owned_by: vllm` is sent top_k -1 and repetition_penalty 1.0.
    server = chat_server(failing({}), models=("m",))
    server.owned_by = "vllm"
    backend = OpenAIBackend(server.url, model="m")
    backend.generate(_requests(["q"]), SamplingParams(), lambda r, c: None)
    assert server.bodies[0]["top_k"] == -1 and server.bodies[0]["repetition_penalty"] == 1.0
    other = chat_server(failing({}), models=("m",))
    OpenAIBackend(other.url, model="m").generate(_requests(["q"]), SamplingParams(), lambda r, c: None)
    assert "top_k" not in other.bodies[0] and "repetition_penalty" not in other.bodies[0]


def test_429_is_retried_and_seeds_differ_per_sample(chat_server):
    server = chat_server(failing({"q0": 1}, status=429))
    backend = OpenAIBackend(server.url + "/v1", model="m", concurrency=2, retry_backoff_s=0.01)
    got = {}
    backend.generate(_requests(["q0", "q0"]), SamplingParams(seed=7), lambda r, c: got.__setitem__(r.key, c))
    assert len(got) == 2 and len(server.bodies) == 3
    assert {b["model"] for b in server.bodies} == {"m"}
    assert len({b["seed"] for b in server.bodies}) == 2  # same prompt, two samples -> two seeds


def test_persistent_server_errors_give_up_with_a_clear_error(chat_server):
    server = chat_server(failing({"q0": 100}, status=503))
    backend = OpenAIBackend(server.url, model="m", max_retries=2, retry_backoff_s=0.01)
    with pytest.raises(
        UserError, match=r"failed after 2 retries \(HTTP 503.*re-run the same command to resume"
    ):
        backend.generate(_requests(["q0"]), SamplingParams(), lambda r, c: None)
    assert len(server.bodies) == 3


def test_client_errors_are_not_retried(chat_server):
    server = chat_server(failing({}))
    backend = OpenAIBackend(server.url, model="m", retry_backoff_s=0.01)
    with pytest.raises(UserError, match=r"HTTP 400: max_tokens is too large \(field\(s\) max_tokens\)"):
        backend.generate(_requests(["bad request"]), SamplingParams(), lambda r, c: None)
    assert len(server.bodies) == 1


def test_connection_refused_is_retried_then_reported():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    backend = OpenAIBackend(f"http://127.0.0.1:{port}", model="m", max_retries=1, retry_backoff_s=0.01)
    with pytest.raises(UserError, match=rf"cannot reach http://127.0.0.1:{port}/v1/models .*ConnectError"):
        backend.generate(_requests(["q"]), SamplingParams(), lambda r, c: None)


def test_a_server_that_never_answers_names_the_url_and_the_timeout_to_raise(silent_url):
    backend = OpenAIBackend(silent_url, max_retries=0, timeout_s=0.5)
    with pytest.raises(UserError) as caught:
        backend.generate(_requests(["q"]), SamplingParams(), lambda r, c: None)
    message = str(caught.value)
    assert f"cannot reach {silent_url}/models" in message
    assert "no answer within 0.5 s (raise --request-timeout)" in message


def test_several_served_models_need_a_name(chat_server):
    server = chat_server(failing({}), models=("a", "b"))
    with pytest.raises(UserError, match="served-model-name"):
        OpenAIBackend(server.url).generate(_requests(["q"]), SamplingParams(), lambda r, c: None)


def test_images_become_data_urls_at_their_placeholder(chat_server):
    server = chat_server(failing({}))
    backend = OpenAIBackend(server.url, model="m")
    request = GenerationRequest("img", ({"role": "user", "content": "<image>What is shown?"},), images=(PNG,))
    backend.generate([request], SamplingParams(), lambda r, c: None)
    content = server.bodies[0]["messages"][0]["content"]
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


def test_a_server_that_wants_an_api_key_gets_the_one_in_openai_api_key(chat_server, monkeypatch):
    server = chat_server(lambda body: chat_reply("ok"), api_key="s3cret")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(
        UserError, match=r"HTTP 401: the server wants an API key .* was not sent; set OPENAI_API_KEY"
    ):
        OpenAIBackend(server.url, model="m").generate(_requests(["q"]), SamplingParams(), lambda r, c: None)
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    with pytest.raises(UserError, match="was refused"):
        OpenAIBackend(server.url, model="m").generate(_requests(["q"]), SamplingParams(), lambda r, c: None)
    assert server.bodies == []  # refused at the door, like vLLM's --api-key
    monkeypatch.setenv("OPENAI_API_KEY", "s3cret")
    got = []
    OpenAIBackend(server.url, model="m").generate(
        _requests(["q"]), SamplingParams(), lambda r, c: got.append(c)
    )
    assert [c.text for c in got] == ["ok"]
