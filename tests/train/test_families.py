"""Model families: Qwen3-VL beside Qwen2.5-VL in the token budget, `data inspect`, preflight and the
smoke run's choice of tiny model, all from one table (vlmrl.tiny.SUPPORTED)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.data.build import build_from_examples
from vlmrl.data.example import Example
from vlmrl.data.images import family_vision_defaults, vision_settings
from vlmrl.data.rows import read_rows
from vlmrl.train.budget import model_arch, render_budget, token_budget
from vlmrl.train.config import load_config
from vlmrl.train.preflight import run_preflight

PRESETS_DIR = Path(__file__).resolve().parents[2] / "configs" / "train"
runner = CliRunner()
#: (width, height): photos, a wide strip, a tall strip, tiny and huge images
SIZES = [(640, 480), (1920, 1080), (96, 72), (37, 1000), (1000, 30), (28, 28), (4000, 3000), (333, 777)]


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _processor_tokens(image_processor, width: int, height: int) -> int:
    grid = image_processor(images=[Image.new("RGB", (width, height))], return_tensors="pt")["image_grid_thw"][
        0
    ]
    return int(grid.prod()) // image_processor.merge_size**2


def test_vision_tokens_follow_the_qwen3_vl_processor_for_every_size(tiny_qwen3_vl_path):
    from transformers import AutoProcessor, Qwen2VLImageProcessor

    tiny = AutoProcessor.from_pretrained(tiny_qwen3_vl_path)
    settings = vision_settings(tiny)
    assert (settings.patch, settings.merge) == (16, 2)  # read from the processor
    # The published Qwen3-VL processor settings (used for a hub id not on this machine) against a
    # processor built with them: the same count for every size.
    published = Qwen2VLImageProcessor(
        patch_size=16,
        merge_size=2,
        temporal_patch_size=2,
        size={"shortest_edge": 65536, "longest_edge": 16777216},
    )
    qwen3 = family_vision_defaults("qwen3_vl")
    qwen25 = family_vision_defaults("qwen2_5_vl")
    differs = 0
    for w, h in SIZES:
        assert settings.tokens(w, h) == _processor_tokens(tiny.image_processor, w, h), (w, h)
        assert qwen3.tokens(w, h) == _processor_tokens(published, w, h), (w, h)
        differs += qwen25.tokens(w, h) != qwen3.tokens(w, h)
    assert differs >= len(SIZES) - 1  # Qwen2.5-VL's rule would count them wrong


def test_budget_counts_qwen3_vl_prompts_as_its_processor_does(tiny_qwen3_vl_path, tmp_path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen3_vl_path)
    examples = [Example("t", 0, "train", "What is 1 + 2?", ["3"], answer_type="number")]
    for i, (w, h) in enumerate(SIZES[:5], start=1):
        examples.append(
            Example("t", i, "train", "<image>How many?", ["3"], images=[_png(w, h)], answer_type="number")
        )
    path = tmp_path / "train.parquet"
    build_from_examples(examples, path, with_images=True, mixed_policy="native", name="train")
    cfg = load_config(
        PRESETS_DIR / "qwen3vl_single_gpu.yaml",
        [f"model.path={tiny_qwen3_vl_path}", f"data.train_files=[{path}]", "data.max_pixels=null"],
    )
    budget = token_budget(cfg)
    assert budget.vision.patch == 16 and budget.rows[0].vision == 0
    assert all(r.vision > 0 for r in budget.rows[1:])
    for counted, row in zip(budget.rows, read_rows(path), strict=True):
        trl = row.to_trl()
        text = processor.apply_chat_template(trl["prompt"], tokenize=False, add_generation_prompt=True)
        images = [Image.open(io.BytesIO(im["bytes"])).convert("RGB") for im in trl["images"]]
        enc = processor(text=[text], images=images or None)
        assert counted.total == len(enc["input_ids"][0])  # what the engine will see
    assert "16-px patches merged 2x2" in render_budget(budget, None)


def test_hub_ids_use_their_familys_published_processor_and_config(tmp_path):
    path = tmp_path / "train.parquet"
    ex = Example("t", 0, "train", "<image>How many?", ["3"], images=[_png(640, 480)], answer_type="number")
    build_from_examples([ex], path, with_images=True, mixed_policy="native", name="train")
    counts = {}
    for preset, model in (
        ("qwen3vl_mixed", "Qwen/Qwen3-VL-8B-Instruct"),
        ("mixed", "Qwen/Qwen2.5-VL-7B-Instruct"),
    ):
        cfg = load_config(PRESETS_DIR / f"{preset}.yaml", [f"data.train_files=[{path}]"])
        assert cfg.model.path == model
        budget = token_budget(cfg)
        assert any("published" in n for n in budget.notes)  # no processor here (tests are offline)
        counts[model] = budget.rows[0].vision
    assert counts == {
        "Qwen/Qwen3-VL-8B-Instruct": 300,
        "Qwen/Qwen2.5-VL-7B-Instruct": 391,
    }  # 640x480: /32^2, /28^2
    eight = model_arch("Qwen/Qwen3-VL-8B-Instruct")
    assert eight is not None and eight.head_dim == 128 and "Qwen3-VL-8B" in eight.source
    assert 8.6e9 < eight.params < 9.0e9  # published: 8.77B with the vision tower
    four = model_arch("Qwen/Qwen3-VL-4B-Instruct")
    assert four is not None and 4.3e9 < four.params < 4.6e9  # published: 4.44B
    assert model_arch("Qwen/Qwen3-VL-30B-A3B-Instruct") is None  # MoE: from a local config.json only


def test_data_inspect_shows_qwen3_vl_vision_tokens(tiny_qwen3_vl_path, tmp_path):
    from vlmrl.data.inspect import inspect_parquet

    path = tmp_path / "train.parquet"
    ex = Example("t", 0, "train", "<image>How many?", ["3"], images=[_png(640, 480)], answer_type="number")
    build_from_examples([ex], path, with_images=True, mixed_policy="native", name="train")
    info = inspect_parquet(path, tokenizer=str(tiny_qwen3_vl_path))
    assert info.vision_tokens == [vision_settings_tokens := 54]  # 640x480 in at most 64 tokens: 192x288 px
    result = runner.invoke(
        app, ["data", "inspect", str(path), "--tokenizer", str(tiny_qwen3_vl_path)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "16-px patches merged 2x2" in result.output and "Qwen3VLProcessor" in result.output
    assert f"p50 {vision_settings_tokens}" in result.output


def _model_dir(root: Path, model_type: str) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model_type": model_type}))
    return root


def _model_check(data_dir: Path, model: Path | str):
    train = data_dir / "t.parquet"
    if not train.exists():
        ex = Example("t", 0, "train", "What is 1 + 2?", ["3"], answer_type="number")
        build_from_examples([ex], train, with_images=True, mixed_policy="native", name="train")
    cfg = load_config(
        PRESETS_DIR / "qwen3vl_mixed.yaml",
        [f"model.path={model}", f"data.train_files=[{train}]", "data.val_files=[]"],
    )
    report = run_preflight(cfg, reward_path="pkg://vlmrl.reward.verl_entry")
    (check,) = [c for c in report.checks if c.name == "model"]
    return check


def test_preflight_knows_the_families_from_one_table(tiny_qwen3_vl_path, data_dir, tmp_path):
    check = _model_check(data_dir, tiny_qwen3_vl_path)
    assert check.status == "ok" and "Qwen3-VL" in check.detail and "qwen3_vl" in check.detail
    moe = _model_check(data_dir, _model_dir(tmp_path / "moe", "qwen3_vl_moe"))
    assert moe.status == "ok" and "qwen3_vl_moe" in moe.detail and "not trained end to end" in moe.detail
    hub = _model_check(data_dir, "Qwen/Qwen3-VL-8B-Instruct")
    assert hub.status == "info" and "Qwen3-VL" in hub.detail
    other = _model_check(data_dir, _model_dir(tmp_path / "llava", "llava_next"))
    assert other.status == "warn" and "\n" not in other.detail
    assert "'llava_next'" in other.detail
    for family in ("qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"):
        assert family in other.detail


def test_smoke_picks_the_tiny_model_of_the_presets_family(tiny_qwen3_vl_path, tiny_vlm_path, tmp_path):
    from vlmrl.errors import UserError
    from vlmrl.train.verl.smoke import smoke_family

    assert smoke_family("Qwen/Qwen3-VL-8B-Instruct") == "qwen3_vl"
    assert smoke_family(load_config(PRESETS_DIR / "qwen3vl_mixed.yaml").model.path) == "qwen3_vl"
    assert smoke_family(load_config(PRESETS_DIR / "qwen3vl_single_gpu.yaml").model.path) == "qwen3_vl"
    assert smoke_family(load_config(PRESETS_DIR / "mixed.yaml").model.path) == "qwen2_5_vl"
    assert smoke_family("Qwen/Qwen3-VL-30B-A3B-Instruct") == "qwen3_vl"  # the dense tiny model stands in
    # a local directory: its config.json decides, whatever its name says
    renamed = tmp_path / "Qwen2.5-VL-looking-name"
    renamed.symlink_to(tiny_qwen3_vl_path, target_is_directory=True)
    assert smoke_family(str(renamed)) == "qwen3_vl"
    assert smoke_family(str(tiny_vlm_path)) == "qwen2_5_vl"
    with pytest.raises(UserError, match=r"'llava_next'.*qwen3_vl \(Qwen3-VL\).*--smoke-model"):
        smoke_family(str(_model_dir(tmp_path / "llava", "llava_next")))


def test_smoke_switches_dynamic_sampling_off_for_a_given_model_too(tmp_path, tiny_qwen3_vl_path):
    """A `--smoke-model` fresh from transformers scores every group alike, as the tiny model does:
    with dynamic sampling on, veRL 0.9.1 refilled evicted groups forever (the first step never ended)."""
    from vlmrl.train.verl.smoke import SmokeSettings, scaled_overrides

    user = load_config(PRESETS_DIR / "qwen3vl_mixed.yaml")
    assert user.algorithm.filter_groups.enable
    for given in (None, str(tiny_qwen3_vl_path)):
        settings = SmokeSettings(config=PRESETS_DIR / "qwen3vl_mixed.yaml", smoke_model=given)
        overrides = scaled_overrides(
            user, model_path=str(tiny_qwen3_vl_path), data_dir=tmp_path, run_dir=tmp_path / "run", steps=2,
            settings=settings,
        )  # fmt: skip
        scaled = load_config(PRESETS_DIR / "qwen3vl_mixed.yaml", overrides)
        assert scaled.algorithm.filter_groups.enable is False, given
