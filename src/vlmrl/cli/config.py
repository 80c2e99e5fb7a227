"""`vlmrl config`: show a resolved experiment config, or document every key."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.syntax import Syntax
from rich.table import Table

from vlmrl.cli._common import Command, console, new_group


def register(app: typer.Typer) -> None:
    group = new_group("Experiment configs: print a resolved config or the reference of every key.")

    @group.command("show", cls=Command)
    def show(
        file: Path = typer.Argument(..., help="Experiment config YAML, e.g. configs/train/demo.yaml."),
        overrides: list[str] = typer.Argument(
            None,
            help="Dotted key=value overrides applied after the file, e.g. rollout.n=8 algorithm.lr=2e-6.",
        ),
        plain: bool = typer.Option(
            False, "--plain", help="Print bare YAML (no colours), for piping to a file."
        ),
    ) -> None:
        """Print the config after defaults and overrides are applied, or fail naming the bad key."""
        from vlmrl.train.config import dump_config, load_config

        cfg = load_config(file, overrides or [])
        text = dump_config(cfg)
        if plain:
            typer.echo(text, nl=False)
        else:
            console.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))

    @group.command("doc", cls=Command)
    def doc(
        prefix: str = typer.Argument("", help="Only keys starting with this, e.g. 'algorithm.' or 'reward'."),
    ) -> None:
        """List every config key with its type, default and meaning."""
        from vlmrl.train.config import config_doc

        table = Table(show_lines=False, title="Experiment config keys")
        for col in ("key", "type", "default", "meaning"):
            table.add_column(col, overflow="fold")
        for key, type_name, default, description in config_doc():
            if key.startswith(prefix):
                table.add_row(key, type_name, default, description)
        console.print(table)

    app.add_typer(group, name="config")
