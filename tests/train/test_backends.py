"""The one table of what each backend supports: refusals at config load, notes for the run summary."""

from __future__ import annotations

import pytest

from vlmrl.train.config import ConfigError, check_support, load_config


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["rollout.n=1"], "rollout.n=1: GRPO needs at least 2"),
        (["backend=trl", "rollout.n=1"], "rollout.n=1: GRPO needs at least 2"),
        (["model.freeze_vision_tower=true"], "model.freeze_vision_tower=true: not available on veRL"),
        (
            ["backend=trl", "algorithm.use_kl_in_reward=true"],
            "use_kl_in_reward=true: TRL has no KL-in-reward",
        ),
    ],
)
def test_refused_when_the_config_is_loaded(overrides, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(None, overrides)
    assert str(err.value).startswith("<defaults>: backend=")


def test_what_differs_is_a_note_and_defaults_pass():
    assert check_support(load_config(None, [])) == []
    cfg = load_config(
        None, ["backend=trl", "algorithm.filter_groups.enable=true", "algorithm.clip_ratio_c=3"]
    )
    notes = check_support(cfg)
    assert any(n.startswith("algorithm.filter_groups.enable=true: dynamic sampling") for n in notes)
    assert any(n.startswith("algorithm.clip_ratio_c=3.0: TRL has no dual-clip") for n in notes)
    assert load_config(None, ["rollout.n=1", "algorithm.adv_estimator=reinforce_plus_plus"]).rollout.n == 1
