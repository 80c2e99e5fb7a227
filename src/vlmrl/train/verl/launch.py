"""Launch veRL 0.9.1 training: validated overrides -> `main_ppo` on this node or `ray job submit`.

Commands are argument lists (never shell strings). `plan(cfg)` does everything short of running:
overrides, veRL compose + validate_config on CPU, the command, the Ray runtime env. On a cluster the
runtime env ships this vlmrl package to every node (`py_modules`) and the reward is named by module,
so no node needs the submitting machine's install path; `cluster_failure` explains a failed job.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vlmrl.train.config import ExperimentConfig
from vlmrl.train.verl.overrides import Override, hydra_settings, merged_overrides, reward_function_path
from vlmrl.utils.io import write_text_atomic

ENTRY_MODULE = "verl.trainer.main_ppo"
#: Environment every Ray worker gets in cluster mode; user values in the runtime env file win.
RUNTIME_ENV_VARS = {
    "TOKENIZERS_PARALLELISM": "true",
    "NCCL_DEBUG": "WARN",
    "VLLM_LOGGING_LEVEL": "WARN",
}
#: Variables passed through to Ray workers when set where `vlmrl train` runs.
PASSTHROUGH_ENV = (
    "REWARD_MODEL_URL",
    "REWARD_MODEL_NAME",
    "REWARD_MODEL_API_KEY",
    "HF_HOME",
    "HF_ENDPOINT",
    "WANDB_PROJECT",
)
#: How long a failed cluster job waits for Ray to report the nodes it lost.
NODE_DEATH_WAIT_S = 45.0
#: A cluster job still running this long after Ray marked a node dead is stopped: veRL 0.9.1 can wait
#: forever on the requests its lost rollout workers held (its log then repeats `pending: 0, running: 2,
#: finished: 0`). `VLMRL_NODE_LOSS_GRACE_S` sets it; 0 never stops a job.
NODE_LOSS_GRACE_S = 120.0
#: How often `vlmrl train` asks the cluster for dead nodes while its job runs.
NODE_WATCH_S = 10.0
#: A node that died this way had nothing of the job's on it (the autoscaler's idle-node removal).
_HARMLESS_DEATH_RE = re.compile(r"(?i)\bidle\b|drain")
#: Left out of the vlmrl package shipped to the nodes (Ray's gitignore-style `excludes`).
SHIPPED_EXCLUDES = ["__pycache__/", "*.pyc"]


@dataclass
class LaunchPlan:
    """Everything needed to start (or show) one veRL run."""

    mode: Literal["local", "cluster"]
    argv: list[str]
    hydra_args: list[str]
    overrides: list[Override]
    reward_path: str
    ray_address: str | None = None
    runtime_env: dict[str, Any] | None = None
    runtime_env_path: str | None = None
    #: The Ray job's id (`ray job logs/status/stop <id>`), cluster mode only.
    submission_id: str | None = None
    #: `<trainer.output_dir>/checkpoints`, where veRL saves (the same path on every node).
    checkpoints_dir: str | None = None
    verl_config: Any = field(default=None, repr=False)
    #: Extra environment for the local command (cluster mode carries it in `runtime_env`).
    env: dict[str, str] = field(default_factory=dict)
    #: Why vlmrl stopped the cluster job (a node died and the job kept waiting), once it has.
    stopped_because: str | None = None

    def shell(self) -> str:
        """The command as one copy-pasteable shell line (for display only; we never run it via a shell)."""
        return shlex.join(self.argv)

    def shell_multiline(self, prefix: str = "") -> str:
        """The command with one argument per line and `\\` continuations."""
        head_len = self.argv.index(ENTRY_MODULE) + 1
        head = shlex.join(self.argv[:head_len])
        lines = [prefix + head] + [prefix + "    " + shlex.quote(a) for a in self.argv[head_len:]]
        return " \\\n".join(lines)


def logger_env(cfg: ExperimentConfig) -> dict[str, str]:
    """Where veRL's file logger (our `jsonl` logger) writes: under the run's output directory.

    Left to itself it writes ./<project>/<experiment>.jsonl relative to wherever the job runs,
    and truncates that file when a resumed run starts.
    """
    if "jsonl" not in cfg.trainer.logger:
        return {}
    return {
        "VERL_FILE_LOGGER_PATH": os.path.abspath(
            os.path.join(cfg.trainer.resolved_output_dir(), "verl_metrics.jsonl")
        )
    }


def resolve_ray_address(cfg: ExperimentConfig) -> str | None:
    """Cluster address: `trainer.ray_address`, else $RAY_ADDRESS, else None (local mode)."""
    return cfg.trainer.ray_address or os.environ.get("RAY_ADDRESS") or None


def vlmrl_package_dir() -> str:
    """The directory of the `vlmrl` package this process runs: what the runtime env ships."""
    import vlmrl

    return os.path.dirname(os.path.abspath(vlmrl.__file__))


def runtime_env_for(
    cfg: ExperimentConfig, user_file: str | None = None, on_cpu: bool = False
) -> dict[str, Any]:
    """The Ray runtime env for `ray job submit`: our defaults, passthrough variables, then the user's file.

    It ships this vlmrl package (`py_modules`, uploaded by `ray job submit`, first on every worker's
    path), so the nodes run the submitter's vlmrl and import the reward by module name; they need
    vlmrl's dependencies installed, not vlmrl at any particular path. `on_cpu` adds the CPU platform's
    environment (vlmrl.train.verl.cpu), which every worker of a CPU run needs.
    """
    env_vars = {**RUNTIME_ENV_VARS, **logger_env(cfg)}
    if on_cpu:
        from vlmrl.train.verl import cpu as verl_cpu

        env_vars.update(verl_cpu.cpu_env())
    for name in PASSTHROUGH_ENV:
        if os.environ.get(name):
            env_vars[name] = os.environ[name]
    runtime_env: dict[str, Any] = {
        "env_vars": env_vars,
        "py_modules": [vlmrl_package_dir()],
        "excludes": list(SHIPPED_EXCLUDES),
    }
    if user_file:
        from vlmrl.utils.io import read_yaml_mapping

        # Also names the file on bad YAML, which the hand-rolled reader let through as a traceback.
        loaded = read_yaml_mapping(
            user_file, "runtime env (env_vars, pip, working_dir, ...)", " (--runtime-env)"
        )
        user_vars = loaded.pop("env_vars", {}) or {}
        for key in ("py_modules", "excludes"):  # added to ours, not in place of them
            runtime_env[key] += list(loaded.pop(key, None) or [])
        runtime_env.update(loaded)
        runtime_env["env_vars"] = {**env_vars, **{str(k): str(v) for k, v in user_vars.items()}}
    return runtime_env


def submission_id_for(cfg: ExperimentConfig) -> str:
    """`vlmrl-<experiment>-<UTC time>`: the Ray job id `ray job logs` / `status` / `stop` take."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", cfg.trainer.experiment_name).strip("-") or "run"
    return f"vlmrl-{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def plan(
    cfg: ExperimentConfig,
    *,
    reward_path: str | None = None,
    ray_address: str | None = None,
    runtime_env_file: str | None = None,
    python: str | None = None,
    validate: bool = True,
    on_cpu: bool | None = None,
    local: bool = False,
) -> LaunchPlan:
    """Build and (by default) validate the launch of `cfg` against the installed veRL; runs nothing.

    A Ray address (`ray_address`, else `trainer.ray_address`, else $RAY_ADDRESS) makes it a cluster
    launch through `ray job submit`; `local` ignores every address (smoke runs). `on_cpu` (default:
    `trainer.device: cpu`) runs veRL on CPUs (vlmrl.train.verl.cpu): its settings replace ours where
    they set the same key, locally and on a cluster of CPU nodes alike.
    """
    if on_cpu is None:
        on_cpu = cfg.trainer.device == "cpu"
    address = None if local else ray_address or resolve_ray_address(cfg)
    reward_path = reward_path or reward_function_path()
    overrides, hydra_args = merged_overrides(cfg, reward_path)
    cpu_env: dict[str, str] = {}
    if on_cpu:
        from vlmrl.train.verl import cpu as verl_cpu

        overrides, hydra_args = verl_cpu.with_cpu_settings(
            overrides, cfg.extra_overrides, cluster=address is not None
        )
        cpu_env = verl_cpu.cpu_env()
    hydra_args = [*hydra_args, *hydra_settings(cfg)]
    verl_config = None
    if validate:
        from vlmrl.train.verl.validate import validate as validate_overrides

        verl_config = validate_overrides(hydra_args, overrides)
    checkpoints_dir = os.path.join(os.path.abspath(cfg.trainer.resolved_output_dir()), "checkpoints")
    if address is None:
        argv = [python or sys.executable, "-m", ENTRY_MODULE, *hydra_args]
        return LaunchPlan(
            "local",
            argv,
            hydra_args,
            overrides,
            reward_path,
            verl_config=verl_config,
            env={**logger_env(cfg), **cpu_env},
            checkpoints_dir=checkpoints_dir,
        )
    runtime_env = runtime_env_for(cfg, runtime_env_file, on_cpu=on_cpu)
    env_path = os.path.join(cfg.trainer.resolved_output_dir(), "ray_runtime_env.yaml")
    submission_id = submission_id_for(cfg)
    argv = [
        "ray",
        "job",
        "submit",
        "--address",
        address,
        "--runtime-env",
        env_path,
        "--submission-id",
        submission_id,
        "--",
        "python3",
        "-m",
        ENTRY_MODULE,
        *hydra_args,
    ]
    return LaunchPlan(
        "cluster",
        argv,
        hydra_args,
        overrides,
        reward_path,
        ray_address=address,
        runtime_env=runtime_env,
        runtime_env_path=env_path,
        verl_config=verl_config,
        submission_id=submission_id,
        checkpoints_dir=checkpoints_dir,
    )


