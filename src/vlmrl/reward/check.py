"""The rule check: option letters, plain numbers in-process, math-verify in a killable worker.

`quick_check` decides what is safe to decide in-process (hedges, option letters, plain numbers, a
cached math-verify verdict) and returns None when math-verify must read the answer;
`math_verify_check` asks a worker and caches its verdict (GRPO groups repeat the same answers).
"""

from __future__ import annotations

import concurrent.futures
import enum
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from vlmrl.data.normalize import option_texts
from vlmrl.reward import choice
from vlmrl.reward import extract as ex
from vlmrl.reward.pool import WORKER_START_TIMEOUT_S, get_pool
from vlmrl.utils.lru import LRU


class Outcome(enum.Enum):
    CORRECT = "correct"  # final: some ground truth matches
    WRONG = "wrong"  # final: a certain mismatch (plain numbers, option letters, hedges)
    MISMATCH = "mismatch"  # math-verify says unequal; a verifier may still overrule it
    UNDECIDED = "undecided"  # nothing could compare them (unparseable, timeout)


@dataclass(frozen=True)
class RuleResult:
    outcome: Outcome
    how: str  # which step decided: number, choice, hedge, negated, math_verify, timeout, ...


@dataclass(frozen=True)
class Question:
    """What math-verify must compare, when the in-process checks could not decide."""

    math_text: str
    golds: tuple[str, ...]


_MULTI_RE = re.compile(r"[,;]|\\text\{\s*(?:and|or)\s*\}|\b(?:and|or)\b")


def _multi_part(gold: str) -> bool:
    """A ground truth listing several answers ("2, -2", "6 and 8"), not one tuple or interval."""
    depth = 0
    for c in gold:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c in ",;" and depth == 0:
            return True
    return bool(_MULTI_RE.search(gold))


def _choice_mode(final: ex.Final, golds: Sequence[str], answer_type: str | None) -> bool:
    if answer_type == "choice" or all(choice.is_letter(g) for g in golds):
        return True
    bare = final.value is not None and choice.is_letter(re.sub(r"[$\s.]|\\text\{|\}", "", final.value))
    return bare and all(choice.gold_letters(g) for g in golds)


def _in_process(value: str, golds: Sequence[str], boxed: bool) -> RuleResult | None:
    """Plain numbers, simple fractions against decimals, and identical text: exact, no worker."""
    if any(ex.text_key(value) == ex.text_key(g) for g in golds):
        return RuleResult(Outcome.CORRECT, "exact")
    key = ex.latex_key(value)
    if key and any(key == ex.latex_key(g) for g in golds):
        return RuleResult(Outcome.CORRECT, "exact")
    gold_values = [ex.plain_number(g) for g in golds]
    number = ex.plain_number(value)
    if number is None and not boxed:
        number = ex.prose_number(value)
    if number is not None:
        if number in gold_values:
            return RuleResult(Outcome.CORRECT, "number")
        if all(
            v is not None or ex.simple_fraction(g) is not None
            for v, g in zip(gold_values, golds, strict=True)
        ):
            # A decimal against fractions: only a rounded decimal of the fraction could be right.
            fractions = [ex.simple_fraction(g) for g, v in zip(golds, gold_values, strict=True) if v is None]
            if not any(f is not None and f == number for f in fractions):
                return RuleResult(Outcome.WRONG, "number") if not fractions else None
            return RuleResult(Outcome.CORRECT, "number")
        return None
    with_unit = ex.number_with_unit(value)
    if with_unit is not None and with_unit in gold_values:
        return RuleResult(Outcome.CORRECT, "number")
    fraction = ex.simple_fraction(value)
    if fraction is not None:
        exact = [
            v if v is not None else ex.simple_fraction(g) for v, g in zip(gold_values, golds, strict=True)
        ]
        if all(v is not None for v in exact):
            # Both sides exact rationals: equal, the rounded decimal of the fraction, or certainly not.
            ok = fraction in exact or any(ex.rounds_to(g, fraction) for g in golds)
            return RuleResult(Outcome.CORRECT if ok else Outcome.WRONG, "number")
    # Integers, fractions, square roots and pi on both sides: compared exactly, no worker.
    surd = ex.surd_value(value) if number is None else None
    if surd is not None:
        gold_surds = [ex.surd_value(g) for g in golds]
        if surd in gold_surds:
            return RuleResult(Outcome.CORRECT, "surd")
        if all(g is not None for g in gold_surds):
            return RuleResult(Outcome.WRONG, "surd")
    return None


