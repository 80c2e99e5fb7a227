"""Format gate, answer extraction and the fast string/number comparison of the reward cascade.

Everything here is pure Python, linear in the input length and never raises on any string;
math-verify (symbolic equivalence) runs elsewhere, in killable worker processes (`rule.py`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

# Answers longer than this are essays, not answers: never correct by rule, never sent to math-verify.
MAX_ANSWER_CHARS = 4096
# Logged `pred` is truncated so reward logs stay small.
MAX_PRED_LOG_CHARS = 500

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"


@dataclass(frozen=True)
class Parsed:
    """A response after the format gate: `answer` is the `<answer>` block's content."""

    format_ok: bool
    answer: str
    reason: str = ""


def check_format(response: str) -> Parsed:
    """Format gate: exactly one non-empty `<think>` block, then exactly one `<answer>` block.

    Nothing but whitespace may stand before, between or after the two blocks. Uses
    `str.count`/`str.find` only, so it is linear even on adversarial 200k-character inputs.
    """
    if not isinstance(response, str):
        return Parsed(False, "", "response is not a string")
    for tag in (_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE):
        n = response.count(tag)
        if n != 1:
            return Parsed(False, "", f"{tag} appears {n} times")
    t0 = response.find(_THINK_OPEN)
    t1 = response.find(_THINK_CLOSE)
    a0 = response.find(_ANSWER_OPEN)
    a1 = response.find(_ANSWER_CLOSE)
    if not t0 < t1 < a0 < a1:
        return Parsed(False, "", "tags out of order")
    if response[:t0].strip() or response[t1 + len(_THINK_CLOSE) : a0].strip():
        return Parsed(False, "", "text outside the <think>/<answer> blocks")
    if response[a1 + len(_ANSWER_CLOSE) :].strip():
        return Parsed(False, "", "text after </answer>")
    if not response[t0 + len(_THINK_OPEN) : t1].strip():
        return Parsed(False, "", "empty <think> block")
    answer = response[a0 + len(_ANSWER_OPEN) : a1].strip()
    if not answer:
        return Parsed(False, "", "empty <answer> block")
    return Parsed(True, answer)


# --- brace-aware helpers (linear scans; never recursive, so deep nesting is harmless) -------------


def _match_brace(s: str, open_idx: int) -> int:
    """Index of the `}` closing the `{` at `open_idx`, or -1 when unbalanced."""
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


_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def boxed_spans(s: str) -> list[tuple[int, int, str]]:
    """Top-level `\\boxed{...}` / `\\fbox{...}` groups as (start, end, content)."""
    spans: list[tuple[int, int, str]] = []
    pos = 0
    while True:
        m = _BOXED_RE.search(s, pos)
        if not m:
            return spans
        close = _match_brace(s, m.end() - 1)
        if close < 0:
            return spans
        spans.append((m.start(), close + 1, s[m.end() : close]))
        pos = close + 1


# Text beside a single box that names another answer: a digit, an option letter or an or-word.
_OUTSIDE_HEDGE_RE = re.compile(r"\d|(?<![A-Za-z\\])[A-H](?![A-Za-z])|(?i:\b(?:or|either)\b)|或")


def extract_answer(answer_block: str) -> str:
    """The answer inside an `<answer>` block: a `\\boxed{}` when present, else the whole block.

    Several boxes keep the text between them ("\\boxed{5} or \\boxed{6}" -> "5 or 6") so a
    hedged answer stays visibly hedged instead of silently picking one of its options.
    """
    spans = boxed_spans(answer_block)
    if not spans:
        return answer_block.strip()
    if len(spans) == 1:
        start, end, content = spans[0]
        outside = answer_block[:start] + " " + answer_block[end:]
        outside = _LEAD_RE.sub("", _DELIM_RE.sub(" ", outside).strip())
        if _OUTSIDE_HEDGE_RE.search(outside):
            # "\\boxed{5} or 6": the text around the box names another answer; keep it visible.
            return (answer_block[:start] + content + answer_block[end:]).strip()
        return content.strip()
    first, last = spans[0][0], spans[-1][1]
    inner = answer_block[first:last]
    for start, end, content in reversed(spans):
        inner = inner[: start - first] + content + inner[end - first :]
    return inner.strip()


