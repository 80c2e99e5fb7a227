"""Shared bits of the CLI: the consoles, the command classes, the options several commands take (one
spelling per concept), and the one `NAME=PATH` argument parser.

One spelling per concept, as vLLM and TRL spell them: `--model` is the model to load or evaluate,
`--served-model-name` the name a server serves a model under (`--verifier-...` for the verifier's,
in commands about something else), `--data NAME=PATH` a local copy of a named dataset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions
from typer.core import TyperCommand, TyperGroup

from vlmrl.errors import UserError

#: Width of a console whose output is not a terminal (a pipe, a file): wide enough for whole tables.
PIPE_WIDTH = 4096


class _Console(Console):
    """A rich console that, writing to a pipe or a file, prints tables whole.

    Rich otherwise takes the width of whichever standard stream is a terminal, or 80, and cuts
    table cells to fit ("pass…"). $COLUMNS, when set, still decides.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kwargs.get("width") is None:
            self._width = None  # rich fixes $COLUMNS at creation; `size` reads it when printing instead

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS"):
            return ConsoleDimensions(PIPE_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console()
err_console = _Console(stderr=True)


def _flags_take_no_value(params: list[Any]) -> list[Any]:
    # Typer's rich help prints a flag's type (`--dry-run <bool>`) as if it took a value; an empty
    # metavar keeps that column blank for flags only.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """Every `vlmrl` command's class (`@app.command(cls=Command)`): flags shown without a value."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


class Group(TyperGroup):
    """Every `vlmrl` command group's class (`typer.Typer(cls=Group)`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


def new_group(help: str, **kwargs: Any) -> typer.Typer:
    """A command group (`vlmrl data`, `vlmrl eval`, ...) built like every other."""
    return typer.Typer(help=help, cls=Group, no_args_is_help=True, rich_markup_mode="rich", **kwargs)


# ---------------------------------------------------------------------------
# Options shared by several commands


#: vLLM engine settings, spelled as vLLM spells them (`vlmrl eval text/mm`, `vlmrl verifier serve`);
#: each command gives its own default.
TensorParallelSize = Annotated[
    int, typer.Option("--tensor-parallel-size", help="vLLM: GPUs to shard the model over (tensor parallel).")
]
GpuMemoryUtilization = Annotated[
    float, typer.Option("--gpu-memory-utilization", help="vLLM: share of each GPU's memory it may take.")
]
MaxModelLen = Annotated[
    int | None, typer.Option("--max-model-len", help="vLLM: context length (prompt + response) cap.")
]
#: The label of an evaluated model in results.json and report tables.
ModelLabel = Annotated[
    str | None, typer.Option("--model-name", help="Row label in results.json and report tables.")
]


def data_option(what: str, layout: str = "") -> Any:
    """`--data NAME=PATH` (repeatable): a local copy of a named dataset (a recipe source, a benchmark)."""
    return typer.Option(
        None,
        "--data",
        metavar="NAME=PATH",
        help=f"Read {what} NAME from a local file or directory{layout} instead of the hub (repeatable).",
    )


def served_model_name_option(help: str) -> Any:
    """`--served-model-name NAME`: the name a server serves a model under (vLLM's spelling)."""
    return typer.Option(None, "--served-model-name", help=help)


def verifier_url_option() -> Any:
    return typer.Option(
        None,
        "--verifier-url",
        help="OpenAI-compatible base URL of the verifier model, asked when the rules cannot decide "
        "(default $REWARD_MODEL_URL; none = rules only).",
    )


def verifier_name_option() -> Any:
    return typer.Option(
        None,
        "--verifier-served-model-name",
        help="Name the verifier is served under (default $REWARD_MODEL_NAME, else the one model its server lists).",
    )


def dry_run_option(help: str) -> Any:
    return typer.Option(False, "--dry-run", help=help)


def deprecated_alias(new: str, *old: str) -> Any:
    """A hidden option under old spellings of `new`; pass its value to `prefer`."""
    return typer.Option(None, *old, hidden=True, help=f"Deprecated spelling of {new}.")


def prefer(new_value: Any, old_value: Any, old: str, new: str) -> Any:
    """The value of `new`, or of its deprecated spelling `old` (with a warning on stderr)."""
    if old_value in (None, [], ()):
        return new_value
    err_console.print(f"[yellow]warning:[/] {old} is deprecated; use {new}", highlight=False)
    if isinstance(old_value, list):
        return [*(new_value or []), *old_value]
    if new_value not in (None, [], ()):
        raise UserError(f"{old} and {new} are the same option (the first is its old spelling); give one")
    return old_value


# ---------------------------------------------------------------------------
# NAME=PATH arguments


def parse_named(item: str) -> tuple[str | None, str]:
    """`NAME=PATH` -> (NAME, PATH); a plain path, or an existing file whose name holds `=`, -> (None, item)."""
    name, sep, path = item.partition("=")
    if sep and name.strip() and path.strip() and not Path(item).exists():
        return name.strip(), path.strip()
    return None, item


def named_paths(items: list[str] | None, option: str) -> dict[str, str]:
    """Repeated `option NAME=PATH` arguments -> {NAME: PATH}; an item without a name is an error."""
    out = {}
    for item in items or []:
        name, path = parse_named(item)
        if name is None:
            raise UserError(f"{option} {item!r}: expected NAME=PATH, e.g. {option} mmk12=/data/mmk12")
        out[name] = path
    return out


@contextmanager
def stage_bars(console: Console) -> Iterator[tuple[Any, Callable[[str, int, int], None]]]:
    """Rich progress bars, one per stage name: yields (the Progress, `on_progress(stage, done, total)`),
    the callback the library's long runs take."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bars: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total)
            progress.update(bars[stage], completed=done, total=total)

        yield progress, on_progress