def lost_nodes(address: str, since_s: float) -> list[dict[str, Any]]:
    """Ray nodes that died at or after `since_s` (Unix time), from Ray's state API at `address`."""
    from ray.util.state import list_nodes

    nodes = list_nodes(
        address=address, filters=[("state", "=", "DEAD")], detail=True, raise_on_missing_output=False
    )
    out = []
    for node in nodes:
        end_ms = getattr(node, "end_time_ms", None) or 0
        if end_ms and end_ms < since_s * 1000:
            continue
        out.append(
            {
                "node_id": node.node_id,
                "node_ip": node.node_ip,
                "reason": (getattr(node, "state_message", None) or "").strip(),
            }
        )
    return out


def cluster_failure(launch: LaunchPlan, started_s: float) -> str:
    """Why a cluster job failed, as far as the cluster tells: the nodes lost during it, the job's own
    status message, and the checkpoint a resubmission continues from."""
    parts = [f"Ray job {launch.submission_id} failed"]
    if launch.stopped_because:
        parts[0] = f"Ray job {launch.submission_id} stopped by vlmrl: {launch.stopped_because}"
    try:
        from ray.job_submission import JobSubmissionClient

        info = JobSubmissionClient(launch.ray_address).get_job_info(launch.submission_id)
        # "Job entrypoint command failed with exit code 1, last available logs ..." (a stopped job's
        # message only says it was stopped: the reason above is vlmrl's)
        if info.message and not launch.stopped_because:
            parts[0] += ": " + info.message.split(", last available logs")[0].strip().splitlines()[0][:300]
    except Exception as exc:  # the cluster may be gone altogether; say so and go on
        parts.append(f"(the job's status is unavailable: {type(exc).__name__}: {exc})")
    try:
        # Ray marks a node dead only after its health checks fail (~15-30 s): a job whose workers
        # died with their node may end before that.
        deadline = time.monotonic() + NODE_DEATH_WAIT_S
        lost = lost_nodes(launch.ray_address, started_s)
        while not lost and time.monotonic() < deadline:
            time.sleep(3)
            lost = lost_nodes(launch.ray_address, started_s)
        for node in lost:
            reason = f" ({node['reason']})" if node["reason"] else ""
            parts.append(f"Ray node {node['node_id']} at {node['node_ip']} died during the job{reason}")
    except Exception as exc:
        parts.append(f"(the nodes' state is unavailable: {type(exc).__name__}: {exc})")
    from vlmrl.train.verl.export import latest_checkpoint

    checkpoint = latest_checkpoint(launch.checkpoints_dir) if launch.checkpoints_dir else None
    if checkpoint is not None:
        parts.append(
            f"last checkpoint: {checkpoint}; submit the same command on a healthy cluster to continue "
            "from it (trainer.resume_mode=auto)"
        )
    else:
        parts.append("no checkpoint was saved")
    parts.append(f"logs: ray job logs {launch.submission_id} --address {launch.ray_address}")
    return "; ".join(parts)


