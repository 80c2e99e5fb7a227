"""The reward cascade: format gate -> extraction -> rule check -> verifier, as veRL/TRL-ready functions.

`compute_score` (sync), `compute_score_async` and `score_batch` / `score_batch_async` return the same
dict; none of them raises on any response, and each returns within its configured bounds.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vlmrl.errors import UserError
from vlmrl.reward import answer as ans
from vlmrl.reward import verifier as vf
from vlmrl.reward.rule import Outcome, RuleResult, default_pool_size, rule_check

VERDICTS = ("rule", "verifier", "format", "none")


@dataclass(frozen=True)
class RewardSettings:
    """Scores and bounds of one reward; built from `reward_kwargs` (unknown keys ignored)."""

    correct_score: float = 1.0
    incorrect_score: float = -1.0
    format_score: float = -1.0
    rule_timeout_s: float = 5.0
    verifier: vf.VerifierSettings | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> RewardSettings:
        def num(name: str, default: float, cast: type = float) -> Any:
            value = kwargs.get(name)
            if value is None:
                return default
            try:
                return cast(value)
            except (TypeError, ValueError) as exc:
                raise UserError(f"reward kwarg {name}={value!r} is not a {cast.__name__}") from exc

        url = kwargs.get("verifier_url") or os.environ.get("REWARD_MODEL_URL") or None
        model = kwargs.get("verifier_model") or os.environ.get("REWARD_MODEL_NAME") or None
        verifier = None
        if url and model:
            verifier = vf.VerifierSettings(
                url=str(url),
                model=str(model),
                timeout_s=max(0.01, num("verifier_timeout_s", 30.0)),
                max_retries=max(0, num("verifier_max_retries", 2, int)),
                concurrency=max(1, num("verifier_concurrency", 64, int)),
                prompt_template=str(kwargs.get("verifier_prompt_template") or vf.XVERIFY_PROMPT),
                api_key=kwargs.get("verifier_api_key") or os.environ.get("REWARD_MODEL_API_KEY") or None,
            )
        elif url and not model:
            raise UserError(
                f"verifier url {url!r} is set but no model name: set reward.verifier.model "
                "(or $REWARD_MODEL_NAME) to the verifier's --served-model-name"
            )
        return cls(
            correct_score=num("correct_score", 1.0),
            incorrect_score=num("incorrect_score", -1.0),
            format_score=num("format_score", -1.0),
            rule_timeout_s=max(0.1, num("rule_timeout_s", 5.0)),
            verifier=verifier,
        )


def normalize_ground_truth(ground_truth: Any) -> list[str]:
    """Every acceptable answer as a list of strings (str, list/tuple, numpy array, literal list)."""
    if ground_truth is None:
        return []
    if isinstance(ground_truth, bytes):
        ground_truth = ground_truth.decode("utf-8", "replace")
    if isinstance(ground_truth, str):
        s = ground_truth.strip()
        # Skywork stores "['3', '3.0']": a Python literal list of acceptable answers.
        if len(s) < 10000 and s.startswith("[") and s.endswith("]") and ("'" in s or '"' in s):
            try:
                value = ast.literal_eval(s)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                value = None
            if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
                return [v for v in value if v.strip()]
        return [ground_truth]
    if hasattr(ground_truth, "tolist"):
        ground_truth = ground_truth.tolist()
    if isinstance(ground_truth, (list, tuple)):
        out: list[str] = []
        for item in ground_truth:
            out.extend(normalize_ground_truth(item))
        return out
    return [str(ground_truth)]


def _info(extra_info: Any) -> tuple[str | None, list[str], str]:
    if not isinstance(extra_info, Mapping):
        return None, [], ""
    answer_type = extra_info.get("answer_type")
    choices = extra_info.get("choices")
    if choices is None:
        choices = []
    elif hasattr(choices, "tolist"):
        choices = choices.tolist()
    question = extra_info.get("question") or ""
    return (
        str(answer_type) if answer_type else None,
        [str(c) for c in choices] if isinstance(choices, (list, tuple)) else [],
        str(question),
    )


def _result(
    score: float, acc: int, format_ok: int, pred: str, verdict: str, verifier_error: int
) -> dict[str, Any]:
    return {
        "score": float(score),
        "acc": int(acc),
        "format_ok": int(format_ok),
        "pred": ans.truncate_pred(pred),
        "verdict": verdict,
        "verifier_error": int(verifier_error),
    }


@dataclass
class _Pending:
    """A response after the rule stage, possibly waiting for the verifier."""

    pred: str
    answer_block: str
    golds: list[str]
    question: str
    rule: RuleResult | None = None
    done: dict[str, Any] | None = None


def _rule_stage(solution_str: Any, ground_truth: Any, extra_info: Any, settings: RewardSettings) -> _Pending:
    if not isinstance(solution_str, str):
        solution_str = "" if solution_str is None else str(solution_str)
    parsed = ans.check_format(solution_str)
    if not parsed.format_ok:
        return _Pending("", "", [], "", done=_result(settings.format_score, 0, 0, "", "format", 0))
    pred = ans.extract_answer(parsed.answer)
    golds = normalize_ground_truth(ground_truth)
    answer_type, choices, question = _info(extra_info)
    pending = _Pending(pred, parsed.answer, golds, question)
    pending.rule = rule_check(pred, golds, answer_type, choices, timeout_s=settings.rule_timeout_s)
    return pending


def _needs_verifier(p: _Pending, settings: RewardSettings) -> bool:
    return (
        p.done is None
        and settings.verifier is not None
        and p.rule is not None
        and p.rule.outcome in (Outcome.MISMATCH, Outcome.UNDECIDED)
        and bool(p.golds)
    )


def _finish(p: _Pending, settings: RewardSettings, judgement: vf.Judgement | None) -> dict[str, Any]:
    if p.done is not None:
        return p.done
    assert p.rule is not None
    right, wrong = settings.correct_score, settings.incorrect_score
    if judgement is not None and judgement.verdict is not None:
        ok = judgement.verdict == "correct"
        return _result(right if ok else wrong, int(ok), 1, p.pred, "verifier", 0)
    error = int(judgement is not None and judgement.error)
    outcome = p.rule.outcome
    if outcome is Outcome.CORRECT:
        return _result(right, 1, 1, p.pred, "rule", error)
    if outcome in (Outcome.WRONG, Outcome.MISMATCH):
        return _result(wrong, 0, 1, p.pred, "rule", error)
    # Nobody could compare the answer: never reward what was not checked.
    return _result(wrong, 0, 1, p.pred, "none", error)


def _verifier_args(p: _Pending) -> tuple[str, str, str]:
    # xVerify reads the whole answer block (it copes with prose around the final answer).
    return p.question, p.answer_block, " | ".join(p.golds)


def _safe_rule_stage(
    solution_str: Any, ground_truth: Any, extra_info: Any, settings: RewardSettings
) -> _Pending:
    try:
        return _rule_stage(solution_str, ground_truth, extra_info, settings)
    except Exception:  # last line of defence: a reward bug must not crash a training run
        return _Pending("", "", [], "", done=_result(settings.incorrect_score, 0, 0, "", "none", 0))


# --- async API -----------------------------------------------------------------------------------

_rule_threads: concurrent.futures.ThreadPoolExecutor | None = None
_rule_threads_pid = 0
_rule_threads_lock = threading.Lock()


def _rule_executor() -> concurrent.futures.ThreadPoolExecutor:
    """Threads that wait on the math-verify workers, so an event loop never blocks on them."""
    global _rule_threads, _rule_threads_pid
    with _rule_threads_lock:
        if _rule_threads is None or _rule_threads_pid != os.getpid():
            _rule_threads = concurrent.futures.ThreadPoolExecutor(
                max_workers=2 * default_pool_size() + 2, thread_name_prefix="vlmrl-rule"
            )
            _rule_threads_pid = os.getpid()
        return _rule_threads


async def compute_score_async(
    data_source: Any = None,
    solution_str: Any = "",
    ground_truth: Any = None,
    extra_info: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Async `compute_score`: verifier calls share the running loop's pooled client; never raises."""
    settings = RewardSettings.from_kwargs(**kwargs)
    loop = asyncio.get_running_loop()
    p = await loop.run_in_executor(
        _rule_executor(), _safe_rule_stage, solution_str, ground_truth, extra_info, settings
    )
    judgement = None
    if _needs_verifier(p, settings):
        assert settings.verifier is not None
        judgement = await vf.judge(settings.verifier, *_verifier_args(p))
    return _finish(p, settings, judgement)


