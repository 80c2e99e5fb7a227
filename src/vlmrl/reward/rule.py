"""Rule check: fast normalised comparison first, then math-verify in killable worker processes.

math-verify's own timeouts use `signal.alarm` (main thread only) and some inputs hang anyway, so
every symbolic check runs in a worker process this module kills and replaces when it overruns.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmrl.reward import answer as ans

_WORKER_SCRIPT = str(Path(__file__).with_name("_mv_worker.py"))
# How long a fresh worker may take to import sympy + math-verify (~1.5 s idle, far more on a busy
# host). Waited for apart from a check's own bound: a correct answer must not fail on a cold worker.
WORKER_START_TIMEOUT_S = 60.0


class Outcome(enum.Enum):
    CORRECT = "correct"  # final: some ground truth matches
    WRONG = "wrong"  # final: a certain mismatch (plain numbers, option letters, hedges)
    MISMATCH = "mismatch"  # math-verify says unequal; a verifier may still overrule it
    UNDECIDED = "undecided"  # nothing could compare them (unparseable, timeout)


@dataclass(frozen=True)
class RuleResult:
    outcome: Outcome
    how: str  # which step decided: exact, number, choice, hedge, set, math_verify, timeout, ...


# --- the math-verify worker pool -----------------------------------------------------------------


class _WorkerTimeout(Exception):
    pass


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", _WORKER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        self._buf = b""
        self.ready = False

    def _readline(self, deadline: float) -> str:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _WorkerTimeout
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                raise _WorkerTimeout
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("math-verify worker exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def wait_ready(self, deadline: float) -> None:
        if not self.ready:
            self._readline(deadline)
            self.ready = True

    def request(self, golds: Sequence[str], pred: str, timeout_s: float) -> str:
        payload = json.dumps({"golds": list(golds), "pred": pred, "timeout_s": timeout_s}) + "\n"
        self.proc.stdin.write(payload.encode())  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self._readline(time.monotonic() + timeout_s))["status"]

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]


class MathVerifyPool:
    """Lazily started worker processes; a check that overruns gets its worker killed and replaced."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.pid = os.getpid()
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self.kills = 0

    def _acquire(self, deadline: float) -> _Worker | None:
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size:
                    self._count += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
        try:
            return _Worker()
        except OSError:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            return None

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            self._idle.append(worker) if worker is not None else None
            self._cond.notify()

    def _replace(self, worker: _Worker) -> None:
        """Kill `worker` and start its replacement at once, so it imports math-verify while others work."""
        self.kills += 1
        worker.kill()
        try:
            fresh: _Worker | None = _Worker()
        except OSError:
            fresh = None
        with self._cond:
            if fresh is None:
                self._count -= 1
            else:
                self._idle.insert(0, fresh)  # warm workers are popped from the end first
            self._cond.notify()

    def check(self, golds: Sequence[str], pred: str, timeout_s: float) -> str:
        """'equal' | 'unequal' | 'unparsed' | 'timeout' | 'busy' | 'error'; never raises.

        Waiting for a free worker and the check itself are each bounded by `timeout_s`, so a call
        returns within about 2x `timeout_s` plus, when its worker is still starting, that start
        (bounded by `WORKER_START_TIMEOUT_S`, after which the worker is replaced).
        """
        worker = self._acquire(time.monotonic() + timeout_s)
        if worker is None:
            return "busy"
        try:
            worker.wait_ready(time.monotonic() + WORKER_START_TIMEOUT_S)
        except Exception:
            self._replace(worker)
            return "error"
        try:
            status = worker.request(golds, pred, timeout_s)
        except _WorkerTimeout:
            status = "timeout"
        except Exception:
            status = "error"
        if status in ("timeout", "error") or worker.proc.poll() is not None:
            self._replace(worker)
        else:
            self._release(worker)
        return status

    def warm_up(self) -> None:
        """Start every worker now and wait until each has imported math-verify."""
        workers = [self._acquire(time.monotonic() + WORKER_START_TIMEOUT_S) for _ in range(self.size)]
        for w in workers:
            if w is None:
                continue
            try:
                w.wait_ready(time.monotonic() + WORKER_START_TIMEOUT_S)
            except Exception:
                self._replace(w)
                continue
            self._release(w)

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for w in idle:
            w.kill()


_pool: MathVerifyPool | None = None
_pool_lock = threading.Lock()


