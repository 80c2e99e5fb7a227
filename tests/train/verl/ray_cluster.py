"""A Ray cluster of real nodes on this machine, for tests: a head and workers, each its own `ray start`.

Every node is one `ray start --block` process in its own process group, with its own ports, temp dir
and resources (CPUs and a fake GPU slot). `stop()` kills exactly what the nodes started (their process
trees, and anything left under their temp dirs), never other Ray instances of the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))

#: Ray's state and job APIs, asked in a fresh process: Ray caches its authentication mode per process
#: (at the first client call), so a test process that talked to another Ray first could not switch.
_QUERY = """
import json, sys
from ray.job_submission import JobSubmissionClient
from ray.util.state import list_actors, list_nodes
address, what = sys.argv[1], sys.argv[2]
if what == "nodes":
    nodes = list_nodes(address=address, detail=True, limit=1000, raise_on_missing_output=False)
    out = [{"node_id": n.node_id, "state": n.state, "resources": n.resources_total} for n in nodes]
elif what == "actors":
    actors = list_actors(address=address, detail=True, limit=10000, raise_on_missing_output=False)
    out = [{"class_name": a.class_name, "node_id": a.node_id, "job_id": a.job_id} for a in actors]
elif what == "jobs":
    out = [j.submission_id for j in JobSubmissionClient(address).list_jobs()]
else:
    info = JobSubmissionClient(address).get_job_info(what)
    out = {"job_id": info.job_id, "entrypoint": info.entrypoint, "status": str(info.status)}
print("RESULT " + json.dumps(out))
"""


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _marker(name: str) -> str:
    """A custom resource only node `name` offers: tells Ray's node ids apart."""
    return f"vlmrl_test_node_{name}"


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    temp_dir: Path
    log_path: Path
    node_id: str | None = None


@dataclass
class LocalCluster:
    root: Path
    num_gpus: int = 1
    object_store_bytes: int = 300 * 1024 * 1024
    nodes: list[Node] = field(default_factory=list)
    gcs_port: int = 0
    dashboard_port: int = 0
    _worker_ports: int = 30000
    #: Every port handed to a node so far: a port free_ports() found free once may be found free
    #: again by a later call (the probe's socket is closed), and Ray refuses a port given twice.
    _given: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        import secrets

        # Ray 2.60 turns token authentication on wherever a token exists (~/.ray/auth_token): give
        # the cluster its own token, and every node and client the same one.
        self.root.mkdir(parents=True, exist_ok=True)
        self.token_path = self.root / "auth_token"
        self.token_path.write_text(secrets.token_hex(32))

    def client_env(self) -> dict[str, str]:
        """What a process needs in its environment to talk to this cluster (nodes included)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path)}

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _ports(self, count: int) -> list[int]:
        """`count` ports free now and never handed to a node of this cluster before."""
        for _ in range(100):
            ports = free_ports(count)
            if not self._given.intersection(ports):
                self._given.update(ports)
                return ports
        raise RuntimeError(f"no {count} fresh free ports on 127.0.0.1")

    def _node_ports(self) -> list[str]:
        p = self._ports(6)
        low = self._worker_ports
        self._worker_ports += 400
        return [
            f"--node-manager-port={p[0]}",
            f"--object-manager-port={p[1]}",
            f"--dashboard-agent-listen-port={p[2]}",
            f"--dashboard-agent-grpc-port={p[3]}",
            f"--runtime-env-agent-port={p[4]}",
            f"--metrics-export-port={p[5]}",
            f"--min-worker-port={low}",
            f"--max-worker-port={low + 399}",
        ]

    def _start(self, name: str, args: list[str], env: dict[str, str], num_cpus: int) -> Node:
        temp_dir = self.root / name
        temp_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.root / f"{name}.log"
        argv = [
            RAY,
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={temp_dir}",
            f"--num-cpus={num_cpus}",
            f"--num-gpus={self.num_gpus}",
            f"--object-store-memory={self.object_store_bytes}",
            f"--resources={json.dumps({_marker(name): 1})}",
            "--disable-usage-stats",
            *self._node_ports(),
            *args,
        ]
        env = {**env, **self.client_env(), "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        node = Node(name, proc, temp_dir, log_path)
        self.nodes.append(node)
        return node

    def start_head(self, env: dict[str, str], num_cpus: int) -> Node:
        self.gcs_port, self.dashboard_port, client_port = self._ports(3)
        head = self._start(
            "head",
            [
                "--head",
                f"--port={self.gcs_port}",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={client_port}",
            ],
            env,
            num_cpus,
        )
        self.wait_for_nodes(1)
        self._wait_for_job_api()
        return head

    def add_worker(self, name: str, env: dict[str, str], num_cpus: int) -> Node:
        node = self._start(name, [f"--address={self.gcs_address}"], env, num_cpus)
        self.wait_for_nodes(len(self.alive_nodes()) + 1)
        return node

    def query(self, what: str):
        """`nodes`, `actors`, `jobs` or a job's submission id, answered by Ray's APIs as JSON data."""
        env = {**os.environ, **self.client_env()}
        proc = subprocess.run(
            [sys.executable, "-c", _QUERY, self.dashboard_url, what],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"Ray query {what!r} failed: {proc.stderr[-2000:]}")
        return json.loads(lines[-1][len("RESULT ") :])

    def alive_nodes(self) -> list[dict]:
        return [n for n in self.query("nodes") if n["state"] == "ALIVE"]

    def wait_for_nodes(self, count: int, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        last_error = ""
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc.poll() is not None and node.node_id is None:
                    raise RuntimeError(
                        f"ray start for {node.name} exited: {node.log_path.read_text()[-3000:]}"
                    )
            try:
                alive = self.alive_nodes() if self.dashboard_port else []
                if len(alive) >= count:
                    self._name_nodes(alive)
                    return
            except Exception as exc:  # the dashboard is still starting
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(2)
        raise TimeoutError(f"{count} Ray node(s) not alive after {timeout_s:.0f}s ({last_error})")

    def _name_nodes(self, alive: list[dict]) -> None:
        """Match Ray's node ids to our nodes by the marker resource each node offers."""
        for node in self.nodes:
            for alive_node in alive:
                if node.node_id is None and _marker(node.name) in (alive_node["resources"] or {}):
                    node.node_id = alive_node["node_id"]

    def _wait_for_job_api(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.query("jobs")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def kill_raylet(self, node: Node) -> int:
        """SIGKILL the node's raylet (the node dies as a crashed machine's would); returns its pid."""
        import psutil

        for child in psutil.Process(node.proc.pid).children(recursive=True):
            if child.name() == "raylet" or "raylet" in " ".join(child.cmdline()[:1]):
                child.kill()
                return child.pid
        raise RuntimeError(f"{node.name}: no raylet process under ray start (pid {node.proc.pid})")

    def stop(self) -> None:
        """Kill every process the nodes started: their trees, then stragglers naming our temp dirs."""
        import psutil

        victims: dict[int, psutil.Process] = {}
        for node in self.nodes:
            try:
                parent = psutil.Process(node.proc.pid)
                victims[parent.pid] = parent
                victims.update({c.pid: c for c in parent.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        roots = [str(node.temp_dir) for node in self.nodes]
        for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
            try:
                text = " ".join(proc.info["cmdline"] or []) + json.dumps(proc.info.get("environ") or {})
            except Exception:
                continue
            if any(root in text for root in roots):
                victims[proc.pid] = proc
        victims.pop(os.getpid(), None)
        for node in self.nodes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(node.proc.pid, signal.SIGKILL)
        for proc in victims.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(list(victims.values()), timeout=30)
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=10)
