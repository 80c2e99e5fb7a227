"""Verifier model client: asks an OpenAI-compatible judge (xVerify on vLLM) when the rules cannot decide.

One pooled aiohttp session per process and event loop, bounded concurrency, in-flight deduplication,
an LRU cache, retries with backoff and a circuit breaker. It never raises: failures come back as errors.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import hashlib
import json
import os
import ssl
import threading
import time
import weakref
from dataclasses import dataclass

import aiohttp

from vlmrl.reward.knobs import default
from vlmrl.utils import openai_api
from vlmrl.utils.lru import LRU

# xVerify's published judge prompt (IAAR-Shanghai/xVerify, src/xVerify/prompts/judge_prompt.py,
# https://github.com/IAAR-Shanghai/xVerify): the model was fine-tuned on exactly this input and
# answers the bare words "Correct" / "Incorrect". Placeholders: {question}, {output}, {answer}.
XVERIFY_PROMPT = (
    "You are a diligent and precise assistant tasked with evaluating the correctness of responses. "
    "You will receive a question, an output sentence, and the correct answer. Your task is to determine "
    "if the output sentence accurately answers the question based on the provided correct answer. "
    "Respond with either [Correct] or [Incorrect].\n"
    "-\n"
    "Special considerations:\n"
    "\n"
    "1. **Multiple Answers**: If the output contains multiple answers, evaluate whether later answers "
    "modify or correct earlier ones. In such cases, compare the final answer with the correct answer. "
    "If the final answer is unclear or incorrect, respond with [Incorrect].\n"
    "\n"
    "2. **Mathematical Problems**: If the formats differ but the answers are mathematically equivalent, "
    "respond with [Correct].\n"
    "\n"
    "3. **Explicit Options**: If the question provides explicit candidate answers, the output will be "
    "considered correct if it clearly indicates the correct option's code or the correct option's content.\n"
    "\n"
    "4. **No Explicit Options**: If the question does not provide explicit options, the output must align "
    "with the correct answer in content and meaning to be considered [Correct].\n"
    "-\n"
    "\n"
    'Question: """{question}"""\n'
    "\n"
    'Output sentence: """{output}"""\n'
    "\n"
    "Correct answer: {answer}\n"
    "\n"
    "Judgement:\n"
)

# xVerify's published decoding settings.
TEMPERATURE = 0.1
TOP_P = 0.7
MAX_TOKENS = 16
# Long inputs are cut so a request never overflows the judge's context window.
MAX_FIELD_CHARS = 6000

CIRCUIT_FAILURES = 5  # consecutive failed requests (after retries) that open the circuit
CIRCUIT_COOLDOWN_S = 30.0
CACHE_SIZE = 65536


@dataclass(frozen=True)
class Judgement:
    """`verdict`: 'correct' | 'incorrect' | None (undecided); `error`: the request failed;
    `latency_s`: how long `judge` took to answer (retries included; a cache hit takes ~0)."""

    verdict: str | None
    error: bool
    detail: str = ""
    latency_s: float = 0.0


def parse_reply(text: object) -> str | None:
    """'correct' / 'incorrect' after strip + lowercase (brackets and a final period tolerated)."""
    if not isinstance(text, str):
        return None
    s = text.strip().lower().rstrip(".").strip()
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1].strip()
    return s if s in ("correct", "incorrect") else None


def build_prompt(template: str, question: str, output: str, answer: str) -> str:
    def cut(s: str) -> str:
        return s if len(s) <= MAX_FIELD_CHARS else s[:MAX_FIELD_CHARS] + " ..."

    # str.replace, not str.format: questions and answers are full of LaTeX braces.
    return (
        template.replace("{question}", cut(question))
        .replace("{output}", cut(output))
        .replace("{answer}", cut(answer))
    )


chat_url = openai_api.chat_url
models_url = openai_api.models_url


# --- process-wide state: cache and circuit breaker (shared by every loop and thread) ------------


class CircuitBreaker:
    """Open after `threshold` consecutive failures; after `cooldown_s` let one probe through."""

    def __init__(self, threshold: int = CIRCUIT_FAILURES, cooldown_s: float = CIRCUIT_COOLDOWN_S) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if time.monotonic() - self._opened_at >= self.cooldown_s and not self._probing:
                self._probing = True
                return True
            return False

    def record(self, ok: bool) -> None:
        with self._lock:
            self._probing = False
            if ok:
                self._failures = 0
                self._opened_at = None
            else:
                self._failures += 1
                if self._failures >= self.threshold:
                    self._opened_at = time.monotonic()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None


_cache: LRU[str, str] = LRU(CACHE_SIZE)
_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked child starts with no judgements, circuits or clients of its parent (whose locks a
    parent thread may have held at the fork, and whose sockets are the parent's)."""
    global _cache, _breakers_lock
    _cache = LRU(CACHE_SIZE)
    _breakers_lock = threading.Lock()
    _breakers.clear()
    _loop_states.clear()


