"""Training metrics as `metrics.jsonl`: one JSON object per optimizer step, in the keys of docs/contracts.md.

A TRL `TrainerCallback` maps TRL's log names onto ours and appends one line per step.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from vlmrl.utils.io import iter_jsonl, read_jsonl, write_jsonl_atomic

# TRL 1.16 log name -> contract key. Reward-component names are what our reward function reports through
# TRL's `log_metric` hook (see `vlmrl.train.trl_backend.ScoredReward`).
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


def contract_row(step: int, logs: dict[str, Any], step_time_s: float | None) -> dict[str, Any]:
    """Our metrics row for one optimizer step from TRL's `logs` dict (non-finite values are left out)."""
    row: dict[str, Any] = {"step": int(step)}
    for trl_key, key in TRL_TO_CONTRACT.items():
        value = logs.get(trl_key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            row[key] = float(value)
    # Extra reward functions (e.g. the overlong penalty) keep TRL's own name, so nothing logged is lost.
    for trl_key, value in logs.items():
        is_reward_mean = trl_key.startswith("rewards/") and trl_key.endswith("/mean")
        if is_reward_mean and isinstance(value, (int, float)) and math.isfinite(value):
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


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All rows of a metrics.jsonl file."""
    return list(read_jsonl(path))


class MetricsJsonlCallback(TrainerCallback):
    """Writes one `metrics.jsonl` row per optimizer step from TRL's per-step logs."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._last_step_end: float | None = None
        self._step_time: float | None = None
        self.rows_written = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Resumed runs redo the steps after their checkpoint; their old rows would be duplicates.
        truncate_after(self.path, state.global_step)
        self._last_step_end = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self._last_step_end is not None:
            self._step_time = now - self._last_step_end
        self._last_step_end = now

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not is_step_log(logs):
            return
        if not state.is_world_process_zero:
            return
        append_jsonl(self.path, contract_row(state.global_step, logs, self._step_time))
        self.rows_written += 1
