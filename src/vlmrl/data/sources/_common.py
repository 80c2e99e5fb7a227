"""Helpers shared by the source modules: option checks and building an `Example` from raw fields."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vlmrl.data.example import make_example  # noqa: F401  (sources import it from here)
from vlmrl.data.prompt import IMAGE_PLACEHOLDER, count_placeholders
from vlmrl.data.sources._io import image_bytes, row_problem  # noqa: F401  (re-exported)
from vlmrl.errors import UserError

_OPTION_LETTER_RE = re.compile(r"(?:^|\n|\s)\(?([A-H])[\.\):：]\s")


# Options every source takes, on top of its own.
COMMON_OPTIONS = ("encoding",)


def check_options(source: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    allowed = tuple(allowed) + tuple(o for o in COMMON_OPTIONS if o not in allowed)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UserError(
            f"source {source!r}: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )


def read_options(options: dict[str, Any], column_options: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword arguments for `iter_records` from a source's options: the text encoding of local
    jsonl/json/csv files (`encoding`, default utf-8) and the source's column options for error hints."""
    encoding = options.get("encoding")
    if encoding is not None and not isinstance(encoding, str):
        raise UserError(f"option `encoding` must be a name such as utf-8 or gbk, got {encoding!r}")
    return {"encoding": encoding, "column_options": tuple(column_options)}


def read_images(values: list[Any], base_dir: Path | None) -> list[bytes]:
    """Encoded bytes per image; an unreadable one becomes b'' so the image stage rejects the row by name."""
    out = []
    for v in values:
        try:
            out.append(image_bytes(v, base_dir))
        except (OSError, ValueError):
            out.append(b"")
    return out


def with_placeholders(question: str, n_images: int) -> str:
    """Prefix one `<image>` per image when the published question carries none (MMK12's way)."""
    if n_images and count_placeholders(question) == 0:
        return IMAGE_PLACEHOLDER * n_images + "\n" + question
    return question


def choice_letters(question: str) -> list[str]:
    """Option letters listed in a question ("A. ...", "(B) ..."), in order, when they run A, B, C..."""
    letters = []
    for m in _OPTION_LETTER_RE.finditer(question):
        letter = m.group(1)
        if letter not in letters:
            letters.append(letter)
    expected = [chr(ord("A") + i) for i in range(len(letters))]
    return letters if len(letters) >= 2 and letters == expected else []