async def score_batch_async(items: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """Score many responses: rule checks in parallel, verifier calls concurrent and deduplicated.

    Each item has `solution_str` (or `response`), `ground_truth`, optional `data_source`, `extra_info`.
    """
    settings = RewardSettings.from_kwargs(**kwargs)
    loop = asyncio.get_running_loop()
    executor = _rule_executor()
    pendings = await asyncio.gather(
        *(
            loop.run_in_executor(
                executor,
                _safe_rule_stage,
                item.get("solution_str", item.get("response", "")),
                item.get("ground_truth"),
                item.get("extra_info"),
                settings,
            )
            for item in items
        )
    )
    judgements: list[vf.Judgement | None] = [None] * len(pendings)
    todo = [i for i, p in enumerate(pendings) if _needs_verifier(p, settings)]
    if todo:
        assert settings.verifier is not None
        results = await asyncio.gather(
            *(vf.judge(settings.verifier, *_verifier_args(pendings[i])) for i in todo)
        )
        for i, j in zip(todo, results, strict=True):
            judgements[i] = j
    return [_finish(p, settings, j) for p, j in zip(pendings, judgements, strict=True)]


# --- sync API: one background loop per process so the HTTP client is pooled across calls ---------

_bg_loop: asyncio.AbstractEventLoop | None = None
_bg_pid = 0
_bg_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _bg_loop, _bg_pid
    with _bg_lock:
        if _bg_loop is None or _bg_pid != os.getpid() or _bg_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="vlmrl-reward-loop", daemon=True).start()
            _bg_loop, _bg_pid = loop, os.getpid()
        return _bg_loop


def _run(coro: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()


def compute_score(
    data_source: Any = None,
    solution_str: Any = "",
    ground_truth: Any = None,
    extra_info: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response: a dict with score, acc, format_ok, pred, verdict, verifier_error.

    Safe from any thread (veRL runs it in a thread executor). With no verifier configured, or
    when the rules decide, no event loop is involved at all.
    """
    settings = RewardSettings.from_kwargs(**kwargs)
    p = _safe_rule_stage(solution_str, ground_truth, extra_info, settings)
    judgement = None
    if _needs_verifier(p, settings):
        assert settings.verifier is not None
        try:
            judgement = _run(vf.judge(settings.verifier, *_verifier_args(p)))
        except Exception as exc:
            judgement = vf.Judgement(None, True, type(exc).__name__)
    return _finish(p, settings, judgement)


def score_batch(items: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """Sync `score_batch_async`, usable from any thread, inside or outside a running loop."""
    RewardSettings.from_kwargs(**kwargs)  # bad settings raise here, in the caller's thread
    return _run(score_batch_async(items, **kwargs))
