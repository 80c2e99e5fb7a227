"""veRL 0.9.1's own trainer (`python -m verl.trainer.main_ppo`) on this CPU, end to end, run once.

One smoke run (vlmrl.train.verl.smoke) is shared by every test here, so veRL starts twice in all:
- the first launch trains 6 steps on `native` mixed data in a fixed order (2 text-only steps, 2
  image-only steps, 2 mixed steps) with a reward that varies per response, dynamic sampling on `acc`
  (rows whose ground truth is `evict` always score alike and must be evicted), and saves step 6;
- the second launch resumes (`trainer.resume_mode=auto`) for step 7 with vlmrl's real reward and the
  `dapo` manager's overlong buffer;
- veRL's model merger then exports the step-7 checkpoint, which must load and generate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TEST_REWARD = Path(__file__).with_name("verl_test_reward.py")
STEPS = 6

# (kind, ground truth) in dataloader order, two prompts a step. veRL's sync dynamic sampling
# (trainer/ppo/v1/replay_buffer.py) fetches prompts one at a time: a step whose pair holds no constant
# group trains on exactly that pair; a step with one `evict` row refills 2 prompts per evicted group,
# so it fetches the next two rows and trains on 2 of the 3 kept groups (which 2 is up to the order
# of a set) and discards the third. Every such trio below is of one kind, so the kind of every step
# is fixed: text, text, image, image, mixed, mixed.
ORDER = [
    ("text", "1001"),  # step 1: 2 of 1001-1003, `evict` evicted
    ("text", "evict"),
    ("text", "1002"),
    ("text", "1003"),
    ("text", "1004"),  # step 2
    ("text", "1005"),
    ("image", "evict"),  # step 3: 2 of 2001-2003
    ("image", "2001"),
    ("image", "2002"),
    ("image", "2003"),
    ("image", "2004"),  # step 4
    ("image", "2005"),
    ("text", "1006"),  # step 5
    ("image", "2006"),
    ("image", "2007"),  # step 6
    ("text", "1007"),
]
STEP_KINDS = ["text", "text", "image", "image", "mixed", "mixed"]


def _rows(path: Path) -> None:
    import random

    from vlmrl.data.build import build_from_examples
    from vlmrl.data.example import make_example
    from vlmrl.demo.synthetic import draw_shapes

    rng = random.Random(0)
    examples = []
    for i, (kind, answer) in enumerate(ORDER):
        if kind == "image":
            picture = draw_shapes({"circle": 2, "square": 1, "triangle": 0}, rng)
            examples.append(
                make_example("demo/count", i, "train", "<image>\nHow many circles?", [answer], [picture])
            )
        else:
            examples.append(make_example("demo/arithmetic", i, "train", f"What is {i} + 1?", [answer]))
    build_from_examples(examples, path, with_images=True, mixed_policy="native")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, tiny_vlm_path):
    from vlmrl.train.verl.smoke import SmokeSettings, run_smoke

    base = tmp_path_factory.mktemp("verl_cpu")
    data = base / "given"
    data.mkdir()
    _rows(data / "train.parquet")
    _rows(data / "val.parquet")
    dump = base / "rollouts"
    settings = SmokeSettings(
        config=ROOT / "configs" / "train" / "mixed.yaml",
        out_dir=base / "smoke",
        overrides=[
            f"data.train_files=[{data / 'train.parquet'}]",
            f"data.val_files=[{data / 'val.parquet'}]",
            "data.shuffle=false",
            "reward.verifier.url=null",
            "reward.verifier.model=null",
            "algorithm.lr=1e-3",
        ],
        smoke_model=None,
        train_rows=len(ORDER),
        val_rows=2,
        steps=STEPS,
        verl_args=[
            f"reward.custom_reward_function.path={TEST_REWARD}",
            "algorithm.filter_groups.enable=true",
            f"trainer.rollout_data_dir={dump}",
        ],
        resume_verl_args=[],
    )
    result = run_smoke(settings)
    return result, dump


def _rows_of(path: str) -> list[dict]:
    """JSON lines; veRL's file logger rows (`{"step", "data": {...}}`) flattened."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [{**r.pop("data"), **r} if isinstance(r.get("data"), dict) else r for r in rows]


