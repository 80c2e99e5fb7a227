"""`vlmrl data`: build veRL-ready parquet files from a recipe, inspect them, list the sources."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vlmrl.cli._common import (
    Command,
    console,
    data_option,
    deprecated_alias,
    err_console,
    named_paths,
    new_group,
    prefer,
)


class _RichProgress:
    """Adapter from the build's progress hooks to a rich progress bar."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None

    def start(self, output: str, phase: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(f"{output}: {phase}", total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)


def register(app: typer.Typer) -> None:
    group = new_group(
        "Build and inspect training/evaluation parquet files (veRL's row schema).\n\n"
        "Start with a preset: `vlmrl data build configs/data/text.yaml`."
    )

    @group.command("build", cls=Command)
    def build(
        recipe: Path = typer.Argument(
            ..., help="Recipe YAML: sources and outputs, e.g. configs/data/multimodal.yaml."
        ),
        overrides: list[str] = typer.Argument(
            None,
            help="Dotted key=value overrides, e.g. sources.mmk12.path=/data/mmk12 outputs.train.shuffle=false.",
        ),
        data: list[str] = data_option("the recipe's source"),
        source_path: list[str] = deprecated_alias("--data", "--source-path", "-s"),
        workers: int = typer.Option(
            None, "--workers", help="Image worker processes (default: recipe; 0 = all cores)."
        ),
        only: list[str] = typer.Option(None, "--only", help="Build only this output (repeatable)."),
        strict: bool = typer.Option(
            False,
            "--strict",
            help="Stop at the first row with a problem (missing field, empty answer, bad image) "
            "instead of rejecting it and going on.",
        ),
    ) -> None:
        """Read every source, check each row, process images on all cores, write the outputs atomically.

        Every rejected row goes to the rejects jsonl with its source, index, reason and detail (a broken
        record, a duplicate, the evaluation problem it matched, ...) and the build goes on; the summary
        shows rows in = kept + rejected (+ sampled out by limits or mixing ratios).
        """
        from vlmrl.data.build import build_recipe
        from vlmrl.data.recipe import load_recipe

        extra = list(overrides or [])
        if workers is not None:
            extra.append(f"workers={workers}")
        if strict:
            extra.append("strict=true")
        data = prefer(data, source_path, "--source-path", "--data")
        spec = load_recipe(recipe, extra, named_paths(data, "--data"))
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=err_console, transient=True) as bar:
            report = build_recipe(spec, progress=_RichProgress(bar), only=only or None)
        table = Table(title=f"vlmrl data build {recipe}")
        for col in (
            "output",
            "file",
            "rows in",
            "kept",
            "rejected",
            "sampled out",
            "images",
            "in = kept + ...",
        ):
            table.add_column(col, overflow="fold")
        for out in report.outputs:
            table.add_row(
                out.name,
                out.path,
                f"{out.read:,}",
                f"{out.kept:,}",
                f"{out.rejected_total:,}",
                f"{out.sampled_out:,}",
                f"{out.images:,} ({out.images_changed:,} resized/converted)",
                "ok" if out.balanced() else "MISMATCH",
            )
        console.print(table)
        reasons = Table(title=f"rejected rows (details in {report.rejects_path})")
        for col in ("output", "reason", "rows"):
            reasons.add_column(col)
        for out in report.outputs:
            for reason, n in sorted(out.rejected.items()):
                reasons.add_row(out.name, reason, f"{n:,}")
        if reasons.row_count:
            console.print(reasons)
        contamination = Table(
            title="decontamination: training rows dropped per (training source, evaluation set)"
        )
        for col in ("output", "training source", "evaluation set", "rows"):
            contamination.add_column(col)
        for out in report.outputs:
            for (train_source, eval_set), n in sorted(out.contamination.items()):
                contamination.add_row(out.name, train_source, eval_set, f"{n:,}")
        if contamination.row_count:
            console.print(contamination)

    @group.command("inspect", cls=Command)
    def inspect(
        file: Path = typer.Argument(..., help="A parquet file written by `vlmrl data build`."),
        tokenizer: str = typer.Option(
            None,
            "--tokenizer",
            help="Model directory or hub id: adds prompt-token percentiles (text + vision).",
        ),
        rows: int = typer.Option(3, "--rows", help="How many rows to print as the model reads them."),
    ) -> None:
        """Counts, answer types, image sizes, vision tokens per image (blank ones apart), prompt tokens."""
        from vlmrl.data.inspect import Inspection, inspect_parquet

        info = inspect_parquet(file, tokenizer=tokenizer, samples=rows)
        table = Table(title=f"{file}: {info.rows:,} rows")
        table.add_column("what")
        table.add_column("value", overflow="fold")
        table.add_row(
            "rows by data_source", ", ".join(f"{k}: {v:,}" for k, v in info.by_source.most_common())
        )
        table.add_row("answer types", ", ".join(f"{k}: {v:,}" for k, v in info.answer_types.most_common()))
        table.add_row("rows with several acceptable answers", f"{info.multi_answer_rows:,}")
        table.add_row(
            "images per row",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(info.images_per_row.items()))
            + ("" if info.has_images_column else " (no images column: text-only file)"),
        )

        def fmt(stats: dict[str, float]) -> str:
            return ", ".join(f"{k} {v:,.0f}" for k, v in stats.items()) or "-"

        table.add_row("image width (px)", fmt(Inspection.percentiles(info.image_widths)))
        table.add_row("image height (px)", fmt(Inspection.percentiles(info.image_heights)))
        table.add_row("vision tokens per image", fmt(Inspection.percentiles(info.vision_tokens)))
        if info.vision is not None:
            v = info.vision
            table.add_row(
                "vision tokens counted as",
                f"{v.patch}-px patches merged {v.merge}x{v.merge} (one token per {v.patch * v.merge}x"
                f"{v.patch * v.merge} px), pixels {v.min_pixels:,}..{v.max_pixels:,} ({info.vision_source})",
            )
        table.add_row(
            "blank images (text rows, `blank` policy)",
            f"{info.blank_images:,}; vision tokens each: {fmt(Inspection.percentiles(info.blank_vision_tokens))}",
        )
        if info.undecodable_images:
            table.add_row("undecodable images", f"{info.undecodable_images:,}")
        table.add_row(
            "prompt tokens (text + vision)",
            fmt(Inspection.percentiles(info.prompt_tokens))
            if tokenizer
            else "pass --tokenizer MODEL to count",
        )
        console.print(table)
        for i, sample in enumerate(info.samples):
            content = "\n".join(f"[{m['role']}] {m['content']}" for m in sample["prompt"])
            console.print(
                f"[bold]row {i}[/] {sample['data_source']} · images {sample['images']} · "
                f"ground truth {sample['ground_truth']} ({sample['answer_type']})",
                highlight=False,
            )
            console.print(content, markup=False, highlight=False)

    @group.command("sources", cls=Command)
    def sources() -> None:
        """List the registered dataset sources (names to use in a recipe's `source:`)."""
        from vlmrl.data.sources import get_source, source_names

        table = Table(title="data sources")
        for col in ("name", "hub id", "default split", "images", "what"):
            table.add_column(col, overflow="fold")
        for name in source_names():
            info = get_source(name)
            table.add_row(
                name,
                info.hub_id or "-",
                info.default_split,
                "yes" if info.multimodal else "no",
                info.description,
            )
        console.print(table)

    app.add_typer(group, name="data")
