"""Read training logs into per-step series: our metrics.jsonl, veRL console lines, tensorboard dirs.

Each log becomes a `RunLog` whose raw series keep the engine's own keys; `curve()` maps them
onto the few quantities we plot (reward, response length, accuracy, format rate).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from vlmrl.data.rows import MODALITIES
from vlmrl.errors import UserError
from vlmrl.train.metrics import GROUP_QUANTITIES, read_metrics

# The quantities `vlmrl report curves` draws, each with the keys that carry it, first match wins:
# our metrics.jsonl (docs/contracts.md), veRL's trainer metrics, TRL's GRPOTrainer logs.
CURVE_KEYS: dict[str, tuple[str, ...]] = {
    "reward": ("reward_mean", "critic/score/mean", "train/reward", "reward"),
    "response_length": (
        "response_length_mean",
        "response_length/mean",
        "train/completions/mean_length",
        "completions/mean_length",
    ),
    "acc": ("acc_mean", "train/rewards/acc/mean", "acc"),
    "format_rate": ("format_rate", "train/rewards/format_ok/mean"),
    # The verifier's cost and effect (vlmrl.train.metrics.reward_metrics' `judge/*` keys).
    "judge_calls": ("judge/calls", "train/judge/calls"),
    "judge_latency": ("judge/latency_p50_s", "train/judge/latency_p50_s"),
}
# Further lines of a figure beside its main one, and what the main one is called then.
EXTRA_LINES: dict[str, dict[str, tuple[str, ...]]] = {
    "judge_calls": {
        "failed": ("judge/failures", "train/judge/failures"),
        "overturned the rules": ("judge/overturned", "train/judge/overturned"),
    },
    "judge_latency": {"p95": ("judge/latency_p95_s", "train/judge/latency_p95_s")},
}
MAIN_LINE = {"judge_calls": "calls", "judge_latency": "p50"}
# veRL logs validation per data source, e.g. `val-core/aime24/acc/mean@16`: one extra line per source.
_VERL_VAL = {
    "acc": re.compile(r"^val-core/(?P<source>[^/]+)/acc/mean@\d+$"),
    "reward": re.compile(r"^val-core/(?P<source>[^/]+)/reward/mean@\d+$"),
    "format_rate": re.compile(r"^val-aux/(?P<source>[^/]+)/format_ok/mean@\d+$"),
}
# The per-kind and per-source keys both backends log (vlmrl.train.metrics.reward_metrics), e.g.
# `modality/image/acc_mean`, `source/demo/shape_colour/format_rate`; TRL's tensorboard adds `train/`.
_GROUP_KEY = re.compile(
    r"^(?:train/)?(?P<group>modality|source)/(?P<name>.+)/(?P<quantity>" + "|".join(GROUP_QUANTITIES) + r")$"
)
# Which per-group quantity carries each plotted one.
GROUP_QUANTITY = {
    "reward": "reward_mean",
    "response_length": "response_length_mean",
    "acc": "acc_mean",
    "format_rate": "format_rate",
}
CURVE_LABELS = {
    "reward": "reward (mean)",
    "response_length": "response length (tokens, mean)",
    "acc": "accuracy",
    "format_rate": "format rate",
    "judge_calls": "verifier calls per step",
    "judge_latency": "verifier latency per call (s)",
}

# veRL 0.9.1 prints `step:N - key:value - ...` (verl/utils/logger/aggregate_logger.py, pprint of each
# number); numpy scalars print as `np.float64(0.5)`; Ray prefixes worker lines with `(TaskRunner pid=..)`.
_VERL_LINE = re.compile(r"(?:^|[\s)])step:(?P<step>\d+)(?P<rest>(?: - [^\n]*)?)$")
_NUMBER = re.compile(
    r"^(?:np\.\w+\()?(?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf))\)?$"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

Series = list[tuple[int, float]]


@dataclass
class RunLog:
    """One run's metrics: `raw[key]` is a step-sorted list of (step, value)."""

    name: str
    source: Path
    kind: str  # "metrics_jsonl" | "verl_console" | "tensorboard"
    raw: dict[str, Series] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def curve(self, quantity: str) -> dict[str, Series]:
        """Series for one plotted quantity: {"": main series, "text"/"image": per row kind, "source
        <name>": per data source (`group_curves`), "val <source>": ...}; empty when absent.

        `quantity` is one of CURVE_KEYS or, for anything else, a raw key of this log.
        """
        out: dict[str, Series] = {}
        for key in CURVE_KEYS.get(quantity, (quantity,)):
            if self.raw.get(key):
                out[""] = self.raw[key]
                break
        for suffix, keys in EXTRA_LINES.get(quantity, {}).items():
            key = next((k for k in keys if self.raw.get(k)), None)
            if key is not None:
                out[suffix] = self.raw[key]
        out.update(self.group_curves(quantity))
        pattern = _VERL_VAL.get(quantity)
        if pattern is not None:
            for key in sorted(self.raw):
                m = pattern.match(key)
                if m and self.raw[key]:
                    out[f"val {m.group('source')}"] = self.raw[key]
        return out

    def group_keys(self) -> dict[tuple[str, str, str], str]:
        """{(group, name, quantity): raw key} of the per-kind and per-source series in this log."""
        found = {}
        for key in sorted(self.raw):
            m = _GROUP_KEY.match(key)
            if m and self.raw[key]:
                found.setdefault((m.group("group"), m.group("name"), m.group("quantity")), key)
        return found

    def group_curves(self, quantity: str) -> dict[str, Series]:
        """A line per row kind ({"text": ..., "image": ...}) when the run trained on both kinds, and a
        line per data source ({"source NAME": ...}) when its sources split it further than its kinds."""
        wanted = GROUP_QUANTITY.get(quantity)
        if wanted is None:
            return {}
        keys = self.group_keys()
        kinds = sorted(
            {n for g, n, _ in keys if g == "modality"},
            key=lambda n: (MODALITIES.index(n) if n in MODALITIES else len(MODALITIES), n),
        )
        sources = sorted({n for g, n, _ in keys if g == "source"})
        out: dict[str, Series] = {}
        if len(kinds) >= 2:
            for kind in kinds:
                key = keys.get(("modality", kind, wanted))
                if key:
                    out[kind] = self.raw[key]
        if len(sources) >= 2 and len(sources) > len(kinds):
            for source in sources:
                key = keys.get(("source", source, wanted))
                if key:
                    out[f"source {source}"] = self.raw[key]
        return out


