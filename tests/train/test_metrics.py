"""Per-kind, per-source and judge metrics (`reward_metrics`): the numbers, and TRL's reward function
logging them with vlmrl's real reward against a scripted judge on loopback."""

from __future__ import annotations

import pytest

from vlmrl.data.rows import row_modality
from vlmrl.reward import verifier as vf
from vlmrl.testing.scripted_judge import Script, ScriptedJudge
from vlmrl.train.metrics import contract_row, reward_metrics
from vlmrl.train.trl.rewards import make_trl_reward


def _r(score, acc, format_ok=1, called=0, latency=0.0, error=0, overturned=0):
    return {
        "score": score,
        "acc": acc,
        "format_ok": format_ok,
        "verifier_called": called,
        "verifier_latency_s": latency,
        "verifier_error": error,
        "verifier_overturned": overturned,
    }


def test_groups_by_kind_and_source():
    results = [_r(1.0, 1), _r(-1.0, 0, format_ok=0), _r(1.0, 1), _r(0.0, 0)]
    out = reward_metrics(
        results,
        ["text", "image", "image", "image"],
        ["gsm8k", "geo/3k", "geo/3k", "mathvista"],
        [10, 20, 30, 40],
    )
    assert out["modality/text/count"] == 1 and out["modality/image/count"] == 3
    assert out["modality/text/reward_mean"] == 1.0
    assert out["modality/image/reward_mean"] == pytest.approx(0.0)
    assert out["modality/image/acc_mean"] == pytest.approx(1 / 3)
    assert out["modality/image/format_rate"] == pytest.approx(2 / 3)
    assert out["modality/image/response_length_mean"] == pytest.approx(30.0)
    # a source named with a slash keeps it
    assert out["source/geo/3k/count"] == 2 and out["source/geo/3k/format_rate"] == 0.5
    assert out["source/mathvista/acc_mean"] == 0.0
    assert (out["judge/calls"], out["judge/failures"], out["judge/overturned"]) == (0, 0, 0)
    assert "judge/latency_p50_s" not in out  # nobody was asked: no latency to report


def test_a_kind_absent_from_the_batch_has_no_keys_and_missing_fields_are_left_out():
    out = reward_metrics([{"score": 0.5}, {"score": 0.25}], ["text", "text"], ["a", "a"])
    assert out == {
        "modality/text/count": 2.0,
        "modality/text/reward_mean": 0.375,
        "source/a/count": 2.0,
        "source/a/reward_mean": 0.375,
    }


def test_judge_percentiles_failures_and_overturns():
    latencies = [0.1, 0.2, 0.3, 0.4, 1.0]
    results = [_r(1.0, 1, called=1, latency=t, overturned=int(t == 0.1)) for t in latencies]
    results.append(_r(-1.0, 0, called=1, latency=2.0, error=1))
    results.append(_r(1.0, 1))  # decided by the rules
    out = reward_metrics(results, ["text"] * 7, ["s"] * 7)
    assert (out["judge/calls"], out["judge/failures"], out["judge/overturned"]) == (6, 1, 1)
    assert out["judge/latency_p50_s"] == pytest.approx(0.35)
    assert out["judge/latency_p95_s"] == pytest.approx(1.75)


def test_misaligned_inputs_are_an_error():
    with pytest.raises(ValueError, match="2 results, 1 modalities"):
        reward_metrics([{"score": 1}, {"score": 1}], ["text"], ["a", "a"])


def test_row_modality_reads_the_question_then_the_images():
    assert row_modality({"question": "<image>\nHow many?"}) == "image"
    # the `blank` policy's text row carries an image, but its question shows none
    assert row_modality({"question": "What is 2+2?"}, has_images=True) == "text"
    assert row_modality({}, has_images=True) == "image"
    assert row_modality(None) == "text"


def test_contract_row_keeps_the_group_and_judge_keys():
    logs = {"loss": 0.1, "modality/image/acc_mean": 0.5, "source/a/b/count": 4.0, "judge/calls": 3.0}
    row = contract_row(2, logs, None)
    assert row["modality/image/acc_mean"] == 0.5 and row["source/a/b/count"] == 4.0
    assert row["judge/calls"] == 3.0


@pytest.fixture()
def _fresh_verifier(monkeypatch):
    monkeypatch.delenv("REWARD_MODEL_URL", raising=False)
    monkeypatch.delenv("REWARD_MODEL_NAME", raising=False)
    vf.reset_state()
    yield
    vf.reset_state()


def _wrap(answer: str) -> str:
    return f"<think>\nlooking\n</think>\n<answer>\n{answer}\n</answer>"


def _call(reward, completions, ground_truths, questions, images):
    logged: dict[str, float] = {}
    n = len(completions)
    reward(
        prompts=[[{"role": "user", "content": "q"}]] * n,
        completions=completions,
        completion_ids=[[7] * (3 + i) for i in range(n)],
        ground_truth=ground_truths,
        data_source=["demo/text" if "<image>" not in q else "demo/image" for q in questions],
        extra_info=[{"question": q} for q in questions],
        images=images,
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    return logged


def test_trl_reward_logs_kinds_and_the_judge(_fresh_verifier):
    questions = ["How many apples?", "How many apples?", "<image>\nHow many circles?", "<image>\nHow many?"]
    completions = [_wrap("five apples"), _wrap("\\boxed{5}"), _wrap("six"), "no format"]
    with ScriptedJudge(Script(delay_s=0.05)) as judge:
        reward = make_trl_reward(verifier_url=judge.url, verifier_model=judge.model_name)
        logged = _call(
            reward, completions, [["five"], ["5"], ["five"], ["5"]], questions, [[], [], ["img"], ["img"]]
        )
        assert judge.script.requests == 2
    # the rules decide "\boxed{5}" and the unformatted one; the judge is asked about "five apples"
    # (right: the rules had it wrong, so it overturned them) and "six" (wrong: it agreed)
    assert [r["verdict"] for r in reward.last_results] == ["verifier", "rule", "verifier", "format"]
    assert (logged["judge/calls"], logged["judge/overturned"], logged["judge/failures"]) == (2, 1, 0)
    assert logged["judge/latency_p50_s"] >= 0.05  # the scripted judge waits 0.05 s per request
    assert logged["modality/text/acc_mean"] == 1.0 and logged["modality/image/acc_mean"] == 0.0
    assert logged["modality/image/format_rate"] == 0.5
    assert logged["modality/text/response_length_mean"] == 3.5  # completion_ids of 3 and 4 tokens
    assert logged["source/demo/image/count"] == 2


def test_trl_reward_counts_judge_failures(_fresh_verifier):
    with ScriptedJudge(Script(mode="error500")) as judge:
        reward = make_trl_reward(
            verifier_url=judge.url, verifier_model=judge.model_name, verifier_max_retries=0
        )
        logged = _call(reward, [_wrap("five apples")], [["five"]], ["How many apples?"], [[]])
    assert (logged["judge/calls"], logged["judge/failures"], logged["judge/overturned"]) == (1, 1, 0)
