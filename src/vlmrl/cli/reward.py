"""`vlmrl reward`: score responses with the math reward."""

import typer

from vlmrl.cli._common import register_not_built


def register(app: typer.Typer) -> None:
    register_not_built(
        app, "reward", "Score model responses with the math reward.", "the reward cascade (score)"
    )
