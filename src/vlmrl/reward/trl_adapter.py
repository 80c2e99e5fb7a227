"""TRL adapter: the reward as a `GRPOTrainer` reward function over lists, logging its components.

`make_trl_reward(**reward_kwargs)` returns `f(prompts, completions, **columns) -> list[float]`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from vlmrl.reward.score import score_batch
from vlmrl.reward.settings import RewardSettings


def completion_text(completion: Any) -> str:
    """A completion as text: a plain string, or the assistant turns of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        parts = []
        for message in completion:
            content = message.get("content", "") if isinstance(message, dict) else message
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            parts.append(str(content))
        return "".join(parts)
    return "" if completion is None else str(completion)


def _column(columns: dict[str, Any], name: str, n: int, default: Any = None) -> list[Any]:
    values = columns.get(name)
    if values is None:
        return [default] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return values


def make_trl_reward(
    settings: RewardSettings | None = None, **reward_kwargs: Any
) -> Callable[..., list[float]]:
    """A TRL reward function; `f.last_results` keeps the last batch's reward dicts.

    `settings`, or the keyword arguments of `RewardSettings.from_kwargs` (`RewardConfig.reward_kwargs()`),
    are validated here, once: a bad setting fails when the trainer is built, not mid-training.

    Reads the dataset columns `ground_truth`, `data_source`, `extra_info`. Through TRL's
    `log_metric` it logs `acc`, `format_rate`, `verifier_error_rate` and the share of each verdict;
    through `log_extra` it adds `acc`, `pred` and `verdict` columns to the completions table.
    """
    resolved = settings if settings is not None else RewardSettings.from_kwargs(**reward_kwargs)

    def math_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
        n = len(completions)
        ground_truths = _column(columns, "ground_truth", n)
        sources = _column(columns, "data_source", n, "")
        infos = _column(columns, "extra_info", n, None)
        items = [
            {
                "data_source": sources[i],
                "solution_str": completion_text(completions[i]),
                "ground_truth": list(ground_truths[i]) if ground_truths[i] is not None else [],
                "extra_info": infos[i],
            }
            for i in range(n)
        ]
        results = score_batch(items, resolved)
        math_reward.last_results = results  # type: ignore[attr-defined]
        log_metric = columns.get("log_metric")
        if callable(log_metric) and n:
            log_metric("acc", sum(r["acc"] for r in results) / n)
            log_metric("format_rate", sum(r["format_ok"] for r in results) / n)
            log_metric("verifier_error_rate", sum(r["verifier_error"] for r in results) / n)
            counts = Counter(r["verdict"] for r in results)
            for verdict in ("rule", "verifier", "format", "none"):
                log_metric(f"verdict_{verdict}", counts.get(verdict, 0) / n)
        log_extra = columns.get("log_extra")
        if callable(log_extra):
            log_extra("acc", [r["acc"] for r in results])
            log_extra("pred", [r["pred"] for r in results])
            log_extra("verdict", [r["verdict"] for r in results])
        return [r["score"] for r in results]

    math_reward.last_results = []  # type: ignore[attr-defined]
    return math_reward
