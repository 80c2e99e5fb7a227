"""Training curves as PNG: reward, response length, accuracy and format rate over steps, runs overlaid,
with a line per row kind (text, image) and per data source where a run logged them.

Beside the PNGs, `curves.json` records exactly the points drawn (raw and smoothed), so the
figures can be checked, re-plotted or tabulated without reading pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.report.logs import CURVE_KEYS, CURVE_LABELS, MAIN_LINE, RunLog, read_log
from vlmrl.utils.io import atomic_path, write_json_atomic

DEFAULT_QUANTITIES = ("reward", "response_length", "acc", "format_rate")
# Drawn by default too when a run put any response to the verifier.
JUDGE_QUANTITIES = ("judge_calls", "judge_latency")
# Rates are logged as fractions and drawn in percent, the scale of the evaluation tables.
PERCENT_QUANTITIES = {"acc", "format_rate"}
# Where a log carries a quantity's per-step standard deviation, it is drawn as a band.
STD_KEYS = {"reward": ("reward_std", "critic/score/std", "train/reward_std")}


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Debiased exponential moving average (tensorboard's smoothing); weight 0 returns the input."""
    if not 0.0 <= weight < 1.0:
        raise UserError(f"smoothing must be in [0, 1), got {weight}")
    if weight == 0.0:
        return list(values)
    out: list[float] = []
    last = 0.0
    for i, v in enumerate(values, start=1):
        last = last * weight + (1.0 - weight) * v
        out.append(last / (1.0 - weight**i))
    return out


def _as_runs(logs: Sequence[str | os.PathLike[str] | RunLog], names: Sequence[str] | None) -> list[RunLog]:
    if not logs:
        raise UserError("no logs given; pass at least one metrics.jsonl, veRL console log or tensorboard dir")
    if names is not None and len(names) != len(logs):
        raise UserError(f"{len(names)} names for {len(logs)} logs; give one name per log or none")
    runs = []
    for i, log in enumerate(logs):
        name = names[i] if names is not None else None
        if isinstance(log, RunLog):
            if name:
                log.name = name
            runs.append(log)
        else:
            runs.append(read_log(log, name))
    return runs


def collect_curves(runs: Sequence[RunLog], quantities: Sequence[str], smoothing: float) -> dict[str, Any]:
    """The data behind each figure: {quantity: {"series": [{label, run, steps, values, smoothed}]}}.

    Values that are not finite are left out, and said in the run's `notes`."""
    figures: dict[str, Any] = {}
    for quantity in quantities:
        series_out = []
        scale = 100.0 if quantity in PERCENT_QUANTITIES else 1.0
        for run in runs:
            std_points: dict[int, float] = {}
            for key in STD_KEYS.get(quantity, ()):
                if run.raw.get(key):
                    std_points = {s: v * scale for s, v in run.raw[key] if math.isfinite(v)}
                    break
            curves = run.curve(quantity)
            split = bool(run.group_curves(quantity)) or quantity in MAIN_LINE
            for suffix, points in curves.items():
                kept = [(s, v * scale) for s, v in points if math.isfinite(v)]
                std = [std_points.get(s) for s, _ in kept] if not suffix and std_points else None
                # Beside its per-kind lines, the whole run's line says so.
                main = MAIN_LINE.get(quantity, "all")
                label = f"{run.name} · {suffix or main}" if suffix or split else run.name
                if len(points) > len(kept):
                    run.notes.append(
                        f"{label}: {len(points) - len(kept)} NaN/inf value(s) of {quantity} not drawn"
                    )
                series_out.append(
                    {
                        "label": label,
                        "run": run.name,
                        "line": suffix or "all",
                        "source": str(run.source),
                        "kind": run.kind,
                        "steps": [s for s, _ in kept],
                        "values": [v for _, v in kept],
                        "smoothed": smooth([v for _, v in kept], smoothing),
                        "std": std,
                        "dropped_non_finite": len(points) - len(kept),
                    }
                )
        if series_out:
            figures[quantity] = {"series": series_out}
    return figures


# Row kinds and data sources dashed and dotted, so the whole run's line (solid) stands out.
_LINE_STYLES = {"text": "--", "image": ":"}


def _style(line: str) -> str:
    if line in _LINE_STYLES:
        return _LINE_STYLES[line]
    return "-." if line.startswith("source ") else "-"