# --- normalisation -------------------------------------------------------------------------------

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u00d7": r"\times ",
    "\u22c5": r"\cdot ",
    "\u00b7": r"\cdot ",
    "\u00f7": r"\div ",
    "\u03c0": r"\pi ",
    "\u221e": r"\infty ",
    "\u2264": r"\le ",
    "\u2265": r"\ge ",
    "\u2260": r"\ne ",
    "\u222a": r"\cup ",
    "\u2229": r"\cap ",
    "\u00b1": r"\pm ",
    "\u00b0": r"^\circ",
    "\u00bd": r"\frac{1}{2}",
    "\u2153": r"\frac{1}{3}",
    "\u2154": r"\frac{2}{3}",
    "\u00bc": r"\frac{1}{4}",
    "\u00be": r"\frac{3}{4}",
    "\u2155": r"\frac{1}{5}",
    "\u2159": r"\frac{1}{6}",
    "\u215b": r"\frac{1}{8}",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u00b9": "^1",
    "\u2070": "^0",
    "\u2074": "^4",
    "\u2075": "^5",
    "\u2076": "^6",
    "\u207b\u00b9": "^{-1}",
    "\uff0c": ",",
    "\uff1a": ":",
    "\uff08": "(",
    "\uff09": ")",
    "\u3002": ".",
    "\u2236": ":",
    "\u2044": "/",
}
_UNICODE_RE = re.compile("|".join(re.escape(k) for k in sorted(_UNICODE, key=len, reverse=True)))
_SQRT_RE = re.compile(r"\u221a\s*(\d+(?:\.\d+)?|[A-Za-z]|\([^()]{0,200}\)|\{[^{}]{0,200}\})")

_WRAPPER_CMDS = ("boxed", "fbox", "text", "textbf", "textit", "textrm", "mathrm", "mathbf", "mbox", "mathit")
_WRAPPER_RE = re.compile(r"\\(?:" + "|".join(_WRAPPER_CMDS) + r")\s*\{")
_SPACING_RE = re.compile(r"\\(?:left|right|displaystyle|textstyle|quad|qquad|[,;:! ])|~")
_DELIM_RE = re.compile(r"\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_LEAD_RE = re.compile(
    r"^(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)?|therefore,?|thus,?|so,?|hence,?|答案是|答案为|答案[:：]?)\s*:?\s*",
    re.IGNORECASE,
)
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|\s*degrees?\b", re.IGNORECASE)
_PERCENT_RE = re.compile(r"\\?%")
_THOUSANDS_RE = re.compile(r"(?<![\d.])(\d{1,3})((?:(?:,|\{,\}|\\,)\d{3})+)(?![\d])")
# Single letters (m, s, g, l, h) are units only inside \text{...} or after a number and a space
# ("5 m"); glued or after a letter they are variables ("2h", "n + m").
_UNIT_LETTERS = "m|g|l|s|h"
_UNIT_WORDS = (
    "square units|sq units|cubic units|units?|cm|mm|km|kg|mg|ml|sec|seconds?|minutes?|mins?|hours?|"
    "hrs?|days?|weeks?|years?|meters?|metres?|centimeters?|inches|inch|feet|foot|ft|yards?|miles?|mph|"
    "km/h|m/s|dollars?|cents?|yuan|degrees?|radians?|rad|people|students|cups?|pounds?|lbs?|ounces?|oz|"
    "元|厘米|毫米|千米|米|度|个|人|克|千克|秒|分钟|小时|天|平方厘米|平方米|立方厘米"
)
_UNIT_RE = re.compile(
    r"(?<=[\d}).\s])\s*(?:\\,)?\s*(?:" + _UNIT_WORDS + r")\s*(?:\^\s*\{?[23]\}?)?\s*\.?$"
    r"|(?<=\d)(?:\s|\\,)+(?:" + _UNIT_LETTERS + r")\s*(?:\^\s*\{?[23]\}?)?\s*\.?$"  # "5 m", never "5m"
)
_TEXT_UNIT_RE = re.compile(
    r"(?<=[\d}).\s])\s*(?:\\,)?\s*\\(?:text|mathrm|mbox|textrm|rm)\s*\{\s*(?:\\,|\s)*(?:"
    + _UNIT_WORDS
    + "|"
    + _UNIT_LETTERS
    + r")\s*\}\s*(?:\^\s*\{?[23]\}?)?\s*\.?\s*$"
)
# A letter that is not part of a LaTeX command: stripping a "unit" must leave no variable behind.
_BARE_LETTER_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]")
# Words that change what the number means ("5 or more", "5 is wrong"): never dropped as a unit.
_MEANING_WORDS = (
    "or|and|nor|to|is|are|was|be|not|no|isn|more|less|fewer|least|most|than|over|under|above|below|"
    "wrong|incorrect|correct|false|true|either|neither|but|if|only|maybe|perhaps|possibly|about|"
    "approximately|approx|around|roughly|exactly|plus|minus|times|per|greater|smaller|larger|higher|lower|"
    "up|at|otherwise|else|except|excluding|including|max|min|maximum|minimum"
)
_NUMBER_WORDS_RE = re.compile(
    r"([+-]?\d[\d.,]*)\s+(?!(?:" + _MEANING_WORDS + r")\b)[A-Za-z]{2,}"
    r"(?:\s+(?!(?:" + _MEANING_WORDS + r")\b)[A-Za-z]{2,})?",
    re.IGNORECASE,
)
_VAR_ASSIGN_RE = re.compile(r"^[A-Za-z](?:_\{?\w{1,3}\}?)?\s*=\s*(?=\S)")
_FRAC_SHORT_RE = re.compile(r"\\[dt]?frac\s*(\d)\s*(\d)")
_DFRAC_RE = re.compile(r"\\[dt]frac")
_SPACE_RE = re.compile(r"\s+")
_SPACE_DROP_RE = re.compile(r"(?<![A-Za-z]) | (?![A-Za-z])")
_CURRENCY_RE = re.compile(r"^(?:\\\$|\$|USD|US\$|¥|￥|€|£)\s*")


