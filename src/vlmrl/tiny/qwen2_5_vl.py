"""Build a tiny Qwen2.5-VL (model, byte-level BPE tokenizer, processor) with no network.

The model has the real Qwen2.5-VL architecture at a few hundred thousand
parameters, so veRL, TRL and transformers run their real code paths on a CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

# Bump when the builder's output changes, so stale caches are rebuilt.
BUILDER_VERSION = 2
MARKER = "vlmrl_tiny_vlm.json"

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

VOCAB_SIZE = 1024  # BPE vocabulary incl. the 256 byte symbols and the specials
MIN_PIXELS = 28 * 28 * 4  # 4 vision tokens after the 2x2 merge
MAX_PIXELS = 28 * 28 * 64  # 64 vision tokens: keeps CPU forward passes cheap

INSTRUCTION = (
    "You first think about the reasoning process as an internal monologue and then provide the user "
    "with the answer. Respond in the following format: <think>\n...\n</think>\n<answer>\n...\n</answer>"
)


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
    root = Path(os.environ.get("VLMRL_CACHE", Path.home() / ".cache" / "vlmrl"))
    label = "" if size == "tiny" else f"{size}-"
    return root / f"tiny-qwen2_5-vl-{label}seed{seed}-v{BUILDER_VERSION}"


def _corpus(seed: int) -> list[str]:
    """Deterministic training text for the tokenizer: math talk, tags, digits, the chat frame."""
    import random

    rng = random.Random(seed)
    words = [
        "the",
        "a",
        "of",
        "and",
        "to",
        "in",
        "is",
        "what",
        "find",
        "how",
        "many",
        "value",
        "answer",
        "question",
        "solve",
        "compute",
        "total",
        "sum",
        "product",
        "difference",
        "number",
        "numbers",
        "square",
        "circle",
        "triangle",
        "angle",
        "degrees",
        "area",
        "perimeter",
        "length",
        "image",
        "picture",
        "shown",
        "count",
        "shapes",
        "red",
        "blue",
        "green",
        "there",
        "are",
        "if",
        "then",
        "so",
        "therefore",
        "we",
        "get",
        "x",
        "y",
        "z",
        "equals",
        "plus",
        "minus",
        "times",
        "divided",
        "by",
        "first",
        "think",
        "reasoning",
        "process",
        "internal",
        "monologue",
        "provide",
        "user",
        "respond",
        "following",
        "format",
        "system",
        "assistant",
        "helpful",
        "you",
        "are",
    ]
    lines = [INSTRUCTION, "You are a helpful assistant.", "system", "user", "assistant"]
    for _ in range(3000):
        a, b = rng.randint(0, 999), rng.randint(0, 99)
        op = rng.choice(["+", "-", "*", "/", "="])
        sent = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
        lines.append(f"{sent} {a} {op} {b}")
        lines.append(f"<think>\n{sent} {a} {op} {b}\n</think>\n<answer>\n{a}\n</answer>")
        lines.append(f"$\\frac{{{a}}}{{{b}}}$ \\boxed{{{a}}} \\sqrt{{{b}}} {a}.{b} {a},{b:03d}")
    return lines


def _build_tokenizer(seed: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        model_max_length=32768,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    return fast


def _chat_template() -> str:
    return resources.files("vlmrl.tiny").joinpath("chat_template.jinja").read_text(encoding="utf-8")


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
    tokenizer = _build_tokenizer(seed)
    template = _chat_template()
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


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.name != MARKER:
            h.update(f.relative_to(path).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


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
    marker = target / MARKER
    if not force and marker.is_file():
        try:
            meta = json.loads(marker.read_text())
        except json.JSONDecodeError:
            meta = {}
        same = meta.get("seed") == seed and meta.get("size", "tiny") == size
        if same and meta.get("builder_version") == BUILDER_VERSION:
            return target
    if target.exists() and any(target.iterdir()) and not marker.is_file():
        raise FileExistsError(
            f"{target} exists and is not a tiny-VLM build (no {MARKER}); choose an empty or new directory"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _build(tmp, seed, size)
        meta = {"seed": seed, "builder_version": BUILDER_VERSION, "sha256": _digest(tmp)}
        if size != "tiny":  # the default build's marker stays as it always was
            meta["size"] = size
        (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def describe(path: str | os.PathLike[str]) -> dict[str, object]:
    """Facts about a built tiny model, for `vlmrl demo --build-model-only` and docs."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    path = Path(path)
    meta = json.loads((path / MARKER).read_text())
    cfg = AutoConfig.from_pretrained(path)

    n_params = sum(t.numel() for t in load_file(str(path / "model.safetensors")).values())
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return {
        "path": str(path),
        "seed": meta["seed"],
        "size": meta.get("size", "tiny"),
        "parameters": n_params,
        "disk_bytes": size,
        "vocab_size": cfg.text_config.vocab_size,
        "sha256": meta["sha256"],
    }
