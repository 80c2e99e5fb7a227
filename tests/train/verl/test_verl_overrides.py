"""Presets -> veRL 0.9.1 overrides, composed with veRL's own Hydra config and validated on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vlmrl.train.config import ConfigError, load_config
from vlmrl.train.verl.overrides import (
    PATCH_MODULE,
    build_overrides,
    check_raw_overrides,
    format_value,
    reward_function_path,
    to_hydra_args,
)
from vlmrl.train.verl.validate import validate

PRESETS_DIR = Path(__file__).resolve().parents[3] / "configs" / "train"
# veRL presets only: TRL presets (backend: trl) are checked in test_trl_presets.py.
PRESETS = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if load_config(p).backend == "verl")


def _compose(cfg):
    overrides = build_overrides(cfg)
    args = [o.render() for o in overrides] + list(cfg.extra_overrides)
    return validate(args, overrides, extra=cfg.extra_overrides), overrides


def test_every_expected_preset_exists():
    assert {"text", "multimodal", "mixed", "mixed_2node", "single_gpu_3b"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_validates_and_lands_where_verl_reads(preset):
    path = PRESETS_DIR / f"{preset}.yaml"
    first_lines = path.read_text(encoding="utf-8").splitlines()[:8]
    assert first_lines[0].startswith("# "), "presets open with a comment saying what they are for"
    assert any(f"vlmrl train configs/train/{preset}.yaml" in line for line in first_lines)

    cfg = load_config(path)
    verl, _ = _compose(cfg)

    # The reward function: our module, named by module (no install path), loaded by veRL's own loader.
    crf = verl.reward.custom_reward_function
    assert crf.path == reward_function_path() == "pkg://vlmrl.reward.verl_entry"
    from verl.utils.import_utils import load_extern_object

    from vlmrl.reward import verl_entry

    assert load_extern_object(crf.path, crf.name) is verl_entry.compute_score
    assert crf.name == "compute_score"
    assert OmegaConf.to_container(crf.reward_kwargs) == cfg.reward.reward_kwargs()
    # The dapo manager reads config.reward.reward_kwargs.{overlong_buffer_cfg,max_resp_len}.
    assert verl.reward.reward_manager.name == "dapo"
    rk = verl.reward.reward_kwargs
    assert rk.overlong_buffer_cfg.enable is True
    assert rk.overlong_buffer_cfg.len == cfg.reward.overlong.len
    assert rk.overlong_buffer_cfg.penalty_factor == cfg.reward.overlong.penalty_factor
    assert rk.max_resp_len == verl.data.max_response_length == cfg.rollout.max_response_length
    # Dynamic sampling on acc; clip-higher; token-mean; no KL; GRPO.
    assert verl.algorithm.filter_groups.enable is True
    assert verl.algorithm.filter_groups.metric == "acc"
    actor = verl.actor_rollout_ref.actor
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.clip_ratio_c) == (0.2, 0.28, 10.0)
    assert actor.loss_agg_mode == "token-mean"
    assert actor.use_kl_loss is False and verl.algorithm.use_kl_in_reward is False
    assert actor.optim.clip_grad == cfg.algorithm.grad_clip
    assert verl.algorithm.adv_estimator == "grpo"
    assert verl.trainer.resume_mode == "auto"
    assert verl.actor_rollout_ref.model.external_lib == PATCH_MODULE
    # The old top-level keys stay at veRL's null defaults: nothing of ours went there.
    assert verl.custom_reward_function.path is None
    assert verl.reward_model.reward_manager is None


def test_mixed_presets_use_native_policy_and_cluster_sizes():
    mixed = load_config(PRESETS_DIR / "mixed.yaml")
    two = load_config(PRESETS_DIR / "mixed_2node.yaml")
    assert mixed.data.mixed_policy == two.data.mixed_policy == "native"
    assert (mixed.trainer.nnodes, mixed.trainer.n_gpus_per_node) == (1, 8)
    assert two.trainer.nnodes >= 2
    single = load_config(PRESETS_DIR / "single_gpu_3b.yaml")
    assert single.trainer.n_gpus_per_node == 1 and "3B" in single.model.path


@pytest.mark.parametrize(
    ("override", "replacement"),
    [
        ("custom_reward_function.path=/x/reward.py", "reward.custom_reward_function"),
        ("custom_reward_function.name=compute_score", "reward.custom_reward_function"),
        ("reward_model.reward_manager=dapo", "reward.reward_manager.name"),
        ("+reward_model.overlong_buffer.enable=true", "+reward.reward_kwargs.overlong_buffer_cfg"),
        ("reward_model.overlong_buffer.len=4096", "+reward.reward_kwargs.max_resp_len"),
        ("actor_rollout_ref.actor.grad_clip=0.5", "actor_rollout_ref.actor.optim.clip_grad"),
        ("algorithm.filter_groups.max_num_gen_batches=10", "max_inflight_gen_batches"),
        ("actor_rollout_ref.actor.freeze_vision_tower=true", "never reads it"),
    ],
)
def test_silently_ignored_keys_are_refused_with_the_replacement(override, replacement):
    cfg = load_config(PRESETS_DIR / "text.yaml", [f"extra_overrides=['{override}']"])
    with pytest.raises(ConfigError) as err:
        to_hydra_args(cfg)
    message = str(err.value)
    assert override.split("=")[0].lstrip("+") in message
    assert "silently ignored" in message and replacement in message


def test_legacy_keys_really_are_ignored_by_verl():
    """Why we refuse them: Hydra accepts the old keys and veRL's reward section keeps its defaults."""
    from vlmrl.train.verl.validate import compose

    cfg = compose(["custom_reward_function.path=/x/r.py", "reward_model.reward_manager=dapo"])
    assert cfg.custom_reward_function.path == "/x/r.py"
    assert cfg.reward.custom_reward_function.path is None
    assert cfg.reward.reward_manager.name == "naive"


