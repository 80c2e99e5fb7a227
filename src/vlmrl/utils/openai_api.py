"""Talking to an OpenAI-compatible server (vLLM, SGLang, `transformers serve`, an LLM judge): URLs, the
API-key header, model listing, the retry policy and the error text, in one place.

Eval's generation client (httpx), the reward's verifier client (aiohttp: measured faster there),
`vlmrl verifier serve/check`, training's preflight and lmms-eval's judge probe all take these from here.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import Any

import httpx

#: HTTP statuses worth another try: the server is busy, restarting or timed out (every 5xx too).
RETRY_STATUS = frozenset({408, 409, 425, 429})


def base_url(url: str) -> str:
    """The API base (`.../v1`) of a server given as its root, its base, or a chat/completions URL."""
    base = url.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base if base.endswith("/v1") else base + "/v1"


def chat_url(url: str) -> str:
    """<base>/chat/completions of a server given as its root, its `/v1` base or that URL itself."""
    return base_url(url) + "/chat/completions"


def models_url(url: str) -> str:
    """<base>/models of a server given as its root, its `/v1` base or its chat URL."""
    return base_url(url) + "/models"


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The bearer-token header of every request (none without a key)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def retryable(status: int) -> bool:
    """Whether an HTTP status means "try again later" (429, 408, 5xx, ...) rather than "refused"."""
    return status in RETRY_STATUS or status >= 500


def backoff_s(attempt: int, base_s: float, cap_s: float = float("inf")) -> float:
    """Seconds to wait before retry `attempt` (1, 2, ...): exponential from `base_s`, at most `cap_s`,
    with jitter (x0.5-1.5) so many clients do not retry in lockstep."""
    return min(cap_s, base_s * 2 ** (attempt - 1)) * (0.5 + random.random())


def transport_detail(exc: BaseException) -> str:
    """`ExceptionType: message` of a failed connection (a timeout's own message is often empty)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_message(text: str) -> tuple[str, str | None]:
    """(the message, the parameter it names) of an error body: OpenAI's `{"error": {"message", "param"}}`,
    FastAPI's `{"detail": ...}`, or plain text; whitespace folded, at most 300 characters."""
    try:
        detail: Any = json.loads(text)
    except ValueError:
        detail = text
    message, param = detail, None
    if isinstance(detail, dict):
        error = detail.get("error", detail.get("detail", detail))
        if isinstance(error, dict):
            message, param = error.get("message", error), error.get("param")
        else:
            message = error
    return " ".join(str(message).split())[:300], param


def explain_refusal(
    status: int, text: str, body: Mapping[str, Any], field_options: Mapping[str, str] | None = None
) -> str:
    """One line saying why a server refused a request: its message, the request fields it named and,
    for a field in `field_options` (field -> the option that set it), how to drop it."""
    message, param = error_message(text)
    named = [
        f for f in body if f != "messages" and (f == param or re.search(rf"\b{re.escape(f)}\b", message))
    ]
    options = field_options or {}
    hints = [options[f] for f in named if f in options]
    line = f"HTTP {status}: {message}"
    if status == 401:
        line += " (the server wants an API key: set the key it was started with)"
    if named:
        line += f" (field(s) {', '.join(named)}"
        if hints:
            line += f": this server does not take them; drop {' and '.join(hints)}"
        line += ")"
    return line


def model_entries(payload: Any) -> list[dict[str, Any]] | None:
    """The model entries (`{"id", "owned_by", ...}`) of a `/models` answer, None when it is not a list."""
    entries = payload.get("data") if isinstance(payload, dict) else None
    return [m for m in entries if isinstance(m, dict)] if isinstance(entries, list) else None


def list_models(url: str, *, api_key: str | None = None, timeout_s: float = 5.0) -> list[str]:
    """Model ids a server lists at `models_url(url)`; raises `httpx.HTTPError` (no answer, or an
    error status) or ValueError (an answer that is not a model list)."""
    response = httpx.get(models_url(url), headers=auth_headers(api_key), timeout=timeout_s)
    response.raise_for_status()
    try:
        entries = model_entries(response.json())
    except ValueError:
        entries = None
    if entries is None:
        raise ValueError("answered, but not with an OpenAI model list")
    return [m.get("id") for m in entries]


def probe_models(
    url: str, timeout_s: float, timeout_setting: str, *, api_key: str | None = None
) -> tuple[list[str] | None, str]:
    """(the models `models_url(url)` lists, or None, and a line saying what answered or what went wrong).

    A failure names the URL, a timeout also the seconds waited and `timeout_setting` (the setting that
    raises them), a 401 that the server wants an API key.
    """
    target = models_url(url)
    try:
        listed = list_models(url, api_key=api_key, timeout_s=timeout_s)
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status == 401:
            what = "a different API key" if api_key else "an API key and none was sent"
            return None, f"{target}: HTTP 401 (the server wants {what})"
        return None, f"{target}: HTTP {status}"
    except httpx.TimeoutException:
        return None, f"{target}: no answer within {timeout_s:g} s (raise {timeout_setting})"
    except httpx.HTTPError as exc:
        text = " ".join(str(exc).split())
        return None, f"{target}: no answer ({type(exc).__name__}" + (f": {text})" if text else ")")
    except ValueError as exc:
        return None, f"{target}: {exc}"
    return listed, f"{target}: serving {', '.join(map(str, listed)) or 'no model'}"


def sole_model(
    url: str, *, api_key: str | None, timeout_setting: str, name_option: str, where: str, hint: str = ""
) -> str:
    """The one model the server at `url` lists (a judge given by URL alone), else a `UserError` naming
    `where` (how the user gave the URL), what answered, and `name_option` to name the model instead."""
    from vlmrl.errors import UserError

    listed, detail = probe_models(url, 10.0, timeout_setting, api_key=api_key)
    if listed is None:
        raise UserError(f"{where}: {detail}{hint}")
    if len(listed) != 1:
        raise UserError(f"{where} serves {listed or 'no model'}; name one with {name_option}")
    return listed[0]
