"""Launch veRL 0.9.1 training: validated overrides -> `main_ppo` on this node or `ray job submit`.

Commands are argument lists (never shell strings). `plan(cfg)` does everything short of running:
overrides, veRL compose + validate_config on CPU, the command, the Ray runtime env.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vlmrl.train.config import ExperimentConfig
from vlmrl.train.verl_overrides import Override, merged_overrides, reward_function_path
from vlmrl.utils.io import write_text_atomic

ENTRY_MODULE = "verl.trainer.main_ppo"
#: Environment every Ray worker gets in cluster mode; user values in the runtime env file win.
RUNTIME_ENV_VARS = {
    "TOKENIZERS_PARALLELISM": "true",
    "NCCL_DEBUG": "WARN",
    "VLLM_LOGGING_LEVEL": "WARN",
}
#: Variables passed through to Ray workers when set where `vlmrl train` runs.
PASSTHROUGH_ENV = ("REWARD_MODEL_URL", "REWARD_MODEL_NAME", "HF_HOME", "HF_ENDPOINT", "WANDB_PROJECT")


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
    verl_config: Any = field(default=None, repr=False)
    #: Extra environment for the local command (cluster mode carries it in `runtime_env`).
    env: dict[str, str] = field(default_factory=dict)

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


def runtime_env_for(cfg: ExperimentConfig, user_file: str | None = None) -> dict[str, Any]:
    """The Ray runtime env for `ray job submit`: our defaults, passthrough variables, then the user's file."""
    env_vars = {**RUNTIME_ENV_VARS, **logger_env(cfg)}
    for name in PASSTHROUGH_ENV:
        if os.environ.get(name):
            env_vars[name] = os.environ[name]
    runtime_env: dict[str, Any] = {"env_vars": env_vars}
    if user_file:
        from vlmrl.utils.io import read_yaml_mapping

        # Also names the file on bad YAML, which the hand-rolled reader let through as a traceback.
        loaded = read_yaml_mapping(
            user_file, "runtime env (env_vars, pip, working_dir, ...)", " (--runtime-env)"
        )
        user_vars = loaded.pop("env_vars", {}) or {}
        runtime_env.update(loaded)
        runtime_env["env_vars"] = {**env_vars, **{str(k): str(v) for k, v in user_vars.items()}}
    return runtime_env


def plan(
    cfg: ExperimentConfig,
    *,
    reward_path: str | None = None,
    ray_address: str | None = None,
    runtime_env_file: str | None = None,
    python: str | None = None,
    validate: bool = True,
    on_cpu: bool = False,
) -> LaunchPlan:
    """Build and (by default) validate the launch of `cfg` against the installed veRL; runs nothing.

    `on_cpu` runs veRL on this machine's CPU (vlmrl.train.verl_cpu): its settings replace ours where
    they set the same key, and the launch always stays on this node.
    """
    reward_path = reward_path or reward_function_path()
    overrides, hydra_args = merged_overrides(cfg, reward_path)
    cpu_env: dict[str, str] = {}
    if on_cpu:
        from vlmrl.train import verl_cpu

        overrides, hydra_args = verl_cpu.with_cpu_settings(overrides, cfg.extra_overrides)
        cpu_env = verl_cpu.cpu_env()
    verl_config = None
    if validate:
        from vlmrl.train.verl_validate import validate as validate_overrides

        verl_config = validate_overrides(hydra_args, overrides)
    address = None if on_cpu else ray_address or resolve_ray_address(cfg)
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
        )
    runtime_env = runtime_env_for(cfg, runtime_env_file)
    env_path = os.path.join(cfg.trainer.resolved_output_dir(), "ray_runtime_env.yaml")
    argv = [
        "ray",
        "job",
        "submit",
        "--address",
        address,
        "--runtime-env",
        env_path,
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
    )


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
        return subprocess.run(argv, check=False, env={**os.environ, **launch.env}).returncode
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
