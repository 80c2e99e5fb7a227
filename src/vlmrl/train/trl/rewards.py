"""The TRL backend's reward functions, built in one place: vlmrl's math reward as a `GRPOTrainer`
reward function over lists (logging its components), and DAPO's soft overlong penalty as a second one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from vlmrl.data.rows import row_modality
from vlmrl.reward.score import score_batch
from vlmrl.reward.settings import RewardSettings
from vlmrl.train.config import ExperimentConfig
from vlmrl.train.metrics import reward_metrics

RewardFunc = Callable[..., list[float | None]]


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

    Reads the dataset columns `ground_truth`, `data_source`, `extra_info` (and `images`, to tell image
    rows from text rows where `extra_info.question` is missing). Through TRL's `log_metric` it logs
    `acc`, `format_rate`, `verifier_error_rate`, the share of each verdict, and the per-kind,
    per-source and judge metrics of `vlmrl.train.metrics.reward_metrics` (`modality/image/acc_mean`,
    `judge/calls`, ...); through `log_extra` it adds `acc`, `pred` and `verdict` columns to the
    completions table.
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
            images = _column(columns, "images", n, None)
            completion_ids = columns.get("completion_ids")
            lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else None
            modalities = [row_modality(infos[i], bool(images[i])) for i in range(n)]
            for key, value in reward_metrics(results, modalities, sources, lengths).items():
                log_metric(key, value)
        log_extra = columns.get("log_extra")
        if callable(log_extra):
            log_extra("acc", [r["acc"] for r in results])
            log_extra("pred", [r["pred"] for r in results])
            log_extra("verdict", [r["verdict"] for r in results])
        return [r["score"] for r in results]

    math_reward.last_results = []  # type: ignore[attr-defined]
    return math_reward


def overlong_penalty(max_response_length: int, buffer_len: int, penalty_factor: float) -> RewardFunc:
    """DAPO's soft overlong punishment as a TRL reward function (added to the task reward).

    0 up to `max_response_length - buffer_len` tokens, then a linear ramp down to `-penalty_factor`
    at the limit; the same rule veRL's `dapo` reward manager applies.
    """
    expected = max_response_length - buffer_len

    def overlong_penalty(completion_ids: list[list[int]], **_: Any) -> list[float]:
        out = []
        for ids in completion_ids:
            exceed = len(ids) - expected
            out.append(min(-exceed / buffer_len * penalty_factor, 0.0) if buffer_len > 0 else 0.0)
        return out

    return overlong_penalty


def default_reward_funcs(cfg: ExperimentConfig) -> list[RewardFunc]:
    """Our math reward (`make_trl_reward`), plus DAPO's overlong penalty when configured."""
    funcs: list[RewardFunc] = [make_trl_reward(**cfg.reward.reward_kwargs())]
    ov = cfg.reward.overlong
    if ov.enable and cfg.reward.manager == "dapo":
        funcs.append(overlong_penalty(cfg.rollout.max_response_length, ov.len, ov.penalty_factor))
    return funcs
