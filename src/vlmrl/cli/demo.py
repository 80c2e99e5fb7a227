"""`vlmrl demo`: the whole loop on the built-in tiny model, on CPU."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vlmrl.cli._common import console
from vlmrl.errors import NotBuiltError


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        build_model_only: bool = typer.Option(
            False,
            "--build-model-only",
            help="Only build (or reuse) the tiny offline Qwen2.5-VL and describe it.",
        ),
        model_dir: Path = typer.Option(
            None, "--model-dir", help="Where the tiny model goes (default: $VLMRL_CACHE or ~/.cache/vlmrl)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed for the tiny model's weights and tokenizer."),
        force: bool = typer.Option(
            False, "--force", help="Rebuild the tiny model even if a cached copy exists."
        ),
    ) -> None:
        """Run data -> reward -> GRPO training -> curves -> evaluation on a tiny model, on CPU."""
        from vlmrl.testing.tiny_vlm import build_tiny_vlm, describe

        with console.status("building the tiny Qwen2.5-VL (tokenizer, model, processor)..."):
            path = build_tiny_vlm(model_dir, seed=seed, force=force)
        info = describe(path)
        table = Table(title="tiny offline Qwen2.5-VL")
        table.add_column("what")
        table.add_column("value", overflow="fold")
        for key, value in info.items():
            table.add_row(key, f"{value:,}" if isinstance(value, int) and key != "seed" else str(value))
        console.print(table)
        if not build_model_only:
            raise NotBuiltError(
                "the end-to-end demo (data, GRPO on TRL, curves, eval) is not built yet; "
                "`vlmrl demo --build-model-only` builds the tiny model"
            )
