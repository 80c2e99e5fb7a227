"""The tiny offline Qwen2.5-VL loads with the standard transformers classes and runs on CPU."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image, ImageDraw
from transformers import AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from vlmrl.tiny.qwen2_5_vl import MARKER, SPECIAL_TOKENS, build_tiny_vlm, describe


def _drawn_image() -> Image.Image:
    img = Image.new("RGB", (96, 72), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((10, 10, 40, 40), fill="red")
    draw.rectangle((50, 20, 85, 60), fill="blue")
    return img


def test_loads_and_runs_forward_and_generate(tiny_vlm_path):
    processor = AutoProcessor.from_pretrained(tiny_vlm_path)
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_path)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"

    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many shapes?"}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>How many shapes?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    inputs = processor(text=[text], images=[_drawn_image()], return_tensors="pt")
    # one image -> grid (t, h, w); merged vision tokens replace the single <|image_pad|>
    grid = inputs["image_grid_thw"][0]
    n_vision_tokens = int(grid.prod()) // 4
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == n_vision_tokens

    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape == (1, inputs["input_ids"].shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(out.logits).all()

    torch.manual_seed(0)
    gen = model.generate(**inputs, max_new_tokens=8, do_sample=True)
    assert gen.shape[1] > inputs["input_ids"].shape[1]
    assert isinstance(processor.batch_decode(gen[:, inputs["input_ids"].shape[1] :])[0], str)


def test_text_only_prompt_runs(tiny_vlm_path):
    processor = AutoProcessor.from_pretrained(tiny_vlm_path)
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_path)
    text = processor.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True, tokenize=False
    )
    inputs = processor(text=[text], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape


def test_special_token_ids_match_config(tiny_vlm_path):
    tok = AutoTokenizer.from_pretrained(tiny_vlm_path)
    cfg = json.loads((tiny_vlm_path / "config.json").read_text())
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    assert len(set(ids.values())) == len(SPECIAL_TOKENS)
    assert all(i is not None and i < len(tok) for i in ids.values())
    for t in SPECIAL_TOKENS:  # each special token stays one token
        assert tok(t, add_special_tokens=False).input_ids == [ids[t]]
    assert cfg["image_token_id"] == ids["<|image_pad|>"]
    assert cfg["video_token_id"] == ids["<|video_pad|>"]
    assert cfg["vision_start_token_id"] == ids["<|vision_start|>"]
    assert cfg["vision_end_token_id"] == ids["<|vision_end|>"]
    assert cfg["text_config"]["eos_token_id"] == ids["<|im_end|>"] == tok.eos_token_id
    assert cfg["text_config"]["pad_token_id"] == ids["<|endoftext|>"] == tok.pad_token_id
    assert cfg["text_config"]["vocab_size"] == len(tok)


def test_small_enough_for_cpu(tiny_vlm_path):
    info = describe(tiny_vlm_path)
    assert 50_000 < info["parameters"] < 1_000_000
    assert info["disk_bytes"] < 2_000_000


def test_deterministic_for_a_seed_and_cached(tiny_vlm_path, tmp_path):
    again = build_tiny_vlm(tmp_path / "again", seed=0)
    assert describe(again)["sha256"] == describe(tiny_vlm_path)["sha256"]
    other = build_tiny_vlm(tmp_path / "other", seed=1)
    assert describe(other)["sha256"] != describe(tiny_vlm_path)["sha256"]
    # a second call reuses the cached build instead of rebuilding
    before = (again / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_vlm(tmp_path / "again", seed=0) == tmp_path / "again"
    assert (again / "model.safetensors").stat().st_mtime_ns == before
    assert (again / MARKER).is_file()


def test_refuses_to_overwrite_foreign_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a tiny-VLM build"):
        build_tiny_vlm(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_demo_size_is_wider_keeps_head_dim_32_and_has_its_own_cache(tiny_vlm_path, tmp_path, monkeypatch):
    from vlmrl.tiny.qwen2_5_vl import default_path

    monkeypatch.setenv("VLMRL_CACHE", str(tmp_path / "cache"))
    assert default_path(0) != default_path(0, size="demo")  # the default build's cache key is unchanged
    assert default_path(0).name == "tiny-qwen2_5-vl-seed0-v2"
    demo = build_tiny_vlm(tmp_path / "demo", seed=0, size="demo")
    info, tiny = describe(demo), describe(tiny_vlm_path)
    assert info["size"] == "demo" and tiny["size"] == "tiny"
    assert tiny["parameters"] < info["parameters"] < 2_000_000
    cfg = json.loads((demo / "config.json").read_text())
    text, vision = cfg["text_config"], cfg["vision_config"]
    assert text["hidden_size"] // text["num_attention_heads"] == 32
    assert vision["hidden_size"] // vision["num_heads"] == 32
    # a build of another size in the same directory is rebuilt, not reused
    assert describe(build_tiny_vlm(tmp_path / "demo", seed=0))["size"] == "tiny"
    with pytest.raises(ValueError, match="unknown tiny-model size 'huge'"):
        build_tiny_vlm(tmp_path / "x", size="huge")


# --- the tiny Qwen3-VL -------------------------------------------------------------------------


def test_qwen3_vl_loads_with_its_own_classes_and_runs_image_and_text(tiny_qwen3_vl_path):
    from transformers import Qwen3VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_qwen3_vl_path)
    model = Qwen3VLForConditionalGeneration.from_pretrained(tiny_qwen3_vl_path)
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert model.config.model_type == "qwen3_vl"
    ip = processor.image_processor
    assert (ip.patch_size, ip.merge_size) == (16, 2)  # Qwen3-VL's, not Qwen2.5-VL's 14
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many shapes?"}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # Qwen3-VL-Instruct's template adds no default system turn (Qwen2.5-VL's does)
    assert text == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>How many shapes?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    inputs = processor(text=[text], images=[_drawn_image()], return_tensors="pt")
    grid = inputs["image_grid_thw"][0]
    assert [int(g) for g in grid] == [1, 4, 6]  # 96x72 -> 96x64 in 16-px patches (one token per 32x32)
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == int(grid.prod()) // 4
    with torch.no_grad():
        out = model(**inputs)
    assert torch.isfinite(out.logits).all()
    torch.manual_seed(0)
    gen = model.generate(**inputs, max_new_tokens=8, do_sample=True)
    assert gen.shape[1] > inputs["input_ids"].shape[1]
    plain = processor.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert plain.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?")
    with torch.no_grad():
        logits = model(**processor(text=[plain], return_tensors="pt")).logits
    assert torch.isfinite(logits).all()


def test_qwen3_vl_special_tokens_and_sizes(tiny_qwen3_vl_path, tmp_path, monkeypatch):
    from vlmrl.tiny import FAMILIES, family_module
    from vlmrl.tiny.qwen3_vl import default_path

    assert FAMILIES["qwen3_vl"] == "vlmrl.tiny.qwen3_vl"
    assert family_module("qwen3_vl").build_tiny_vlm(tiny_qwen3_vl_path) == tiny_qwen3_vl_path  # cached
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_vl_path)
    cfg = json.loads((tiny_qwen3_vl_path / "config.json").read_text())
    assert cfg["image_token_id"] == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg["vision_start_token_id"] == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg["text_config"]["eos_token_id"] == tok.eos_token_id
    info = describe(tiny_qwen3_vl_path)
    assert 50_000 < info["parameters"] < 1_000_000 and info["disk_bytes"] < 2_000_000
    monkeypatch.setenv("VLMRL_CACHE", str(tmp_path / "cache"))
    assert default_path(0).name == "tiny-qwen3-vl-seed0-v1" != default_path(0, size="demo").name
    demo = family_module("qwen3_vl").build_tiny_vlm(tmp_path / "demo", seed=0, size="demo")
    demo_cfg = json.loads((demo / "config.json").read_text())
    # vLLM's CPU attention: head_dim 32 in the text and the vision layers, every size
    for c in (cfg, demo_cfg):
        assert c["text_config"]["head_dim"] == 32
        assert c["vision_config"]["hidden_size"] // c["vision_config"]["num_heads"] == 32
    assert info["parameters"] < describe(demo)["parameters"] < 2_000_000
    again = family_module("qwen3_vl").build_tiny_vlm(tmp_path / "again", seed=0)
    assert describe(again)["sha256"] == info["sha256"]  # deterministic for a seed
