"""What `vlmrl train` does, backend by backend: veRL = plan and validate -> preflight -> the dry-run
text or the launch; TRL = the run (or its dry-run text). The CLI only prints what these return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlmrl.errors import UserError
from vlmrl.train.config import ExperimentConfig
from vlmrl.train.preflight import PreflightReport, run_preflight


@dataclass
class VerlRun:
    """A veRL launch, planned (composed with veRL's Hydra config, validated) and preflight-checked."""

    launch: Any  # vlmrl.train.verl.launch.LaunchPlan
    preflight: PreflightReport
    #: After a failed cluster job: the lost nodes, the job's message, the checkpoint to resume from.
    failure: str | None = None

    def dry_run_text(self, brief: bool = False) -> str:
        """The command and the resolved veRL config as YAML (the command and runtime env ride along as
        comments, so the text stays valid YAML); `brief`: instead of the config, the keys vlmrl sets
        as Hydra overrides with their resolved values, ready to paste."""
        from omegaconf import OmegaConf

        from vlmrl.train.verl.validate import to_yaml

        launch = self.launch
        lines = [
            f"# vlmrl train --dry-run: {launch.mode} launch, validated against veRL 0.9.1 on CPU",
            "# command:",
            launch.shell_multiline(prefix="#   "),
        ]
        if launch.runtime_env is not None:
            lines.append(f"# runtime env ({launch.runtime_env_path}, written at launch):")
            lines += [
                f"#   {line}" for line in OmegaConf.to_yaml(OmegaConf.create(launch.runtime_env)).splitlines()
            ]
        if brief:
            import shlex

            from vlmrl.train.verl.validate import resolved_overrides

            lines.append(
                "# the keys vlmrl sets, with the values veRL resolved: Hydra overrides, shell-quoted, to paste "
                "after `python -m verl.trainer.main_ppo`:"
            )
            args = [shlex.quote(a) for a in resolved_overrides(launch.verl_config, launch.overrides)]
            return "\n".join(lines + [a + " \\" for a in args[:-1]] + args[-1:]) + "\n"
        lines.append("# resolved veRL config (its interpolations resolved to the values veRL will use):")
        return "\n".join(lines) + "\n" + to_yaml(launch.verl_config)

    def start(self) -> int:
        """Refuse while a preflight check fails; else run veRL and return its exit code."""
        import time

        from vlmrl.train.verl import launch as verl_launch

        self.preflight.raise_on_failure()
        started = time.time()
        code = verl_launch.run(self.launch)
        if code != 0 and self.launch.mode == "cluster":
            self.failure = verl_launch.cluster_failure(self.launch, started)
        return code


def prepare_verl(
    cfg: ExperimentConfig,
    ray_address: str | None = None,
    runtime_env_file: str | None = None,
    *,
    preflight: bool = True,
    gpu_memory_gib: float | None = None,
) -> VerlRun:
    """Plan the veRL launch (local or Ray cluster) and run the preflight checks against it.

    `preflight=False` skips them (an empty report); `gpu_memory_gib` is the GPU size the memory budget
    is checked against (default: the GPU found here).
    """
    from vlmrl.train.verl import launch as verl_launch

    launch = verl_launch.plan(cfg, ray_address=ray_address, runtime_env_file=runtime_env_file)
    if not preflight:
        return VerlRun(launch, PreflightReport())
    # The path veRL will load (extra_overrides may name the one the cluster nodes see).
    reward_path = str(launch.verl_config.reward.custom_reward_function.path)
    report = run_preflight(
        cfg, reward_path=reward_path, cluster=launch.mode == "cluster", gpu_memory_gib=gpu_memory_gib
    )
    return VerlRun(launch, report)


def preflight_trl(cfg: ExperimentConfig, gpu_memory_gib: float | None = None) -> PreflightReport:
    """The preflight checks that apply to a TRL run (data, model, GPUs, verifier, budget)."""
    return run_preflight(cfg, reward_path=None, gpu_memory_gib=gpu_memory_gib)


def _trl_backend():
    try:
        from vlmrl.train.trl import backend as trl_backend
    except ImportError as exc:
        raise UserError(
            f"backend=trl could not import its engine ({exc}); install it with "
            "`pip install -c constraints.txt -e '.[trl]'`"
        ) from None
    return trl_backend


def trl_dry_run_text(cfg: ExperimentConfig) -> str:
    """The `GRPOConfig` the TRL run would build (every field, as YAML), and notes on how keys map."""
    import yaml

    backend = _trl_backend()
    args, notes = backend.build_grpo_config(cfg)
    fields = {k: v for k, v in sorted(args.to_dict().items())}
    lines = ["# backend: trl -- the trl.GRPOConfig vlmrl.train.trl.backend.run(cfg) would build"]
    lines += [f"# note: {n}" for n in notes]
    return "\n".join(lines) + "\n" + yaml.safe_dump(fields, sort_keys=False, default_flow_style=None)


def run_trl(cfg: ExperimentConfig) -> dict[str, Any]:
    """Train with TRL on this machine; returns the run summary as a dict (what to print)."""
    return _trl_backend().run(cfg).as_dict()
