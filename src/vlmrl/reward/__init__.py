"""Reward: format gate -> final answer -> rule check (math-verify) -> verifier model.

Public API: `compute_score` (one response; veRL's `custom_reward_function` signature, used by the
veRL entry and the TRL adapter), `score_batch` (many at once) and `RewardSettings` (the validated
settings both take). Ground truths are the data stage's `list[str]` of every acceptable answer.
"""

from vlmrl.reward.score import VERDICTS, compute_score, score_batch
from vlmrl.reward.settings import RewardSettings

__all__ = ["VERDICTS", "RewardSettings", "compute_score", "score_batch"]
