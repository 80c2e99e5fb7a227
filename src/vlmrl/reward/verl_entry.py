"""veRL entry point: point `reward.custom_reward_function.path` at this file (name `compute_score`).

veRL 0.9.1 imports this file by path as a standalone module, sees an `async def` and awaits it in
each reward-loop worker's event loop, so verifier calls of a whole batch run concurrently. Ground
truths arrive as parquet/veRL hand them (a numpy array, a list, a string, a Python-literal list
string) and are read once, as at every door of the reward (`vlmrl.data.normalize.answer_list`); the keyword arguments veRL's reward managers add of their own are set apart by name, and
everything else must be a reward setting (`reward_kwargs`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:
    from vlmrl.reward.score import compute_score_async
except ImportError:  # vlmrl not installed in the Ray worker's env: use the source tree beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from vlmrl.reward.score import compute_score_async

#: Keyword arguments veRL 0.9.1's reward managers (naive, dapo) pass to every call, for reward
#: functions that call a reward model themselves; ours does not use them.
VERL_MANAGER_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})


async def compute_score(
    data_source: Any = None,
    solution_str: Any = "",
    ground_truth: Any = None,
    extra_info: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """veRL's custom reward function: `vlmrl.reward.compute_score` as a coroutine (same dict)."""
    reward_kwargs = {k: v for k, v in kwargs.items() if k not in VERL_MANAGER_KWARGS}
    return await compute_score_async(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)
