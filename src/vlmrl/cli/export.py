"""`vlmrl export`: turn a veRL checkpoint into a Hugging Face model directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vlmrl.cli._common import Command, console, err_console


def register(app: typer.Typer) -> None:
    @app.command("export", cls=Command)
    def export(
        ckpt_dir: Path = typer.Argument(
            ...,
            help="A veRL checkpoint: the run's checkpoint folder (newest step is used), a global_step_N "
            "folder, or its actor folder.",
        ),
        output: Path = typer.Option(..., "-o", "--output", help="New Hugging Face model directory to write."),
        trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Pass to transformers."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the merger command; write nothing."),
    ) -> None:
        """Merge veRL FSDP actor shards into a Hugging Face model (wraps `python -m verl.model_merger`)."""
        import shlex

        from vlmrl.train.verl.export import export as run_export
        from vlmrl.train.verl.export import find_actor_dir, merge_command

        actor = find_actor_dir(ckpt_dir)
        if dry_run:
            typer.echo(shlex.join(merge_command(actor, output, trust_remote_code)))
            return
        with err_console.status(f"merging {escape(str(actor))} with veRL's model merger..."):
            target = run_export(ckpt_dir, output, trust_remote_code)
        table = Table(title="exported")
        table.add_column("what")
        table.add_column("value", overflow="fold")
        table.add_row("checkpoint", escape(str(actor)))
        table.add_row("model", escape(str(target)))
        table.add_row("files", escape(", ".join(sorted(p.name for p in target.iterdir()))))
        console.print(table)
