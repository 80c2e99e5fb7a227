"""The math-verify pool's bound, with scripted workers: what a check returns when its worker hangs,
when the replacement is still starting, and that a batch spreads over workers and survives a kill.
Behaviour only (statuses, kills, which worker answered), no wall-clock assertions."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from vlmrl.reward import pool as pool_module
from vlmrl.reward.pool import MathVerifyPool

# A worker whose first `fast` starts take `first_s` and whose later starts (replacements) `replace_s`;
# a check of "hang" never ends, any other answers "equal" tagged with the worker's pid.
_SCRIPTED_WORKER = """
import json, os, sys, time
def first_starts():
    for i in range({fast}):
        try:
            os.close(os.open({marker!r} + str(i), os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            pass
    return False
time.sleep({first_s} if first_starts() else {replace_s})
print("ready", flush=True)
for line in sys.stdin:
    for item in json.loads(line)["items"]:
        if item["pred"] == "hang":
            time.sleep(3600)
        print(json.dumps({{"status": "equal", "pid": os.getpid()}}), flush=True)
"""


def _pool(monkeypatch, tmp_path: Path, size: int, replace_s: float, first_s: float = 0) -> MathVerifyPool:
    script = tmp_path / "worker.py"
    script.write_text(
        _SCRIPTED_WORKER.format(
            marker=str(tmp_path / "started-"), fast=size, first_s=first_s, replace_s=replace_s
        )
    )
    monkeypatch.setattr(pool_module, "_WORKER_SCRIPT", str(script))
    return MathVerifyPool(size)


def test_the_pools_first_start_does_not_count_against_a_check(monkeypatch, tmp_path):
    pool = _pool(monkeypatch, tmp_path, size=1, replace_s=0, first_s=1.5)
    try:
        # Never started: the first check waits for the start (1.5 s), then has its own 0.3 s.
        assert pool.check(["1"], "1", timeout_s=0.3) == "equal"
    finally:
        pool.close()


def test_a_worker_that_never_starts_leaves_the_check_undecided(monkeypatch, tmp_path):
    monkeypatch.setattr(pool_module, "WORKER_START_TIMEOUT_S", 0.5)
    pool = _pool(monkeypatch, tmp_path, size=1, replace_s=3600, first_s=3600)
    try:
        assert pool.check(["1"], "1", timeout_s=0.3) == "busy"
    finally:
        pool.close()


def test_a_check_does_not_wait_for_a_replacement_beyond_its_budget(monkeypatch, tmp_path):
    pool = _pool(monkeypatch, tmp_path, size=1, replace_s=3600)
    try:
        pool.start()
        assert pool.check(["1"], "hang", timeout_s=0.3) == "timeout"
        assert pool.kills == 1
        # The only worker was killed and its replacement is still starting: the next check gives
        # up after its waiting budget (`busy`, undecided) instead of waiting for the start.
        assert pool.check(["1"], "1", timeout_s=0.3) == "busy"
    finally:
        pool.close()


def test_a_killed_worker_is_replaced_ahead_and_the_next_check_uses_a_ready_one(monkeypatch, tmp_path):
    pool = _pool(monkeypatch, tmp_path, size=2, replace_s=3600)
    try:
        pool.start()
        assert pool.check(["1"], "hang", timeout_s=0.3) == "timeout"
        # One worker left ready: the next checks go to it at once.
        assert pool.check(["1"], "1", timeout_s=0.3) == "equal"
        assert pool.check(["2"], "2", timeout_s=0.3) == "equal"
        assert pool.kills == 1
    finally:
        pool.close()


def test_a_batch_gives_each_check_its_own_bound_and_resumes_after_a_kill(monkeypatch, tmp_path):
    pool = _pool(monkeypatch, tmp_path, size=1, replace_s=0)
    try:
        pool.start()
        checks = [(["g"], "a"), (["g"], "hang"), (["g"], "b"), (["g"], "c")]
        # Sent in one message to one worker: the hang is killed at its own bound, the checks behind
        # it go to the replacement (a batch waits for it) and are answered.
        assert pool.check_many(checks, timeout_s=0.3, wait_s=60) == ["equal", "timeout", "equal", "equal"]
        assert pool.kills == 1
    finally:
        pool.close()


def test_a_batch_spreads_over_the_workers(monkeypatch, tmp_path):
    pool = _pool(monkeypatch, tmp_path, size=2, replace_s=0)
    pids: set[int] = set()
    original = pool_module._Worker.readline

    def readline(self, deadline):
        line = original(self, deadline)
        if line.startswith("{"):
            pids.add(json.loads(line)["pid"])
        return line

    monkeypatch.setattr(pool_module._Worker, "readline", readline)
    try:
        pool.start()
        checks = [([f"g{i % 8}"], str(i)) for i in range(64)]
        assert pool.check_many(checks, timeout_s=5) == ["equal"] * 64
        assert len(pids) == 2
    finally:
        pool.close()


# --- the worker's speed-ups change no verdict ------------------------------------------------------

_CASES = [
    # numbers, fractions, roots, constants: right and wrong
    ("\\frac{1}{2}", "$0.5$"),
    ("\\frac{\\sqrt{66}}{8}", "$\\frac{66}{8}$"),
    ("\\frac{\\sqrt{66}}{8}", "$\\frac{1}{8}\\sqrt{66}$"),
    ("3\\sqrt{5}", "$\\sqrt{45}$"),
    ("3\\sqrt{5}", "$\\sqrt{15}$"),
    ("\\frac{\\pi}{4}", "$\\pi/4$"),
    ("\\frac{\\pi}{4}", "$4\\pi$"),
    ("-\\frac{1}{7}", "$-1/7$"),
    ("0.333333", "$\\frac{1}{3}$"),
    ("0.333", "$\\frac{1}{3}$"),
    ("4", "$4.0001$"),
    ("4", "$.4$"),
    ("10^{20}+1", "$10^{20}$"),
    ("2^{100}", "$1267650600228229401496703205376$"),
    ("\\sqrt{2}\\sqrt{3}", "$\\sqrt{6}$"),
    ("50\\%", "$0.5$"),
    ("e^{i\\pi}", "$-1$"),
    # expressions with symbols
    ("x^2+2x+1", "$(x+1)^2$"),
    ("x^2+2x+1", "$(x-1)^2$"),
    ("x^2+1", "$x^2 + 1$"),
    ("\\frac{x^2-1}{x-1}", "$x+1$"),
    ("\\sin^2 x + \\cos^2 x", "$1$"),
    ("\\sqrt{x^2}", "$x$"),
    ("\\log(ab)", "$\\log a + \\log b$"),
    ("2n+1", "$n+n+1$"),
    ("(-1)^{2n}", "$1$"),
    # tuples, intervals, sets, matrices, equations, relations
    ("(3, -1)", "$\\left( 3, -1 \\right)$"),
    ("(3, -1)", "$(-1, 3)$"),
    ("[2, 5)", "$[2,5)$"),
    ("[2, 5)", "$(2,5]$"),
    ("\\{1, 2\\}", "$\\{2, 1\\}$"),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "$\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}$",
    ),
    ("x = 3", "$3$"),
    ("y = 2x + 1", "$y = 1 + 2x$"),
    ("x \\geq 5", "$[5, \\infty)$"),
    ("x < 2", "$x \\leq 2$"),
    # malformed: SLL and LL must fail alike
    ("\\frac{1}{2", "$\\frac{1}{2$"),
    ("1", "$)($"),
]


def _load_worker():
    spec = importlib.util.spec_from_file_location("_mv_worker_under_test", pool_module._WORKER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_stage_parsing_and_quick_unequal_change_no_verdict():
    worker = _load_worker()
    check = worker.make_check()
    plain = [check([gold], pred) for gold, pred in _CASES]
    undo = [worker.install_two_stage_parsing(), worker.install_quick_unequal()]
    assert all(undo), "latex2sympy / math-verify no longer have the hooks the worker speeds up"
    try:
        check = worker.make_check()
        fast = [check([gold], pred) for gold, pred in _CASES]
    finally:
        for u in undo:
            u()
    assert fast == plain, [(c, a, b) for c, a, b in zip(_CASES, plain, fast, strict=True) if a != b]
    # and the cases really exercise both sides of the comparison
    assert {"equal", "unequal"} <= set(plain)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_gets_its_own_pool():
    from vlmrl.reward.pool import get_pool

    parent = get_pool(1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own pool, never its parent's pipes
        try:
            child = get_pool(1)
            ok = child is not parent and child.check(["2"], "$2$", timeout_s=30) == "equal"
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert parent.check(["2"], "$2$", timeout_s=30) == "equal"


GROUP_ANSWER = "<think>\nexpand\n</think>\n<answer>\n(x+1)^2\n</answer>"  # math-verify decides it
GROUP_GOLD = "x^2+2x+1"


@pytest.fixture
def pool_checks(monkeypatch):
    """The answers sent to a math-verify worker, with the verdict cache emptied first."""
    from vlmrl.reward import check

    calls = []
    real = MathVerifyPool.check

    def counted(self, golds, pred, timeout_s):
        calls.append(pred)
        return real(self, golds, pred, timeout_s)

    monkeypatch.setattr(MathVerifyPool, "check", counted)
    check._cache.clear()
    return calls


def test_concurrent_async_scores_of_one_answer_share_one_check(pool_checks):
    import asyncio

    from vlmrl.reward.score import compute_score_async

    async def group():
        return await asyncio.gather(
            *(
                compute_score_async("s", GROUP_ANSWER, [GROUP_GOLD], None, rule_timeout_s=30)
                for _ in range(16)
            )
        )

    results = asyncio.run(group())
    assert [r["acc"] for r in results] == [1] * 16
    assert len(pool_checks) == 1


def test_concurrent_sync_scores_of_one_answer_share_one_check(pool_checks):
    from concurrent.futures import ThreadPoolExecutor

    from vlmrl.reward.score import compute_score

    with ThreadPoolExecutor(8) as threads:  # veRL's thread-pooled sync scorers
        results = list(
            threads.map(
                lambda _: compute_score("s", GROUP_ANSWER, [GROUP_GOLD], None, rule_timeout_s=30), range(16)
            )
        )
    assert [r["acc"] for r in results] == [1] * 16
    assert len(pool_checks) == 1
