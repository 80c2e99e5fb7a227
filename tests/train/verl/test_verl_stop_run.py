"""A local veRL run that times out or is interrupted leaves no process behind (Ray's included).

Every process a run starts inherits its environment, so a marker variable finds them all in /proc,
whatever session or process group they moved to.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from vlmrl.train.verl.launch import run_in_own_session

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")

#: A child in the run's group, and a grandchild in a session of its own (as raylet starts Ray's workers).
TREE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    subprocess.Popen(sleeper)
    subprocess.Popen(sleeper, start_new_session=True)
    print("started", flush=True)
    time.sleep(600)
    """
)


def _marked(marker: str) -> list[int]:
    """Live (not zombie) processes whose environment carries `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"VLMRL_STOP_TEST={marker}".encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry))
    return found


def _wait_for(marker: str, n: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while len(_marked(marker)) < n:
        assert time.monotonic() < deadline, f"only {_marked(marker)} started"
        time.sleep(0.2)


def _env(marker: str) -> dict[str, str]:
    return {**os.environ, "VLMRL_STOP_TEST": marker}


def test_timeout_stops_the_group_and_processes_in_other_sessions(tmp_path):
    marker = uuid.uuid4().hex
    log = tmp_path / "log"
    with open(log, "w") as out:
        code = run_in_own_session([sys.executable, "-c", TREE], _env(marker), stdout=out, timeout_s=15)
    assert code is None
    assert "started" in log.read_text()
    assert _marked(marker) == []


def test_an_interrupt_stops_everything_then_propagates(tmp_path):
    marker = uuid.uuid4().hex
    driver = textwrap.dedent(
        f"""
        import signal, sys
        from vlmrl.train.verl.launch import run_in_own_session
        # Ctrl-C's default handling even when the suite runs in the background (`make test &`),
        # where the shell starts it with SIGINT ignored and every child inherits that
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            run_in_own_session([sys.executable, "-c", {TREE!r}], None)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", driver], env=_env(marker), stdout=subprocess.PIPE, text=True
    )
    _wait_for(marker, 4)  # the driver, the run, its child and the grandchild in its own session
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends (the run's own session does not get it)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in out
    assert _marked(marker) == []


@pytest.mark.slow
def test_an_interrupted_ray_head_leaves_no_agent_behind(tmp_path):
    """`ray.init()` starts what `main_ppo` starts first (GCS, raylet, dashboard, DashboardAgent,
    RuntimeEnvAgent); the issue saw the two agents orphaned after a smoke run's timeout."""
    marker = uuid.uuid4().hex
    ready = tmp_path / "ray_ready"
    ray_script = textwrap.dedent(
        f"""
        import time, ray
        ray.init(num_cpus=1)
        open({str(ready)!r}, "w").write("up")
        time.sleep(600)
        """
    )
    driver = textwrap.dedent(
        f"""
        import signal, sys
        from vlmrl.train.verl.launch import run_in_own_session
        # Ctrl-C's default handling even when the suite runs in the background (`make test &`),
        # where the shell starts it with SIGINT ignored and every child inherits that
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            run_in_own_session([sys.executable, "-c", {ray_script!r}], None)
        except KeyboardInterrupt:
            sys.exit(130)
        """
    )
    env = _env(marker)
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-c", driver], env=env)
    deadline = time.monotonic() + 300
    while not ready.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, "Ray did not come up"
        time.sleep(0.5)
    names = set()
    for pid in _marked(marker):
        with contextlib.suppress(OSError):  # a process may end between the listing and the read
            names.add(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0])
    assert any(b"raylet" in n for n in names) and any(b"gcs_server" in n for n in names), names
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert _marked(marker) == []
