"""The reward inside the engines: veRL 0.9.1's reward loop (naive, dapo managers) and a TRL reward function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vlmrl.reward
from vlmrl.reward import verifier as vf
from vlmrl.testing.scripted_judge import ScriptedJudge
from vlmrl.train.trl.rewards import completion_text, make_trl_reward

VERL_ENTRY = Path(vlmrl.reward.__file__).with_name("verl_entry.py")
KEYS = {
    "score",
    "acc",
    "format_ok",
    "pred",
    "verdict",
    "verifier_error",
    "verifier_called",
    "verifier_latency_s",
    "verifier_overturned",
}

RESPONSES = [
    ("<think>\n1+1\n</think>\n<answer>\n\\boxed{2}\n</answer>", ["2"]),  # right
    ("<think>\nhmm\n</think>\n<answer>\n3\n</answer>", ["2"]),  # wrong
    ("the answer is 2", ["2"]),  # bad format
    ("<think>\nroots\n</think>\n<answer>\n\\sqrt{8}\n</answer>", ["2\\sqrt{2}"]),  # math-verify
    ("<think>\ncount\n</think>\n<answer>\nfive apples\n</answer>", ["five"]),  # needs the verifier
]


def _verl_config(tiny_vlm_path: Path, manager: str, reward_kwargs: dict, overlong: bool):
    import verl.trainer.config as verl_config
    from hydra import compose, initialize_config_dir

    overrides = [
        f"actor_rollout_ref.model.path={tiny_vlm_path}",
        f"reward.custom_reward_function.path={VERL_ENTRY}",
        "reward.custom_reward_function.name=compute_score",
        f"reward.reward_manager.name={manager}",
    ]
    overrides += [f"+reward.custom_reward_function.reward_kwargs.{k}={v}" for k, v in reward_kwargs.items()]
    if overlong:
        overrides += [
            "+reward.reward_kwargs.overlong_buffer_cfg.enable=True",
            "+reward.reward_kwargs.overlong_buffer_cfg.len=8",
            "+reward.reward_kwargs.overlong_buffer_cfg.penalty_factor=1.0",
            "+reward.reward_kwargs.overlong_buffer_cfg.log=True",
            "+reward.reward_kwargs.max_resp_len=40",
        ]
    with initialize_config_dir(config_dir=str(Path(verl_config.__file__).parent), version_base=None):
        return compose("ppo_trainer", overrides=overrides)


def _data_proto(tokenizer, rows):
    """A rollout batch as veRL's agent loop hands it to the reward loop (left-padded prompts)."""
    import torch
    from verl import DataProto

    prompt_len, resp_len = 8, 40
    prompts, responses, masks = [], [], []
    for text, _ in rows:
        p_ids = tokenizer("Question: 1+1?", add_special_tokens=False)["input_ids"][-prompt_len:]
        r_ids = tokenizer(text, add_special_tokens=False)["input_ids"][:resp_len]
        pad = tokenizer.pad_token_id
        prompts.append([pad] * (prompt_len - len(p_ids)) + p_ids)
        responses.append(r_ids + [pad] * (resp_len - len(r_ids)))
        masks.append(
            [0] * (prompt_len - len(p_ids))
            + [1] * len(p_ids)
            + [1] * len(r_ids)
            + [0] * (resp_len - len(r_ids))
        )
    n = len(rows)
    return DataProto.from_dict(
        tensors={
            "prompts": torch.tensor(prompts),
            "responses": torch.tensor(responses),
            "attention_mask": torch.tensor(masks),
            "input_ids": torch.cat([torch.tensor(prompts), torch.tensor(responses)], dim=1),
        },
        non_tensors={
            "data_source": np.array(["test"] * n, dtype=object),
            "reward_model": np.array(
                [{"style": "rule", "ground_truth": np.array(gt, dtype=object)} for _, gt in rows],
                dtype=object,
            ),
            "extra_info": np.array(
                [
                    {"index": i, "question": "How many?", "answer_type": "number", "choices": []}
                    for i in range(n)
                ],
                dtype=object,
            ),
        },
    )


