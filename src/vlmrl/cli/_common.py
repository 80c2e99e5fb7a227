"""Shared bits of the CLI: consoles and the placeholder for stages not built yet."""

from __future__ import annotations

import typer
from rich.console import Console

from vlmrl.errors import NotBuiltError

console = Console()
err_console = Console(stderr=True)

_PASSTHROUGH = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": ["-h", "--help"],
}


def register_not_built(app: typer.Typer, name: str, help_text: str, missing: str) -> None:
    """Add a stage command that refuses to run, naming what is missing (never pretends to succeed)."""

    @app.command(name, help=f"{help_text} [not built yet: {missing}]", context_settings=_PASSTHROUGH)
    def _stage(ctx: typer.Context) -> None:
        raise NotBuiltError(f"`vlmrl {name}` is not built yet: {missing}")
