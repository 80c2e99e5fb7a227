"""The one home of talking to an OpenAI-compatible server: URLs, key header, retry policy, error text."""

from __future__ import annotations

import pytest

from vlmrl.utils import openai_api as oa


@pytest.mark.parametrize(
    "given",
    ["http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/chat/completions",
     "http://h:8000/v1/completions", "http://h:8000/v1/models"],
)  # fmt: skip
def test_every_form_of_a_server_address_gives_the_same_urls(given):
    assert oa.base_url(given) == "http://h:8000/v1"
    assert oa.chat_url(given) == "http://h:8000/v1/chat/completions"
    assert oa.models_url(given) == "http://h:8000/v1/models"


def test_key_header_retry_policy_and_backoff():
    assert oa.auth_headers(None) == {} and oa.auth_headers("") == {}
    assert oa.auth_headers("k") == {"Authorization": "Bearer k"}
    assert all(oa.retryable(s) for s in (408, 429, 500, 503, 599))
    assert not any(oa.retryable(s) for s in (400, 401, 404, 422))
    for attempt in (1, 2, 3, 10):
        wait = oa.backoff_s(attempt, 0.25, cap_s=8.0)
        assert 0.5 * min(8.0, 0.25 * 2 ** (attempt - 1)) <= wait <= 1.5 * min(8.0, 0.25 * 2 ** (attempt - 1))


def test_a_refusal_names_the_fields_the_option_and_a_missing_key():
    body = {"model": "m", "messages": [], "top_k": 5}
    text = '{"error": {"message": "Unrecognized request argument supplied: top_k", "param": null}}'
    line = oa.explain_refusal(400, text, body, {"top_k": "--top-k"})
    assert line == (
        "HTTP 400: Unrecognized request argument supplied: top_k (field(s) top_k: this server does not take "
        "them; drop --top-k)"
    )
    assert oa.explain_refusal(422, '{"detail": "Unexpected fields"}', {}) == "HTTP 422: Unexpected fields"
    assert "wants an API key" in oa.explain_refusal(401, '{"error": "Unauthorized"}', {})
    assert oa.model_entries({"data": [{"id": "a"}, "junk"]}) == [{"id": "a"}]
    assert oa.model_entries({"object": "error"}) is None