def _unwrap_commands(s: str) -> str:
    """Replace `\\text{X}`, `\\boxed{X}`, ... by X, innermost-safe and linear per wrapper."""
    for _ in range(50):  # bounded: each pass removes at least one wrapper
        m = _WRAPPER_RE.search(s)
        if not m:
            return s
        close = _match_brace(s, m.end() - 1)
        if close < 0:
            return s[: m.start()] + s[m.end() :]
        s = s[: m.start()] + " " + s[m.end() : close] + " " + s[close + 1 :]
    return s


def _replace_sqrt(m: re.Match[str]) -> str:
    arg = m.group(1)
    if arg[0] in "({":
        arg = arg[1:-1]
    return r"\sqrt{" + arg + "}"


def _strip_unit(regex: re.Pattern[str], s: str) -> str:
    """`s` without a trailing unit, unless that would leave an expression with letters behind.

    Only the tail is searched: a unit is short, and a search from every position of a long
    run of spaces would be quadratic.
    """
    m = regex.search(s, max(0, len(s) - 120))
    stripped = s[: m.start()].strip() if m else s
    value = _VAR_ASSIGN_RE.sub("", stripped)  # "x = 5 s": the name x is not part of the value
    return stripped if stripped != s and value and not _BARE_LETTER_RE.search(value) else s


def clean_answer(text: str, strip_units: bool = True) -> str:
    """Light clean-up that keeps LaTeX meaning: unicode math, delimiters, wrappers, units, separators.

    The result is what math-verify sees (wrapped in `\\boxed{}`), so spacing is kept. Callers pass
    `strip_units=False` for ground truths, and for a prediction whose ground truth is not a number.
    """
    if len(text) > 4 * MAX_ANSWER_CHARS:
        return text.strip()  # never compared (too long to be an answer); keep the cost linear and small
    s = text.strip()
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = _SQRT_RE.sub(_replace_sqrt, s)
    s = unicodedata.normalize("NFKC", s)
    s = _DELIM_RE.sub(" ", s)
    if strip_units:
        s = _strip_unit(_TEXT_UNIT_RE, _SPACE_RE.sub(" ", s).strip())
    s = _unwrap_commands(s)
    s = _SPACING_RE.sub(" ", s)
    s = _SPACE_RE.sub(" ", s).strip()
    for _ in range(3):
        before = s
        s = _LEAD_RE.sub("", s).strip()
        s = s.rstrip(" .。")
        s = _CURRENCY_RE.sub("", s)
        s = _DEGREE_RE.sub("", s).strip()
        if strip_units:
            s = _strip_unit(_UNIT_RE, s)
        if s == before:
            break
    m = _NUMBER_WORDS_RE.fullmatch(s) if strip_units else None
    if m:  # "5 apples", "12 square feet": a number with a unit we do not list
        s = m.group(1)
    s = _THOUSANDS_RE.sub(lambda m: m.group(1) + re.sub(r"\{,\}|\\,|,", "", m.group(2)), s)
    s = _DFRAC_RE.sub(r"\\frac", s)
    s = _FRAC_SHORT_RE.sub(r"\\frac{\1}{\2}", s)
    return s


