"""Pre-flight budget: prompt tokens per row with vision tokens (real tiny processor), GPU memory per GPU."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.data.build import build_from_examples
from vlmrl.data.example import Example
from vlmrl.data.rows import read_rows
from vlmrl.train.budget import memory_budget, render_budget, token_budget
from vlmrl.train.config import load_config

PRESETS_DIR = Path(__file__).resolve().parents[2] / "configs" / "train"
runner = CliRunner()


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _examples() -> list[Example]:
    def ex(i, question, images=()):
        return Example("t", i, "train", question, ["3"], images=list(images), answer_type="number")

    return [
        ex(0, "What is 1 + 2?"),
        ex(1, "<image>How many squares?", [_png(56, 56)]),  # the tiny processor's minimum: 4 vision tokens
        ex(2, "<image>How many squares?", [_png(448, 448)]),  # capped by max_pixels: 64 vision tokens
    ]


@pytest.fixture
def mixed_file(tmp_path):
    path = tmp_path / "train.parquet"
    build_from_examples(_examples(), path, with_images=True, mixed_policy="native", name="train")
    return path


def _cfg(tiny_vlm_path, path, **data):
    overrides = [
        f"model.path={tiny_vlm_path}",
        f"data.train_files=[{path}]",
        "backend=trl",
        "trainer.device=cpu",
    ]
    overrides += [f"data.{k}={v}" for k, v in data.items()]
    return load_config(PRESETS_DIR / "demo.yaml", overrides)


def test_prompt_tokens_match_the_real_processor_vision_tokens_included(
    tiny_vlm_path, tiny_processor, mixed_file
):
    budget = token_budget(_cfg(tiny_vlm_path, mixed_file, max_prompt_length=4096))
    assert [r.vision for r in budget.rows] == [0, 4, 64]
    for counted, row in zip(budget.rows, read_rows(mixed_file), strict=True):
        trl = row.to_trl()
        text = tiny_processor.apply_chat_template(trl["prompt"], tokenize=False, add_generation_prompt=True)
        images = [Image.open(io.BytesIO(im["bytes"])).convert("RGB") for im in trl["images"]]
        enc = tiny_processor(text=[text], images=images or None)
        assert counted.total == len(enc["input_ids"][0])  # what the engine will actually see
    assert budget.verdict()[0] == "ok"


def test_data_build_and_inspect_count_prompt_tokens_as_the_budget_does(
    tiny_vlm_path, tiny_processor, mixed_file
):
    # One count of prompt tokens (vlmrl.data.prompt.prompt_text_tokens + the images' vision tokens)
    # behind the build's length filter, `data inspect` and the pre-flight budget.
    from vlmrl.data.build import RowChecker
    from vlmrl.data.images import vision_settings
    from vlmrl.data.inspect import inspect_parquet

    budget = token_budget(_cfg(tiny_vlm_path, mixed_file, max_prompt_length=4096))
    totals = [r.total for r in budget.rows]
    checker = RowChecker(
        tokenizer=tiny_processor.tokenizer, max_prompt_length=4096, vision=vision_settings(tiny_processor)
    )
    assert [checker.prompt_tokens(ex) for ex in _examples()] == totals
    assert inspect_parquet(mixed_file, tokenizer=str(tiny_vlm_path)).prompt_tokens == totals


def test_catches_rows_whose_vision_tokens_overflow(tiny_vlm_path, mixed_file):
    fits = token_budget(_cfg(tiny_vlm_path, mixed_file, max_prompt_length=4096))
    limit = fits.rows[1].total + 10  # the small picture fits, the large one only by its text
    broken = token_budget(
        _cfg(tiny_vlm_path, mixed_file, max_prompt_length=limit, filter_overlong_prompts=False)
    )
    assert [r.row for r in broken.over] == [2] and [r.row for r in broken.over_by_vision] == [2]
    status, message = broken.verdict()
    assert status == "fail"
    assert "image features and image tokens do not match" in message and "row 2" in message
    assert "data.max_pixels" in message and "data.filter_overlong_prompts=true" in message
    dropped = token_budget(_cfg(tiny_vlm_path, mixed_file, max_prompt_length=limit))
    assert dropped.verdict()[0] == "warn" and "would be dropped" in dropped.verdict()[1]
    # a lower data.max_pixels shrinks the large image's vision tokens until the row fits again
    shrunk = token_budget(_cfg(tiny_vlm_path, mixed_file, max_prompt_length=limit, max_pixels=28 * 28 * 9))
    assert shrunk.rows[2].vision == 9 and not shrunk.over
    table = render_budget(broken, None)
    assert "only because of vision tokens: 1" in table and "truncated (broken)" in table


def test_seed_recipe_7b_on_8x80gb_fits():
    cfg = load_config(PRESETS_DIR / "mixed.yaml")  # Qwen2.5-VL-7B, 8 GPUs, param + optimizer offload
    budget = memory_budget(cfg, gpu_memory_gib=80)
    assert 8.2e9 < budget.arch.params < 8.4e9  # Qwen2.5-VL-7B has 8.29B parameters with its vision tower
    status, message = budget.verdict()
    assert status == "ok", message
    assert budget.resident_in_rollout_gib == 0.0 and budget.kv_tokens > 12288


def test_7b_on_one_gpu_without_offload_cannot_fit():
    cfg = load_config(
        PRESETS_DIR / "mixed.yaml",
        ["trainer.n_gpus_per_node=1", "model.param_offload=false", "model.optimizer_offload=false"],
    )
    budget = memory_budget(cfg, gpu_memory_gib=80)
    status, message = budget.verdict()
    assert status == "fail"
    assert budget.update_peak_gib > 80 and "model.optimizer_offload" in message
    assert "rollout.gpu_memory_utilization" in message  # the actor's resident state crowds out vLLM


def test_offload_and_checkpointing_lower_the_estimate():
    base = ["trainer.n_gpus_per_node=1"]
    full = memory_budget(load_config(PRESETS_DIR / "mixed.yaml", base), 80)
    lean = memory_budget(
        load_config(PRESETS_DIR / "mixed.yaml", [*base, "model.gradient_checkpointing=false"]), 80
    )
    assert lean.update_peak_gib > full.update_peak_gib  # no checkpointing: every layer's activations kept
    assert full.lines["optimizer state (on CPU)"] == 0.0


@pytest.mark.parametrize("preset", sorted(p.name for p in PRESETS_DIR.glob("*.yaml")))
def test_budget_table_prints_for_every_preset(preset):
    result = runner.invoke(app, ["train", str(PRESETS_DIR / preset), "--dry-run", "--gpu-memory-gib", "80"])
    assert result.exit_code in (0, 1), result.output
    assert "budget (memory)" in result.stderr and "budget (tokens)" in result.stderr
    if preset != "demo.yaml":  # the demo trains on the CPU: no GPU budget
        assert "GPU memory per GPU, update phase" in result.stderr
