"""One markdown table comparing models on the seed's columns, from evaluation result files.

Accepts our result JSON (`vlmrl eval text/mm`) and lmms-eval's raw `*_results.json`; files for
the same model (text and multimodal runs) merge into one row; missing cells are shown as such.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vlmrl.errors import UserError
from vlmrl.eval.benchmarks import columns as declared_columns
from vlmrl.eval.benchmarks import registry, table_footnote
from vlmrl.eval.results import check_result, is_lmms_results, load_json

MISSING = "—"


@dataclass
class ModelRow:
    model: str
    scores: dict[str, float | None] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    # benchmark -> what its judge did ({"judged", "failed", "not_needed", ...}), from `vlmrl eval mm`
    judge: dict[str, dict] = field(default_factory=dict)

    def judge_failed(self, column: str) -> bool:
        """Whether the judge failed on some samples behind `column` (lmms-eval scored them 0)."""
        bench = _column_benchmark().get(column)
        return bool(bench and (self.judge.get(bench) or {}).get("failed"))


def _column_benchmark() -> dict[str, str]:
    """Result column -> the benchmark whose number it is."""
    return {c.key: b.name for b in registry().values() for c in b.columns}


JUDGE_MARK = "*"


_CHECKPOINT_DIR = re.compile(r"^(final|huggingface|actor|hf|(checkpoint|global_step)[-_]?\d+)$")


def run_label(model: str) -> str:
    """A row label for a model: a local checkpoint path becomes its run's name (`demo/final` for
    `/runs/demo/final`), so tables do not show this machine's directories; hub ids stay as they are."""
    if "/" not in model or not model.startswith(("/", ".", "~")):
        return model
    parts = [p for p in Path(model).parts if p not in ("/", ".", "~")]
    if len(parts) >= 2 and _CHECKPOINT_DIR.match(parts[-1]):
        return "/".join(parts[-2:])
    return parts[-1] if parts else model


def read_scores(path: Path) -> tuple[str, dict[str, float | None], list[str]]:
    """(model, scores by column, notes) of our result file or of lmms-eval's raw `*_results.json`."""
    doc = load_json(path)
    if is_lmms_results(doc):
        from vlmrl.eval.mm import lmms_scores

        parsed = lmms_scores(doc, path)
        return parsed["model"] or path.parent.name, parsed["scores"], parsed["notes"]
    doc = check_result(doc, path)
    return doc["model"], dict(doc["scores"]), []


def load_rows(
    results: Sequence[str | os.PathLike[str]], names: Sequence[str] | None = None
) -> tuple[list[ModelRow], list[str]]:
    """Rows in first-seen order, one per model; `names` relabels each file's model."""
    if not results:
        raise UserError("no result files given; pass the results.json written by `vlmrl eval text/mm`")
    if names is not None and len(names) != len(results):
        raise UserError(f"{len(names)} names for {len(results)} result files; give one per file or none")
    rows: dict[str, ModelRow] = {}
    notes: list[str] = []
    for i, item in enumerate(results):
        path = Path(item)
        model, scores, file_notes = read_scores(path)
        notes += file_notes
        if names is not None and names[i]:
            model = names[i]
        row = rows.setdefault(model, ModelRow(model))
        for column, value in scores.items():
            if row.scores.get(column) is not None and value is not None and row.scores[column] != value:
                notes.append(
                    f"{model}: {column} given twice ({row.scores[column]} and {value}); using {path}"
                )
            if value is not None or column not in row.scores:
                row.scores[column] = value
        row.sources.append(str(path))
        row.judge.update(read_judge(path))
    return list(rows.values()), notes


def read_judge(path: Path) -> dict[str, dict]:
    """The per-benchmark judge counts of our result file (`judge`; none in lmms-eval's raw files)."""
    doc = load_json(path)
    judge = doc.get("judge") if isinstance(doc, dict) and not is_lmms_results(doc) else None
    return {k: v for k, v in judge.items() if isinstance(v, dict)} if isinstance(judge, dict) else {}


def judge_lines(rows: Sequence[ModelRow]) -> list[str]:
    """Per model, what the judge did on each benchmark (judged / failed / not needed)."""
    known = registry()
    lines = []
    for row in rows:
        parts = []
        for bench, counts in row.judge.items():
            title = known[bench].label if bench in known else bench
            if counts.get("samples") is None:
                parts.append(f"{title} not counted")
                continue
            parts.append(
                f"{title} {counts.get('judged', 0)}/{counts.get('failed', 0)}/{counts.get('not_needed', 0)}"
            )
        if parts:
            judges = sorted(
                {
                    f"{c['judge_model']} at {c.get('judge_url', c.get('api_type'))}"
                    for c in row.judge.values()
                    if c.get("judge_model")
                }
            )
            who = f" (judge: {', '.join(judges)})" if judges else ""
            lines.append(f"{run_label(row.model)}: {', '.join(parts)}{who}")
    return lines


def render_table(rows: Sequence[ModelRow], columns: Sequence[str] | None = None, digits: int = 1) -> str:
    """Markdown: the seed's columns in order, then any other columns present; `—` for missing."""
    known = declared_columns()
    if columns is None:
        extra = sorted({c for r in rows for c in r.scores if c not in known})
        columns = [*known, *extra]
    headers = ["model", *(known[c].header if c in known else c for c in columns)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|"]
    for row in rows:
        cells = [run_label(row.model).replace("|", "\\|")]
        for column in columns:
            value = row.scores.get(column)
            mark = JUDGE_MARK if row.judge_failed(column) else ""
            cells.append((MISSING if value is None else f"{value:.{digits}f}") + mark)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def build_table(
    results: Sequence[str | os.PathLike[str]],
    names: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    digits: int = 1,
) -> tuple[str, list[str]]:
    """Read result files and return (markdown table, notes about merges and missing values)."""
    rows, notes = load_rows(results, names)
    table = render_table(rows, columns, digits)
    text = table + f"\n{MISSING} = not evaluated. {table_footnote()}\n"
    if any(row.judge_failed(c) for row in rows for c in row.scores):
        text += (
            f"{JUDGE_MARK} the judge failed (no answer, or a reply it could not read) on some samples of "
            "this cell, which lmms-eval scored 0: the number is a lower bound.\n"
        )
    judged = judge_lines(rows)
    if judged:
        text += "\nJudge calls per benchmark (judged/failed/not needed):\n" + "".join(
            f"- {x}\n" for x in judged
        )
    return text, notes
