"""Contract: files from the text, multimodal and mixed (blank, native) presets load in veRL's RLHFDataset."""

from __future__ import annotations

from pathlib import Path

import datafix
import pyarrow.parquet as pq
import pytest

from vlmrl.data.build import build_recipe
from vlmrl.data.recipe import load_recipe

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def _build_preset(preset: str, root: Path, paths: dict[str, Path]) -> Path:
    out = root / preset
    recipe = load_recipe(
        CONFIGS / f"{preset}.yaml",
        [f"outputs.{name}.path={out / name}.parquet" for name in ("train", "val")] + ["workers=1"],
        {k: str(paths[k]) for k in ("skywork", "mmk12", "aime24", "math500") if k in _sources(preset)},
    )
    report = build_recipe(recipe)
    assert all(o.balanced() for o in report.outputs)
    return out / "train.parquet"


def _sources(preset: str) -> set[str]:
    import yaml

    return set(yaml.safe_load((CONFIGS / f"{preset}.yaml").read_text())["sources"])


@pytest.fixture(scope="module")
def fixture_paths(tmp_path_factory) -> dict[str, Path]:
    return datafix.all_sources(tmp_path_factory.mktemp("sources"))


@pytest.mark.parametrize("preset", ["text", "multimodal", "mixed", "mixed_native"])
def test_preset_loads_in_verl_rlhf_dataset(preset, fixture_paths, tmp_path, tiny_processor):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    train = _build_preset(preset, tmp_path, fixture_paths)
    table = pq.read_table(train)
    expected_images = (
        [len(r) for r in table.column("images").to_pylist()] if "images" in table.column_names else None
    )
    if preset == "text":
        assert expected_images is None
    elif preset == "mixed":
        assert all(n == 1 for n in expected_images)  # every text row got its blank image
    elif preset == "mixed_native":
        assert 0 in expected_images and 1 in expected_images

    config = OmegaConf.create(
        {
            "cache_dir": str(tmp_path / "verl-cache"),
            "prompt_key": "prompt",
            "image_key": "images",
            "max_prompt_length": 100_000,
            "filter_overlong_prompts": True,  # runs the processor over every row: a bad row would drop out
            "filter_overlong_prompts_workers": None,
        }
    )
    ds = RLHFDataset(str(train), tiny_processor.tokenizer, config, processor=tiny_processor)
    assert len(ds) == table.num_rows
    for i in range(len(ds)):
        item = ds[i]
        parts = item["raw_prompt"][0]["content"]
        n_images = (
            sum(1 for p in parts if isinstance(p, dict) and p.get("type") == "image")
            if isinstance(parts, list)
            else 0
        )
        assert n_images == (expected_images[i] if expected_images else 0)
        assert item["reward_model"]["ground_truth"]
        assert item["extra_info"]["answer_type"] in {"number", "expression", "choice", "text"}
