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
GRADER_HEADER = "text grader"


def row_grader(row: ModelRow) -> str:
    """Which `eval text --grader` produced a row's text numbers ("a, b" when they differ by column)."""
    found = list(dict.fromkeys(row.graders[c] for c in row.graders if row.scores.get(c) is not None))
    return ", ".join(found) or MISSING


def grader_footnote(rows: Sequence[ModelRow]) -> str:
    """What each grader named in the table is (empty when no row records one)."""
    from vlmrl.eval.grading import GRADERS

    used = list(dict.fromkeys(g for row in rows for g in row.graders.values()))
    if not used:
        return ""
    return f"{GRADER_HEADER}: " + "; ".join(f"{g} = {GRADERS.get(g, 'unknown grader')}" for g in used) + "."


@dataclass
class ModelRow:
    model: str
    scores: dict[str, float | None] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    graders: dict[str, str] = field(default_factory=dict)  # text column -> `eval text --grader`
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
    model, scores, notes, _ = read_scored(path)
    return model, scores, notes


def read_scored(path: Path) -> tuple[str, dict[str, float | None], list[str], dict[str, str]]:
    """`read_scores` plus the grader of each text column (`graders` of `vlmrl eval text`; a file
    written before graders were recorded was graded by the training reward)."""
    doc = load_json(path)
    if is_lmms_results(doc):
        from vlmrl.eval.mm import lmms_scores

        parsed = lmms_scores(doc, path)
        return parsed["model"] or path.parent.name, parsed["scores"], parsed["notes"], {}
    doc = check_result(doc, path)
    graders = doc.get("graders")
    if not isinstance(graders, dict):
        text = (doc.get("settings") or {}).get("text") if isinstance(doc.get("settings"), dict) else None
        graders = dict.fromkeys(_text_columns(doc["scores"]), "reward") if text else {}
    return doc["model"], dict(doc["scores"]), [], {str(k): str(v) for k, v in graders.items()}


def _text_columns(scores: dict[str, float | None]) -> list[str]:
    from vlmrl.eval.benchmarks import TEXT, benchmarks

    text = {c.key for b in benchmarks(TEXT) for c in b.columns}
    return [c for c in scores if c in text]


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
        model, scores, file_notes, graders = read_scored(path)
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
                if column in graders:
                    row.graders[column] = graders[column]
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
    graded = any(row.graders for row in rows)
    aligns = ["---"] + ["---:"] * len(columns)
    if graded:
        headers.append(GRADER_HEADER)
        aligns.append("---")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(aligns) + "|"]
    for row in rows:
        cells = [run_label(row.model).replace("|", "\\|")]
        for column in columns:
            value = row.scores.get(column)
            mark = JUDGE_MARK if row.judge_failed(column) else ""
            cells.append((MISSING if value is None else f"{value:.{digits}f}") + mark)
        if graded:
            cells.append(row_grader(row))
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
    graders = grader_footnote(rows)
    text = (
        table + f"\n{MISSING} = not evaluated. {table_footnote()}" + (f" {graders}" if graders else "") + "\n"
    )
    return text + judge_notes(rows), notes


def judge_notes(rows: Sequence[ModelRow]) -> str:
    """The judge-failure mark's meaning (when a cell has it) and the judge calls per benchmark."""
    text = ""
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
    return text


def published_rows() -> list[ModelRow]:
    """The seed's published rows (`vlmrl.report.published`), labelled `NAME (published)`."""
    from vlmrl.report.published import PUBLISHED, SEED_ROWS

    return [ModelRow(f"{name} ({PUBLISHED})", dict(scores)) for name, scores in SEED_ROWS.items()]


def seed_tables(rows: Sequence[ModelRow], *, published: bool = True, digits: int = 1) -> str:
    """The seed's two tables (text; multimodal) in markdown: the published rows first (when
    `published`), then `rows`; the text table says which grader produced each row's numbers."""
    from vlmrl.report.published import MM_TABLE, MME_FOOTNOTE, PUBLISHED, PUBLISHED_FOOTNOTE, TEXT_TABLE

    shown = [*(published_rows() if published else []), *rows]
    known = declared_columns()
    out = []
    for title, columns, graded in (("Text", TEXT_TABLE, True), ("Multimodal", MM_TABLE, False)):
        headers = ["model", *(known[c].header for c in columns)] + ([GRADER_HEADER] if graded else [])
        lines = [f"### {title}\n", "| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * len(columns) + (["---"] if graded else [])) + "|")
        for row in shown:
            cells = [run_label(row.model).replace("|", "\\|")]
            for column in columns:
                value = row.scores.get(column)
                mark = JUDGE_MARK if row.judge_failed(column) else ""
                cells.append((MISSING if value is None else f"{value:.{digits}f}") + mark)
            if graded:
                cells.append("R1-Evaluation" if row.model.endswith(f"({PUBLISHED})") else row_grader(row))
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines) + "\n")
    notes = [f"{MISSING} = not evaluated.", table_footnote()]
    if published:
        notes.append(PUBLISHED_FOOTNOTE)
    notes.append(MME_FOOTNOTE)
    graders = grader_footnote(list(rows))
    if graders:
        notes.append(graders)
    return "\n".join(out) + "\n" + " ".join(notes) + "\n" + judge_notes(list(rows))


def build_seed_tables(
    results: Sequence[str | os.PathLike[str]],
    names: Sequence[str] | None = None,
    *,
    published: bool = True,
    digits: int = 1,
) -> tuple[str, list[str]]:
    """`seed_tables` of result files (one row per model, files of the same model merged)."""
    rows, notes = load_rows(results, names)
    return seed_tables(rows, published=published, digits=digits), notes
