"""math-verify in killable worker processes: a check that overruns its bound gets its worker killed.

math-verify's own timeouts use `signal.alarm` (main thread only) and some inputs hang anyway, so
every symbolic check runs in a worker process (`_mv_worker.py`) that this pool kills and replaces.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

_WORKER_SCRIPT = str(Path(__file__).with_name("_mv_worker.py"))
# How long a fresh worker may take to import sympy + math-verify (~1.5 s idle, far more on a busy
# host). Waited for apart from a check's own bound: a correct answer must not fail on a cold worker.
WORKER_START_TIMEOUT_S = 60.0


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


def get_pool(size: int) -> MathVerifyPool:
    """The process's pool; a forked child gets its own instead of sharing its parent's pipes.

    `size` counts at the pool's creation (the first call of a process). A new pool is warmed up
    (every worker started and ready) before anyone uses it, so the first
    checks of a process do not queue behind workers that are still importing math-verify.
    """
    global _pool
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            fresh = MathVerifyPool(size)
            fresh.warm_up()
            _pool = fresh
        return _pool


@atexit.register
def _close_pool() -> None:
    if _pool is not None and _pool.pid == os.getpid():
        _pool.close()
