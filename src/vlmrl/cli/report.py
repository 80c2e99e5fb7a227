"""`vlmrl report`: training curves and result tables."""

import typer

from vlmrl.cli._common import register_not_built


def register(app: typer.Typer) -> None:
    register_not_built(
        app, "report", "Draw training curves and build comparison tables.", "report curves/table"
    )
