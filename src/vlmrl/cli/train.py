"""`vlmrl train`: launch a training run on veRL (this node or a Ray cluster) or TRL (one machine).

The sequence (plan, preflight, dry run, launch) is `vlmrl.train.launch`'s; this module prints it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vlmrl.cli._common import Command, console, err_console

_STATUS_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red"}


def _preflight_table(report) -> Table:
    table = Table(title="preflight", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for c in report.checks:
        table.add_row(c.name, f"[{_STATUS_STYLE[c.status]}]{c.status}[/]", escape(c.detail))
    return table


def _print_preflight(report) -> None:
    err_console.print(_preflight_table(report))
    if report.budget_text:
        err_console.print(escape(report.budget_text), end="", highlight=False, soft_wrap=True)


def _gate(report, dry_run: bool) -> None:
    """A failed preflight stops a launch, and makes a dry run exit 1 (so it can gate CI)."""
    if report.ok:
        return
    if dry_run:
        err_console.print(
            "[bold red]dry run: preflight failed; the launch would stop at the checks above[/] "
            "(--no-preflight skips them)"
        )
        raise typer.Exit(1)
    report.raise_on_failure()


def _run_trl(cfg, dry_run: bool, preflight: bool, gpu_memory_gib: float | None) -> None:
    from vlmrl.train.launch import preflight_trl, run_trl, trl_dry_run_text

    if preflight:
        report = preflight_trl(cfg, gpu_memory_gib)
        _print_preflight(report)
    if dry_run:
        typer.echo(trl_dry_run_text(cfg), nl=False)
        if preflight:
            _gate(report, dry_run=True)
        return
    if preflight:
        _gate(report, dry_run=False)
    table = Table(title="TRL run")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for key, value in run_trl(cfg).items():
        table.add_row(escape(str(key)), escape(str(value)))
    console.print(table)


def _run_verl(
    cfg,
    dry_run: bool,
    brief: bool,
    address: str | None,
    runtime_env: Path | None,
    preflight: bool,
    gpu_memory_gib: float | None,
) -> None:
    from vlmrl.train.launch import prepare_verl

    with err_console.status("composing with veRL's Hydra config, validate_config, preflight checks..."):
        run = prepare_verl(
            cfg,
            ray_address=address,
            runtime_env_file=str(runtime_env) if runtime_env else None,
            preflight=preflight,
            gpu_memory_gib=gpu_memory_gib,
        )
    if preflight:
        _print_preflight(run.preflight)
    if dry_run:
        typer.echo(run.dry_run_text(brief), nl=False)
        _gate(run.preflight, dry_run=True)
        return
    _gate(run.preflight, dry_run=False)
    err_console.print(
        f"[bold]launching ({run.launch.mode}):[/] {escape(run.launch.shell())}",
        highlight=False,
        soft_wrap=True,
    )
    if run.launch.submission_id:
        err_console.print(
            f"Ray job id: {run.launch.submission_id} "
            f"(ray job logs {run.launch.submission_id} --address {escape(run.launch.ray_address)})",
            highlight=False,
            soft_wrap=True,
        )
    code = run.start()
    if code != 0:
        err_console.print(f"[bold red]veRL exited with code {code}[/]")
        if run.failure:
            err_console.print(escape(run.failure), highlight=False, soft_wrap=True)
        raise typer.Exit(code)


def _run_smoke(config: Path, overrides: list[str], out: Path, smoke_model: str | None) -> None:
    from vlmrl.train.verl.smoke import STAGES, SmokeSettings, run_smoke

    def progress(stage: str, status: str) -> None:
        if status == "running":
            err_console.print(f"[cyan]smoke:[/] {stage} ...")

    result = run_smoke(
        SmokeSettings(config=config, out_dir=out, overrides=overrides, smoke_model=smoke_model), progress
    )
    table = Table(title=f"smoke run ({result.details.get('device')}): {result.steps} veRL steps")
    table.add_column("stage")
    table.add_column("result", overflow="fold")
    for stage in STAGES:
        status = result.stages[stage]
        style = "green" if status == "ok" else "dim" if status == "not run" else "bold red"
        table.add_row(stage, f"[{style}]{escape(status)}[/]")
    console.print(table)
    family = result.details.get("family")
    model = result.details.get("model")
    if model:
        which = f"the tiny {family} model" if family else "the given model"
        console.print(f"model: {which} ({escape(str(model))})", highlight=False, soft_wrap=True)
    for note in result.details.get("notes", []):
        console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    console.print(f"summary: {result.summary_path}  logs: {result.summary_path.parent / 'logs'}")
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command(
        "train",
        cls=Command,
        epilog=(
            "Examples:\n\n"
            "  vlmrl train configs/train/mixed.yaml --dry-run\n\n"
            "  vlmrl train configs/train/mixed.yaml --smoke --out outputs/smoke   # try it small here first\n\n"
            "  vlmrl train configs/train/text.yaml trainer.experiment_name=text-lr2e-6 algorithm.lr=2e-6\n\n"
            "  RAY_ADDRESS=http://head:8265 vlmrl train configs/train/mixed_2node.yaml"
        ),
    )
    def train(
        config: Path = typer.Argument(..., help="Experiment config YAML, e.g. configs/train/mixed.yaml."),
        overrides: list[str] = typer.Argument(
            None,
            help="Dotted key=value overrides of the experiment config, e.g. rollout.n=8 algorithm.lr=2e-6.",
        ),
        dry_run: bool = typer.Option(
            False,
            "--dry-run",
            help="Validate against veRL on CPU, run the preflight checks, print the exact command and the "
            "resolved veRL config (YAML); start nothing.",
        ),
        brief: bool = typer.Option(
            False,
            "--brief",
            help="With --dry-run: instead of the whole veRL config, the keys vlmrl sets as Hydra overrides "
            "with the values veRL resolved, shell-quoted, ready to paste after `python -m verl.trainer.main_ppo`.",
        ),
        address: str = typer.Option(
            None,
            "--address",
            help="Ray dashboard address (http://head:8265) to submit to; default trainer.ray_address, "
            "then $RAY_ADDRESS; none = run on this node. A job still running 120 s after one of the "
            "cluster's nodes died is stopped ($VLMRL_NODE_LOSS_GRACE_S sets the wait; 0 = never).",
        ),
        runtime_env: Path = typer.Option(
            None, "--runtime-env", help="Ray runtime env YAML merged over vlmrl's (cluster mode)."
        ),
        no_preflight: bool = typer.Option(
            False,
            "--no-preflight",
            help="Skip the preflight checks (data, model, GPUs, verifier, token and memory budget). "
            "Without it a failed check stops the launch, and a dry run exits 1.",
        ),
        gpu_memory_gib: float = typer.Option(
            None,
            "--gpu-memory-gib",
            min=1.0,
            help="GPU memory (GiB per GPU) to check the memory budget against; default: the GPU found here.",
        ),
        smoke: bool = typer.Option(
            False,
            "--smoke",
            help="Try the config small here first, through veRL's real trainer (on the CPU when there is "
            "no GPU): the tiny model of the config's family (Qwen2.5-VL or Qwen3-VL, from model.path's "
            "config.json when local, else its name), the first rows of your train/val files, rollout n 2, "
            "2 steps + checkpoint, 1 resumed step, export. Prints a table of stages; writes "
            "OUT/smoke_summary.json. A timeout or Ctrl-C stops every process veRL started.",
        ),
        out: Path = typer.Option(
            Path("outputs/smoke"), "--out", help="With --smoke: where its data, run, logs and summary go."
        ),
        smoke_model: str = typer.Option(
            None,
            "--smoke-model",
            help="With --smoke: a model directory to use instead of the built-in tiny model of the "
            "config's family.",
        ),
    ) -> None:
        """Launch GRPO/DAPO training: veRL on this node or a Ray cluster, or TRL on one machine.

        With backend=verl the experiment config becomes veRL 0.9.1 Hydra overrides, which are composed
        with veRL's own config and checked by its validate_config before anything starts; keys veRL
        would silently ignore are refused. Preflight checks data files, model, GPUs, the verifier, and
        the budget: prompt tokens per row (vision tokens included) and GPU memory per GPU.
        """
        from vlmrl.train.config import load_config

        if smoke:
            _run_smoke(config, overrides or [], out, smoke_model)
            return
        cfg = load_config(config, overrides or [])
        if cfg.backend == "trl":
            _run_trl(cfg, dry_run, not no_preflight, gpu_memory_gib)
        else:
            _run_verl(cfg, dry_run, brief, address, runtime_env, not no_preflight, gpu_memory_gib)