def prepare(
    answer: str, golds: Sequence[str], answer_type: str | None = None, choices: Sequence[str] = ()
) -> tuple[RuleResult | None, Question | None, str]:
    """(a final verdict, or what math-verify must compare; the extracted answer for logs)."""
    golds = [g for g in golds if g.strip()]
    if not golds:
        return RuleResult(Outcome.UNDECIDED, "no_ground_truth"), None, answer
    final = ex.final_answer(answer)
    if final.too_long:
        return RuleResult(Outcome.WRONG, "too_long"), None, answer[:200]
    pred = final.value if final.value is not None else final.math_text
    texts = option_texts(choices)
    if texts:
        # The options' texts are known: a letter and a text name the same option, both ways.
        value = final.value if final.value is not None and not final.hedge else None
        read = choice.options_verdict(value, answer, golds, texts)
        if read is not None:
            ok, how, said = read
            return RuleResult(Outcome.CORRECT if ok and not final.negated else Outcome.WRONG, how), None, said
        if all(choice.is_letter(g) for g in golds):
            # A letter ground truth and an answer that names no option: only a verifier can tell.
            return RuleResult(Outcome.UNDECIDED, "choice_no_option"), None, pred
        # The option's text as ground truth: the answer may still state it its own way ("12.0").
        choices, answer_type = (), None
    yes_no = {choice.yes_no_gold(g) for g in golds}
    if None not in yes_no:
        said = choice.read_yes_no(final.value if not final.hedge else None, answer)
        if said is not None:
            ok = said in yes_no and not final.negated
            return RuleResult(Outcome.CORRECT if ok else Outcome.WRONG, "yes_no"), None, said
    if _choice_mode(final, golds, answer_type):
        letters_text = final.value if final.value is not None and not final.hedge else answer
        decided = choice.choice_verdict(letters_text, golds, choices)
        if decided is not None:
            ok, how = decided
            return RuleResult(Outcome.CORRECT if ok else Outcome.WRONG, how), None, letters_text
        if answer_type == "choice":
            # The answer names no option letter (maybe the option's text): only a verifier can tell.
            return RuleResult(Outcome.UNDECIDED, "choice_no_letter"), None, pred
    if final.negated:
        return RuleResult(Outcome.WRONG, "negated"), None, pred
    math_text = final.math_text
    if final.hedge:
        if not any(_multi_part(g) for g in golds):
            return RuleResult(Outcome.WRONG, "hedge"), None, pred
        math_text = ex.hedge_as_list(final.value if final.value is not None else final.math_text)
        if "\\boxed" not in math_text and "$" not in math_text:
            math_text = "\\boxed{" + math_text + "}"
    elif final.value is not None:
        decided = _in_process(final.value, golds, boxed="\\boxed" in answer or "\\fbox" in answer)
        if decided is not None:
            return decided, None, pred
    question = Question(math_text, tuple(golds))
    cached = _cache.get(question)
    if cached is not None:
        return cached, None, pred
    return None, question, pred


def _verdict(question: Question, status: str) -> RuleResult:
    """A worker's reply as a result; a decided one (equal or unequal) is cached."""
    if status not in ("equal", "unequal"):
        return RuleResult(Outcome.UNDECIDED, status)
    result = RuleResult(Outcome.CORRECT if status == "equal" else Outcome.MISMATCH, "math_verify")
    _cache.put(question, result)
    return result


def _claim(question: Question) -> tuple[concurrent.futures.Future[RuleResult], bool]:
    """(the check of `question` in flight, False), or (a new one that the caller must run, True)."""
    with _inflight_lock:
        running = _inflight.get(question)
        if running is not None:
            return running, False
        mine: concurrent.futures.Future[RuleResult] = concurrent.futures.Future()
        _inflight[question] = mine
        return mine, True


def _run_claimed(
    question: Question, mine: concurrent.futures.Future[RuleResult], timeout_s: float, workers: int
) -> RuleResult:
    """Check a claimed question in a worker, then hand the result to everyone waiting on it."""
    result = RuleResult(Outcome.UNDECIDED, "error")
    try:
        result = _verdict(
            question, get_pool(workers).check(question.golds, question.math_text, timeout_s=timeout_s)
        )
    except Exception:
        pass
    finally:
        with _inflight_lock:
            _inflight.pop(question, None)
        mine.set_result(result)
    return result