def _by_step(rows: list[dict]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for row in rows:
        out.setdefault(int(row["step"]), {}).update(row)
    return out


def test_every_stage_ok(smoke_run):
    result, _ = smoke_run
    assert result.stages == {s: "ok" for s in result.stages}, result.stages
    assert result.ok and result.steps == STEPS + 1
    summary = json.loads(result.summary_path.read_text())
    assert summary["ok"] is True and summary["stages"]["export"] == "ok"


def test_text_image_and_mixed_steps_each_train_with_signal(smoke_run):
    result, dump = smoke_run
    metrics = _by_step(_rows_of(result.details["train_metrics"]))
    assert sorted(metrics) == list(range(1, STEPS + 1))
    kinds = {}
    for step in range(1, STEPS + 1):
        samples = _rows_of(str(dump / f"{step}.jsonl"))
        # veRL writes each ground truth as a list, or as its str() when it is an array.
        answers = " ".join(str(s["gts"]) for s in samples)
        assert "evict" not in answers, f"step {step} trained on a constant group"
        has_text = re.search(r"\b1\d{3}\b", answers) is not None
        has_image = re.search(r"\b2\d{3}\b", answers) is not None
        kinds[step] = "mixed" if has_text and has_image else "text" if has_text else "image"
        m = metrics[step]
        assert m["actor/grad_norm"] > 0, f"step {step}: zero gradient"
        assert m["critic/advantages/max"] > 0 > m["critic/advantages/min"], f"step {step}: no advantage"
    assert [kinds[step] for step in range(1, STEPS + 1)] == STEP_KINDS, kinds


def test_dynamic_sampling_evicts_constant_groups(smoke_run):
    result, _ = smoke_run
    rows = _rows_of(result.details["train_metrics"])
    evicted = sum(v for r in rows for k, v in r.items() if k.endswith("filter_groups/evicted_samples"))
    assert evicted >= 2, "both `evict` groups must be evicted"
    # each eviction refilled two prompts: one group too many per eviction, discarded
    surplus = sum(
        v for r in rows for k, v in r.items() if k.endswith("filter_groups/discarded_surplus_samples")
    )
    assert surplus == evicted, rows


def test_resume_continues_at_next_step_with_real_reward_and_overlong_penalty(smoke_run):
    result, _ = smoke_run
    assert result.details["resumed_steps"] == [STEPS + 1]
    (row,) = _rows_of(result.details["resume_metrics"])
    # The untrained model fails vlmrl's format gate (-1); only the dapo overlong penalty goes lower.
    assert row["critic/score/max"] <= -1.0
    assert row["critic/score/min"] < -1.0


def test_exported_checkpoint_loads_and_generates(smoke_run):
    result, _ = smoke_run
    hf = Path(result.details["exported_model"])
    assert (hf / "config.json").is_file()
    assert result.details["generated"]


#: Mean |log p(vLLM) - log p(actor)| per response token of one kind of row in a step. The rollout and
#: the update both run the same float32 weights here, so a kind whose rows the update sees otherwise
#: than vLLM did (other pixels, other M-RoPE positions) stands out by orders of magnitude.
ALIGNMENT_BOUND = 0.05


def test_update_sees_image_rows_as_the_rollout_did(smoke_run):
    """Per kind of row, the trained policy's log-probs of the sampled tokens match vLLM's.

    veRL's own check (`training/rollout_probs_diff_mean`) averages over the whole batch, where a
    misalignment on image rows only hides among text rows; vlmrl.train.verl.alignment logs it per kind.
    """
    result, _ = smoke_run
    metrics = _by_step(_rows_of(result.details["train_metrics"]))
    diffs: dict[str, list[float]] = {"text": [], "image": []}
    for step in range(1, STEPS + 1):
        m = metrics[step]
        for kind, found in diffs.items():
            if m.get(f"alignment/{kind}/rows", 0) > 0:
                found.append(m[f"alignment/{kind}/logprob_diff_mean"])
    assert diffs["text"] and diffs["image"], f"steps without both kinds: {diffs}"
    worst = {kind: max(found) for kind, found in diffs.items()}
    assert worst["image"] < ALIGNMENT_BOUND, f"image rows out of step with the rollout: {diffs}"
    assert worst["text"] < ALIGNMENT_BOUND, f"text rows out of step with the rollout: {diffs}"
