"""Training metrics as `metrics.jsonl`: one JSON object per optimizer step, in the keys of docs/contracts.md.

TRL's log names mapped onto ours, the per-kind / per-source / judge metrics both backends log
(`reward_metrics`), the appending writer, and the one reader (`report` reads through it).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.utils.io import iter_jsonl, write_jsonl_atomic

# TRL 1.16 log name -> contract key. Reward-component names are what our reward function reports through
# TRL's `log_metric` hook (see `vlmrl.train.trl.rewards.make_trl_reward`).
TRL_TO_CONTRACT = {
    "reward": "reward_mean",
    "reward_std": "reward_std",
    "acc": "acc_mean",
    "format_rate": "format_rate",
    "verifier_error_rate": "verifier_error_rate",
    "completions/mean_length": "response_length_mean",
    "completions/max_length": "response_length_max",
    "clip_ratio/low_mean": "clip_ratio_low",
    "clip_ratio/high_mean": "clip_ratio_high",
    "kl": "kl",
    "entropy": "entropy",
    "learning_rate": "lr",
}

CONTRACT_KEYS = (
    "step",
    "reward_mean",
    "reward_std",
    "acc_mean",
    "format_rate",
    "verifier_error_rate",
    "response_length_mean",
    "response_length_max",
    "clip_ratio_low",
    "clip_ratio_high",
    "kl",
    "entropy",
    "lr",
    "step_time_s",
)


#: Prefixes of the per-group and judge keys (`reward_metrics`); both backends log them under these names.
GROUP_PREFIXES = ("modality/", "source/", "judge/")
#: The quantities logged per group: `<group>/<name>`, e.g. `modality/image/acc_mean`.
GROUP_QUANTITIES = ("count", "reward_mean", "acc_mean", "format_rate", "response_length_mean")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def reward_metrics(
    results: Sequence[Mapping[str, Any]],
    modalities: Sequence[str],
    sources: Sequence[Any],
    response_lengths: Sequence[float] | None = None,
) -> dict[str, float]:
    """One step's metrics per row kind and per data source, and the judge's share, from the reward dicts.

    `results[i]` is response i's reward dict (`vlmrl.reward.compute_score`; at least `score`),
    `modalities[i]` its row's kind (`vlmrl.data.rows.row_modality`), `sources[i]` its data source,
    `response_lengths[i]` its length in tokens. Keys (docs/contracts.md, Training metrics):
    `modality/<text|image>/<q>` and `source/<data_source>/<q>` for q in `GROUP_QUANTITIES` (a kind or
    source absent from the batch has no keys), and `judge/calls`, `judge/failures`, `judge/overturned`,
    `judge/latency_p50_s`, `judge/latency_p95_s` (the percentiles only when the judge was asked).
    """
    n = len(results)
    if (
        len(modalities) != n
        or len(sources) != n
        or (response_lengths is not None and len(response_lengths) != n)
    ):
        raise ValueError(
            f"reward_metrics: {n} results, {len(modalities)} modalities, {len(sources)} sources"
            + ("" if response_lengths is None else f", {len(response_lengths)} response lengths")
        )
    groups: dict[str, list[int]] = {}
    for i in range(n):
        groups.setdefault(f"modality/{modalities[i]}", []).append(i)
    for i in range(n):
        groups.setdefault(f"source/{sources[i] if sources[i] not in (None, '') else 'unknown'}", []).append(i)
    out: dict[str, float] = {}
    for group, idx in groups.items():
        out[f"{group}/count"] = float(len(idx))
        out[f"{group}/reward_mean"] = _mean([float(results[i]["score"]) for i in idx])
        for key, name in (("acc", "acc_mean"), ("format_ok", "format_rate")):
            if all(key in results[i] for i in idx):
                out[f"{group}/{name}"] = _mean([float(results[i][key]) for i in idx])
        if response_lengths is not None:
            out[f"{group}/response_length_mean"] = _mean([float(response_lengths[i]) for i in idx])
    if n and all("verifier_called" in r for r in results):
        asked = [r for r in results if r["verifier_called"]]
        out["judge/calls"] = float(len(asked))
        out["judge/failures"] = float(sum(int(r.get("verifier_error", 0)) for r in asked))
        out["judge/overturned"] = float(sum(int(r.get("verifier_overturned", 0)) for r in asked))
        if asked:
            latencies = [float(r.get("verifier_latency_s", 0.0)) for r in asked]
            out["judge/latency_p50_s"] = _percentile(latencies, 50)
            out["judge/latency_p95_s"] = _percentile(latencies, 95)
    return out


def contract_row(step: int, logs: dict[str, Any], step_time_s: float | None) -> dict[str, Any]:
    """Our metrics row for one optimizer step from TRL's `logs` dict (non-finite values are left out)."""
    row: dict[str, Any] = {"step": int(step)}
    for trl_key, key in TRL_TO_CONTRACT.items():
        value = logs.get(trl_key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            row[key] = float(value)
    # Extra reward functions (e.g. the overlong penalty) keep TRL's own name, so nothing logged is lost;
    # the per-kind, per-source and judge keys (`reward_metrics`) are ours already.
    for trl_key, value in logs.items():
        is_reward_mean = trl_key.startswith("rewards/") and trl_key.endswith("/mean")
        if (
            (is_reward_mean or trl_key.startswith(GROUP_PREFIXES))
            and isinstance(value, (int, float))
            and math.isfinite(value)
        ):
            row[trl_key] = float(value)
    if step_time_s is not None:
        row["step_time_s"] = round(float(step_time_s), 4)
    return row


def is_step_log(logs: dict[str, Any] | None) -> bool:
    """True for TRL's per-optimizer-step log; False for the end-of-training summary and eval logs.

    Rewards appear only on steps that generate (one in `steps_per_generation * num_iterations`);
    the other optimizer steps still log loss, clip ratios, KL and lr, and get a row of their own.
    """
    return bool(logs) and "loss" in logs and not any(k.startswith("eval_") for k in logs)


def append_jsonl(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk; a crash loses at most the line being written."""
    line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def truncate_after(path: str | os.PathLike[str], step: int) -> int:
    """Drop rows whose step is above `step` (steps a resumed run will redo); returns rows dropped.

    A torn last line (the process died mid-write) is dropped too, since it cannot be read.
    """
    p = Path(path)
    if not p.is_file():
        return 0
    kept: list[dict[str, Any]] = []
    dropped = 0
    torn: list[str] = []
    for _, row in iter_jsonl(p, torn_tail_notes=torn, hint="fix or remove that line before resuming"):
        if int(row.get("step", 0)) <= step:
            kept.append(row)
        else:
            dropped += 1
    dropped += len(torn)
    if dropped:
        write_jsonl_atomic(p, kept)
    return dropped


def read_metrics(path: str | os.PathLike[str], notes: list[str] | None = None) -> list[dict[str, Any]]:
    """Every row of a metrics.jsonl file, `step` an int; also veRL's file logger output
    (`{"step": N, "data": {...}}`, flattened). A torn last line is skipped and said in `notes`."""
    rows = []
    for lineno, obj in iter_jsonl(path, torn_tail_notes=notes if notes is not None else []):
        if not isinstance(obj, dict) or "step" not in obj:
            raise UserError(f"{path}:{lineno}: each line must be a JSON object with a `step` key")
        if isinstance(obj.get("data"), dict):
            obj = {"step": obj["step"], **obj["data"]}
        try:
            obj["step"] = int(obj["step"])
        except (TypeError, ValueError) as exc:
            raise UserError(f"{path}:{lineno}: `step` must be an integer, got {obj['step']!r}") from exc
        rows.append(obj)
    return rows
