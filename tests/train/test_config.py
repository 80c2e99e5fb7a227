"""Experiment config: YAML + overrides, with errors that name the key and its origin."""

from __future__ import annotations

import pytest
import yaml

from vlmrl.train.config import (
    ConfigError,
    ExperimentConfig,
    config_doc,
    dump_config,
    load_config,
)
from vlmrl.utils.overrides import parse_override


def _write(path, obj) -> str:
    path.write_text(yaml.safe_dump(obj) if not isinstance(obj, str) else obj)
    return str(path)


def test_valid_yaml_round_trips(tmp_path):
    src = _write(
        tmp_path / "exp.yaml",
        {
            "backend": "trl",
            "model": {"path": "/models/tiny", "dtype": "float32", "lora_rank": 8},
            "data": {
                "train_files": ["a.parquet", "b.parquet"],
                "mixed_policy": "native",
                "train_batch_size": 4,
            },
            "algorithm": {
                "ppo_mini_batch_size": 2,
                "clip_ratio_high": 0.3,
                "filter_groups": {"metric": "acc"},
            },
            "rollout": {"n": 4, "max_response_length": 4096},
            "reward": {"verifier": {"url": "http://127.0.0.1:8888/v1", "model": "xVerify-0.5B-I"}},
            "trainer": {"logger": ["console", "jsonl"], "experiment_name": "t1"},
        },
    )
    cfg = load_config(src)
    assert cfg.backend == "trl"
    assert cfg.model.lora_rank == 8
    assert cfg.data.train_files == ["a.parquet", "b.parquet"]
    assert cfg.algorithm.clip_ratio_high == 0.3
    assert cfg.algorithm.clip_ratio_low == 0.2  # default kept
    assert cfg.reward.verifier.model == "xVerify-0.5B-I"

    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(dump_config(cfg))
    again = load_config(dumped)
    assert again == cfg
    assert again.model_dump() == cfg.model_dump()


def test_overrides_apply_after_file_and_parse_values(tmp_path):
    src = _write(tmp_path / "exp.yaml", {"rollout": {"n": 16}})
    cfg = load_config(
        src, ["rollout.n=8", "algorithm.lr=2e-6", "trainer.logger=[console,wandb]", "model.path=x/y"]
    )
    assert cfg.rollout.n == 8
    assert cfg.algorithm.lr == pytest.approx(2e-6)
    assert cfg.trainer.logger == ["console", "wandb"]
    assert cfg.model.path == "x/y"


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    src = _write(tmp_path / "bad.yaml", {"rollout": {"n": 4, "temprature": 0.7}})
    with pytest.raises(ConfigError) as exc:
        load_config(src)
    msg = str(exc.value)
    assert "rollout.temprature" in msg
    assert "bad.yaml" in msg
    assert "unknown key" in msg


def test_unknown_top_level_section(tmp_path):
    src = _write(tmp_path / "bad.yaml", {"custom_reward_function": {"path": "x.py"}})
    with pytest.raises(ConfigError, match=r"bad\.yaml: custom_reward_function: unknown key"):
        load_config(src)


def test_wrong_type_in_file_names_key(tmp_path):
    src = _write(tmp_path / "bad.yaml", {"data": {"train_batch_size": "sixty-four"}})
    with pytest.raises(ConfigError) as exc:
        load_config(src)
    assert "data.train_batch_size" in str(exc.value)
    assert "sixty-four" in str(exc.value)
    assert "bad.yaml" in str(exc.value)


def test_bad_override_names_key_and_override(tmp_path):
    src = _write(tmp_path / "ok.yaml", {"rollout": {"n": 4}})
    with pytest.raises(ConfigError) as exc:
        load_config(src, ["rollout.temperature=hot"])
    msg = str(exc.value)
    assert "rollout.temperature" in msg
    assert "override 'rollout.temperature=hot'" in msg
    assert "ok.yaml" not in msg  # the file is not blamed for the override's mistake

    with pytest.raises(ConfigError, match=r"rollout\.nn: unknown key"):
        load_config(src, ["rollout.nn=3"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(src, ["rollout.n"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config(src, ["rollout.n.x=3"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("rollout.n=0", "rollout.n"),
        ("algorithm.clip_ratio_low=1.5", "algorithm.clip_ratio_low"),
        ("rollout.top_p=0", "rollout.top_p"),
        ("rollout.gpu_memory_utilization=1.2", "rollout.gpu_memory_utilization"),
        ("algorithm.lr=-1", "algorithm.lr"),
        ("backend=deepspeed", "backend"),
        ("data.mixed_policy=paint", "data.mixed_policy"),
    ],
)
def test_out_of_range_values_are_errors(override, key):
    with pytest.raises(ConfigError) as exc:
        load_config(None, [override])
    assert f"{key}:" in str(exc.value)


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="ppo_mini_batch_size"):
        load_config(None, ["data.train_batch_size=4", "algorithm.ppo_mini_batch_size=8"])
    with pytest.raises(ConfigError, match="overlong.len"):
        load_config(None, ["rollout.max_response_length=1024", "reward.overlong.len=2048"])
    # disabling the overlong buffer lifts the length check
    cfg = load_config(None, ["rollout.max_response_length=1024", "reward.overlong.enable=false"])
    assert cfg.reward.overlong.enable is False


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(_write(tmp_path / "list.yaml", "- a\n- b\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path / "broken.yaml", "rollout: {n: [\n"))
    assert load_config(_write(tmp_path / "empty.yaml", "")) == ExperimentConfig()


def test_parse_override_values():
    assert parse_override("a.b=1") == (["a", "b"], 1)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=x=y") == (["a"], "x=y")
    assert parse_override("a=") == (["a"], "")


def test_every_field_is_documented():
    rows = config_doc()
    keys = {r[0] for r in rows}
    assert {"rollout.n", "reward.verifier.url", "algorithm.filter_groups.metric", "trainer.nnodes"} <= keys
    undocumented = [r[0] for r in rows if not r[3]]
    assert undocumented == []


def test_reward_kwargs_carry_scores_and_verifier():
    cfg = load_config(None, ["reward.format_score=-0.5", "reward.verifier.url=http://127.0.0.1:9/v1"])
    kw = cfg.reward.reward_kwargs()
    assert kw["format_score"] == -0.5
    assert kw["correct_score"] == 1.0 and kw["incorrect_score"] == -1.0
    assert kw["verifier_url"] == "http://127.0.0.1:9/v1"
    assert "verifier_model" not in kw  # unset -> the reward reads $REWARD_MODEL_NAME


def test_raw_verl_key_as_override_blames_the_override_and_points_to_extra_overrides():
    from pathlib import Path

    from vlmrl.train.config import ConfigError, load_config

    text = Path(__file__).resolve().parents[2] / "configs" / "train" / "text.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(text, ["actor_rollout_ref.rollout.n=4"])
    message = str(info.value)
    assert "override 'actor_rollout_ref.rollout.n=4'" in message and f"{text}:" not in message
    assert "extra_overrides=[actor_rollout_ref.rollout.n=4]" in message
    # and that suggestion is accepted as given
    cfg = load_config(text, ["extra_overrides=[actor_rollout_ref.rollout.n=4]"])
    assert cfg.extra_overrides == ["actor_rollout_ref.rollout.n=4"]


def test_typo_gets_the_nearest_key():
    from vlmrl.train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"did you mean rollout\.temperature\?"):
        load_config(None, ["rollout.temprature=0.7"])
    with pytest.raises(ConfigError) as info:
        load_config(None, ["zzz.q=1"])
    assert "did you mean" not in str(info.value) and "vlmrl config doc" in str(info.value)