def node_loss_grace_s() -> float:
    """`VLMRL_NODE_LOSS_GRACE_S` (seconds; 0 = never stop a job), else `NODE_LOSS_GRACE_S`."""
    raw = os.environ.get("VLMRL_NODE_LOSS_GRACE_S", "").strip()
    if not raw:
        return NODE_LOSS_GRACE_S
    try:
        value = float(raw)
    except ValueError:
        from vlmrl.errors import UserError

        raise UserError(
            f"VLMRL_NODE_LOSS_GRACE_S={raw!r}: give a number of seconds (0 = never stop)"
        ) from None
    return max(value, 0.0)


def _watch_cluster_job(launch: LaunchPlan, proc: subprocess.Popen, started_s: float) -> int:
    """Wait for `ray job submit`; stop the job when a node died and the job is still running
    `node_loss_grace_s()` after Ray reported it (veRL may never notice). Returns the exit code."""
    grace = node_loss_grace_s()
    if grace <= 0 or launch.ray_address is None:
        return proc.wait()
    first_seen: float | None = None
    while True:
        try:
            return proc.wait(timeout=NODE_WATCH_S)
        except subprocess.TimeoutExpired:
            pass
        try:
            lost = [
                n
                for n in lost_nodes(launch.ray_address, started_s)
                if not _HARMLESS_DEATH_RE.search(n["reason"])
            ]
        except Exception:  # the state API may be briefly unavailable: ask again next time
            continue
        if not lost:
            continue
        now = time.monotonic()
        first_seen = first_seen if first_seen is not None else now
        if now - first_seen < grace:
            continue
        node = lost[0]
        launch.stopped_because = (
            f"Ray node {node['node_id']} at {node['node_ip']} died and the job was still running "
            f"{grace:g} s later (veRL waits on the lost node's workers; VLMRL_NODE_LOSS_GRACE_S sets "
            "how long to wait, 0 never stops)"
        )
        print(f"vlmrl: stopping Ray job {launch.submission_id}: {launch.stopped_because}", file=sys.stderr)
        try:
            from ray.job_submission import JobSubmissionClient

            JobSubmissionClient(launch.ray_address).stop_job(launch.submission_id)
        except Exception as exc:
            print(f"vlmrl: could not stop the job ({type(exc).__name__}: {exc})", file=sys.stderr)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()  # only the log tail here; the job itself is stopped on the cluster
            code = proc.wait()
        return code or 1


