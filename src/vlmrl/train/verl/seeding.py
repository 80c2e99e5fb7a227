"""A sampling seed per rollout request, so a veRL run with the same seed samples the same responses.

veRL 0.9.1 sends every response of a step to vLLM as its own request. Without a seed, vLLM samples
from one engine-wide generator, so what a request draws depends on which requests happen to share
its batch (timing): two runs of the same seed diverge from the first step. veRL's own answer,
`rollout.full_determinism`, gives every request the same seed (`replica_rank + rollout.seed`), so the
n responses to one prompt are drawn alike and GRPO groups collapse to one answer. This gives each
request its own seed, derived from `rollout.seed`, the training step, the row's index and its place
in the group (veRL's trajectory info), so responses differ within a group and repeat across runs.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

_MODULE = "verl.experimental.agent_loop.agent_loop"
_MARKER = "_vlmrl_seeded"


def _plain(value: Any) -> Any:
    """An int or str for a step / index that may come as a tensor or tensordict's NonTensorData."""
    value = getattr(value, "data", value)
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, str)) or value is None else str(value)


def sample_seed(base: int, trajectory: dict[str, Any], session_id: Any = None) -> int:
    """A 31-bit seed from the run's seed and (step, row index, place in the group, validation).

    veRL's V1 trainer sends a group's n requests with one trajectory and `session_id` 0..n-1; the
    legacy trainer numbers them in the trajectory's `rollout_n`. Either way they get distinct seeds.
    """
    key = "|".join(
        str(_plain(v))
        for v in (
            base,
            trajectory.get("step"),
            trajectory.get("sample_index"),
            trajectory.get("rollout_n"),
            session_id,
            bool(trajectory.get("validate")),
        )
    )
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def _wrap(original):
    @functools.wraps(original)
    async def _run_agent_loop(self, sampling_params, trajectory, *args, **kwargs):
        if "seed" not in sampling_params:
            base = getattr(self.rollout_config, "seed", None)
            seed = sample_seed(int(base or 0), trajectory, kwargs.get("session_id"))
            sampling_params = {**sampling_params, "seed": seed}
        return await original(self, sampling_params, trajectory, *args, **kwargs)

    setattr(_run_agent_loop, _MARKER, True)
    return _run_agent_loop


def patch_agent_loop(module) -> bool:
    """Seed every request `AgentLoopWorker` sends; False when the class does not look like 0.9.1's."""
    import inspect

    worker = getattr(module, "AgentLoopWorker", None)
    current = getattr(worker, "_run_agent_loop", None)
    if current is None:
        return False
    if getattr(current, _MARKER, False):
        return True
    params = list(inspect.signature(current).parameters)
    if params[:3] != ["self", "sampling_params", "trajectory"]:
        return False
    worker._run_agent_loop = _wrap(current)
    return True


def apply() -> None:
    """Patch the agent loop now if veRL's agent loop is imported, else as soon as it is."""
    from vlmrl.train.verl.cpu import after_import

    after_import(_MODULE, patch_agent_loop)
