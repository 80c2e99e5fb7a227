"""Benchmark metrics over n graded samples per problem: Pass@1 (mean accuracy), unbiased pass@k,
format rate and response-length statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vlmrl.errors import UserError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): chance that k of n samples, c correct, hold a correct one.

    1 - C(n-c, k) / C(n, k), computed as 1 - prod(1 - k / arange(n-c+1, n+1)) for stability.
    """
    if n < 1 or not 0 <= c <= n or not 1 <= k <= n:
        raise UserError(f"pass@k needs 1 <= k <= n and 0 <= c <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def default_ks(n: int) -> list[int]:
    """k values reported for n samples: powers of two up to n, and n itself."""
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128) if k <= n]
    if n not in ks:
        ks.append(n)
    return ks


def summarize(
    samples_by_problem: Mapping[Any, Sequence[Mapping[str, Any]]], ks: Sequence[int] | None = None
) -> dict[str, Any]:
    """Metrics over problems, each with its graded samples (`acc` 0/1, `format_ok` 0/1, `num_tokens`,
    `finish_reason`). Uses the same n for every problem (the smallest present) so pass@k is fair.

    Percent values: `pass@1` (= mean accuracy over all samples, the seed's Pass@1), `pass@k`,
    `format_rate`, `truncated_rate`; lengths in tokens.
    """
    if not samples_by_problem:
        raise UserError("no graded samples to summarise")
    n = min(len(s) for s in samples_by_problem.values())
    if n == 0:
        raise UserError("a problem has no graded samples; re-run to generate them")
    ks = [k for k in (ks or default_ks(n)) if k <= n]
    correct = []
    accs, formats, lengths, truncated = [], [], [], []
    for samples in samples_by_problem.values():
        used = list(samples)[:n]
        c = sum(int(s["acc"]) for s in used)
        correct.append(c)
        accs.extend(int(s["acc"]) for s in used)
        formats.extend(int(s["format_ok"]) for s in used)
        lengths.extend(int(s["num_tokens"]) for s in used if s.get("num_tokens") is not None)
        truncated.extend(1 if s.get("finish_reason") == "length" else 0 for s in used)
    out: dict[str, Any] = {"num_problems": len(correct), "n": n, "num_samples": len(accs)}
    for k in ks:
        out[f"pass@{k}"] = 100.0 * float(np.mean([pass_at_k(n, c, k) for c in correct]))
    out["pass@1"] = 100.0 * float(np.mean(accs))  # identical to the unbiased pass@1; exact
    out["format_rate"] = 100.0 * float(np.mean(formats))
    out["truncated_rate"] = 100.0 * float(np.mean(truncated))
    if lengths:
        arr = np.asarray(lengths)
        out["response_length"] = {
            "mean": float(arr.mean()),
            "median": float(np.median(arr)),
            "p90": float(np.percentile(arr, 90)),
            "max": int(arr.max()),
        }
    out["problems_all_correct"] = sum(1 for c in correct if c == n)
    out["problems_none_correct"] = sum(1 for c in correct if c == 0)
    return out