def run(launch: LaunchPlan) -> int:
    """Start the planned command (writes the runtime env file first in cluster mode); returns its exit code."""
    if launch.mode == "cluster":
        assert launch.runtime_env_path is not None
        write_text_atomic(launch.runtime_env_path, yaml.safe_dump(launch.runtime_env, sort_keys=False))
    metrics_file = launch.env.get("VERL_FILE_LOGGER_PATH")
    if metrics_file:
        # veRL's file logger opens the file without creating its folder.
        Path(metrics_file).parent.mkdir(parents=True, exist_ok=True)
    argv = list(launch.argv)
    if argv[0] == "ray" and shutil.which("ray") is None:
        # The venv's `ray` when the venv is not on PATH (e.g. run as .venv/bin/vlmrl).
        sibling = Path(sys.executable).with_name("ray")
        if sibling.is_file():
            argv[0] = str(sibling)
    try:
        if launch.mode == "cluster":  # `ray job submit`: the job lives on the cluster, not here
            started = time.time()
            proc = subprocess.Popen(argv, env={**os.environ, **launch.env})
            try:
                return _watch_cluster_job(launch, proc, started)
            except BaseException:
                proc.kill()  # Ctrl-C: stop tailing; the job goes on (`ray job stop <id>` stops it)
                proc.wait()
                raise
        # Ctrl-C (or any error) stops every process main_ppo started, Ray's included
        code = run_in_own_session(argv, env={**os.environ, **launch.env})
        assert code is not None  # no timeout: it ran to its end
        return code
    except FileNotFoundError as exc:
        from vlmrl.errors import UserError

        raise UserError(
            f"cannot start {launch.argv[0]!r} ({exc}); "
            + (
                "install Ray (`pip install 'ray[default]'`)"
                if launch.mode == "cluster"
                else "check the Python path"
            )
        ) from None


