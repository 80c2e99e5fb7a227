"""`vlmrl train`: launch a training run on veRL or TRL."""

import typer

from vlmrl.cli._common import register_not_built


def register(app: typer.Typer) -> None:
    register_not_built(
        app,
        "train",
        "Launch GRPO/DAPO training (veRL on Ray, or TRL on one machine).",
        "the veRL and TRL launchers",
    )
