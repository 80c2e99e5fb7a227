"""`vlmrl reward`: score model responses with the math reward (format gate, rules, verifier)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vlmrl.cli._common import (
    Command,
    console,
    deprecated_alias,
    err_console,
    new_group,
    prefer,
    verifier_name_option,
    verifier_url_option,
)
from vlmrl.data.normalize import read_ground_truth
from vlmrl.errors import UserError
from vlmrl.utils.io import iter_jsonl

_HELP = """Score model responses with the math reward.

The reward cascade: a format gate (one non-empty <think> block, then one <answer> block),
the final answer (a \\boxed{}, or what the answer states last), a rule check against every
acceptable ground truth (option letters, plain numbers, then math-verify's extraction and
comparison in killable worker processes, with a guard against hedged answers), and -- only when
the rules cannot decide -- a verifier model behind an OpenAI-compatible API (`vlmrl verifier`).
"""

_ANSWER_FIELDS = ("response", "solution_str")


def _load_items(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"{path}: no such file; pass a .jsonl file with one response per line")
    items: list[dict[str, Any]] = []
    for lineno, row in iter_jsonl(path):
        response_key = next((k for k in _ANSWER_FIELDS if k in row), None)
        missing = [
            name
            for name, ok in (
                ("data_source", "data_source" in row),
                ("response (or solution_str)", response_key is not None),
                ("ground_truth", "ground_truth" in row),
            )
            if not ok
        ]
        if missing:
            raise UserError(
                f"{path}:{lineno}: missing field {', '.join(missing)}; every line needs data_source, "
                "response (or solution_str) and ground_truth (optional: question, extra_info)"
            )
        extra_info = row.get("extra_info") or {}
        if not isinstance(extra_info, dict):
            raise UserError(f"{path}:{lineno}: extra_info must be a JSON object")
        if row.get("question") and "question" not in extra_info:
            extra_info = {**extra_info, "question": row["question"]}
        items.append(
            {
                "row": row,
                "data_source": row["data_source"],
                "solution_str": row[response_key],  # type: ignore[index]
                # A string, a Python-literal list string or a JSON list, read as the data stage does.
                "ground_truth": read_ground_truth(row["ground_truth"]),
                "extra_info": extra_info,
            }
        )
    return items


def _summary(results: list[dict[str, Any]], n_rows: int) -> Table:
    n = max(1, len(results))
    verdicts = Counter(r["verdict"] for r in results)
    table = Table(title=f"reward summary ({n_rows} responses)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("acc", f"{sum(r['acc'] for r in results) / n:.4f}")
    table.add_row("mean score", f"{sum(r['score'] for r in results) / n:.4f}")
    table.add_row("format rate", f"{sum(r['format_ok'] for r in results) / n:.4f}")
    for verdict in ("rule", "verifier", "format", "none"):
        table.add_row(f"verdict: {verdict}", str(verdicts.get(verdict, 0)))
    table.add_row("verifier errors", str(sum(r["verifier_error"] for r in results)))
    return table


def register(app: typer.Typer) -> None:
    group = new_group(_HELP)

    @group.command("score", cls=Command)
    def score(
        responses: Path = typer.Argument(
            ...,
            help="JSONL: data_source, response (or solution_str), ground_truth, optional question/extra_info.",
        ),
        output: Path = typer.Option(
            ..., "-o", "--output", help="Where to write the scored JSONL (atomically)."
        ),
        correct_score: float = typer.Option(1.0, help="Score of a well-formatted correct answer."),
        incorrect_score: float = typer.Option(-1.0, help="Score of a well-formatted wrong answer."),
        format_score: float = typer.Option(-1.0, help="Score of a response that fails the format gate."),
        rule_timeout_s: float = typer.Option(5.0, help="Hard bound on one math-verify check (seconds)."),
        verifier_url: str | None = verifier_url_option(),
        verifier_name: str | None = verifier_name_option(),
        verifier_model: str | None = deprecated_alias("--verifier-served-model-name", "--verifier-model"),
        verifier_timeout_s: float = typer.Option(30.0, help="Seconds to wait for one verifier answer."),
        verifier_max_retries: int = typer.Option(2, help="Retries after a failed verifier request."),
        verifier_concurrency: int = typer.Option(64, help="Verifier requests in flight at once."),
        chunk_size: int = typer.Option(256, min=1, help="Responses scored per batch (progress granularity)."),
    ) -> None:
        """Score every response in a JSONL file and print a summary table.

        Each output line is the input line plus score, acc, format_ok, pred, verdict, verifier_error.

        Example: vlmrl reward score responses.jsonl -o scored.jsonl --verifier-url http://host:8888/v1
        """
        from vlmrl.reward import RewardSettings, score_batch
        from vlmrl.utils.io import write_jsonl_atomic

        verifier_model = prefer(
            verifier_name, verifier_model, "--verifier-model", "--verifier-served-model-name"
        )
        kwargs: dict[str, Any] = {
            "correct_score": correct_score,
            "incorrect_score": incorrect_score,
            "format_score": format_score,
            "rule_timeout_s": rule_timeout_s,
            "verifier_timeout_s": verifier_timeout_s,
            "verifier_max_retries": verifier_max_retries,
            "verifier_concurrency": verifier_concurrency,
        }
        if verifier_url:
            kwargs["verifier_url"] = verifier_url
        if verifier_model:
            kwargs["verifier_model"] = verifier_model
        settings = RewardSettings.from_kwargs(**kwargs)
        items = _load_items(responses)
        if settings.verifier:
            console.print(f"verifier: {settings.verifier.model} at {settings.verifier.url}")
        else:
            console.print("verifier: none (rules only; set --verifier-url to add one)")
        results: list[dict[str, Any]] = []
        with Progress(
            TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("score", total=len(items))
            for start in range(0, len(items), chunk_size):
                chunk = items[start : start + chunk_size]
                results.extend(score_batch(chunk, settings))
                progress.advance(task, len(chunk))
        rows = ({**item["row"], **result} for item, result in zip(items, results, strict=True))
        write_jsonl_atomic(output, rows)
        console.print(_summary(results, len(items)))
        console.print(f"wrote {len(items)} scored responses to {output}")
        failed = sum(r["verifier_error"] for r in results)
        if failed and settings.verifier:
            err_console.print(
                f"[bold red]warning:[/] the verifier at {escape(settings.verifier.url)} failed on {failed} of "
                f"{len(items)} responses; their rule verdict stands (verifier_error=1). Is it up? "
                f"`vlmrl verifier check --url {escape(settings.verifier.url)}`; if it is slow, raise "
                f"--verifier-timeout-s (now {settings.verifier.timeout_s:g} s)",
                highlight=False,
                soft_wrap=True,
            )

    app.add_typer(group, name="reward", help="Score model responses with the math reward.")