def _draw(
    quantity: str, series: list[dict[str, Any]], smoothing: float, path: Path, note: str | None = None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    try:
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, s in enumerate(series):
            color = colors[i % len(colors)]
            marker = "o" if len(s["steps"]) == 1 else None
            std = s.get("std")
            if std and any(v is not None for v in std):
                pairs = [
                    (x, m, d) for x, m, d in zip(s["steps"], s["values"], std, strict=True) if d is not None
                ]
                ax.fill_between(
                    [x for x, _, _ in pairs],
                    [m - d for _, m, d in pairs],
                    [m + d for _, m, d in pairs],
                    color=color,
                    alpha=0.12,
                    linewidth=0,
                    label=None,
                )
            style = _style(s.get("line", "all"))
            if smoothing > 0:
                ax.plot(
                    s["steps"],
                    s["values"],
                    color=color,
                    alpha=0.25,
                    linewidth=1,
                    linestyle=style,
                    marker=marker,
                )
                ax.plot(
                    s["steps"],
                    s["smoothed"],
                    color=color,
                    linewidth=1.8,
                    linestyle=style,
                    label=s["label"],
                    marker=marker,
                )
            else:
                ax.plot(
                    s["steps"],
                    s["values"],
                    color=color,
                    linewidth=1.5,
                    linestyle=style,
                    label=s["label"],
                    marker=marker,
                )
        ax.set_xlabel("step")
        unit = " (%)" if quantity in PERCENT_QUANTITIES else ""
        ax.set_ylabel(CURVE_LABELS.get(quantity, quantity) + unit)
        title = CURVE_LABELS.get(quantity, quantity) + unit
        extras = []
        if smoothing > 0:
            extras.append(f"smoothing {smoothing:g}, raw faint")
        if any(s.get("std") for s in series):
            extras.append("band: ±1 std within a step")
        ax.set_title(title + (f" ({'; '.join(extras)})" if extras else ""), fontsize=10)
        ax.grid(True, alpha=0.3)
        if len(series) > 1:  # one run needs no legend: the title names what is drawn
            ax.legend(fontsize=8)
        if note:
            fig.text(0.01, 0.01, note, fontsize=7, color="0.35", ha="left", va="bottom")
        fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


def default_quantities(runs: Sequence[RunLog]) -> tuple[str, ...]:
    """The four training quantities, and the verifier's calls and latency when any run asked it."""
    judged = any(v > 0 for run in runs for key in CURVE_KEYS["judge_calls"] for _, v in run.raw.get(key, []))
    return DEFAULT_QUANTITIES + (JUDGE_QUANTITIES if judged else ())


def plot_curves(
    logs: Sequence[str | os.PathLike[str] | RunLog],
    out_dir: str | os.PathLike[str],
    *,
    quantities: Sequence[str] | None = None,
    smoothing: float = 0.0,
    names: Sequence[str] | None = None,
    note: str | None = None,
) -> list[Path]:
    """Draw one PNG per quantity present in any log (all runs on one plot) into `out_dir`.

    `logs`: metrics.jsonl files, veRL console logs, tensorboard dirs (or `RunLog`s); `quantities`:
    names from `CURVE_KEYS` or raw metric keys (default: `default_quantities`); `smoothing`: EMA weight in [0, 1); rates are drawn in
    percent, a logged std as a band; `note`: one line printed under every figure.
    Returns the PNG paths; `out_dir/curves.json` holds the plotted points.
    """
    smooth([], smoothing)  # validates the weight before any reading
    runs = _as_runs(logs, names)
    if quantities is None:
        quantities = default_quantities(runs)
    figures = collect_curves(runs, quantities, smoothing)
    if not figures:
        available = sorted({key for run in runs for key in run.raw})
        raise UserError(
            f"none of {list(quantities)} found in {[str(r.source) for r in runs]}; "
            f"keys present: {available[:30]}{' ...' if len(available) > 30 else ''}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for quantity, fig in figures.items():
        png = out / f"{quantity.replace('/', '_')}.png"
        _draw(quantity, fig["series"], smoothing, png, note)
        fig["png"] = str(png)
        paths.append(png)
    write_json_atomic(
        out / "curves.json",
        {
            "smoothing": smoothing,
            "runs": [
                {"name": r.name, "source": str(r.source), "kind": r.kind, "notes": r.notes} for r in runs
            ],
            "figures": figures,
        },
    )
    return paths