# --- running veRL on this machine (the smoke run and the demo's veRL stage) ---

#: Known failures in a veRL log -> what to do. First match wins.
KNOWN_FAILURES: tuple[tuple[str, str], ...] = (
    (
        r"No module named 'transfer_queue'",
        "veRL's trainer needs its verl-core extra: pip install 'verl[verl-core]==0.9.1'",
    ),
    (
        r"Unsupported CPU attention configuration: head_dim=(\d+)",
        "vLLM's CPU attention does not take this head size; smoke-test with a model whose head_dim is "
        "32, 64, 80, 96, 112, 128 or 256 (--smoke-model), or run on a GPU",
    ),
    (
        r"Unable to concatenate an empty list of datasets",
        "a data file list is empty: set data.train_files (and data.val_files, or leave it [])",
    ),
    (
        r"OutOfMemoryError|out of memory|ray\.exceptions\.OutOfMemoryError",
        "out of memory: lower data.max_prompt_length / rollout.max_response_length or --rows",
    ),
    (
        r"image features and image tokens do not match|Image features and image tokens do not match",
        "a prompt was cut inside its image tokens: raise data.max_prompt_length or lower data.max_pixels",
    ),
    (
        r"Prompt length .* is longer than|is longer than the maximum model length",
        "prompts are longer than the model allows: lower data.max_prompt_length or data.max_pixels",
    ),
)


def diagnose(log_text: str) -> str:
    """One line saying what failed in a veRL log, with the fix when it is a known failure."""
    for pattern, fix in KNOWN_FAILURES:
        if re.search(pattern, log_text):
            return f"{_last_error(log_text)} -> fix: {fix}"
    return _last_error(log_text)


_ERROR_LINE = re.compile(r"^(?:\S+\s)*?([A-Za-z_.]*(?:Error|Exception|Exit)\b[^\n]*)$", re.MULTILINE)


def _last_error(log_text: str) -> str:
    lines = [m.group(1).strip() for m in _ERROR_LINE.finditer(log_text)]
    lines = [line for line in lines if not line.startswith(("Error executing job", "UserWarning"))]
    if lines:
        return lines[-1][:400]
    tail = [line for line in log_text.strip().splitlines() if line.strip()][-1:]
    return tail[0][:400] if tail else "veRL exited without output"


def gpu_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append({"step": row.get("step"), **(row.get("data") or {})})
    return rows


# --- stopping everything a local veRL run started (its Ray head, agents and workers included) ---

