"""`vlmrl report`: training curves (PNG) and the comparison table of evaluated models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vlmrl.cli._common import Command, console, err_console, new_group, parse_named


def _split_named(items: list[str]) -> tuple[list[str], list[str] | None]:
    """`NAME=PATH` items give the run/model a label; plain paths keep the default label."""
    parsed = [parse_named(item) for item in items]
    names = [name or "" for name, _ in parsed]
    return [path for _, path in parsed], (names if any(names) else None)


def register(app: typer.Typer) -> None:
    group = new_group("Reports: training curves as PNG and one markdown table comparing evaluated models.")

    @group.command("curves", cls=Command)
    def curves(
        logs: list[str] = typer.Argument(
            ...,
            help=(
                "Training logs, any mix of: our metrics.jsonl (or its run dir), a veRL console log "
                "(lines `step:N - key:value - ...`), a tensorboard log dir. Prefix NAME= to label a run, "
                "e.g. text=outputs/text/metrics.jsonl."
            ),
        ),
        out_dir: Path = typer.Option(
            Path("curves"), "--out-dir", "-o", help="Where the PNGs and curves.json go."
        ),
        smoothing: float = typer.Option(
            0.0, "--smoothing", "-s", help="EMA weight in [0, 1) (tensorboard-style); raw points stay faint."
        ),
        metric: list[str] = typer.Option(
            None,
            "--metric",
            "-m",
            help=(
                "Quantities to plot (repeatable): reward, response_length, acc, format_rate, "
                "judge_calls, judge_latency, or any raw key of the logs (e.g. actor/entropy). Default: "
                "the first four, and the verifier's two when a run asked it."
            ),
        ),
    ) -> None:
        """Plot reward and response length (and accuracy, format rate when logged) over steps, runs overlaid."""
        from vlmrl.report.curves import plot_curves
        from vlmrl.report.logs import read_log

        paths, names = _split_named(logs)
        runs = [read_log(p, names[i] if names else None) for i, p in enumerate(paths)]
        pngs = plot_curves(runs, out_dir, quantities=metric or None, smoothing=smoothing)
        for run in runs:
            for note in run.notes:
                err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        table = Table(title="Curves")
        for col in ("run", "log kind", "steps", "metrics"):
            table.add_column(col)
        for run in runs:
            steps = {s for series in run.raw.values() for s, _ in series}
            table.add_row(run.name, run.kind, str(len(steps)), str(len(run.raw)))
        console.print(table)
        for png in pngs:
            console.print(f"wrote {png}")
        console.print(f"plotted data: {Path(out_dir) / 'curves.json'}")

    @group.command("table", cls=Command)
    def table_cmd(
        results: list[str] = typer.Argument(
            ...,
            help=(
                "Result files from `vlmrl eval text/mm` (results.json) or lmms-eval *_results.json. Files "
                "of the same model merge into one row; prefix NAME= to set the row label."
            ),
        ),
        out: Path = typer.Option(None, "--out", "-o", help="Also write the markdown table to this file."),
        digits: int = typer.Option(1, "--digits", help="Decimals shown."),
        published: bool = typer.Option(
            False,
            "--published",
            help="The seed's two tables (text; multimodal) instead, its published rows (marked) above these "
            "models': the seed's before/after comparison.",
        ),
    ) -> None:
        """One markdown table, a row per model, a column per declared benchmark in table order; missing cells
        shown; a `text grader` column says how each row's text numbers were graded."""
        from vlmrl.report.table import build_seed_tables, build_table
        from vlmrl.utils.io import write_text_atomic

        paths, names = _split_named(results)
        if published:
            text, notes = build_seed_tables(paths, names, digits=digits)
        else:
            text, notes = build_table(paths, names, digits=digits)
        typer.echo(text, nl=False)
        for note in notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        if out is not None:
            write_text_atomic(out, text)
            err_console.print(f"wrote {out}")

    app.add_typer(group, name="report")
