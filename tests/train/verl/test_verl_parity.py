"""What makes veRL's stage match TRL's on the same recipe: the compute dtype reaching veRL's FSDP engine,
a sampling seed per rollout request, and the per-kind rollout-vs-update log-prob metrics.

The end-to-end check of the last two (a real veRL run, text and image rows) is in test_verl_cpu_e2e.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vlmrl.train.config import ConfigError, load_config
from vlmrl.train.verl import alignment, seeding
from vlmrl.train.verl.overrides import build_overrides, check_raw_overrides

ROOT = Path(__file__).resolve().parents[3]


def _by_key(cfg):
    return {o.key: o for o in build_overrides(cfg, reward_path="pkg://x")}


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_model_dtype_reaches_the_fsdp_engine(dtype):
    cfg = load_config(ROOT / "configs" / "train" / "mixed.yaml", [f"model.dtype={dtype}"])
    ours = _by_key(cfg)
    mp = ours["actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype"]
    assert mp.value == dtype and mp.plus
    assert "actor_rollout_ref.actor.fsdp_config.dtype" not in ours  # Megatron's key; FSDP ignores it


def test_fsdp_dtype_key_is_refused_with_the_key_to_use():
    with pytest.raises(ConfigError, match="mixed_precision.param_dtype"):
        check_raw_overrides(["actor_rollout_ref.actor.fsdp_config.dtype=float32"])
    check_raw_overrides(["+actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype=float32"])


def test_the_run_seed_reaches_sampling_torch_and_minibatches():
    cfg = load_config(ROOT / "configs" / "train" / "demo.yaml", ["trainer.seed=7"])
    ours = _by_key(cfg)
    for key in (
        "data.seed",
        "actor_rollout_ref.rollout.seed",
        "actor_rollout_ref.actor.fsdp_config.seed",
        "actor_rollout_ref.actor.data_loader_seed",
    ):
        assert ours[key].value == 7, key


def test_sample_seeds_differ_within_a_group_and_repeat_across_runs():
    # V1 trainer: one trajectory per prompt, session_id 0..n-1; legacy: rollout_n 0..n-1.
    v1 = {"step": 3, "sample_index": 11, "rollout_n": 0, "validate": False}
    seeds = [seeding.sample_seed(0, v1, session) for session in range(8)]
    assert len(set(seeds)) == 8
    assert seeds == [seeding.sample_seed(0, dict(v1), session) for session in range(8)]
    legacy = [seeding.sample_seed(0, {**v1, "rollout_n": n}) for n in range(8)]
    assert len(set(legacy)) == 8
    assert seeding.sample_seed(1, v1, 0) != seeds[0]  # another run seed
    assert seeding.sample_seed(0, {**v1, "step": 4}, 0) != seeds[0]  # another step
    assert all(0 <= s < 2**31 for s in seeds)


def test_seeded_agent_loop_adds_a_seed_and_keeps_a_given_one():
    seen = []

    async def original(self, sampling_params, trajectory, *, agent_name, trace=True, **kwargs):
        seen.append(sampling_params)

    class Worker:
        rollout_config = type("R", (), {"seed": 5})()

    run = seeding._wrap(original)
    trajectory = {"step": 1, "sample_index": 0, "rollout_n": 0, "validate": False}
    for session in (0, 1):
        asyncio.run(
            run(Worker(), {"temperature": 1.0}, trajectory=trajectory, agent_name="a", session_id=session)
        )
    asyncio.run(run(Worker(), {"seed": 123}, trajectory, agent_name="a", session_id=0))
    assert seen[0]["seed"] == seeding.sample_seed(5, trajectory, 0) != seen[1]["seed"]
    assert seen[0]["temperature"] == 1.0 and seen[2] == {"seed": 123}


def test_seeding_patches_veRLs_agent_loop_worker():
    from verl.experimental.agent_loop import agent_loop

    assert seeding.patch_agent_loop(agent_loop)
    assert getattr(agent_loop.AgentLoopWorker._run_agent_loop, seeding._MARKER)
    assert seeding.patch_agent_loop(agent_loop)  # idempotent


def test_alignment_metrics_split_text_and_image_rows():
    import torch
    from tensordict import TensorDict
    from tensordict.tensorclass import NonTensorStack

    def jagged(rows):
        return torch.nested.as_nested_tensor([torch.tensor(r) for r in rows], layout=torch.jagged)

    data = TensorDict(
        {
            "old_log_probs": jagged([[-1.0, -2.0], [-1.0, -1.0, -9.0], [-0.5]]),
            "rollout_log_probs": jagged([[-1.1, -2.3], [-1.0, -1.2, 0.0], [-0.5]]),
            "response_mask": jagged([[1, 1], [1, 1, 0], [1]]),
        },
        batch_size=[3],
    )
    data["multi_modal_inputs"] = NonTensorStack({"image_grid_thw": torch.ones(1, 3)}, {}, {})
    m = alignment.batch_metrics(data)
    assert m["alignment/image/rows"] == 1 and m["alignment/text/rows"] == 2
    assert m["alignment/image/logprob_diff_mean"] == pytest.approx(0.2)
    assert m["alignment/image/logprob_diff_max"] == pytest.approx(0.3)
    # The masked token (|-9 - 0|) is not counted.
    assert m["alignment/text/logprob_diff_mean"] == pytest.approx(0.2 / 3)
    assert m["alignment/text/logprob_diff_max"] == pytest.approx(0.2)


def test_alignment_patches_veRLs_v1_trainer():
    from verl.trainer.ppo.v1 import trainer_base

    assert alignment.patch_trainer(trainer_base)
    assert getattr(trainer_base.PPOTrainer._compute_old_log_prob, alignment._MARKER)