#: Seconds the processes of a stopped run get to exit on SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (`Z` for a zombie); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    if os.path.isdir("/proc"):
        return _state(pid) not in (None, "Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()] if os.path.isdir("/proc") else []


def process_tree(root: int) -> list[int]:
    """Every live descendant of `root`, from /proc (Linux); [] where there is no /proc.

    Ray's workers run in sessions of their own (raylet starts them so), so the run's process group
    alone does not name them all: the tree does, while the run still holds them.
    """
    children: dict[int, list[int]] = {}
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (zombies left out)."""
    out = []
    for pid in _pids():
        try:
            if os.getpgid(pid) == pgid and _alive(pid):
                out.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return out


def _signal_all(pgid: int, pids: list[int], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_process_group(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """Stop `proc` (started with `start_new_session=True`), its whole process group and every process
    below it: SIGTERM, then SIGKILL for what is left after `grace_s`. Only this run's processes are
    signalled (its own group, whose id is its pid, and its descendants), never processes by name."""
    pgid = proc.pid
    tree = process_tree(proc.pid)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        _signal_all(pgid, tree, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()
            if proc.returncode is not None and not group_members(pgid) and not any(map(_alive, tree)):
                return
            time.sleep(0.2)
    proc.wait()


def run_in_own_session(
    argv: list[str], env: dict[str, str], stdout: Any = None, timeout_s: float | None = None
) -> int | None:
    """Run `argv` in a session (and process group) of its own and wait: its exit code, None on timeout.

    On a timeout, an interrupt (Ctrl-C) or any other error while waiting, every process it started is
    stopped (`stop_process_group`): veRL's `main_ppo` starts a Ray head (GCS, raylet, dashboard and its
    agents) that outlives a killed driver otherwise. After a normal exit, what is left in its group is
    stopped too.
    """
    proc = subprocess.Popen(
        argv, env=env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None, start_new_session=True
    )
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_process_group(proc)
        return None
    except BaseException:
        stop_process_group(proc)
        raise
    if group_members(proc.pid):
        stop_process_group(proc)
    return code


def launch_here(
    cfg, on_cpu: bool, verl_args: list[str], metrics_path: Path, log_path: Path, timeout_s: float
):
    """Run `main_ppo` once; (exit code or None on timeout, log text, metrics rows).

    veRL runs in a session of its own: on a timeout or an interrupt every process it started (Ray's
    included) is stopped before this returns or re-raises.
    """
    launch = plan(cfg, on_cpu=on_cpu, local=True)
    argv = [*launch.argv, *verl_args]
    env = {**os.environ, **launch.env, "VERL_FILE_LOGGER_PATH": str(metrics_path)}
    env.pop("RAY_ADDRESS", None)  # a smoke run starts its own Ray on this machine
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        code = run_in_own_session(argv, env, stdout=log, timeout_s=timeout_s)
    return code, log_path.read_text(encoding="utf-8", errors="replace"), _metrics(metrics_path)


@dataclass
class HereRun:
    """One veRL run on this machine (`train_here`): what it trained and where everything went."""

    exit_code: int | None  # None: timed out
    steps: list[int]
    metrics_path: Path
    log_path: Path
    checkpoints_dir: Path
    final_model_dir: Path | None
    error: str | None = None


def train_here(
    cfg,
    out_dir: Path,
    *,
    on_cpu: bool | None = None,
    verl_args: list[str] | None = None,
    timeout_s: float = 3600,
) -> HereRun:
    """Train `cfg` (backend verl) with veRL's `main_ppo` on this machine, then export the last checkpoint.

    On the CPU when `on_cpu` (default: when torch sees no GPU). veRL's metrics go to
    `out_dir/verl_metrics.jsonl`, its output to `out_dir/verl.log`, the merged model to `out_dir/hf_model`.
    """
    from vlmrl.train.verl.export import export

    out_dir = Path(out_dir)
    if on_cpu is None:
        on_cpu = not gpu_available()
    code, log, metrics = launch_here(
        cfg, on_cpu, list(verl_args or []), out_dir / "verl_metrics.jsonl", out_dir / "verl.log", timeout_s
    )
    steps = sorted({int(r["step"]) for r in metrics if r.get("step") is not None})
    ckpts = Path(cfg.trainer.resolved_output_dir()) / "checkpoints"
    run = HereRun(code, steps, out_dir / "verl_metrics.jsonl", out_dir / "verl.log", ckpts, None)
    if code != 0:
        run.error = "veRL timed out" if code is None else diagnose(log)
        return run
    hf_dir = out_dir / "hf_model"
    if hf_dir.exists():
        import shutil

        shutil.rmtree(hf_dir)
    run.final_model_dir = export(ckpts, hf_dir)
    return run
