"""math-verify in killable worker processes: a check that overruns its bound gets its worker killed.

math-verify's own timeouts use `signal.alarm` (main thread only) and some inputs hang anyway, so
every symbolic check runs in a worker process (`_mv_worker.py`) that this pool kills and replaces.

The bound, as `check_many` keeps it once the pool has started (`start`, which waits for every
worker's first start):
- each check has `timeout_s` on its worker, timed from the moment the worker begins it (the reply
  of the check before it in the same batch); past that the worker is killed and the check is
  `timeout`;
- a check waits at most `wait_s` for a free worker that is ready (a killed worker's replacement is
  started at once, in the background, and counts as busy until it has imported math-verify); past
  that it is `busy`;
- killing and reaping a worker happen off the caller's path.
So one check returns within `wait_s + timeout_s`; a batch of n checks spread over the pool's
workers, each within its own `timeout_s`.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

_WORKER_SCRIPT = str(Path(__file__).with_name("_mv_worker.py"))
# How long a fresh worker may take to import sympy + math-verify and warm up (~2 s idle, far more
# on a busy host); a worker not ready by then is killed. Only the pool's first start is waited for
# apart from any check's bound: a correct answer must not fail on a process's first call.
WORKER_START_TIMEOUT_S = 60.0
# Checks sent to a worker in one message: enough to amortise the pipe round trip, few enough that
# a batch still spreads over every worker.
MAX_CHUNK = 16

Check = tuple[Sequence[str], str]  # (ground truths, what math-verify reads of the answer)


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

    def readline(self, deadline: float) -> str:
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

    def run(self, checks: Sequence[Check], timeout_s: float) -> tuple[list[str], str | None]:
        """(the statuses of the checks answered, in order; 'timeout'/'error' for the one that failed
        next, or None when all were answered)."""
        payload = json.dumps({"items": [{"golds": list(g), "pred": p} for g, p in checks]}) + "\n"
        try:
            self.proc.stdin.write(payload.encode())  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            return [], "error"
        statuses: list[str] = []
        for _ in checks:
            try:
                statuses.append(json.loads(self.readline(time.monotonic() + timeout_s))["status"])
            except _WorkerTimeout:
                return statuses, "timeout"
            except Exception:
                return statuses, "error"
        return statuses, None

    def kill(self) -> None:
        """SIGKILL now; reap and close the pipes in the background (never on a caller's path)."""
        with contextlib.suppress(OSError):
            self.proc.kill()

        def reap() -> None:
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=30)
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(Exception):
                    stream.close()  # type: ignore[union-attr]

        threading.Thread(target=reap, name="vlmrl-mv-reap", daemon=True).start()


