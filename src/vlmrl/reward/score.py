"""The reward cascade: format gate -> final answer -> rule check -> verifier, as one dict per response.

`compute_score` scores one response, `score_batch` many (rule checks in parallel, verifier calls
concurrent and deduplicated); `compute_score_async` is the coroutine veRL's entry awaits. None of
them raises on any response, and each returns within its configured bounds. Ground truths are the
data stage's `list[str]` of every acceptable answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vlmrl.reward import check
from vlmrl.reward import extract as ex
from vlmrl.reward import verifier as vf
from vlmrl.reward.check import Outcome, RuleResult
from vlmrl.reward.settings import RewardSettings, settings_from_kwargs

VERDICTS = ("rule", "verifier", "format", "none")


def _settings(settings: RewardSettings | None, kwargs: dict[str, Any]) -> RewardSettings:
    if settings is not None:
        if kwargs:
            raise TypeError(f"pass either settings or reward keyword arguments, not both ({sorted(kwargs)})")
        return settings
    return settings_from_kwargs(kwargs)


def _golds(ground_truth: Any) -> list[str]:
    if isinstance(ground_truth, str) or not isinstance(ground_truth, (list, tuple)):
        raise TypeError(
            f"ground_truth must be a list of acceptable answers (str), got {type(ground_truth).__name__}; "
            "vlmrl.data.normalize.parse_answer_list reads the other forms"
        )
    return [str(g) for g in ground_truth]


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
    score: float,
    acc: int,
    format_ok: int,
    pred: str,
    verdict: str,
    verifier_error: int,
    judgement: vf.Judgement | None = None,
    overturned: int = 0,
) -> dict[str, Any]:
    return {
        "score": float(score),
        "acc": int(acc),
        "format_ok": int(format_ok),
        "pred": ex.truncate_pred(pred),
        "verdict": verdict,
        "verifier_error": int(verifier_error),
        # What the training metrics report of the judge (vlmrl.train.metrics: `judge/*`).
        "verifier_called": int(judgement is not None),
        "verifier_latency_s": float(judgement.latency_s) if judgement is not None else 0.0,
        "verifier_overturned": int(overturned),
    }


@dataclass
class _Pending:
    """A response after the in-process checks, possibly waiting for math-verify or the verifier."""

    pred: str = ""
    answer_block: str = ""
    golds: tuple[str, ...] = ()
    question: str = ""
    rule: RuleResult | None = None
    math: check.Question | None = None
    done: dict[str, Any] | None = None


def _prepare(
    solution_str: Any,
    golds: list[str],
    extra_info: Any,
    settings: RewardSettings,
    seen: dict[tuple[Any, ...], tuple[RuleResult | None, check.Question | None, str]] | None = None,
) -> _Pending:
    """The format gate and the in-process checks; `seen` shares the reading of repeated answers
    within a batch (a GRPO group repeats its answers)."""
    if not isinstance(solution_str, str):
        solution_str = "" if solution_str is None else str(solution_str)
    parsed = ex.check_format(solution_str)
    if not parsed.format_ok:
        return _Pending(done=_result(settings.format_score, 0, 0, "", "format", 0))
    answer_type, choices, question = _info(extra_info)
    key = (parsed.answer, tuple(golds), answer_type, tuple(choices))
    prepared = seen.get(key) if seen is not None else None
    if prepared is None:
        try:
            prepared = check.prepare(parsed.answer, golds, answer_type, choices)
        except Exception:  # last line of defence: a reward bug must not crash a training run
            prepared = RuleResult(Outcome.UNDECIDED, "error"), None, parsed.answer
        if seen is not None:
            seen[key] = prepared
    rule, math, pred = prepared
    return _Pending(pred, parsed.answer, tuple(golds), question, rule, math)


def _math_verify(p: _Pending, settings: RewardSettings) -> _Pending:
    if p.done is None and p.rule is None and p.math is not None:
        p.rule = check.math_verify_check(p.math, settings.rule_timeout_s, settings.workers)
    return p


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
        overturned = int(ok != (p.rule.outcome is Outcome.CORRECT))
        return _result(right if ok else wrong, int(ok), 1, p.pred, "verifier", 0, judgement, overturned)
    error = int(judgement is not None and judgement.error)
    outcome = p.rule.outcome
    if outcome is Outcome.CORRECT:
        return _result(right, 1, 1, p.pred, "rule", error, judgement)
    if outcome in (Outcome.WRONG, Outcome.MISMATCH):
        return _result(wrong, 0, 1, p.pred, "rule", error, judgement)
    # Nobody could compare the answer: never reward what was not checked.
    return _result(wrong, 0, 1, p.pred, "none", error, judgement)


def _judge(p: _Pending, settings: RewardSettings) -> Any:
    assert settings.verifier is not None
    # xVerify reads the whole answer block (it copes with prose around the final answer).
    return vf.judge(settings.verifier, p.question, p.answer_block, " | ".join(p.golds))


async def _score_all(
    items: Sequence[tuple[Any, list[str], Any]], settings: RewardSettings, close_clients: bool
) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    try:
        seen: dict[tuple[Any, ...], Any] = {}
        pendings = [_prepare(s, g, e, settings, seen) for s, g, e in items]
        # One math-verify check per distinct question: a GRPO group repeats its answers.
        todo: dict[check.Question, list[_Pending]] = {}
        for p in pendings:
            if p.done is None and p.rule is None and p.math is not None:
                todo.setdefault(p.math, []).append(p)
        if todo:
            questions = list(todo)
            rules = await loop.run_in_executor(
                None, check.math_verify_many, questions, settings.rule_timeout_s, settings.workers
            )
            for q, rule in zip(questions, rules, strict=True):
                for p in todo[q]:
                    p.rule = rule
        judgements: list[vf.Judgement | None] = [None] * len(pendings)
        asks = [i for i, p in enumerate(pendings) if _needs_verifier(p, settings)]
        if asks:
            replies = await asyncio.gather(*(_judge(pendings[i], settings) for i in asks))
            for i, j in zip(asks, replies, strict=True):
                judgements[i] = j
        return [_finish(p, settings, j) for p, j in zip(pendings, judgements, strict=True)]
    finally:
        if close_clients:
            await vf.close_clients()


async def compute_score_async(
    data_source: Any = None,
    solution_str: Any = "",
    ground_truth: Sequence[str] = (),
    extra_info: Any = None,
    settings: RewardSettings | None = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """`compute_score` as a coroutine: math-verify runs off the loop, verifier calls share its client."""
    s = _settings(settings, reward_kwargs)
    golds = _golds(ground_truth)
    p = _prepare(solution_str, golds, extra_info, s)
    if p.done is None and p.rule is None and p.math is not None:
        future = check.submit_check(p.math, s.rule_timeout_s, s.workers)
        p.rule = await asyncio.wrap_future(future)
    judgement = await _judge(p, s) if _needs_verifier(p, s) else None
    return _finish(p, s, judgement)


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, also from a thread whose loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as one:
        return one.submit(asyncio.run, coro).result()


def compute_score(
    data_source: Any = None,
    solution_str: Any = "",
    ground_truth: Sequence[str] = (),
    extra_info: Any = None,
    settings: RewardSettings | None = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """Score one response: a dict with score, acc, format_ok, pred, verdict, verifier_error, and
    verifier_called, verifier_latency_s, verifier_overturned (the judge's share, for training metrics).

    `ground_truth` is the list of every acceptable answer; `settings` (or the keyword arguments of
    `RewardSettings.from_kwargs`, built once per distinct set) the scores and bounds. Safe from any
    thread; with no verifier configured, or when the rules decide, no event loop is involved.
    """
    s = _settings(settings, reward_kwargs)
    p = _math_verify(_prepare(solution_str, _golds(ground_truth), extra_info, s), s)
    judgement = None
    if _needs_verifier(p, s):
        try:
            judgement = _run(_score_one_judgement(p, s))
        except Exception as exc:
            judgement = vf.Judgement(None, True, type(exc).__name__)
    return _finish(p, s, judgement)


async def _score_one_judgement(p: _Pending, settings: RewardSettings) -> vf.Judgement:
    try:
        return await _judge(p, settings)
    finally:
        await vf.close_clients()


def score_batch(
    items: Sequence[Mapping[str, Any]], settings: RewardSettings | None = None, **reward_kwargs: Any
) -> list[dict[str, Any]]:
    """Score many responses; each item has `solution_str` (or `response`), `ground_truth` (a list),
    optional `data_source`, `extra_info`. Usable from any thread, inside or outside a running loop."""
    s = _settings(settings, reward_kwargs)
    triples = [
        (
            item.get("solution_str", item.get("response", "")),
            _golds(item.get("ground_truth")),
            item.get("extra_info"),
        )
        for item in items
    ]
    return _run(_score_all(triples, s, close_clients=True))
