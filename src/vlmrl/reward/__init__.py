"""Reward: format gate -> answer extraction -> rule check -> verifier model.

`compute_score` is veRL's `custom_reward_function` signature; `score_batch` scores many at once.
"""

from vlmrl.reward.score import (
    VERDICTS,
    RewardSettings,
    compute_score,
    compute_score_async,
    normalize_ground_truth,
    score_batch,
    score_batch_async,
)

__all__ = [
    "VERDICTS",
    "RewardSettings",
    "compute_score",
    "compute_score_async",
    "normalize_ground_truth",
    "score_batch",
    "score_batch_async",
]
