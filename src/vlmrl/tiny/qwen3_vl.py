"""Build a tiny Qwen3-VL (model, byte-level BPE tokenizer, processor) with no network.

The real Qwen3-VL architecture (16-pixel patches merged 2x2, DeepStack visual features fed into the
first text layers, interleaved M-RoPE, explicit head_dim) at a few hundred thousand parameters, with
Qwen3-VL's processor (`Qwen3VLProcessor`: Qwen2-VL image processor at patch size 16, Qwen3-VL video
processor) and a chat template shaped like Qwen3-VL-Instruct's (no default system turn). It loads
with `AutoProcessor` and `Qwen3VLForConditionalGeneration`, so veRL, TRL, vLLM and transformers run
their real Qwen3-VL code paths on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

from vlmrl.tiny._common import (  # noqa: F401 (MARKER, SPECIAL_TOKENS, describe: this module's API)
    MARKER,
    SPECIAL_TOKENS,
    build_tokenizer,
    cache_root,
    cached_build,
    chat_template,
    describe,
)

# Bump when the builder's output changes, so stale caches are rebuilt.
BUILDER_VERSION = 1
FAMILY = "qwen3_vl"

PATCH_SIZE = 16  # Qwen3-VL's vision patch (Qwen2.5-VL's is 14)
MERGE_SIZE = 2
FACTOR = PATCH_SIZE * MERGE_SIZE  # one vision token covers 32x32 pixels
MIN_PIXELS = FACTOR * FACTOR * 4  # 4 vision tokens
MAX_PIXELS = FACTOR * FACTOR * 64  # 64 vision tokens: keeps CPU forward passes cheap

# The demo's GRPO settings for this family, over configs/train/demo.yaml (tuned on the tiny Qwen2.5-VL)
# and under the user's own overrides. At lr 5e-4 one seed of three unlearned the format within a few
# steps (Pass@1 text -> 0); at 2.5e-4 every seed rises on both kinds (docs/benchmarks.md).
DEMO_OVERRIDES: tuple[str, ...] = ("algorithm.lr=2.5e-4",)

# Model sizes, as for the tiny Qwen2.5-VL. Attention head_dim is 32 in text and vision (the smallest
# vLLM's CPU attention accepts); its 16 rotary frequencies are split [6, 5, 5] over (t, h, w), the
# proportions of Qwen3-VL's [24, 20, 20] over 64, and interleaved as Qwen3-VL does.
SIZES: dict[str, dict[str, dict[str, int]]] = {
    "tiny": {
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "heads": 2,
            "kv_heads": 1,
        },
        "vision": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 1},
    },
    "demo": {
        "text": {
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 3,
            "heads": 4,
            "kv_heads": 2,
        },
        "vision": {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2},
    },
}
HEAD_DIM = 32
MROPE_SECTION = [6, 5, 5]
#: Learned vision position embeddings: a 16x16 grid, bilinearly interpolated to each image's grid.
NUM_POSITION_EMBEDDINGS = 256


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"unknown tiny-model size {size!r}; choose one of {sorted(SIZES)}")


def default_path(seed: int = 0, size: str = "tiny") -> Path:
    """Where the cached tiny model lives: $VLMRL_CACHE or ~/.cache/vlmrl (one directory per size)."""
    _check_size(size)
    label = "" if size == "tiny" else f"{size}-"
    return cache_root() / f"tiny-qwen3-vl-{label}seed{seed}-v{BUILDER_VERSION}"


def _build(target: Path, seed: int, size: str = "tiny") -> None:
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = build_tokenizer(seed)
    template = chat_template("chat_template_qwen3_vl.jinja")
    tokenizer.chat_template = template
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    dims = SIZES[size]
    text, vision = dims["text"], dims["vision"]

    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": text["hidden_size"],
        "intermediate_size": text["intermediate_size"],
        "num_hidden_layers": text["num_hidden_layers"],
        "num_attention_heads": text["heads"],
        "num_key_value_heads": text["kv_heads"],
        "head_dim": HEAD_DIM,
        "max_position_embeddings": 32768,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5000000.0,
            "mrope_section": MROPE_SECTION,
            "mrope_interleaved": True,
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "dtype": "float32",
    }
    vision_config = {
        "depth": vision["depth"],
        "hidden_size": vision["hidden_size"],
        "intermediate_size": vision["intermediate_size"],
        "num_heads": vision["num_heads"],  # vision head_dim 32, as for the text layers
        "out_hidden_size": text["hidden_size"],
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": MERGE_SIZE,
        "temporal_patch_size": 2,
        "in_channels": 3,
        "num_position_embeddings": NUM_POSITION_EMBEDDINGS,
        # DeepStack: the last block's features also go into the first text layer (Qwen3-VL-8B: [8, 16, 24])
        "deepstack_visual_indexes": [vision["depth"] - 1],
    }
    config = Qwen3VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
    )
    pixels = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    common = dict(patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, temporal_patch_size=2)
    image_processor = Qwen2VLImageProcessor(
        size=pixels, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], **common
    )
    video_processor = Qwen3VLVideoProcessor(size=pixels, **common)
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=template,
    )
    model.save_pretrained(target, safe_serialization=True)
    processor.save_pretrained(target)
    tokenizer.save_pretrained(target)


def build_tiny_vlm(
    path: str | os.PathLike[str] | None = None, seed: int = 0, force: bool = False, size: str = "tiny"
) -> Path:
    """Build (or reuse from cache) the tiny Qwen3-VL at `path` and return the path.

    The directory loads with `AutoProcessor.from_pretrained` and
    `Qwen3VLForConditionalGeneration.from_pretrained`. A directory already holding a build of the
    same seed, size and builder version is reused as is. `size` is a key of `SIZES`.
    """
    _check_size(size)
    target = Path(path) if path is not None else default_path(seed, size)
    return cached_build(target, seed, size, BUILDER_VERSION, _build, force)
