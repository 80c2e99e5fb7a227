"""The reasoning instruction, the chat prompt built from a question, and the `<image>` placeholder.

`DEFAULT_INSTRUCTION` is the seed's; recipes may replace it (or drop it with an empty string).
"""

from __future__ import annotations

import re
from typing import Any

IMAGE_PLACEHOLDER = "<image>"
#: What each `<image>` becomes in Qwen2.5-VL's prompt: its markers, the pad expanded to the vision tokens.
VISION_MARKERS = "<|vision_start|><|image_pad|><|vision_end|>"

DEFAULT_INSTRUCTION = (
    "You first think about the reasoning process as an internal monologue and then provide the user "
    "with the answer. Respond in the following format: <think>\n...\n</think>\n<answer>\n...\n</answer>"
)

# Between the question and the instruction: a blank line (chat templates that append the
# instruction to a user turn should use the same).
INSTRUCTION_SEPARATOR = "\n\n"

_PLACEHOLDER_RE = re.compile(re.escape(IMAGE_PLACEHOLDER))


def count_placeholders(text: str) -> int:
    return len(_PLACEHOLDER_RE.findall(text))


def placeholder_mismatch(text: str, n_images: int) -> str | None:
    """Why `text` does not fit `n_images` images (one `<image>` each), or None when it does."""
    n = count_placeholders(text)
    return None if n == n_images else f"{n} {IMAGE_PLACEHOLDER} placeholder(s) but {n_images} image(s)"


def strip_placeholders(text: str) -> str:
    """The text without its `<image>` placeholders (for counting text tokens)."""
    return text.replace(IMAGE_PLACEHOLDER, "")


def prompt_text(question: str, instruction: str | None = DEFAULT_INSTRUCTION) -> str:
    """The user turn's text: the question, then the instruction on a line of its own (after a blank
    line), so it never reads as part of the question's last line, e.g. option D of a multiple choice."""
    question = question.strip()
    if not instruction:
        return question
    return f"{question}{INSTRUCTION_SEPARATOR}{instruction.strip()}"


def build_prompt(question: str, instruction: str | None = DEFAULT_INSTRUCTION) -> list[dict[str, str]]:
    """veRL's `prompt` column: one user message whose string content keeps the `<image>` placeholders."""
    return [{"role": "user", "content": prompt_text(question, instruction)}]


def split_on_images(text: str) -> list[dict[str, str]]:
    """TRL/transformers content parts: `{"type": "image"}` where each `<image>` was, text around them.

    The one place a prompt is split on its placeholders (TRL records, the eval backends' messages).
    """
    parts: list[dict[str, str]] = []
    for i, segment in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if i > 0:
            parts.append({"type": "image"})
        if segment:
            parts.append({"type": "text", "text": segment})
    return parts


def with_vision_markers(text: str) -> str:
    """The text with each `<image>` replaced by Qwen2.5-VL's image markers (the model's own prompt)."""
    return text.replace(IMAGE_PLACEHOLDER, VISION_MARKERS)


def prompt_text_tokens(tokenizer: Any, messages: list[dict[str, Any]]) -> int:
    """Tokens of a prompt (veRL's `prompt` column, `<image>` placeholders kept) after the chat template
    with the generation prompt, every token but the images' own: each image counts its two markers
    here, and its vision tokens (`vlmrl.data.images.vision_tokens`) on top make the prompt's length.

    The one place prompt tokens are counted (data build's length filter, `data inspect`, the
    pre-flight budget).
    """
    chat = [{"role": m["role"], "content": with_vision_markers(str(m["content"]))} for m in messages]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    n_images = sum(count_placeholders(str(m["content"])) for m in messages)
    # each <|image_pad|> is replaced by the image's vision tokens, counted apart
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) - n_images


def load_processor(name: str) -> tuple[Any, Any]:
    """(the model's processor, or None for a text-only tokenizer; its tokenizer) from a model
    directory or hub id, for counting prompt tokens."""
    from transformers import AutoProcessor, AutoTokenizer

    from vlmrl.errors import UserError

    try:
        processor = AutoProcessor.from_pretrained(name)
    except Exception:
        processor = None
    try:
        tokenizer = getattr(processor, "tokenizer", None) or AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise UserError(f"tokenizer {name!r} cannot be loaded ({exc}); give a local model directory") from exc
    return processor, tokenizer