def comparison_key(text: str, strip_units: bool = True, keep_assign: bool = False) -> str:
    """Canonical string for exact comparison: cleaned, no spacing noise, and no variable assignment
    when the answer is a single part ("x = 5" -> "5"; "x=5, y=6" keeps its names)."""
    s = clean_answer(text, strip_units)
    if not keep_assign and len(split_top_level(s)) == 1:
        s = _VAR_ASSIGN_RE.sub("", s)
    s = _PERCENT_RE.sub("", s)
    s = _SPACE_DROP_RE.sub("", _SPACE_RE.sub(" ", s))
    s = s.replace("{", "").replace("}", "") if len(s) <= 2 else s
    s = re.sub(r"\^\{(\w)\}", r"^\1", s)
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = s.strip(" .")
    if re.fullmatch(r"[A-Za-z ]{2,}", s):
        s = s.lower()
    return s


# --- numbers -------------------------------------------------------------------------------------

_PLAIN_NUM_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_FRAC_RE = re.compile(r"([+-]?)\\frac\{([+-]?\d+(?:\.\d+)?)\}\{([+-]?\d+(?:\.\d+)?)\}")
_SLASH_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)")
_SCI_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)(?:\\times|\\cdot|\*|x)10\^\{?([+-]?\d{1,3})\}?")
_E_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)[eE]([+-]?\d{1,3})")


@dataclass(frozen=True)
class Number:
    value: Fraction
    plain: bool  # an integer or finite decimal as written (no fraction, no exponent)
    decimals: int  # digits after the decimal point as written


def parse_number(key: str) -> Number | None:
    """A number from a comparison key, or None; bounded (short inputs, exponents below 1000)."""
    if not key or len(key) > 64:
        return None
    if _PLAIN_NUM_RE.fullmatch(key):
        decimals = len(key.split(".", 1)[1]) if "." in key else 0
        return Number(Fraction(key if not key.endswith(".") else key[:-1]), True, decimals)
    m = _FRAC_RE.fullmatch(key) or _SLASH_RE.fullmatch(key)
    if m:
        groups = m.groups()
        sign = -1 if len(groups) == 3 and groups[0] == "-" else 1
        num, den = Fraction(groups[-2]), Fraction(groups[-1])
        if den == 0:
            return None
        return Number(sign * num / den, False, 0)
    m = _SCI_RE.fullmatch(key) or _E_RE.fullmatch(key)
    if m:
        return Number(Fraction(m.group(1)) * Fraction(10) ** int(m.group(2)), False, 0)
    return None


def numbers_equal(gold: Number, pred: Number) -> bool:
    if gold.value == pred.value:
        return True
    # A ground truth written as a rounded decimal ("0.33") accepts the exact value it rounds ("1/3"),
    # but not any fraction that rounds the same way ("27/50" is not "0.5"): the fraction must not
    # terminate (else it would be written exactly) and its denominator q must satisfy q*q < 10**d,
    # which leaves at most one such fraction in the rounding interval.
    if gold.plain and gold.decimals >= 1 and not pred.plain:
        q = pred.value.denominator
        while q % 2 == 0:
            q //= 2
        while q % 5 == 0:
            q //= 5
        den = pred.value.denominator
        return q > 1 and den * den < 10**gold.decimals and round(pred.value, gold.decimals) == gold.value
    return False


# --- multi-part answers, hedges and option letters -----------------------------------------------

_OR_WORDS_RE = re.compile(r"\s+(?:or|either)\s+|\\lor|\\vee|或者?", re.IGNORECASE)


