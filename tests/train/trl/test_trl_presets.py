"""Every training preset documents itself; TRL presets map cleanly onto TRL's GRPOConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmrl.train.config import load_config
from vlmrl.train.trl import config as trl_config

PRESETS_DIR = Path(__file__).resolve().parents[3] / "configs" / "train"
ALL_PRESETS = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
TRL_PRESETS = [p for p in ALL_PRESETS if load_config(PRESETS_DIR / f"{p}.yaml").backend == "trl"]


@pytest.mark.parametrize("preset", ALL_PRESETS)
def test_preset_opens_with_purpose_and_command(preset):
    lines = (PRESETS_DIR / f"{preset}.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and len(lines[0]) > 20, "open with what the preset is for"
    assert any(f"configs/train/{preset}.yaml" in line for line in lines[:10]), "name the command that runs it"


def test_trl_presets_exist():
    assert {"demo", "single_gpu_trl"} <= set(TRL_PRESETS)


@pytest.mark.parametrize("preset", TRL_PRESETS)
def test_trl_preset_maps_onto_grpo_config(preset, tmp_path):
    cfg = load_config(PRESETS_DIR / f"{preset}.yaml", ["trainer.device=cpu"])
    args, notes = trl_config.build_grpo_config(cfg, output_dir=tmp_path)
    assert args.num_generations == cfg.rollout.n
    assert args.max_completion_length == cfg.rollout.max_response_length
    assert args.epsilon == cfg.algorithm.clip_ratio_low
    assert args.epsilon_high == cfg.algorithm.clip_ratio_high
    assert args.learning_rate == cfg.algorithm.lr
    assert cfg.algorithm.loss_agg_mode == "token-mean" and args.loss_type == "dapo"  # DAPO's loss
    assert isinstance(notes, list)