def _to_series(by_step: dict[str, dict[int, float]]) -> dict[str, Series]:
    return {key: sorted(steps.items()) for key, steps in by_step.items() if steps}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def read_metrics_jsonl(path: Path, name: str | None = None) -> RunLog:
    """Our `metrics.jsonl` (one JSON object per optimizer step with `step` and metric keys), or veRL's
    file logger output (`{"step": N, "data": {metric: value}}`), read by `vlmrl.train.metrics`."""
    by_step: dict[str, dict[int, float]] = {}
    notes: list[str] = []
    repeated = 0
    seen: set[int] = set()
    for obj in read_metrics(path, notes):
        step = obj["step"]
        if step in seen:
            repeated += 1
        seen.add(step)
        for key, value in obj.items():
            num = _number(value)
            if key != "step" and num is not None:
                by_step.setdefault(key, {})[step] = num
    if repeated:
        notes.append(f"{path}: {repeated} repeated step(s) (a resumed run?); the later values are used")
    return RunLog(_default_name(path, name), path, "metrics_jsonl", _to_series(by_step), notes)


def parse_verl_line(line: str) -> tuple[int, dict[str, float]] | None:
    """Parse one veRL console metrics line into (step, {key: value}); None when it is not one."""
    line = _ANSI.sub("", line).rstrip()
    m = _VERL_LINE.search(line)
    if m is None:
        return None
    metrics: dict[str, float] = {}
    for part in m.group("rest").split(" - ")[1:]:
        key, sep, value = part.rpartition(":")
        if not sep or not key:
            continue
        num = _NUMBER.match(value.strip())
        if num:
            metrics[key.strip()] = float(num.group("num"))
    return int(m.group("step")), metrics


