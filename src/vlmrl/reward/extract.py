"""What the reward reads from a response before any comparison: the format gate, the final answer and
its hedges, and plain numbers that need no symbolic check.

math-verify does the extraction proper (boxed first, "final answer is", the last expression); this
module adds what it lacks: the `<think>`/`<answer>` gate, the guard against several distinct final
candidates ("5 or 6", "\\boxed{5} or 6", "5 is wrong"), and an exact in-process reading of plain
numbers so most answers never wait for a worker. Everything here is linear in the input length and
never raises on any string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from vlmrl.reward.mathtext import TEXT_COMMANDS, UNIT_POWER, box_spans, decimal

# A final answer (box content, or a whole answer without a box) longer than this is an essay:
# never correct by rule, never sent to math-verify.
MAX_ANSWER_CHARS = 4096
# What math-verify reads around a final box is cut to this many characters on each side.
_CONTEXT_CHARS = 400
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
    """Format gate: one non-empty `<think>` block, then exactly one `<answer>` block.

    Only whitespace may stand before, between or after the two blocks. The answer block may quote
    think tags (a model that restates its reasoning there is judged on the answer, not rejected).
    Uses `str.count`/`str.find` only, so it is linear even on adversarial 200k-character inputs.
    """
    if not isinstance(response, str):
        return Parsed(False, "", "response is not a string")
    for tag in (_ANSWER_OPEN, _ANSWER_CLOSE):
        n = response.count(tag)
        if n != 1:
            return Parsed(False, "", f"{tag} appears {n} times")
    a0 = response.find(_ANSWER_OPEN)
    a1 = response.find(_ANSWER_CLOSE)
    if a1 < a0:
        return Parsed(False, "", "tags out of order")
    head = response[:a0]
    for tag in (_THINK_OPEN, _THINK_CLOSE):
        n = head.count(tag)
        if n != 1:
            if n == 0 and response.count(tag):
                return Parsed(False, "", "tags out of order")
            return Parsed(False, "", f"{tag} appears {n} times")
    t0, t1 = head.find(_THINK_OPEN), head.find(_THINK_CLOSE)
    if t1 < t0:
        return Parsed(False, "", "tags out of order")
    if head[:t0].strip() or head[t1 + len(_THINK_CLOSE) :].strip():
        return Parsed(False, "", "text outside the <think>/<answer> blocks")
    if response[a1 + len(_ANSWER_CLOSE) :].strip():
        return Parsed(False, "", "text after </answer>")
    if not head[t0 + len(_THINK_OPEN) : t1].strip():
        return Parsed(False, "", "empty <think> block")
    answer = response[a0 + len(_ANSWER_OPEN) : a1].strip()
    if not answer:
        return Parsed(False, "", "empty <answer> block")
    return Parsed(True, answer)


# --- the final answer and its hedges ------------------------------------------------------------

# Alternatives: "5 or 6", "either", "\lor", Chinese "或".
_OR_RE = re.compile(r"(?i:\b(?:or|either|alternatively|otherwise)\b)|或|\\lor\b|\\vee\b")
# Words before a final candidate that take it back ("not 5", "the answer is not \\boxed{5}").
_HEAD_NEG_RE = re.compile(
    r"(?i:\b(?:not|no|never|wrong|incorrect|isn't|aren't|wasn't|can't|cannot|won't)\b|n't\b"
    r"|\b(?:at\s+(?:least|most)|more\s+than|less\s+than|fewer\s+than)\b)|不是"
)
# Words after a final candidate that take it back or qualify it ("5 is wrong", "5 or more",
# "\\boxed{5}, but it could also be 6").
_TAIL_NEG_RE = re.compile(
    r"(?i:\b(?:not|no|never|wrong|incorrect|false|isn't|aren't|wasn't|can't|cannot|won't|"
    r"maybe|perhaps|possibly|might|could|also|more|less|fewer|least|most|than|unless)\b|n't\b)|不"
)
# Where a clause starts: a sentence end, a line break, or a clause mark.
_CLAUSE_BREAK_RE = re.compile(r"[.!?。;；,，:：]\$?(?=\s|$)|\n|[。；，：]")
_SENTENCE_BREAK_RE = re.compile(r"[.!?。]\$?(?=\s|$)|\n\s*\n|。")
# The last number of an answer with no box: "204", "1,000.99", ".5", "-3".
_NUMBER_TOKEN_RE = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")
# A restatement after the boxes wins, as in math-verify ("... \\boxed{200} ... The final answer is $10,455$.").
_FINAL_PHRASE_RE = re.compile(r"(?i:final\s+answer)")
_PERCENT_TAIL_RE = re.compile(r"^\s*(?:\$|\\\)|\\\])?\s*(?:\\?%|(?i:percent(?:age)?|pct)\b)")
_PERCENT_END_RE = re.compile(r"\s*(?:\\?%|(?i:percent(?:age)?|pct))\s*$")
# Answer words in other languages, read as math-verify's "answer" anchor.
_ANSWER_WORDS_RE = re.compile(r"(?i:\b(?:réponse|reponse|respuesta|antwort|resposta|risposta)\b)|答案")
_CJK_DIGIT_RE = re.compile(
    r"(?<=[\u3040-\u30ff\u4e00-\u9fff])(?=[-+\d])|(?<=\d)(?=[\u3040-\u30ff\u4e00-\u9fff])"
)


@dataclass(frozen=True)
class Final:
    """The final answer of an answer block.

    `math_text` is what math-verify reads (the box with its sentence, the joined boxes, or the whole
    answer); `value` is the single final answer as written when there is one (a box's content or a
    short answer), for the in-process checks; `hedge` names alternatives ("or"), `negated` an
    answer taken back or qualified ("5 is wrong", "not 5", "5 or more").
    """

    math_text: str
    value: str | None
    hedge: bool = False
    negated: bool = False
    too_long: bool = False


def _clause_head(s: str, end: int, floor: int = 0) -> str:
    """The text of `s` from the start of the clause that holds position `end` (not before `floor`)."""
    start = max(floor, end - _CONTEXT_CHARS)
    last = start
    for m in _CLAUSE_BREAK_RE.finditer(s, start, end):
        last = m.end()
    return s[last:end]


def _sentence_tail(s: str, start: int) -> tuple[str, str]:
    """(rest of the sentence from `start`, the first words of the next one)."""
    window = s[start : start + _CONTEXT_CHARS]
    m = _SENTENCE_BREAK_RE.search(window)
    if not m:
        return window, ""
    return window[: m.start()], window[m.end() : m.end() + 40]


def _sentence_start(s: str, end: int) -> int:
    start = max(0, end - _CONTEXT_CHARS)
    last = start
    for m in _SENTENCE_BREAK_RE.finditer(s, start, end):
        last = m.end()
    return last


def _qualified(head: str, tail: str, next_words: str) -> tuple[bool, bool]:
    """(hedge, negated) from the words around a final candidate."""
    hedge = bool(_OR_RE.search(head) or _OR_RE.search(tail) or _OR_RE.match(next_words.lstrip()))
    negated = bool(_HEAD_NEG_RE.search(head) or _TAIL_NEG_RE.search(tail))
    return hedge, negated


_UNICODE = {
    "\u2212": "-",
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
    "\u00b1": r"\pm ",
    "\u00b0": r"^\circ",
    "\u00bd": r"\frac{1}{2}",
    "\u2153": r"\frac{1}{3}",
    "\u2154": r"\frac{2}{3}",
    "\u00bc": r"\frac{1}{4}",
    "\u00be": r"\frac{3}{4}",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\\$": "",
}
_UNICODE_RE = re.compile("|".join(re.escape(k) for k in sorted(_UNICODE, key=len, reverse=True)))
_SQRT_RE = re.compile(r"\u221a\s*(\d+(?:\.\d+)?|[A-Za-z]|\([^()]{0,200}\)|\{[^{}]{0,200}\})")
_HAS_DELIMS_RE = re.compile(r"(?<!\\)\$|\\\(|\\\[")
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
# Left raw for math-verify's own readers: non-ASCII text, and numbers with a decimal comma ("1000,99").
_NOT_FORMULA_RE = re.compile(r"[^\x00-\x7f]|^[-+]?\d+,\d+$")
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
    ]
)


def _sqrt(m: re.Match[str]) -> str:
    arg = m.group(1)
    return r"\sqrt{" + (arg[1:-1] if arg[0] in "({" else arg) + "}"


def is_wordy(text: str) -> bool:
    """Holds words (3+ letters, not a math function): prose, not a formula."""
    return any(w.lower() not in _MATH_WORDS for w in _WORD_RE.findall(text))


def _for_math_verify(text: str) -> str:
    """An answer as math-verify's readers expect it: unicode math as LaTeX ("½", "√2", "x²", "−3"),
    a bare formula in math delimiters (its LaTeX reader needs them), "answer" for other languages'
    answer words, and digits set apart from CJK characters (its numbers must follow a space)."""
    s = _SQRT_RE.sub(_sqrt, _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text))
    if not _HAS_DELIMS_RE.search(s) and not is_wordy(s) and not _NOT_FORMULA_RE.search(s):
        return "$" + s.replace("\n", " ") + "$"
    return _CJK_DIGIT_RE.sub(" ", _ANSWER_WORDS_RE.sub("answer", s))


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def final_answer(block: str) -> Final:
    """The final answer of an `<answer>` block and whether the words around it hedge or negate it."""
    spans = box_spans(block)
    if spans:
        restated = list(_FINAL_PHRASE_RE.finditer(block, spans[-1][1]))
        if restated:
            # "... \\boxed{200} ... \\boxed{255} ... The final answer is $10,455$.": the restatement.
            return _unboxed(block[restated[-1].start() :], block)
        contents: list[str] = []
        for _, _, content in spans:
            if _squash(content) not in {_squash(c) for c in contents}:
                contents.append(content.strip())
        if any(len(c) > MAX_ANSWER_CHARS for c in contents):
            return Final("", None, too_long=True)
        first, last = spans[0][0], spans[-1][1]
        between = " ".join(block[a[1] : b[0]] for a, b in zip(spans, spans[1:], strict=False))
        head = _clause_head(block, first)
        tail, next_words = _sentence_tail(block, last)
        hedge, negated = _qualified(head, tail, next_words)
        hedge = hedge or bool(_OR_RE.search(between)) or any(_OR_RE.search(c) for c in contents)
        percent = bool(_PERCENT_TAIL_RE.match(block[last:]))
        if len(contents) == 1 and _PERCENT_END_RE.search(contents[0]):
            percent = True
            inner = _PERCENT_END_RE.sub("", contents[0])
        else:
            inner = ", ".join(contents)  # several different boxes: one list answer, read as a whole
        # math-verify reads a percent only outside a delimited box: "$\\boxed{28}$%".
        inner = _SQRT_RE.sub(_sqrt, _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], inner))
        math_text = "$\\boxed{" + inner + "}$%" if percent else "\\boxed{" + inner + "}"
        return Final(math_text, contents[0] if len(contents) == 1 else None, hedge, negated)
    if len(block) > MAX_ANSWER_CHARS:
        return Final("", None, too_long=True)
    return _unboxed(block, block)


def _unboxed(text: str, block: str) -> Final:
    """The final answer of `text` (no box in it): what math-verify reads last, guarded by its words."""
    numbers = list(_NUMBER_TOKEN_RE.finditer(text))
    if numbers:
        final = numbers[-1]
        floor = numbers[-2].end() if len(numbers) > 1 else 0
        head = _clause_head(text, final.start(), floor)
        tail, next_words = _sentence_tail(text, final.end())
        hedge, negated = _qualified(head, tail, next_words)
    else:
        hedge = bool(_OR_RE.search(text))
        negated = False
    value = text if text is block and len(text) <= 200 and "\n" not in text else None
    return Final(_for_math_verify(text), value, hedge, negated)


def hedge_as_list(text: str) -> str:
    """Alternatives written as a list, for a ground truth that itself lists several answers."""
    return _OR_RE.sub(",", text)


# --- plain numbers --------------------------------------------------------------------------------

_MATH_DELIMS_RE = re.compile(r"\$|\\\(|\\\)|\\\[|\\\]")
_SPACING_RE = re.compile(r"\\[,!;: ]|\{,\}|~|\\quad|\\qquad")
_ASSIGN_RE = re.compile(r"^[A-Za-z](?:_\{?\w{1,3}\}?)?\s*=\s*(?=[-+\d])")
_PLAIN_RE = re.compile(r"[-+]?(?:" + decimal(",") + r"|\.\d+)")
_PROSE_RE = re.compile(r"[A-Za-z][A-Za-z' -]*")
_PROSE_NUMBER_RE = re.compile(r"(?<![\w.,])[-+]?\d+(?:\.\d+)?(?![\w%])")


def plain_number(text: str) -> Fraction | None:
    """The exact value of an answer that is one plain decimal number, else None.

    "1,000", "$-3$", "x = 4", "2.50", ".4" (0.4, never 4) are numbers; "50%", "1/2", "4\\pi", "1,22",
    "3m" are not (they need math-verify's reading: a percent, a fraction, a constant, a decimal comma,
    a unit).
    """
    if len(text) > 64:
        return None
    s = _SPACING_RE.sub("", _MATH_DELIMS_RE.sub("", text.replace("\\$", ""))).strip().rstrip(".").strip()
    s = _ASSIGN_RE.sub("", s).replace(" ", "")
    if not _PLAIN_RE.fullmatch(s):
        return None
    s = s.replace(",", "")
    return Fraction("0" + s if s.startswith(".") else s.replace("-.", "-0.").replace("+.", "+0."))


def prose_number(text: str) -> Fraction | None:
    """The one number of a short plain-English answer ("The walk takes 204 minutes."), else None.

    Only letters, spaces and sentence punctuation may stand around it; no math, no percent, no
    single-letter words but "a" and "I" (a variable or a constant: "x is 5", "5 e").
    """
    if len(text) > 200 or "\n" in text:
        return None
    numbers = _PROSE_NUMBER_RE.findall(text)
    if len(numbers) != 1:
        return None
    rest = _PROSE_NUMBER_RE.sub(" ", text, count=1).strip().rstrip(".!").strip()
    words = [w for w in re.split(r"[\s,;:]+", rest) if w]
    if not all(_PROSE_RE.fullmatch(w) for w in words):
        return None
    if any(len(w) == 1 and w not in ("a", "A", "I") for w in words):
        return None
    if any(
        w.lower() in ("percent", "percentage", "pct", "fraction", "half", "third", "quarter") for w in words
    ):
        return None
    return Fraction(numbers[0])


_UNIT_TAIL_RE = re.compile(
    r"^(?P<num>[-+]?\d+(?:\.\d+)?)(?:\s*\\(?:" + TEXT_COMMANDS + r")\s*\{\s*(?:\\,|\s)*[A-Za-z]+\s*\}"
    r"|\s+[A-Za-z]{1,12}(?:\s+[A-Za-z]{2,12})?|(?:cm|mm|km|kg|mg|ml|ft|sec|min|hrs?|mph|lbs?|oz))"
    r"\s*" + UNIT_POWER + "$"
    r"|^(?P<deg>[-+]?\d+(?:\.\d+)?)\s*(?:\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|\s*degrees?)$"
)


def number_with_unit(text: str) -> Fraction | None:
    """The number of "5 cm", "5 \\text{ m}", "12\\mbox{ m}^2", "x = 5 s", "5 apples", else None.

    A bare letter counts as a unit only after a space ("5 m"), or glued when it is a common unit
    ("48cm"); "2h" is a variable times two.
    """
    if len(text) > 80:
        return None
    s = _SPACING_RE.sub(" ", _MATH_DELIMS_RE.sub(" ", _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text)))
    s = _ASSIGN_RE.sub("", s.strip().rstrip(".").strip())
    m = _UNIT_TAIL_RE.match(s)
    return Fraction(m.group("num") or m.group("deg")) if m else None


_FRACTION_RE = re.compile(
    r"^([-+]?)(?:\\[dtc]?frac(?:\{(\d{1,9})\}\{(\d{1,9})\}|(\d)(\d))|(\d{1,9})/(\d{1,9}))$"
)


def simple_fraction(text: str) -> Fraction | None:
    """The value of "\\frac{1}{3}", "-\\dfrac{7}{2}", "\\frac12", "1/2" (integers only), else None."""
    s = (
        _MATH_DELIMS_RE.sub("", _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text))
        .replace(" ", "")
        .rstrip(".")
    )
    m = _FRACTION_RE.match(s)
    if not m:
        return None
    num, den = next(
        (a, b) for a, b in ((m.group(2), m.group(3)), (m.group(4), m.group(5)), (m.group(6), m.group(7))) if a
    )
    if int(den) == 0:
        return None
    value = Fraction(int(num), int(den))
    return -value if m.group(1) == "-" else value


def rounds_to(gold_text: str, value: Fraction) -> bool:
    """A ground truth written as a rounded decimal ("0.33") accepts the exact value it rounds
    ("1/3"), but not any fraction that rounds the same way ("27/50" is not "0.5"): the fraction must
    not terminate (else it would be written exactly) and its denominator q must satisfy
    q*q < 10**d, which leaves at most one such fraction in the rounding interval."""
    gold = plain_number(gold_text)
    decimals = len(gold_text.strip().split(".", 1)[1]) if gold is not None and "." in gold_text else 0
    if gold is None or decimals < 1:
        return False
    q = value.denominator
    while q % 2 == 0:
        q //= 2
    while q % 5 == 0:
        q //= 5
    den = value.denominator
    return q > 1 and den * den < 10**decimals and round(value, decimals) == gold


_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mbox)\s*\{([^{}]*)\}")


def text_key(text: str) -> str:
    """An answer as plain words for exact comparison ("\\text{Evelyn}" = "Evelyn", "Yes" = "yes")."""
    s = _TEXT_WRAP_RE.sub(r"\1", _MATH_DELIMS_RE.sub(" ", text))
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    return s.lower() if re.fullmatch(r"[A-Za-z][A-Za-z ]+", s) else s


def truncate_pred(pred: str) -> str:
    return pred if len(pred) <= MAX_PRED_LOG_CHARS else pred[:MAX_PRED_LOG_CHARS] + "..."