class MathVerifyPool:
    """`size` worker processes; a check that overruns gets its worker killed and replaced."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.pid = os.getpid()
        self._idle: list[_Worker] = []  # started and ready
        self._count = 0  # workers alive or starting, busy or idle
        self._pending = 0  # starts under way
        self._starting: set[_Worker] = set()  # their processes, to kill on close
        self._cond = threading.Condition(threading.RLock())
        self._started = False
        self._closed = False
        self.kills = 0

    # --- workers ---------------------------------------------------------------------------------

    def _spawn(self) -> None:
        """Start one worker in the background; it joins the idle list once it reports ready.
        The caller has counted it in `_count`."""
        with self._cond:
            self._pending += 1

        def start() -> None:
            worker: _Worker | None = None
            try:
                worker = _Worker()
                with self._cond:
                    self._starting.add(worker)
                if self._closed:
                    raise EOFError("pool closed")
                if worker.readline(time.monotonic() + WORKER_START_TIMEOUT_S) != "ready":
                    raise EOFError("math-verify worker did not start")
            except Exception:
                if worker is not None:
                    worker.kill()
                worker = None
            with self._cond:
                self._pending -= 1
                self._starting = {w for w in self._starting if w is not worker and w.proc.poll() is None}
                if worker is None or self._closed:
                    self._count -= 1
                    if worker is not None:
                        worker.kill()
                else:
                    self._idle.append(worker)
                self._cond.notify_all()

        threading.Thread(target=start, name="vlmrl-mv-start", daemon=True).start()

    def start(self) -> None:
        """Start every worker and wait (up to `WORKER_START_TIMEOUT_S`) until each is ready."""
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        with self._cond:
            missing = self.size - self._count
            self._count += missing
        for _ in range(missing):
            self._spawn()
        with self._cond:
            while self._pending and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            self._started = True

    def _acquire(self, deadline: float) -> _Worker | None:
        """A ready idle worker, waiting until `deadline` at most (workers still starting count as busy)."""
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size:  # a worker that failed to start: try another
                    self._count += 1
                    self._spawn()  # the condition's lock is re-entrant
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            self._idle.append(worker)
            self._cond.notify()

    def _replace(self, worker: _Worker) -> None:
        """Kill `worker`; its replacement starts at once, in the background."""
        self.kills += 1
        worker.kill()
        self._spawn()

    # --- checks ----------------------------------------------------------------------------------

    def check_many(self, checks: Sequence[Check], timeout_s: float, wait_s: float | None = None) -> list[str]:
        """'equal' | 'unequal' | 'unparsed' | 'timeout' | 'busy' | 'error' per check; never raises.

        Checks that share their ground truths go to the same worker (it parses each ground truth
        once), several per message; up to `size` workers work at once. See the module docstring
        for the bound (`wait_s` defaults to `timeout_s`).
        """
        if not self._started:
            self.start()
        wait = timeout_s if wait_s is None else wait_s
        out = ["error"] * len(checks)
        order = sorted(range(len(checks)), key=lambda i: tuple(checks[i][0]))
        size = max(1, min(MAX_CHUNK, math.ceil(len(order) / (8 * self.size))))
        todo = collections.deque(order[i : i + size] for i in range(0, len(order), size))
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    chunk = todo.popleft()
                worker = self._acquire(time.monotonic() + wait)
                if worker is None:
                    for i in chunk:
                        out[i] = "busy"
                    continue
                statuses, failure = worker.run([checks[i] for i in chunk], timeout_s)
                for i, status in zip(chunk, statuses, strict=False):
                    out[i] = status
                if failure is None and worker.proc.poll() is None:
                    self._release(worker)
                    continue
                self._replace(worker)
                if failure is not None:
                    out[chunk[len(statuses)]] = failure
                    rest = chunk[len(statuses) + 1 :]
                    if rest:
                        with lock:
                            todo.appendleft(rest)

        helpers = [
            threading.Thread(target=work, name="vlmrl-mv-check", daemon=True)
            for _ in range(min(self.size, len(todo)) - 1)
        ]
        for t in helpers:
            t.start()
        with contextlib.suppress(Exception):
            work()
        for t in helpers:
            t.join()
        return out

    def check(self, golds: Sequence[str], pred: str, timeout_s: float) -> str:
        """One check, within about 2x `timeout_s` (waiting for a ready worker, then the check)."""
        return self.check_many([(golds, pred)], timeout_s)[0]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            starting = list(self._starting)
        for w in idle + starting:
            w.kill()  # a starting one fails its start and uncounts itself


_pool: MathVerifyPool | None = None
_pool_lock = threading.Lock()


def get_pool(size: int) -> MathVerifyPool:
    """The process's pool; a forked child gets its own instead of sharing its parent's pipes.

    `size` counts at the pool's creation (the first call of a process). A new pool is started
    (every worker ready) before anyone uses it, so the first checks of a process do not queue
    behind workers that are still importing math-verify.
    """
    global _pool
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            fresh = MathVerifyPool(size)
            fresh.start()
            _pool = fresh
        return _pool


@atexit.register
def _close_pool() -> None:
    if _pool is not None and _pool.pid == os.getpid():
        _pool.close()