def breaker_for(url: str) -> CircuitBreaker:
    with _breakers_lock:
        if url not in _breakers:
            _breakers[url] = CircuitBreaker()
        return _breakers[url]


def reset_state() -> None:
    """Forget cached judgements and circuit state (tests, or after fixing a verifier)."""
    _cache.clear()
    with _breakers_lock:
        _breakers.clear()


# --- per event loop: client, concurrency limit, requests in flight ------------------------------


_ssl: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """One certificate store per process (loading it costs ~0.1 s) shared by every loop's session."""
    global _ssl
    if _ssl is None:
        _ssl = ssl.create_default_context()
    return _ssl


class _LoopState:
    """aiohttp, not httpx: at 64 requests in flight httpx spent ~5 ms of CPU per request on a busy
    2-core host (its pool rescans every connection), aiohttp ~0.7 ms (bench/verifier_concurrency.py)."""

    def __init__(self, concurrency: int) -> None:
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency, ssl=_ssl_context())
        self.session = aiohttp.ClientSession(connector=connector)
        self.semaphore = asyncio.Semaphore(concurrency)
        self.inflight: dict[str, asyncio.Future[Judgement]] = {}


# Keyed by loop so veRL's reward-loop workers (one loop each) and our own background loop never
# share a client bound to another loop; a loop that is garbage-collected drops its state.
_loop_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], _LoopState]] = (
    weakref.WeakKeyDictionary()
)


os.register_at_fork(after_in_child=_forget_after_fork)


def _loop_state(url: str, concurrency: int) -> _LoopState:
    loop = asyncio.get_running_loop()
    per_loop = _loop_states.setdefault(loop, {})
    key = (url, concurrency)
    if key not in per_loop:
        per_loop[key] = _LoopState(concurrency)
    return per_loop[key]


