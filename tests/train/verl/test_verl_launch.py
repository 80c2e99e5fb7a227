"""`vlmrl train` with backend=verl: dry-run output, local vs cluster commands, refusal on failed preflight."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import vlmrl
from vlmrl.cli import app
from vlmrl.train.config import load_config
from vlmrl.train.verl.launch import ENTRY_MODULE, plan, runtime_env_for

PRESETS_DIR = Path(__file__).resolve().parents[3] / "configs" / "train"
runner = CliRunner()


def test_dry_run_prints_command_and_resolved_verl_yaml():
    args = ["train", str(PRESETS_DIR / "mixed.yaml"), "rollout.n=8", "--dry-run", "--no-preflight"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "preflight" not in result.stderr
    out = result.stdout
    assert f"-m {ENTRY_MODULE}" in out
    assert "actor_rollout_ref.model.external_lib=vlmrl.train.verl.patches" in out
    resolved = yaml.safe_load(out)  # the command rides along as comments: stdout is the veRL config
    assert resolved["actor_rollout_ref"]["rollout"]["n"] == 8
    assert resolved["reward"]["reward_manager"]["name"] == "dapo"
    assert resolved["algorithm"]["filter_groups"]["metric"] == "acc"
    assert resolved["reward"]["custom_reward_function"]["reward_kwargs"]["verifier_model"] == "xVerify-0.5B-I"
    # veRL's ${oc.select:...} interpolations resolved: the printed config is the one veRL runs.
    assert "${" not in out
    assert resolved["actor_rollout_ref"]["rollout"]["prompt_length"] == resolved["data"]["max_prompt_length"]


def test_brief_dry_run_is_hydra_overrides_that_veRL_takes_as_pasted():
    import shlex

    from vlmrl.train.verl.validate import compose

    args = [
        "train",
        str(PRESETS_DIR / "multimodal.yaml"),
        "rollout.n=4",
        "--dry-run",
        "--brief",
        "--no-preflight",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    body = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert all(line.endswith(" \\") for line in body[:-1]) and not body[-1].endswith("\\")
    pasted = shlex.split(" ".join(line.removesuffix(" \\") for line in body))  # as a shell reads them
    assert "actor_rollout_ref.rollout.n=4" in pasted
    assert any(a.startswith("+data.mm_processor_kwargs.max_pixels=") for a in pasted)
    composed = compose(pasted)  # veRL's own Hydra config takes them as they are
    assert composed.actor_rollout_ref.rollout.n == 4
    assert composed.data.train_files == ["data/multimodal/train.parquet"]


def test_local_plan_is_an_argument_list():
    launch = plan(load_config(PRESETS_DIR / "text.yaml"), validate=False)
    assert launch.mode == "local"
    assert launch.argv[:3] == [sys.executable, "-m", ENTRY_MODULE]
    assert all(isinstance(a, str) for a in launch.argv)
    assert "reward.reward_manager.name=dapo" in launch.argv


def test_cluster_plan_from_ray_address_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.1:8265")
    monkeypatch.setenv("REWARD_MODEL_URL", "http://10.0.0.9:8888/v1")
    user_env = tmp_path / "env.yaml"
    user_env.write_text(
        yaml.safe_dump({"env_vars": {"NCCL_DEBUG": "INFO", "WANDB_API_KEY": "k"}, "pip": ["x"]})
    )
    cfg = load_config(PRESETS_DIR / "mixed_2node.yaml")
    launch = plan(cfg, runtime_env_file=str(user_env), validate=False)
    assert launch.mode == "cluster"
    sep = launch.argv.index("--")
    assert launch.argv[:sep] == [
        "ray",
        "job",
        "submit",
        "--address",
        "http://10.0.0.1:8265",
        "--runtime-env",
        launch.runtime_env_path,
        "--submission-id",
        launch.submission_id,
    ]
    assert launch.submission_id.startswith("vlmrl-qwen2_5_vl_7b-mixed-grpo-2node-")
    assert launch.argv[sep + 1 : sep + 4] == ["python3", "-m", ENTRY_MODULE]
    env = launch.runtime_env
    assert env["env_vars"]["NCCL_DEBUG"] == "INFO"  # the user's file wins
    assert env["env_vars"]["REWARD_MODEL_URL"] == "http://10.0.0.9:8888/v1"  # passed through to workers
    assert env["pip"] == ["x"]
    # vlmrl travels with the job; the reward is named by module, not by this machine's path
    assert env["py_modules"] == [str(Path(vlmrl.__file__).resolve().parent)]
    assert "reward.custom_reward_function.path=pkg://vlmrl.reward.verl_entry" in launch.argv
    assert not [a for a in launch.argv[sep:] if env["py_modules"][0] in a]
    assert launch.runtime_env_path.startswith(cfg.trainer.output_dir)
    # The config's address beats the environment's; --address beats both.
    cfg2 = load_config(PRESETS_DIR / "mixed_2node.yaml", ["trainer.ray_address=http://head:8265"])
    assert plan(cfg2, validate=False).ray_address == "http://head:8265"
    assert plan(cfg2, ray_address="http://other:8265", validate=False).ray_address == "http://other:8265"


def test_extra_override_replaces_our_key_instead_of_fighting_it():
    # e.g. the reward file as the cluster nodes see it, when submitting from another machine.
    cfg = load_config(
        PRESETS_DIR / "text.yaml",
        ["extra_overrides=[reward.custom_reward_function.path=/opt/vlmrl/reward/verl_entry.py]"],
    )
    launch = plan(cfg)
    paths = [a for a in launch.hydra_args if a.startswith("reward.custom_reward_function.path=")]
    assert paths == ["reward.custom_reward_function.path=/opt/vlmrl/reward/verl_entry.py"]
    assert launch.verl_config.reward.custom_reward_function.path == "/opt/vlmrl/reward/verl_entry.py"


def test_runtime_env_file_errors(tmp_path):
    cfg = load_config(PRESETS_DIR / "text.yaml")
    with pytest.raises(Exception, match="not found"):
        runtime_env_for(cfg, str(tmp_path / "none.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(Exception, match="mapping"):
        runtime_env_for(cfg, str(bad))


def test_real_launch_refuses_on_failed_preflight(tmp_path):
    # No GPU and no data here: the launch stops at preflight and starts nothing.
    result = runner.invoke(
        app, ["train", str(PRESETS_DIR / "single_gpu_3b.yaml"), f"trainer.output_dir={tmp_path / 'out'}"]
    )
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "PreflightError"
    message = str(result.exception)
    assert "preflight failed" in message and "gpus" in message and "data/multimodal/train.parquet" in message
    assert not (tmp_path / "out").exists()


def test_refused_key_is_a_clean_cli_error():
    result = runner.invoke(
        app,
        [
            "train",
            str(PRESETS_DIR / "text.yaml"),
            "extra_overrides=[reward_model.reward_manager=dapo]",
            "--dry-run",
        ],
    )
    assert result.exit_code != 0
    assert "reward.reward_manager.name" in str(result.exception)


def test_dry_run_exits_non_zero_when_preflight_fails():
    # No GPU and no data files on this machine: the dry run shows why and exits 1, so it can gate CI.
    result = runner.invoke(app, ["train", str(PRESETS_DIR / "mixed.yaml"), "--dry-run"])
    assert result.exit_code == 1, result.output
    assert "preflight failed" in result.stderr and "--no-preflight" in result.stderr
    assert yaml.safe_load(result.stdout)["actor_rollout_ref"]["rollout"]["n"] == 16  # still printed


def test_trl_backend_dispatch(tmp_path):
    """backend=trl goes to vlmrl.train.trl.backend; --dry-run runs preflight and shows the GRPOConfig."""
    args = ["train", str(PRESETS_DIR / "text.yaml"), "backend=trl", "rollout.n=4", "--dry-run"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # the text preset's data files are not on this machine
    assert "preflight" in result.stderr and "data (train)" in result.stderr
    assert "trl.GRPOConfig" in result.stdout
    grpo = yaml.safe_load(result.stdout)
    assert grpo["num_generations"] == 4 and grpo["loss_type"] == "dapo"
    assert "backend" not in grpo  # TRL's own fields, not our config
    assert runner.invoke(app, [*args, "--no-preflight"]).exit_code == 0


def test_cluster_launch_runs_ray_job_submit(tmp_path, monkeypatch, capfd):
    """The real `ray job submit` is started with our argument list; no cluster answers on this port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"http://127.0.0.1:{port}")
    out = tmp_path / "out"
    result = runner.invoke(app, ["train", str(PRESETS_DIR / "mixed_2node.yaml"), f"trainer.output_dir={out}"])
    assert result.exit_code not in (0, 2), result.output  # ray's own failure code, not a preflight refusal
    captured = capfd.readouterr()
    assert f"Failed to connect to Ray at address: http://127.0.0.1:{port}" in captured.out + captured.err
    runtime_env = yaml.safe_load((out / "ray_runtime_env.yaml").read_text())
    assert runtime_env["env_vars"]["TOKENIZERS_PARALLELISM"] == "true"