def read_verl_console(path: Path, name: str | None = None) -> RunLog:
    """A veRL console log (stdout of `python -m verl.trainer.main_ppo ... trainer.logger=[console]`)."""
    by_step: dict[str, dict[int, float]] = {}
    found = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parsed = parse_verl_line(line)
            if parsed is None:
                continue
            step, metrics = parsed
            found += 1
            # veRL prints validation before training as its own `step:0` line: merge lines per step.
            for key, value in metrics.items():
                by_step.setdefault(key, {})[step] = value
    if not found:
        raise UserError(
            f"{path}: no veRL metrics lines (`step:N - key:value - ...`) and not a metrics.jsonl; "
            "pass our metrics.jsonl, a veRL console log (trainer.logger includes console) or a tensorboard dir"
        )
    return RunLog(_default_name(path, name), path, "verl_console", _to_series(by_step))


def read_tensorboard(path: Path, name: str | None = None) -> RunLog:
    """Every scalar in the tensorboard event files under `path` (veRL and TRL write these)."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    event_dirs = sorted({f.parent for f in path.rglob("events.out.tfevents*")}) if path.is_dir() else []
    if path.is_file():
        event_dirs = [path]
    if not event_dirs:
        raise UserError(f"{path}: no tensorboard event files (events.out.tfevents*) under this directory")
    by_step: dict[str, dict[int, float]] = {}
    # Several event dirs (a resumed run, TRL's runs/<date>/): merged by step, later files win.
    for event_dir in event_dirs:
        acc = EventAccumulator(str(event_dir), size_guidance={SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            for event in acc.Scalars(tag):
                by_step.setdefault(tag, {})[int(event.step)] = float(event.value)
    return RunLog(_default_name(path, name), path, "tensorboard", _to_series(by_step))


def _default_name(path: Path, name: str | None) -> str:
    if name:
        return name
    if path.name == "metrics.jsonl" or path.name.startswith("events.out.tfevents"):
        return path.parent.name or path.stem
    return path.stem if path.is_file() else path.name


def detect_kind(path: Path) -> str:
    """Which reader fits `path`: metrics_jsonl, verl_console or tensorboard."""
    if path.is_dir():
        if any(path.rglob("events.out.tfevents*")):
            return "tensorboard"
        if (path / "metrics.jsonl").is_file():
            return "metrics_jsonl"
        raise UserError(
            f"{path}: a directory with neither tensorboard event files nor a metrics.jsonl; "
            "pass the metrics.jsonl, the console log file, or the tensorboard log dir"
        )
    if not path.is_file():
        raise UserError(f"{path}: no such file or directory")
    if path.name.startswith("events.out.tfevents"):
        return "tensorboard"
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                try:
                    first = json.loads(line)
                except json.JSONDecodeError:
                    return "verl_console"
                return "metrics_jsonl" if isinstance(first, dict) else "verl_console"
    raise UserError(f"{path}: the file is empty; no metrics to plot")


def read_log(path: str | Path, name: str | None = None) -> RunLog:
    """Read any supported log; `name` labels the run on plots (default: from the path)."""
    p = Path(path)
    kind = detect_kind(p)
    if kind == "tensorboard":
        return read_tensorboard(p, name)
    if kind == "metrics_jsonl":
        return read_metrics_jsonl(
            p / "metrics.jsonl" if p.is_dir() else p, name or (p.name if p.is_dir() else None)
        )
    return read_verl_console(p, name)