def default_pool_size() -> int:
    env = os.environ.get("VLMRL_RULE_WORKERS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


def get_pool() -> MathVerifyPool:
    """The process's pool; a forked child gets its own instead of sharing its parent's pipes.

    A new pool is warmed up (every worker started and ready) before anyone uses it, so the first
    checks of a process do not queue behind workers that are still importing math-verify.
    """
    global _pool
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            fresh = MathVerifyPool(default_pool_size())
            fresh.warm_up()
            _pool = fresh
        return _pool


@atexit.register
def _close_pool() -> None:
    if _pool is not None and _pool.pid == os.getpid():
        _pool.close()


# --- the rule check ------------------------------------------------------------------------------


def _letters_of(gt: str) -> set[str]:
    return {p.strip("() ").upper() for p in ans.split_top_level(gt, ",;/ ") if p.strip("() ")}


def _choice_check(pred: str, golds: Sequence[str], choices: Sequence[str]) -> RuleResult | None:
    letters = ans.extract_letters(pred)
    if not letters:
        return None
    gold_sets = [
        _letters_of(g) for g in golds if all(ans.is_letter(p) for p in ans.split_top_level(g, ",;/ "))
    ]
    if not gold_sets:
        return None
    allowed = {c.strip().upper() for c in choices if isinstance(c, str) and c.strip()}
    if allowed and not set(letters) <= allowed:
        return RuleResult(Outcome.WRONG, "choice")
    if any(set(letters) == gs for gs in gold_sets):
        return RuleResult(Outcome.CORRECT, "choice")
    return RuleResult(Outcome.WRONG, "choice" if len(letters) == 1 else "hedge")


def units_allowed(golds: Sequence[str]) -> bool:
    """Units are stripped from a prediction only when a ground truth is a plain number; never from
    ground truths themselves ("3m" stays "3m", "n + m" stays "n + m")."""
    return any(ans.parse_number(ans.comparison_key(g, strip_units=False)) is not None for g in golds)


def _parts(text: str, strip_units: bool) -> list[str]:
    """Comparison keys of the parts of a multi-part answer; a part keeps its "x=" name."""
    cleaned = ans.clean_answer(text, strip_units)
    hedged = ans.hedge_parts(cleaned)
    pieces = hedged or ans.split_top_level(cleaned)
    return [ans.comparison_key(p, strip_units, keep_assign=len(pieces) > 1) for p in pieces]


def _split_name(key: str) -> tuple[str, str]:
    m = ans._VAR_ASSIGN_RE.match(key)
    return (key[: m.end()].replace(" ", ""), key[m.end() :]) if m else ("", key)


def _key_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    (name_a, a), (name_b, b) = _split_name(a), _split_name(b)
    if name_a != name_b:
        return False
    if a == b:
        return True
    na, nb = ans.parse_number(a), ans.parse_number(b)
    return bool(na and nb and ans.numbers_equal(na, nb))


def _multiset_equal(pred_parts: list[str], gold_parts: list[str]) -> bool:
    """Same parts in any order. Names must match ("x=5, y=6" is not "x=6, y=5"); a ground truth
    without names accepts one variable's values ("x = 2 or x = -2" for "2, -2")."""
    if len(pred_parts) != len(gold_parts):
        return False
    if not any(_split_name(g)[0] for g in gold_parts) and len({_split_name(p)[0] for p in pred_parts}) == 1:
        pred_parts = [_split_name(p)[1] for p in pred_parts]
    left = list(gold_parts)
    for p in pred_parts:
        for i, g in enumerate(left):
            if _key_equal(g, p):
                del left[i]
                break
        else:
            return False
    return True


def fast_check(
    pred: str, golds: Sequence[str], answer_type: str | None = None, choices: Sequence[str] = ()
) -> RuleResult | None:
    """Decide without math-verify when that is safe; None means 'ask math-verify'."""
    if len(pred) > ans.MAX_ANSWER_CHARS:
        return RuleResult(Outcome.WRONG, "too_long")
    golds = [g for g in golds if g.strip()]
    if not golds:
        return RuleResult(Outcome.UNDECIDED, "no_ground_truth")
    if answer_type == "choice" or all(ans.is_letter(g) for g in golds):
        decided = _choice_check(pred, golds, choices)
        if decided is not None:
            return decided
        if answer_type == "choice":
            # The answer names no option letter (maybe the option's text): only a verifier can tell.
            return RuleResult(Outcome.UNDECIDED, "choice_no_letter")

    units = units_allowed(golds)
    pkey = ans.comparison_key(pred, units)
    if not pkey:
        return RuleResult(Outcome.WRONG, "empty")
    gkeys = [ans.comparison_key(g, strip_units=False) for g in golds]
    if pkey in gkeys:
        return RuleResult(Outcome.CORRECT, "exact")

    pred_parts = _parts(pred, units)
    gold_parts = [_parts(g, False) for g in golds]
    if len(pred_parts) > 1:
        if any(_multiset_equal(pred_parts, gp) for gp in gold_parts if len(gp) > 1):
            return RuleResult(Outcome.CORRECT, "set")
        if ans.hedge_parts(ans.clean_answer(pred)) and all(len(gp) == 1 for gp in gold_parts):
            return RuleResult(Outcome.WRONG, "hedge")

    pnum = ans.parse_number(pkey)
    if pnum is not None:
        gnums = [ans.parse_number(k) for k in gkeys]
        if any(g is not None and ans.numbers_equal(g, pnum) for g in gnums):
            return RuleResult(Outcome.CORRECT, "number")
        pct_pred = "%" in pred
        for g_text, g in zip(golds, gnums, strict=True):
            # "50%" against "0.5" (or the reverse): the percent sign is not noise there.
            if g is not None and pct_pred != ("%" in g_text):
                scale = ans.Fraction(1, 100) if pct_pred else ans.Fraction(100)
                if ans.numbers_equal(g, ans.Number(pnum.value * scale, False, 0)):
                    return RuleResult(Outcome.CORRECT, "number")
        if pnum.plain and all(g is not None and g.plain for g in gnums) and not pct_pred:
            return RuleResult(Outcome.WRONG, "number")
    return None


def _cleaned(pred: str, golds: Sequence[str]) -> tuple[str, list[str]]:
    """What math-verify compares: units stripped from the prediction only, and only for numbers."""
    return ans.clean_answer(pred, units_allowed(golds)), [
        ans.clean_answer(g, strip_units=False) for g in golds
    ]


def quick_check(
    pred: str, golds: Sequence[str], answer_type: str | None = None, choices: Sequence[str] = ()
) -> RuleResult | None:
    """Everything before math-verify (cheap, bounded, in-process); None = math-verify must decide."""
    try:
        decided = fast_check(pred, golds, answer_type, choices)
        if decided is not None:
            return decided
        cleaned_pred, cleaned_golds = _cleaned(pred, golds)
        if ans.is_wordy(cleaned_pred) or any(ans.is_wordy(g) for g in cleaned_golds):
            return RuleResult(Outcome.UNDECIDED, "text")
        return _cache.get((cleaned_pred, *cleaned_golds))
    except Exception:  # a bug in a normaliser must not cost a training step
        return None


def math_verify_check(pred: str, golds: Sequence[str], timeout_s: float = 5.0) -> RuleResult:
    """math-verify in a killable worker; returns within about 2x `timeout_s` once workers have started."""
    try:
        cleaned_pred, cleaned_golds = _cleaned(pred, golds)
        status = get_pool().check(cleaned_golds, cleaned_pred, timeout_s=timeout_s)
    except Exception:
        return RuleResult(Outcome.UNDECIDED, "error")
    if status == "equal":
        result = RuleResult(Outcome.CORRECT, "math_verify")
    elif status == "unequal":
        result = RuleResult(Outcome.MISMATCH, "math_verify")
    else:
        return RuleResult(Outcome.UNDECIDED, status)
    _cache.put((cleaned_pred, *cleaned_golds), result)
    return result


def rule_check(
    pred: str,
    golds: Sequence[str],
    answer_type: str | None = None,
    choices: Sequence[str] = (),
    timeout_s: float = 5.0,
) -> RuleResult:
    """Fast check, then math-verify in a worker: about 2x `timeout_s` once started; never raises."""
    decided = quick_check(pred, golds, answer_type, choices)
    return decided if decided is not None else math_verify_check(pred, golds, timeout_s)


class _ResultCache:
    """LRU of math-verify verdicts: GRPO groups repeat the same answers to the same question."""

    def __init__(self, size: int = 65536) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, ...], RuleResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> RuleResult | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[str, ...], value: RuleResult) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_cache = _ResultCache()
