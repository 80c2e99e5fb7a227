"""The reward cascade: format gate -> final answer -> rule check -> verifier, as one dict per response.

`compute_score` scores one response, `score_batch` many (rule checks in parallel, verifier calls
concurrent and deduplicated); `compute_score_async` is the coroutine veRL's entry awaits. None of
them raises on any response, and each returns within its configured bounds. Ground truths are the
data stage's `list[str]` of every acceptable answer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vlmrl.data.normalize import answer_list, option_letters, option_texts
from vlmrl.reward import check, choice
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


@dataclass(frozen=True)
class Item:
    """One response to score, read once at the reward's door: every acceptable answer (`golds`) and
    what `extra_info` says about the question."""

    solution_str: str
    golds: tuple[str, ...]
    answer_type: str | None = None
    choices: tuple[str, ...] = ()
    question: str = ""


def read_item(solution_str: Any, ground_truth: Any, extra_info: Any = None) -> Item:
    """An `Item` from the arguments of veRL's `compute_score` signature. The ground truth is read by
    the data stage's one rule (`answer_list`: a string is one answer, a list several; anything else
    is a `TypeError`); a malformed `extra_info` is read as absent (it never costs a score)."""
    if not isinstance(solution_str, str):
        solution_str = "" if solution_str is None else str(solution_str)
    golds = tuple(answer_list(ground_truth))
    if not isinstance(extra_info, Mapping):
        return Item(solution_str, golds)
    answer_type = extra_info.get("answer_type")
    try:
        choices = tuple(answer_list(extra_info.get("choices"), "extra_info.choices"))
    except TypeError:
        choices = ()
    question = str(extra_info.get("question") or "")
    if choices and option_texts(choices) is None:
        # Letters only: the question may list the options' texts, which name the same options.
        listed = choice.options_in_question(question, option_letters(choices))
        choices = tuple(listed) if listed and option_texts(listed) else choices
    return Item(solution_str, golds, str(answer_type) if answer_type else None, choices, question)


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
    item: Item,
    settings: RewardSettings,
    seen: dict[tuple[Any, ...], tuple[RuleResult | None, check.Question | None, str]],
) -> _Pending:
    """The format gate and the in-process checks; `seen` shares the reading of repeated answers
    within a batch (a GRPO group repeats its answers)."""
    parsed = ex.check_format(item.solution_str)
    if not parsed.format_ok:
        return _Pending(done=_result(settings.format_score, 0, 0, "", "format", 0))
    key = (parsed.answer, item.golds, item.answer_type, item.choices)
    prepared = seen.get(key)
    if prepared is None:
        try:
            prepared = check.prepare(parsed.answer, item.golds, item.answer_type, item.choices)
        except Exception:  # last line of defence: a reward bug must not crash a training run
            prepared = RuleResult(Outcome.UNDECIDED, "error"), None, parsed.answer
        seen[key] = prepared
    rule, math, pred = prepared
    return _Pending(pred, parsed.answer, item.golds, _judge_question(item), rule, math)


def _judge_question(item: Item) -> str:
    """The question as the verifier reads it: with the options' texts listed ("(A) text") when
    `choices` holds them and the question does not already list them all."""
    texts = option_texts(item.choices)
    if not texts or all(t in item.question for t in texts):
        return item.question
    listed = "\n".join(
        f"({letter}) {text}" for letter, text in zip(option_letters(texts), texts, strict=True)
    )
    return f"{item.question}\n\n{listed}" if item.question else listed


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


@dataclass(frozen=True)
class _MathVerify:
    """The cascade asks its runner for math-verify's verdicts on these distinct questions."""

    questions: list[check.Question]


@dataclass(frozen=True)
class _Judge:
    """The cascade asks its runner for the verifier's judgements of these responses."""

    pendings: list[_Pending]


_Cascade = Generator["_MathVerify | _Judge", Any, list[dict[str, Any]]]


def _cascade(items: Sequence[Item], settings: RewardSettings) -> _Cascade:
    """The one cascade: format gate and in-process checks, then one math-verify check per distinct
    question, then the verifier where the rules could not decide. It yields what it needs checked
    (`_MathVerify`, `_Judge`) and is sent the answers, so one driver serves the sync and the async
    callers alike; a single call is a batch of one."""
    seen: dict[tuple[Any, ...], Any] = {}
    pendings = [_prepare(item, settings, seen) for item in items]
    # One math-verify check per distinct question: a GRPO group repeats its answers.
    todo: dict[check.Question, list[_Pending]] = {}
    for p in pendings:
        if p.done is None and p.rule is None and p.math is not None:
            todo.setdefault(p.math, []).append(p)
    if todo:
        questions = list(todo)
        rules = yield _MathVerify(questions)
        for q, rule in zip(questions, rules, strict=True):
            for p in todo[q]:
                p.rule = rule
    judgements: list[vf.Judgement | None] = [None] * len(pendings)
    asks = [i for i, p in enumerate(pendings) if _needs_verifier(p, settings)]
    if asks:
        replies = yield _Judge([pendings[i] for i in asks])
        for i, j in zip(asks, replies, strict=True):
            judgements[i] = j
    return [_finish(p, settings, j) for p, j in zip(pendings, judgements, strict=True)]


