"""The TRL backend's reward functions: our math reward through its TRL adapter, and DAPO's soft
overlong penalty as a second reward function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vlmrl.errors import UserError
from vlmrl.train.config import ExperimentConfig

RewardFunc = Callable[..., list[float | None]]


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
    """Our math reward through the TRL adapter, plus DAPO's overlong penalty when configured."""
    try:
        from vlmrl.reward.trl_adapter import make_trl_reward
    except ImportError as exc:  # pragma: no cover - only before the reward stage is installed
        raise UserError(f"the TRL backend needs vlmrl.reward.trl_adapter ({exc})") from exc
    funcs: list[RewardFunc] = [make_trl_reward(**cfg.reward.reward_kwargs())]
    ov = cfg.reward.overlong
    if ov.enable and cfg.reward.manager == "dapo":
        funcs.append(overlong_penalty(cfg.rollout.max_response_length, ov.len, ov.penalty_factor))
    return funcs
