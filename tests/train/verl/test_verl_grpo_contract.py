"""Contract: our reward, loaded the way our overrides tell veRL 0.9.1, feeds veRL's DAPO manager and GRPO.

Composed config -> veRL's get_custom_reward_fn (by path, reward_kwargs merged) -> the registered `dapo`
manager (overlong buffer from +reward.reward_kwargs) -> assemble_rm_scores ->
core_algos.compute_grpo_outcome_advantage: correct answers get positive advantages, wrong ones negative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vlmrl.train.config import load_config
from vlmrl.train.verl.overrides import build_overrides, reward_function_path
from vlmrl.train.verl.validate import validate

PRESETS_DIR = Path(__file__).resolve().parents[3] / "configs" / "train"


def _batch(tokenizer, prompts: list[str], responses: list[str], ground_truths: list[list[str]]):
    import torch
    from verl import DataProto

    def encode(texts, side):
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        width = max(len(i) for i in ids)
        pad = tokenizer.pad_token_id or 0
        out = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
            out[row, span] = torch.tensor(seq)
            mask[row, span] = 1
        return out, mask

    p_ids, p_mask = encode(prompts, "left")
    r_ids, r_mask = encode(responses, "right")
    n = len(responses)
    return DataProto.from_dict(
        tensors={"prompts": p_ids, "responses": r_ids, "attention_mask": torch.cat([p_mask, r_mask], 1)},
        non_tensors={
            "data_source": np.array(["skywork/or1-math"] * n, dtype=object),
            "reward_model": np.array(
                [{"style": "rule", "ground_truth": g} for g in ground_truths], dtype=object
            ),
            "extra_info": np.array([{"index": i} for i in range(n)], dtype=object),
        },
    )


def test_grpo_advantages_from_our_reward_have_the_expected_signs(tiny_processor, tmp_path):
    import torch
    from verl.trainer.ppo import core_algos
    from verl.trainer.ppo.reward import get_custom_reward_fn, resolve_reward_manager_cls

    # Short responses and buffer so one response below crosses into the overlong penalty zone.
    cfg = load_config(
        PRESETS_DIR / "text.yaml",
        ["rollout.max_response_length=64", "reward.overlong.len=16", "reward.verifier.url=null"],
    )
    overrides = build_overrides(cfg)  # the installed vlmrl/reward/verl_entry.py
    verl_cfg = validate([o.render() for o in overrides], overrides)

    assert verl_cfg.reward.custom_reward_function.path == reward_function_path()
    compute_score = get_custom_reward_fn(verl_cfg)
    manager_cls = resolve_reward_manager_cls(verl_cfg)
    assert manager_cls.__name__ == "DAPORewardManager"
    manager = manager_cls(verl_cfg, tiny_processor.tokenizer, compute_score)

    good, bad = (
        "<think>\n1+1\n</think>\n<answer>\n2\n</answer>",
        "<think>\nhm\n</think>\n<answer>\n3\n</answer>",
    )
    tok = tiny_processor.tokenizer
    # A correct answer 52-60 tokens long: past the 48 tokens before the buffer, so it is penalised.
    long_good = next(
        r
        for k in range(1, 200)
        if 52
        <= len(
            tok(r := f"<think>\n{'one ' * k}\n</think>\n<answer>\n2\n</answer>", add_special_tokens=False)[
                "input_ids"
            ]
        )
        <= 60
    )
    responses = [good, bad, long_good, "no tags at all", bad, bad, bad, bad]
    group = np.array(["q0"] * 4 + ["q1"] * 4, dtype=object)  # q1: everyone wrong -> no signal
    data = _batch(tiny_processor.tokenizer, ["What is 1+1?"] * 8, responses, [["2"]] * 8)

    async def score_all():
        return [await manager.run_single(data[i : i + 1]) for i in range(len(data))]

    results = manager.loop.run_until_complete(score_all())  # the manager is bound to this loop
    extra = [r["reward_extra_info"] for r in results]
    assert [e["acc"] for e in extra] == [1, 0, 1, 0, 0, 0, 0, 0]  # filter_groups.metric=acc is present
    # The overlong buffer config reached the manager: only the long correct answer is penalised.
    assert [bool(e["overlong"]) for e in extra] == [False, False, True, False, False, False, False, False]
    scores = [r["reward_score"] for r in results]
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(-1.0)
    assert scores[3] == pytest.approx(-1.0)  # format gate
    assert 0.0 < scores[2] < 1.0

    rm_scores = manager_cls.assemble_rm_scores(data, scores)
    response_mask = data.batch["attention_mask"][:, data.batch["prompts"].size(1) :]
    advantages, _ = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=rm_scores, response_mask=response_mask, index=group, norm_adv_by_std_in_grpo=True
    )
    per_sample = (advantages * response_mask).sum(-1) / response_mask.sum(-1)
    assert per_sample[0] > 0 and per_sample[2] > 0  # correct answers pushed up
    assert per_sample[1] < 0 and per_sample[3] < 0  # wrong and badly formatted pushed down
    assert torch.allclose(per_sample[4:], torch.zeros(4), atol=1e-4)  # uniform group: no gradient signal
