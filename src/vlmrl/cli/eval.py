"""`vlmrl eval`: text benchmarks and lmms-eval multimodal benchmarks."""

import typer

from vlmrl.cli._common import register_not_built


def register(app: typer.Typer) -> None:
    register_not_built(
        app,
        "eval",
        "Evaluate a model on text (AIME, MATH-500, GPQA) and multimodal benchmarks.",
        "eval text/mm",
    )