def test_undeclared_plus_addition_is_refused_but_a_real_key_passes(tmp_path):
    with pytest.raises(ConfigError, match=r"\+trainer.my_typo"):
        check_raw_overrides(["+trainer.my_typo=1"])
    check_raw_overrides(["trainer.log_val_generations=4", "+reward.reward_kwargs.extra=1"])


def test_extra_overrides_flow_through_validation(tmp_path):
    cfg = load_config(PRESETS_DIR / "text.yaml", ["extra_overrides=[trainer.log_val_generations=4]"])
    verl, _ = _compose(cfg)
    assert verl.trainer.log_val_generations == 4
    bad = load_config(PRESETS_DIR / "text.yaml", ["extra_overrides=[trainer.log_val_generationz=4]"])
    with pytest.raises(ConfigError, match="log_val_generationz"):
        _compose(bad)


def test_verl_validate_config_errors_become_config_errors():
    # 64 prompts x 16 responses do not split over 7 GPUs: veRL's own validate_config says so.
    cfg = load_config(PRESETS_DIR / "text.yaml", ["trainer.n_gpus_per_node=7"])
    with pytest.raises(ConfigError, match="validate_config"):
        _compose(cfg)


def test_awkward_values_survive_hydra_quoting():
    cfg = load_config(
        PRESETS_DIR / "text.yaml",
        [
            "data.train_files=['/data/my runs/train, v2.parquet']",
            "trainer.experiment_name=1e-6",
            "reward.verifier.model=it's=ok",
            "reward.verifier.url=http://127.0.0.1:8888/v1?x=[1]",
        ],
    )
    verl, _ = _compose(cfg)
    assert list(verl.data.train_files) == ["/data/my runs/train, v2.parquet"]
    assert verl.trainer.experiment_name == "1e-6"
    kwargs = verl.reward.custom_reward_function.reward_kwargs
    assert kwargs.verifier_model == "it's=ok"
    assert kwargs.verifier_url == "http://127.0.0.1:8888/v1?x=[1]"
    assert format_value(True) == "true" and format_value(None) == "null"


def test_engines_verl_cannot_run_are_refused():
    # Refused when the config is loaded (backends.SUPPORT), before any override is built.
    with pytest.raises(ConfigError, match="rollout.engine"):
        load_config(PRESETS_DIR / "text.yaml", ["rollout.engine=hf"])
    with pytest.raises(ConfigError, match="freeze_vision_tower"):
        load_config(PRESETS_DIR / "text.yaml", ["model.freeze_vision_tower=true"])
    with pytest.raises(ConfigError, match="dapo"):
        load_config(PRESETS_DIR / "text.yaml", ["reward.manager=naive"])


def test_resume_path_must_name_a_global_step_folder(tmp_path):
    base = ["trainer.resume_mode=resume_path"]
    with pytest.raises(ConfigError, match="needs trainer.resume_from_path"):
        build_overrides(load_config(PRESETS_DIR / "text.yaml", base))
    with pytest.raises(ConfigError, match="global_step_N"):
        build_overrides(
            load_config(PRESETS_DIR / "text.yaml", [*base, f"trainer.resume_from_path={tmp_path}"])
        )
    ok = load_config(
        PRESETS_DIR / "text.yaml", [*base, f"trainer.resume_from_path={tmp_path}/global_step_40"]
    )
    rendered = [o.render() for o in build_overrides(ok)]
    assert f"trainer.resume_from_path={tmp_path}/global_step_40" in rendered


def test_hydra_run_dir_goes_under_the_output_dir(tmp_path):
    out = tmp_path / "my runs" / "exp, 1"
    cfg = load_config(PRESETS_DIR / "text.yaml", [f"trainer.output_dir={out}"])
    args = to_hydra_args(cfg)
    assert args.count(f"hydra.run.dir='{out / 'hydra'}'") == 1, [a for a in args if a.startswith("hydra.")]
    # the composed veRL config is untouched by Hydra's own setting
    verl = validate(args, build_overrides(cfg))
    assert verl.trainer.default_local_dir == str(out / "checkpoints")
    # a user's own hydra.run.dir replaces ours
    mine = load_config(
        PRESETS_DIR / "text.yaml", [f"trainer.output_dir={out}", "extra_overrides=[hydra.run.dir=/x]"]
    )
    assert [a for a in to_hydra_args(mine) if a.startswith("hydra.run.dir")] == ["hydra.run.dir=/x"]
