"""`vlmrl export`: turn a veRL checkpoint into a Hugging Face model directory."""

import typer

from vlmrl.cli._common import register_not_built


def register(app: typer.Typer) -> None:
    register_not_built(
        app, "export", "Convert a veRL checkpoint into a Hugging Face directory.", "the model-merger wrapper"
    )
