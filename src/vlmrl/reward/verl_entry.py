"""veRL entry point: point `reward.custom_reward_function.path` at this file (name `compute_score`).

veRL 0.9.1 imports this file by path as a standalone module, sees an `async def` and awaits it in
each reward-loop worker's event loop, so verifier calls of a whole batch run concurrently.
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


async def compute_score(
    data_source: Any = None,
    solution_str: Any = "",
    ground_truth: Any = None,
    extra_info: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """veRL's custom reward function: `vlmrl.reward.compute_score_async` (same dict, never raises)."""
    return await compute_score_async(data_source, solution_str, ground_truth, extra_info, **kwargs)