def math_verify_check(question: Question, timeout_s: float, workers: int) -> RuleResult:
    """math-verify in a killable worker; returns within about 2x `timeout_s` once workers have started.

    Concurrent calls for the same question (a GRPO group's identical answers, scored one by one
    by veRL's reward loop) share one check: the others wait for it, within the same bound.
    """
    cached = _cache.get(question)
    if cached is not None:
        return cached
    future, mine = _claim(question)
    if mine:
        return _run_claimed(question, future, timeout_s, workers)
    try:
        return future.result(timeout=2 * timeout_s)
    except Exception:
        return RuleResult(Outcome.UNDECIDED, "busy")


def submit_check(question: Question, timeout_s: float, workers: int) -> concurrent.futures.Future[RuleResult]:
    """`math_verify_check` as a future, for event loops (veRL's reward loop awaits one response at
    a time, a whole batch at once): a question already being checked gets that check's future, so
    a GRPO group's repeated answers cost one check and hold no thread while they wait."""
    global _executor
    cached = _cache.get(question)
    if cached is not None:
        done: concurrent.futures.Future[RuleResult] = concurrent.futures.Future()
        done.set_result(cached)
        return done
    future, mine = _claim(question)
    if not mine:
        return future
    with _inflight_lock:
        if _executor is None:
            # One thread per worker keeps every worker busy; more would only queue at the pool.
            _executor = concurrent.futures.ThreadPoolExecutor(max(1, workers), "vlmrl-rule")
    try:
        _executor.submit(_run_claimed, question, future, timeout_s, workers)
    except RuntimeError:  # interpreter shutting down
        with _inflight_lock:
            _inflight.pop(question, None)
        future.set_result(RuleResult(Outcome.UNDECIDED, "error"))
    return future


def math_verify_many(questions: Sequence[Question], timeout_s: float, workers: int) -> list[RuleResult]:
    """`math_verify_check` of many distinct questions at once: batched to the pool's workers, each
    check within its own `timeout_s` (a batch waits for a killed worker's replacement, up to
    `WORKER_START_TIMEOUT_S`, rather than give up on the checks behind it)."""
    results: list[RuleResult | None] = [_cache.get(q) for q in questions]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        try:
            statuses = get_pool(workers).check_many(
                [(questions[i].golds, questions[i].math_text) for i in todo],
                timeout_s=timeout_s,
                wait_s=max(timeout_s, WORKER_START_TIMEOUT_S),
            )
        except Exception:
            statuses = ["error"] * len(todo)
        for i, status in zip(todo, statuses, strict=True):
            results[i] = _verdict(questions[i], status)
    return [r if r is not None else RuleResult(Outcome.UNDECIDED, "error") for r in results]


def rule_check(
    answer: str,
    golds: Sequence[str],
    answer_type: str | None = None,
    choices: Sequence[str] = (),
    timeout_s: float = 5.0,
    workers: int = 1,
) -> RuleResult:
    """The whole rule check of one answer block; about 2x `timeout_s` once started; never raises."""
    try:
        decided, question, _ = prepare(answer, golds, answer_type, choices)
    except Exception:  # a bug in a reader must not cost a training step
        return RuleResult(Outcome.UNDECIDED, "error")
    if decided is not None:
        return decided
    assert question is not None
    return math_verify_check(question, timeout_s, workers)


#: math-verify verdicts: GRPO groups repeat the same answers to the same question.
CACHE_SIZE = 65536
_cache: LRU[Question, RuleResult] = LRU(CACHE_SIZE)
_inflight: dict[Question, concurrent.futures.Future[RuleResult]] = {}
_inflight_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None  # for `submit_check`


def _forget_after_fork() -> None:
    """A forked child starts with fresh locks (a parent thread may have held one at the fork), no
    checks in flight and no threads (those were its parent's)."""
    global _cache, _inflight_lock, _executor
    _cache = LRU(CACHE_SIZE)
    _inflight_lock = threading.Lock()
    _inflight.clear()
    _executor = None


os.register_at_fork(after_in_child=_forget_after_fork)