def split_top_level(s: str, seps: str = ",;") -> list[str]:
    """Split on separators outside any (), [], {} so tuples and intervals stay whole."""
    parts, depth, cur = [], 0, []
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        if c in seps and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def hedge_parts(cleaned: str) -> list[str]:
    """Alternatives joined by 'or' (a hedge unless the ground truth itself lists alternatives)."""
    parts = [p.strip() for p in _OR_WORDS_RE.split(cleaned) if p and p.strip()]
    return parts if len(parts) > 1 else []


_LETTER_ONLY_RE = re.compile(r"^\(?\s*([A-Za-z])\s*\)?\s*[.:)]?$")
_LETTER_LEAD_RE = re.compile(r"^\(?([A-Z])(?:\)|\.|:|\s*[)．、])\s*\S")
# Keywords in any case, but the option itself must be a capital: "option is B", never the "i" of "is".
_LETTER_PHRASE_RE = re.compile(
    r"(?i:option|choice|answer|选项?)(?:\s+(?i:is))?\s*[:：]?\s*\(?([A-Z])\)?(?![A-Za-z])"
)
_LETTER_IS_RE = re.compile(
    r"^\(?([A-Z])\)?\s+(?i:is\s+(?:correct|right|the\s+(?:(?:correct|right|best)\s+)?(?:answer|option|choice)))"
    r"\b[\s.!]*$"
)
# Every other way an answer names an option: "(B)", "B.", "B)", "B:", "option B", "or B". Bare letters
# count only up to H, so a unit or a point in the option text ("(B) 5 N.", "point P.") is no option.
_LETTER_MENTION_RE = re.compile(
    r"\(\s*([A-Z])\s*\)"
    r"|(?<![A-Za-z\\])([A-H])\s*[.:)．、](?!\d)"
    r"|(?i:option|choice|选项?)\s*[:：]?\s*\(?([A-Z])\)?(?![A-Za-z])"
    r"|(?i:\b(?:or|either|and)\s+)\(?([A-H])\)?(?![A-Za-z])"
)


def extract_letters(answer: str) -> list[str]:
    """Option letters named by an answer: "C", "(B)", "A. 42", "option D", "A or B" -> ["A", "B"].

    Every option the answer mentions counts: "A. 17 or B. 18" names two (a hedge), not just A.
    """
    if len(answer) > MAX_ANSWER_CHARS:
        return []
    s = clean_answer(answer)
    if len(s) > 300:
        return []
    m = _LETTER_ONLY_RE.match(s)
    if m:
        return [m.group(1).upper()]
    m = _LETTER_LEAD_RE.match(s) or _LETTER_IS_RE.match(s) or _LETTER_PHRASE_RE.search(s)
    if m:
        letters = [m.group(1)]
        for mention in _LETTER_MENTION_RE.finditer(s):
            letter = next(g for g in mention.groups() if g)
            if letter not in letters:
                letters.append(letter)
        return letters
    parts = split_top_level(_OR_WORDS_RE.sub(",", s).replace(" and ", ","))
    letters = []
    for p in parts:
        pm = _LETTER_ONLY_RE.match(p)
        if not pm:
            return []
        letters.append(pm.group(1).upper())
    return letters if len(letters) > 1 else []


def is_letter(gt: str) -> bool:
    return bool(re.fullmatch(r"\(?[A-Z]\)?", gt.strip()))


_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_MATH_WORDS = frozenset(
    [
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "arcsin",
        "arccos",
        "arctan",
        "sinh",
        "cosh",
        "tanh",
        "log",
        "ln",
        "exp",
        "lim",
        "max",
        "min",
        "det",
        "gcd",
        "lcm",
        "mod",
        "deg",
        "dim",
        "ker",
        "sgn",
        "arg",
        "inf",
        "sup",
    ]
)


def is_wordy(cleaned: str) -> bool:
    """Holds words (3+ letters, not a math function): math-verify would read them as products of
    single-letter symbols, and e.g. "five apples" parses to the same thing as "five"."""
    return any(w.lower() not in _MATH_WORDS for w in _WORD_RE.findall(cleaned))


def truncate_pred(pred: str) -> str:
    return pred if len(pred) <= MAX_PRED_LOG_CHARS else pred[:MAX_PRED_LOG_CHARS] + "..."
