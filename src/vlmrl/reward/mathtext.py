"""Math-text patterns shared by the in-process reader (`extract.py`) and the math-verify worker script.

Stdlib only: the worker (`_mv_worker.py`) runs as a plain script and imports this file from beside
it, never vlmrl. Boxes, numbers with thousands separators, and units written as LaTeX text.
"""

from __future__ import annotations

import re

#: Where a box opens: `\boxed{` or `\fbox{`.
BOX_OPEN_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def decimal(separators: str = ",") -> str:
    """The pattern of an unsigned decimal whose thousands may be set apart by one of `separators`:
    "7", "1,000", "12.5" (not ".5")."""
    return r"(?:[1-9]\d{0,2}(?:[" + re.escape(separators) + r"]\d{3})+|\d+)(?:\.\d+)?"


#: LaTeX commands that write text (a unit, a word) inside math.
TEXT_COMMANDS = r"text|textnormal|textbf|mbox|mathrm|textrm|rm"

#: A unit's power after it: "^2", "^{3}".
UNIT_POWER = r"(?:\s*\^\s*\{?[23]\}?)?"


def match_brace(s: str, open_idx: int) -> int:
    """Index of the `}` closing the `{` at `open_idx`, or -1 when unbalanced (a linear scan)."""
    depth = 0
    for i in range(open_idx, len(s)):
        c = s[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def box_spans(s: str) -> list[tuple[int, int, str]]:
    """Top-level `\\boxed{...}` / `\\fbox{...}` groups as (start, end, content); never recursive, so
    deep nesting is harmless; an unbalanced box ends the list."""
    spans: list[tuple[int, int, str]] = []
    pos = 0
    while True:
        m = BOX_OPEN_RE.search(s, pos)
        if not m:
            return spans
        close = match_brace(s, m.end() - 1)
        if close < 0:
            return spans
        spans.append((m.start(), close + 1, s[m.end() : close]))
        pos = close + 1
