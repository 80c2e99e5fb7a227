"""The `vlmrl` command: thin typer front-end over the stages; no logic of its own.

Each stage's commands live in `vlmrl/cli/<stage>.py`; this module assembles them
and turns `UserError` into a one-line message with exit code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from vlmrl import __version__
from vlmrl.cli import config as config_cmd
from vlmrl.cli import data as data_cmd
from vlmrl.cli import demo as demo_cmd
from vlmrl.cli import eval as eval_cmd
from vlmrl.cli import export as export_cmd
from vlmrl.cli import report as report_cmd
from vlmrl.cli import reward as reward_cmd
from vlmrl.cli import train as train_cmd
from vlmrl.cli import verifier as verifier_cmd
from vlmrl.cli._common import Group, err_console
from vlmrl.errors import UserError

app = typer.Typer(
    name="vlmrl",
    cls=Group,
    help=(
        "Train vision-language models to reason about math with RL (GRPO + DAPO tricks).\n\n"
        "Stages, in the order data travels: data -> reward/verifier -> train -> eval -> report. "
        "Try the whole loop on CPU with `vlmrl demo`."
    ),
    no_args_is_help=True,
    add_completion=False,
    # -h as well as --help, on every command (click passes it down to each subcommand's context)
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vlmrl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """vlmrl command line."""


for module in (
    data_cmd,
    reward_cmd,
    verifier_cmd,
    train_cmd,
    export_cmd,
    eval_cmd,
    report_cmd,
    demo_cmd,
    config_cmd,
):
    module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except UserError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
