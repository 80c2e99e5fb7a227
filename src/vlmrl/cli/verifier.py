"""`vlmrl verifier`: serve and check the verifier model."""

import typer

from vlmrl.cli._common import register_not_built


def register(app: typer.Typer) -> None:
    register_not_built(
        app,
        "verifier",
        "Serve or health-check the verifier model (e.g. xVerify on vLLM).",
        "verifier serve/check",
    )
