"""Shared bits of the CLI: the stdout and stderr consoles, and the one `NAME=PATH` argument parser."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from vlmrl.errors import UserError

console = Console()
err_console = Console(stderr=True)


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
