"""Build a tiny Qwen2.5-VL (model, byte-level BPE tokenizer, processor) with no network.

The model has the real Qwen2.5-VL architecture at a few hundred thousand
parameters, so veRL, TRL and transformers run their real code paths on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

from vlmrl.tiny._common import (  # noqa: F401 (MARKER, SPECIAL_TOKENS, INSTRUCTION, describe: this module's API)
    INSTRUCTION,
    MARKER,
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    build_tokenizer,
    cache_root,
    cached_build,
    chat_template,
    describe,
)

# Bump when the builder's output changes, so stale caches are rebuilt.
BUILDER_VERSION = 2

MIN_PIXELS = 28 * 28 * 4  # 4 vision tokens after the 2x2 merge
MAX_PIXELS = 28 * 28 * 64  # 64 vision tokens: keeps CPU forward passes cheap

# The demo's GRPO settings for this family over configs/train/demo.yaml: none, the preset is tuned on it.
DEMO_OVERRIDES: tuple[str, ...] = ()

# Model sizes. "tiny" (the default) is what the tests use; "demo" is wide enough for `vlmrl demo` to
# learn its tasks in a few CPU minutes. Every size keeps attention head_dim 32: the smallest vLLM's
# CPU attention accepts (16 is refused), and mrope_section [4, 6, 6] covers its 16 rotary frequencies.
SIZES: dict[str, dict[str, dict[str, int]]] = {
    "tiny": {  # ~220k parameters
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "heads": 2,
            "kv_heads": 1,
        },
        "vision": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 1},
    },
    "demo": {  # ~0.8M parameters
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


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"unknown tiny-model size {size!r}; choose one of {sorted(SIZES)}")


def default_path(seed: int = 0, size: str = "tiny") -> Path:
    """Where the cached tiny model lives: $VLMRL_CACHE or ~/.cache/vlmrl (one directory per size)."""
    _check_size(size)
    root = cache_root()
    label = "" if size == "tiny" else f"{size}-"
    return root / f"tiny-qwen2_5-vl-{label}seed{seed}-v{BUILDER_VERSION}"


def _build(target: Path, seed: int, size: str = "tiny") -> None:
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = build_tokenizer(seed)
    template = chat_template()
    tokenizer.chat_template = template
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    dims = SIZES[size]
    text, vision = dims["text"], dims["vision"]

    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": text["hidden_size"],
        "intermediate_size": text["intermediate_size"],
        "num_hidden_layers": text["num_hidden_layers"],
        # head_dim 32: the smallest size vLLM's CPU attention supports (16 is refused).
        "num_attention_heads": text["heads"],
        "num_key_value_heads": text["kv_heads"],
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        # head_dim 32 -> 16 rotary frequencies split over (temporal, height, width)
        "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": [4, 6, 6]},
        "tie_word_embeddings": True,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "torch_dtype": "float32",
    }
    vision_config = {
        "depth": vision["depth"],
        "hidden_size": vision["hidden_size"],
        "intermediate_size": vision["intermediate_size"],
        "num_heads": vision["num_heads"],  # vision head_dim 32, as for the text layers
        "out_hidden_size": text["hidden_size"],
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [1],
        "in_channels": 3,
    }
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
    )

    image_processor = Qwen2VLImageProcessor(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    video_processor = Qwen2VLVideoProcessor(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    processor = Qwen2_5_VLProcessor(
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
    """Build (or reuse from cache) the tiny Qwen2.5-VL at `path` and return the path.

    The directory loads with `AutoProcessor.from_pretrained` and
    `Qwen2_5_VLForConditionalGeneration.from_pretrained`. A directory already
    holding a build of the same seed, size and builder version is reused as is.
    `size` is a key of `SIZES` ("tiny", the default, or "demo").
    """
    _check_size(size)
    target = Path(path) if path is not None else default_path(seed, size)
    return cached_build(target, seed, size, BUILDER_VERSION, _build, force)
