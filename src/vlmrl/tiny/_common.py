"""What every tiny model shares: the locally trained byte-level BPE tokenizer, the cached atomic build,
the build marker and `describe`. Family modules (`qwen2_5_vl`, `qwen3_vl`) add their architecture."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

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

INSTRUCTION = (
    "You first think about the reasoning process as an internal monologue and then provide the user "
    "with the answer. Respond in the following format: <think>\n...\n</think>\n<answer>\n...\n</answer>"
)


def corpus(seed: int) -> list[str]:
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


def build_tokenizer(seed: int):
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
    tok.train_from_iterator(corpus(seed), trainer=trainer)
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


def chat_template(name: str = "chat_template.jinja") -> str:
    """A chat template shipped beside this module."""
    return resources.files("vlmrl.tiny").joinpath(name).read_text(encoding="utf-8")


def cache_root() -> Path:
    """$VLMRL_CACHE, else ~/.cache/vlmrl."""
    return Path(os.environ.get("VLMRL_CACHE", Path.home() / ".cache" / "vlmrl"))


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.name != MARKER:
            h.update(f.relative_to(path).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def cached_build(
    target: Path,
    seed: int,
    size: str,
    builder_version: int,
    build: Callable[[Path, int, str], None],
    force: bool,
) -> Path:
    """Build into a temp directory beside `target` and rename it into place, unless `target` already
    holds a build of the same seed, size and builder version (then it is reused as is)."""
    marker = target / MARKER
    if not force and marker.is_file():
        try:
            meta = json.loads(marker.read_text())
        except json.JSONDecodeError:
            meta = {}
        same = meta.get("seed") == seed and meta.get("size", "tiny") == size
        if same and meta.get("builder_version") == builder_version:
            return target
    if target.exists() and any(target.iterdir()) and not marker.is_file():
        raise FileExistsError(
            f"{target} exists and is not a tiny-VLM build (no {MARKER}); choose an empty or new directory"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp, seed, size)
        meta = {"seed": seed, "builder_version": builder_version, "sha256": digest(tmp)}
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