def _judge(p: _Pending, settings: RewardSettings) -> Any:
    assert settings.verifier is not None
    # xVerify reads the whole answer block (it copes with prose around the final answer).
    return vf.judge(settings.verifier, p.question, p.answer_block, " | ".join(p.golds))


async def _judge_all(pendings: list[_Pending], settings: RewardSettings, close_clients: bool) -> list[Any]:
    try:
        return list(await asyncio.gather(*(_judge(p, settings) for p in pendings)))
    finally:
        if close_clients:
            await vf.close_clients()


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, also from a thread whose loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as one:
        return one.submit(asyncio.run, coro).result()


def _drive(items: Sequence[Item], settings: RewardSettings) -> list[dict[str, Any]]:
    """Run the cascade from sync code: math-verify in this thread (a single question shares a check
    already in flight, within about 2x `rule_timeout_s`; a batch keeps each check's own bound), the
    verifier in a short-lived event loop only when the rules leave something undecided."""
    cascade = _cascade(items, settings)
    reply: Any = None
    try:
        while True:
            need = cascade.send(reply)
            if isinstance(need, _MathVerify):
                qs, t, w = need.questions, settings.rule_timeout_s, settings.workers
                reply = (
                    [check.math_verify_check(qs[0], t, w)]
                    if len(qs) == 1
                    else check.math_verify_many(qs, t, w)
                )
            else:
                try:
                    reply = _run(_judge_all(need.pendings, settings, close_clients=True))
                except Exception as exc:
                    reply = [vf.Judgement(None, True, type(exc).__name__)] * len(need.pendings)
    except StopIteration as done:
        return done.value


async def _drive_async(items: Sequence[Item], settings: RewardSettings) -> list[dict[str, Any]]:
    """Run the cascade in the caller's event loop: math-verify off the loop (a single question as a
    future that concurrent calls for the same answer share), verifier calls on the loop's client."""
    cascade = _cascade(items, settings)
    reply: Any = None
    try:
        while True:
            need = cascade.send(reply)
            if isinstance(need, _MathVerify):
                qs, t, w = need.questions, settings.rule_timeout_s, settings.workers
                if len(qs) == 1:
                    reply = [await asyncio.wrap_future(check.submit_check(qs[0], t, w))]
                else:
                    loop = asyncio.get_running_loop()
                    reply = await loop.run_in_executor(None, check.math_verify_many, qs, t, w)
            else:
                reply = await _judge_all(need.pendings, settings, close_clients=False)
    except StopIteration as done:
        return done.value


async def compute_score_async(
    data_source: Any = None,
    solution_str: Any = "",
    ground_truth: Any = (),
    extra_info: Any = None,
    settings: RewardSettings | None = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """`compute_score` as a coroutine: math-verify runs off the loop, verifier calls share its client."""
    s = _settings(settings, reward_kwargs)
    return (await _drive_async([read_item(solution_str, ground_truth, extra_info)], s))[0]


def compute_score(
    data_source: Any = None,
    solution_str: Any = "",
    ground_truth: Any = (),
    extra_info: Any = None,
    settings: RewardSettings | None = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """Score one response: a dict with score, acc, format_ok, pred, verdict, verifier_error, and
    verifier_called, verifier_latency_s, verifier_overturned (the judge's share, for training metrics).

    `ground_truth` is one acceptable answer (a string) or a list of every acceptable answer;
    `settings` (or the keyword arguments of `RewardSettings.from_kwargs`, built once per distinct
    set) the scores and bounds. Safe from any thread; with no verifier configured, or when the rules
    decide, no event loop is involved.
    """
    s = _settings(settings, reward_kwargs)
    return _drive([read_item(solution_str, ground_truth, extra_info)], s)[0]


def score_batch(
    items: Sequence[Mapping[str, Any]], settings: RewardSettings | None = None, **reward_kwargs: Any
) -> list[dict[str, Any]]:
    """Score many responses; each item has `solution_str` (or `response`), `ground_truth` (a string
    or a list), optional `data_source`, `extra_info`. Usable from any thread, inside or outside a
    running loop."""
    s = _settings(settings, reward_kwargs)
    read = [
        read_item(
            item.get("solution_str", item.get("response", "")),
            item.get("ground_truth"),
            item.get("extra_info"),
        )
        for item in items
    ]
    return _drive(read, s)