def test_error_messages_with_brackets_print_verbatim(tmp_path):
    # Paths in Hydra list syntax look like rich markup ("[/data/...]"); the CLI must print them as-is.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vlmrl.cli",
            "train",
            str(PRESETS_DIR / "text.yaml"),
            "extra_overrides=['+trainer.bogus=[/data/x.parquet]']",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "+trainer.bogus=[/data/x.parquet]" in proc.stderr
    assert "Traceback" not in proc.stderr and "MarkupError" not in proc.stderr


def test_file_logger_writes_under_the_output_dir(monkeypatch, tmp_path):
    cfg = load_config(PRESETS_DIR / "single_gpu_3b.yaml", [f"trainer.output_dir={tmp_path / 'run'}"])
    assert "jsonl" in cfg.trainer.logger
    expected = str(tmp_path / "run" / "verl_metrics.jsonl")
    assert plan(cfg, validate=False).env == {"VERL_FILE_LOGGER_PATH": expected}
    assert runtime_env_for(cfg, None)["env_vars"]["VERL_FILE_LOGGER_PATH"] == expected
    no_file = load_config(PRESETS_DIR / "text.yaml")
    assert "jsonl" not in no_file.trainer.logger and plan(no_file, validate=False).env == {}


def test_cpu_cluster_plan_carries_the_cpu_platform_to_every_node(tiny_vlm_path):
    """`trainer.device=cpu` with an address: a cluster launch (the address wins), the CPU settings
    but those only a one-machine Ray takes, and the CPU platform's environment in the runtime env."""
    from vlmrl.train.verl import cpu as verl_cpu

    cfg = load_config(
        PRESETS_DIR / "mixed_2node.yaml",
        [f"model.path={tiny_vlm_path}", "trainer.device=cpu", "trainer.n_gpus_per_node=1"],
    )
    launch = plan(cfg, ray_address="http://127.0.0.1:8265")
    assert launch.mode == "cluster"
    c = launch.verl_config
    assert c.trainer.device == "cpu" and c.trainer.nnodes == 2 and c.trainer.n_gpus_per_node == 1
    assert c.ray_kwargs.ray_init.num_cpus is None  # ray.init refuses it when joining a cluster
    assert "num_gpus" not in c.ray_kwargs.ray_init
    env_vars = launch.runtime_env["env_vars"]
    assert {k: env_vars[k] for k in verl_cpu.cpu_env()} == verl_cpu.cpu_env()
    local = plan(cfg, ray_address="http://127.0.0.1:8265", local=True)
    assert local.mode == "local" and local.verl_config.trainer.nnodes == 1
    assert local.verl_config.ray_kwargs.ray_init.num_cpus == 16


def test_node_loss_grace_reads_the_environment(monkeypatch):
    from vlmrl.errors import UserError
    from vlmrl.train.verl import launch as verl_launch

    monkeypatch.delenv("VLMRL_NODE_LOSS_GRACE_S", raising=False)
    assert verl_launch.node_loss_grace_s() == verl_launch.NODE_LOSS_GRACE_S
    monkeypatch.setenv("VLMRL_NODE_LOSS_GRACE_S", "0")
    assert verl_launch.node_loss_grace_s() == 0.0  # never stop a job
    monkeypatch.setenv("VLMRL_NODE_LOSS_GRACE_S", "two minutes")
    with pytest.raises(UserError, match="VLMRL_NODE_LOSS_GRACE_S='two minutes'"):
        verl_launch.node_loss_grace_s()