def _run_reward_loop(config, data):
    """veRL's own RewardLoopWorker (the class its Ray actors wrap), run in this process."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.utils.ray_utils import get_event_loop

    worker = RewardLoopWorker(config)
    outputs = get_event_loop().run_until_complete(worker.compute_score_batch(data))
    scores = [o["reward_score"] for o in outputs]
    rm_scores = type(worker.reward_manager).assemble_rm_scores(data, scores)
    # RewardLoopManager.compute_rm_score keys every sample's extras by the first sample's keys.
    infos = [o["reward_extra_info"] for o in outputs]
    extras = {k: np.array([info[k] for info in infos]) for k in infos[0]}
    return worker, outputs, rm_scores, extras


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("REWARD_MODEL_URL", raising=False)
    monkeypatch.delenv("REWARD_MODEL_NAME", raising=False)
    vf.reset_state()


@pytest.mark.slow
@pytest.mark.parametrize("manager", ["naive", "dapo"])
def test_verl_reward_loop_with_our_compute_score(tiny_vlm_path, manager):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_vlm_path)
    data = _data_proto(tokenizer, RESPONSES)
    with ScriptedJudge() as judge:
        kwargs = {"verifier_url": judge.url, "verifier_model": judge.model_name, "verifier_timeout_s": 10}
        config = _verl_config(tiny_vlm_path, manager, kwargs, overlong=manager == "dapo")
        worker, outputs, rm_scores, extras = _run_reward_loop(config, data)
        verifier_calls = judge.script.requests
    assert type(worker.reward_manager).__name__ == (
        "DAPORewardManager" if manager == "dapo" else "NaiveRewardManager"
    )
    assert worker.reward_manager.is_async_reward_score  # veRL awaits our async def in its loop
    assert set(extras) >= KEYS
    assert list(extras["acc"]) == [1, 0, 0, 1, 1]
    assert list(extras["format_ok"]) == [1, 1, 0, 1, 1]
    assert list(extras["verdict"]) == ["rule", "rule", "format", "rule", "verifier"]
    assert list(extras["verifier_error"]) == [0, 0, 0, 0, 0]
    assert verifier_calls == 1  # only the answer the rules could not decide
    base = np.array([1.0, -1.0, -1.0, 1.0, 1.0])
    scores = np.array([o["reward_score"] for o in outputs], dtype=float)
    if manager == "dapo":
        # Overlong buffer: responses longer than max_resp_len - len = 32 tokens get a linear penalty.
        assert "overlong_reward" in extras
        assert np.allclose(scores, base + extras["overlong_reward"].astype(float))
    else:
        assert np.allclose(scores, base)
    # The score sits on each response's last valid token.
    assert np.allclose(rm_scores.sum(dim=1).numpy(), scores)


@pytest.mark.slow
def test_verl_dapo_overlong_penalty_applies(tiny_vlm_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_vlm_path)
    long_think = "step " * 30
    rows = [(f"<think>\n{long_think}\n</think>\n<answer>\n2\n</answer>", ["2"])]
    data = _data_proto(tokenizer, rows)
    config = _verl_config(tiny_vlm_path, "dapo", {"correct_score": 1.0}, overlong=True)
    _, outputs, _, extras = _run_reward_loop(config, data)
    # Truncated at 40 tokens, the response lost its </answer>: a format failure, then penalised.
    assert extras["verdict"][0] == "format"
    assert extras["overlong_reward"][0] < 0
    assert outputs[0]["reward_score"] == pytest.approx(-1.0 + extras["overlong_reward"][0])


def test_verl_loads_the_entry_file_by_path():
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": str(VERL_ENTRY),
                    "name": "compute_score",
                    "reward_kwargs": {"correct_score": 3.0, "format_score": -2.0},
                }
            }
        }
    )
    fn = get_custom_reward_fn(config)
    import asyncio
    import inspect

    assert inspect.iscoroutinefunction(fn)
    right = asyncio.run(
        fn(
            data_source="s",
            solution_str="<think>a</think><answer>2</answer>",
            ground_truth=["2"],
            extra_info={},
        )
    )
    bad = asyncio.run(
        fn(data_source="s", solution_str="2", ground_truth=["2"], extra_info=None, reward_router_address=None)
    )
    assert (right["score"], bad["score"]) == (3.0, -2.0)


# --- TRL -----------------------------------------------------------------------------------------


def test_completion_text_forms():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "abc"}]) == "abc"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "abc"}]}]) == "abc"


def test_trl_reward_function_scores_and_logs():
    reward = make_trl_reward(correct_score=1.0, incorrect_score=0.0, format_score=-1.0)
    assert reward.__name__ == "math_reward"
    metrics: dict[str, float] = {}
    extra: dict[str, list] = {}
    completions = [
        [{"role": "assistant", "content": "<think>a</think><answer>\\boxed{2}</answer>"}],
        [{"role": "assistant", "content": "<think>a</think><answer>3</answer>"}],
        [{"role": "assistant", "content": "2"}],
    ]
    prompts = [[{"role": "user", "content": [{"type": "text", "text": "1+1?"}]}]] * 3
    scores = reward(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1], [2], [3]],
        ground_truth=[["2"], np.array(["2"]), ["2"]],
        data_source=["t"] * 3,
        extra_info=[{"question": "1+1?"}] * 3,
        trainer_state=None,
        log_metric=lambda name, value: metrics.__setitem__(name, value),
        log_extra=lambda column, values: extra.__setitem__(column, values),
    )
    assert scores == [1.0, 0.0, -1.0]
    assert [r["verdict"] for r in reward.last_results] == ["rule", "rule", "format"]
    assert metrics["acc"] == pytest.approx(1 / 3)
    assert metrics["format_rate"] == pytest.approx(2 / 3)
    assert metrics["verifier_error_rate"] == 0
    assert metrics["verdict_format"] == pytest.approx(1 / 3)
    assert extra["pred"] == ["2", "3", ""]


def test_trl_reward_rejects_misaligned_columns():
    reward = make_trl_reward()
    with pytest.raises(ValueError, match="ground_truth"):
        reward(prompts=["p"] * 2, completions=["a", "b"], ground_truth=[["1"]])
