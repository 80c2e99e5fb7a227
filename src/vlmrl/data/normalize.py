"""Normalising answers once at build time, typing them, and keys for dedup and decontamination.

Ground truths lose presentation wrappers (`$$...$$`, `\\(...\\)`, a whole-answer `\\boxed{}`) here,
so the reward never has to guess; several acceptable answers stay a list.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from vlmrl.data.prompt import IMAGE_PLACEHOLDER

_WRAPPERS = (
    ("$$", "$$"),
    ("\\[", "\\]"),
    ("\\(", "\\)"),
    ("$", "$"),
)
_NUMBER_RE = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?(e[-+]?\d+)?%?$", re.IGNORECASE)
_FRACTION_RE = re.compile(r"^[-+]?\d+\s*/\s*\d+$")
_WORD_RE = re.compile(r"[A-Za-z]{3,}")
_MATH_HINT_RE = re.compile(r"[\\^_{}=+*/()\[\]<>|]|\d")


def _unwrap_boxed(text: str) -> str:
    """`\\boxed{x}` -> `x` when the box spans the whole answer (braces balanced)."""
    for prefix in ("\\boxed{", "\\fbox{"):
        if text.startswith(prefix) and text.endswith("}"):
            inner = text[len(prefix) : -1]
            depth = 0
            for ch in inner:
                depth += ch == "{"
                depth -= ch == "}"
                if depth < 0:
                    return text
            if depth == 0:
                return inner.strip()
    return text


def normalize_answer(answer: object) -> str:
    """One ground truth as the reward expects it: no math-mode wrappers, whitespace collapsed."""
    if answer is None:
        return ""
    text = str(answer).strip()
    changed = True
    while changed and text:
        changed = False
        for left, right in _WRAPPERS:
            if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
                inner = text[len(left) : -len(right)]
                # `$5$ and $6$` is two math spans, not one wrapped answer: only unwrap a single span
                if left in inner or right in inner:
                    continue
                text = inner.strip()
                changed = True
                break
        unboxed = _unwrap_boxed(text)
        if unboxed != text:
            text, changed = unboxed, True
    text = re.sub(r"\s+", " ", text)
    if len(text) > 1 and text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    return text.strip()


def normalize_answers(answers: Iterable[object]) -> list[str]:
    """Normalise each answer, drop empties and repeats, keep the original order (first = canonical)."""
    seen: set[str] = set()
    out: list[str] = []
    for a in answers:
        n = normalize_answer(a)
        if n and n not in seen:
            seen.add(n)
            out.append(n)
    return out


def parse_answer_list(value: object) -> list[str]:
    """Ground truths stored as a string holding a Python-literal list (Skywork-OR1's `"['3', '3.0']"`).

    Parsed with `ast.literal_eval` (literals only, never code). A value that is not a list of
    strings, e.g. the interval `"[0, 1)"` or `"[1, 2]"`, is one answer, kept verbatim.
    """
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if value is None:
        return []
    text = str(value).strip()
    if text.startswith(("[", "(")):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return [text]
        if isinstance(parsed, (list, tuple)) and all(isinstance(v, str) for v in parsed):
            return list(parsed)
    return [text]


def answer_list(value: object, where: str = "ground_truth") -> list[str]:
    """Every acceptable answer of a ground truth as a file or an engine hands it over: a string is one
    answer (or, a Python-literal list string, its answers: `parse_answer_list`), a list, tuple or
    numpy array is several (nested ones flattened), bytes are UTF-8 text, None is none; blank answers
    are dropped. Anything else is a `TypeError` naming `where`. The one reading of a ground truth at
    every door (the row reader, the reward's `compute_score`/`score_batch`, veRL's entry)."""
    if value is None:
        return []
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # a numpy array (or scalar) as parquet/veRL hand it
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [a for item in value for a in answer_list(item, where)]
    if not isinstance(value, str):
        raise TypeError(
            f"{where} must be a string (one acceptable answer) or a list of strings (several), "
            f"got {type(value).__name__}: {value!r:.80}"
        )
    return [a for a in parse_answer_list(value) if a.strip()]


def read_ground_truth(value: object) -> list[str]:
    """Every acceptable answer of a ground truth as published (a string, a Python-literal list
    string, a list): read by `parse_answer_list`, each normalised by `normalize_answer`, empties and
    repeats dropped, first = canonical. The data stage's one ground-truth rule."""
    return normalize_answers(parse_answer_list(value))


_OPTION_LETTER_RE = re.compile(r"^\(?([A-Za-z])\)?[.:)]?$")
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_texts(choices: Iterable[object] | None) -> list[str] | None:
    """The options' texts in letter order when `choices` holds texts ("Jupiter", "$2x$", "A. 11"),
    None when it holds option letters ("A", "(B)") or nothing. A leading "A." / "(A)" of a text is
    dropped. The one test of which of the two a `choices` list is."""
    items = [str(c).strip() for c in (choices or [])]
    if not items or len(items) > len(OPTION_LETTERS) or all(_OPTION_LETTER_RE.match(c) for c in items):
        return None
    texts = []
    for k, c in enumerate(items):
        lead = re.match(r"^\(?" + OPTION_LETTERS[k] + r"\)?[.:)]\s+|^\(" + OPTION_LETTERS[k] + r"\)\s*", c)
        texts.append(c[lead.end() :].strip() if lead else c)
    return texts


def option_letters(choices: Iterable[object] | None) -> list[str]:
    """The option letters of `choices`, whether it holds letters or texts (texts: A, B, ... in order)."""
    items = [str(c).strip() for c in (choices or [])]
    texts = option_texts(items)
    if texts is not None:
        return list(OPTION_LETTERS[: len(texts)])
    return [m.group(1).upper() for m in (_OPTION_LETTER_RE.match(c) for c in items) if m]


def infer_answer_type(answer: str, choices: list[str] | None = None) -> str:
    """`choice` (a listed option letter), `number`, `expression` (anything mathematical) or `text`."""
    if choices and (answer in choices or (len(answer) == 1 and answer in option_letters(choices))):
        return "choice"
    compact = answer.replace(" ", "")
    if compact and (_NUMBER_RE.match(compact) and any(c.isdigit() for c in compact)):
        return "number"
    if _FRACTION_RE.match(compact):
        return "expression"
    words = _WORD_RE.findall(answer)
    if len(words) >= 2 and "\\" not in answer:
        return "text"
    if _MATH_HINT_RE.search(answer) or len(compact) <= 3:
        return "expression"
    return "text"


def normalize_question(question: str) -> str:
    """Dedup/decontamination key: lower case, no placeholders or `$`, whitespace collapsed."""
    text = question.replace(IMAGE_PLACEHOLDER, " ").replace("$", " ").lower()
    return re.sub(r"\s+", " ", text).strip()


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def question_ngrams(normalized: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of a normalised question (the whole token list when shorter than n)."""
    tokens = _TOKEN_RE.findall(normalized)
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}
