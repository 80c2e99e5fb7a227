"""`vlmrl data`: build and inspect veRL-ready parquet files."""

import typer

from vlmrl.cli._common import register_not_built


def register(app: typer.Typer) -> None:
    register_not_built(
        app, "data", "Build and inspect training/evaluation parquet files.", "data recipes (build, inspect)"
    )