@dataclass(frozen=True)
class VerifierSettings:
    url: str
    model: str
    timeout_s: float = default("verifier_timeout_s")
    max_retries: int = default("verifier_max_retries")
    concurrency: int = default("verifier_concurrency")
    prompt_template: str = XVERIFY_PROMPT
    api_key: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP headers of every request to the verifier (its API key, when one is set)."""
        return openai_api.auth_headers(self.api_key)


async def _post_once(state: _LoopState, settings: VerifierSettings, prompt: str) -> Judgement:
    body = {
        "model": settings.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "max_tokens": MAX_TOKENS,
    }
    timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
    async with state.session.post(
        chat_url(settings.url), json=body, headers=settings.headers, timeout=timeout
    ) as resp:
        if openai_api.retryable(resp.status):
            raise _Retryable(f"HTTP {resp.status}")
        text = await resp.text(errors="replace")
    if resp.status >= 400:
        return Judgement(
            None, True, f"{chat_url(settings.url)}: {openai_api.explain_refusal(resp.status, text, body)}"
        )
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _Retryable(f"malformed reply ({type(exc).__name__})") from exc
    verdict = parse_reply(content)
    return Judgement(verdict, False, "" if verdict else f"undecided reply {str(content)[:80]!r}")


class _Retryable(Exception):
    pass


#: Where the verifier's per-request timeout is set, for messages.
TIMEOUT_SETTING = "reward.verifier.timeout_s (on the command line --verifier-timeout-s, or --timeout-s of `vlmrl verifier check`)"


def failure_detail(exc: BaseException, settings: VerifierSettings, url: str | None = None) -> str:
    """What went wrong with one verifier request to `url` (default: the chat URL), naming it (and,
    for a timeout, the setting).

    A timeout's own message is empty (`TimeoutError()`), so it is spelled out here.
    """
    url = url or chat_url(settings.url)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return (
            f"no answer from {url} within {settings.timeout_s:g} s; raise the verifier timeout, "
            f"{TIMEOUT_SETTING}, or check the server is not overloaded"
        )
    text = " ".join(str(exc).split())[:200]
    if isinstance(exc, _Retryable):
        return f"{url}: {text}"
    return f"{url}: {type(exc).__name__}" + (f": {text}" if text else "")


async def _judge_uncached(state: _LoopState, settings: VerifierSettings, prompt: str) -> Judgement:
    breaker = breaker_for(settings.url)
    if not breaker.allow():
        return Judgement(
            None,
            True,
            f"circuit open: {chat_url(settings.url)} failed {breaker.threshold} times in a row, so it is "
            f"not asked again for {breaker.cooldown_s:g} s (is the server up? `vlmrl verifier check`)",
        )
    last = ""
    recorded = False
    try:
        for attempt in range(settings.max_retries + 1):
            if attempt:
                # Exponential backoff with jitter so a recovering server is not hit by a thundering herd.
                await asyncio.sleep(openai_api.backoff_s(attempt, 0.25, cap_s=8.0))
            try:
                async with state.semaphore:
                    result = await _post_once(state, settings, prompt)
                recorded = True
                breaker.record(not result.error)
                return result
            except (_Retryable, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                last = failure_detail(exc, settings)
        recorded = True
        breaker.record(False)
        return Judgement(None, True, last)
    finally:
        if not recorded:
            # Cancelled or an unexpected exception: count a failure, which also ends a half-open
            # probe; otherwise the breaker would refuse every later call for the rest of the process.
            breaker.record(False)


def _cache_key(settings: VerifierSettings, prompt: str) -> str:
    h = hashlib.sha256()
    for part in (settings.url, settings.model, prompt):
        h.update(part.encode("utf-8", "replace"))
        h.update(b"\0")
    return h.hexdigest()


async def judge(settings: VerifierSettings, question: str, output: str, answer: str) -> Judgement:
    """Ask the verifier whether `output` answers `question` with `answer`; never raises.

    The answer carries its `latency_s`, which the training metrics report (`judge/latency_p50_s`).
    """
    start = time.perf_counter()
    result = await _judge_timed(settings, question, output, answer)
    return dataclasses.replace(result, latency_s=time.perf_counter() - start)


async def _judge_timed(settings: VerifierSettings, question: str, output: str, answer: str) -> Judgement:
    try:
        prompt = build_prompt(settings.prompt_template, question, output, answer)
        key = _cache_key(settings, prompt)
        cached = _cache.get(key)
        if cached is not None:
            return Judgement(cached, False, "cached")
        state = _loop_state(settings.url, settings.concurrency)
        pending = state.inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Judgement] = asyncio.get_running_loop().create_future()
        state.inflight[key] = future
        try:
            result = await _judge_uncached(state, settings, prompt)
        except BaseException as exc:
            result = Judgement(None, True, f"{type(exc).__name__}")
            future.set_result(result)
            raise
        finally:
            state.inflight.pop(key, None)
        if not future.done():
            future.set_result(result)
        if result.verdict is not None:
            _cache.put(key, result.verdict)
        return result
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # never let a client bug escape into the reward
        return Judgement(None, True, f"{type(exc).__name__}: {exc}"[:200])


# (question, model output, correct answer, the right verdict): one easy judgement each way.
PROBES = (
    ("What is 1/2 + 1/4?", "Adding the fractions gives \\frac{3}{4}.", "0.75", "correct"),
    ("What is 1/2 + 1/4?", "Adding the fractions gives \\frac{2}{6}.", "0.75", "incorrect"),
)


@dataclass(frozen=True)
class Health:
    """What `health` found: `ok` when the server lists the model and judges every probe right;
    `checks` holds (what was checked, passed, what was seen) in order."""

    ok: bool
    checks: tuple[tuple[str, bool, str], ...]


async def health(settings: VerifierSettings, listed: list[str] | None = None) -> Health:
    """Ask the served verifier, as the reward would (URL, model, key, prompt, timeout of `settings`):
    GET <base>/models must list `settings.model` (`listed`: what a listing the caller just made
    returned, not asked again), and the model must judge `PROBES` right. Never raises; bypasses the
    judgement cache and the circuit breaker (it is how one learns the server is back), and sends no
    retries."""
    checks: list[tuple[str, bool, str]] = []
    listing = models_url(settings.url)
    state = _LoopState(len(PROBES))
    try:
        if listed is None:
            try:
                async with state.session.get(
                    listing,
                    headers=settings.headers,
                    timeout=aiohttp.ClientTimeout(total=settings.timeout_s),
                ) as resp:
                    text = await resp.text(errors="replace")
                if resp.status != 200:
                    raise ValueError(openai_api.explain_refusal(resp.status, text, {}))
                entries = openai_api.model_entries(json.loads(text))
                if entries is None:
                    raise ValueError("answered, but not with an OpenAI model list")
                listed = [m.get("id") for m in entries]
            except Exception as exc:
                checks.append((f"GET {listing}", False, failure_detail(exc, settings, listing)))
                return Health(False, tuple(checks))
        served = settings.model in listed
        checks.append(
            (
                f"{listing} lists {settings.model!r}",
                served,
                ", ".join(map(str, listed)) or "no model listed",
            )
        )
        if not served:
            return Health(False, tuple(checks))

        async def probe(question: str, output: str, answer: str) -> Judgement:
            prompt = build_prompt(settings.prompt_template, question, output, answer)
            try:
                return await _post_once(state, settings, prompt)
            except Exception as exc:
                return Judgement(None, True, failure_detail(exc, settings))

        replies = await asyncio.gather(*(probe(q, o, a) for q, o, a, _ in PROBES))
        for (_, output, answer, expected), j in zip(PROBES, replies, strict=True):
            seen = j.verdict or (f"error: {j.detail}" if j.error else f"undecided: {j.detail}")
            checks.append((f"judge {output!r} against {answer}: {expected}", j.verdict == expected, seen))
        return Health(all(ok for _, ok, _ in checks), tuple(checks))
    finally:
        await state.session.close()


async def close_clients() -> None:
    """Close this event loop's pooled sessions (call before a short-lived loop ends)."""
    per_loop = _loop_states.pop(asyncio.get_running_loop(), {})
    for state in per_loop.values():
        await state.session.close()


@atexit.register
def _close_all_sessions() -> None:
    # Sessions left open at exit make aiohttp print "Unclosed client session" noise; close each in
    # its own loop: run a stopped loop briefly, hand a running one (another thread's) the coroutine.
    for loop, per_loop in list(_loop_states.items()):
        sessions = [state.session for state in per_loop.values()]

        async def close(sessions: list[aiohttp.ClientSession] = sessions) -> None:
            for session in sessions:
                await session.close()

        with contextlib.suppress(Exception):
            if loop.is_closed():
                continue
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=2)
            else:
                loop.run_until_complete(close())
