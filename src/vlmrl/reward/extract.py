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
    r"maybe|perhaps|possibly|might|could|also|more|less|fewer|(?<!\bthe\s)(?:least|most)|than|unless)\b"
    r"|n't\b)|不"
)
# Where a clause starts: a sentence end, a line break, or a clause mark.
_CLAUSE_BREAK_RE = re.compile(r"[.!?。;；,，:：]\$?(?=\s|$)|\n|[。；，：]")
_SENTENCE_BREAK_RE = re.compile(r"[.!?。]\$?(?=\s|$)|\n\s*\n|。")
# The last number of an answer with no box: "204", "1,000.99", ".5", "-3".
# (An exponent or index, as in "cm^2" or "x_1", is no candidate of its own.)
_NUMBER_TOKEN_RE = re.compile(r"(?<![\^_\d.])(?<!\^\{)(?<!_\{)[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")
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


# Where the words that qualify a final candidate end: a clause mark, or a relative clause about it
# ("\\boxed{12}, which is more than the estimate" compares, it does not take the answer back).
_TAIL_CUT_RE = re.compile(
    r"[,;:(]|(?i:\b(?:which|that|since|because|where|as|so|hence|thus|and\s+(?:this|that|it|so))\b)"
)
# A turn after that cut that may still qualify it: "\\boxed{5}, but it could also be 6".
_TAIL_TURN_RE = re.compile(
    r"(?i:\b(?:but|though|although|however|unless|or|either|otherwise|alternatively)\b)|或"
)
# A next sentence that says the alternative agrees: "Alternatively, working backwards also gives 12."
_SAME_RE = re.compile(r"(?i:\b(?:same|also|again|confirms?|agrees?|consistent|either\s+way)\b)")


def _tail_negated(tail: str) -> bool:
    """Words right after a final candidate that take it back or qualify it ("5 is wrong", "5 or
    more", ", but it could also be 6"); a relative clause about it is not one."""
    cut = _TAIL_CUT_RE.search(tail)
    if _TAIL_NEG_RE.search(tail, 0, cut.start() if cut else len(tail)):
        return True
    turn = _TAIL_TURN_RE.search(tail)
    return bool(turn and _TAIL_NEG_RE.search(tail, turn.end()))


def _alternative_follows(next_words: str, value: str | None) -> bool:
    """The next sentence offers an alternative ("Or 6.", "Alternatively, it could be 7"): it opens
    with an alternative word and names a number the answer does not, or says nothing of agreeing."""
    words = next_words.lstrip()
    if not _OR_RE.match(words):
        return False
    if _SAME_RE.search(words):
        return False
    own = set(_NUMBER_TOKEN_RE.findall(value or ""))
    named = set(_NUMBER_TOKEN_RE.findall(words))
    opener = _OR_RE.match(words).group(0).lower()
    # "Or maybe not." offers an alternative by itself; "Otherwise, ..." / "Alternatively, ..." only
    # with a number the answer does not have (else they describe a case or another method).
    return bool(named - own) or (not named and opener in ("or", "either", "或"))


# The verb of the answer's own sentence: words before it belong to the subject, often the question
# restated ("the number of integers that are not multiples of 4 or 6 is \\boxed{12}").
_COPULA_RE = re.compile(r"(?i:\b(?:is|are|was|were|be|equals|becomes)\b)")
# A candidate value right before an "or": "13 or \\boxed{12}", "$x = 13$ or $x = \\boxed{12}$",
# "$\\frac{1}{2}$ or ..." (not a computation whose value the box gives: "$5 + 7$ or \\boxed{12}").
_BARE_VALUE_END_RE = re.compile(
    r"(?<![\w\\])(?:[A-Za-z](?:_\{?\w{1,3}\}?)?\s*=\s*)?[-+]?"
    r"(?:\d[\d,]*(?:\.\d+)?|\\[dt]?frac\{[^{}]*\}\{[^{}]*\}|\\sqrt\{[^{}]*\})"
    r"(?:\s*(?:\\(?:text|mathrm)\s*\{[^{}]*\}|[A-Za-z]{1,5}\b\.?)" + UNIT_POWER + r")?"
    r"[\s$,]*(?:\\\)|\\\])?[\s$,]*$"
)
# What may follow an "or" after the answer and offer an alternative to it: a value, math, an option
# letter, or a word that hedges; "\\boxed{12}, or one dozen" says the same answer in words.
_OR_ALTERNATIVE_RE = re.compile(
    r"\s*(?:[-+$\\(\[\d]|[A-Z](?![\w'])|(?i:maybe|perhaps|possibly|probably|so\b|else|not|more|less|fewer|"
    r"thereabouts))"
)


_OPERATORS = frozenset("=+-*/^<>{_\\")


def _hedging_ors(text: str, before: str, boxed: bool) -> bool:
    """An alternative word in `text` (a clause head) that offers another answer: "either",
    "alternatively", ..., or an "or" right after a candidate value ("13 or \\boxed{12}"); before a
    box, an "or" after a computation or words restates ("$3x = 36$ or $x = \\boxed{12}$"). Before
    an answer with no box, every "or" is one."""
    for m in _OR_RE.finditer(text):
        if m.group(0).lower() != "or" or not boxed:
            return True
        prior = before + text[: m.start()]
        bare = _BARE_VALUE_END_RE.search(prior)
        # Not a term of a computation ("$3x + 4 = 40$", "$5 + 7$"): nothing operates on it.
        if bare and prior[: bare.start()].rstrip(" $")[-1:] not in _OPERATORS:
            return True
    return False


def _or_offers_alternative(tail: str, m: re.Match[str] | None, boxed: bool) -> bool:
    if m is None:
        return False
    return m.group(0).lower() != "or" or not boxed or bool(_OR_ALTERNATIVE_RE.match(tail, m.end()))


def _qualified(
    head: str, tail: str, next_words: str, value: str | None = None, before: str = "", boxed: bool = False
) -> tuple[bool, bool]:
    """(hedge, negated) from the words around a final candidate; `before` is the text before `head`,
    `boxed` whether the candidate is a box. Only the words after the head's last verb qualify the
    candidate (those before it belong to the subject)."""
    copulas = list(_COPULA_RE.finditer(head))
    if copulas:
        before, head = before + head[: copulas[-1].end()], head[copulas[-1].end() :]
    cut = _TAIL_CUT_RE.search(tail)
    or_in_tail = _or_offers_alternative(
        tail, _OR_RE.search(tail, 0, cut.start() if cut else len(tail)), boxed
    )
    turn = _TAIL_TURN_RE.search(tail)
    or_after_turn = (
        turn is not None
        and turn.group(0).lower() in ("or", "either", "otherwise", "alternatively", "或")
        and cut is not None
        and _or_offers_alternative(tail, turn, boxed)
    )
    hedge = bool(
        _hedging_ors(head, before, boxed)
        or or_in_tail
        or or_after_turn
        or _alternative_follows(next_words, value)
    )
    negated = bool(_HEAD_NEG_RE.search(head) or _tail_negated(tail))
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


# A box's value written with emphasis or AIME's three digits: "\\textbf{(012)}", "012", "104.".
_BOX_DRESS_RE = re.compile(r"\\(?:textbf|mathbf|text|mathrm)\s*\{\s*\(?\s*([-+]?\d+(?:\.\d+)?)\s*\)?\s*\}")
_INTEGER_BOX_RE = re.compile(r"^[-+]?\d+\.?$")
# A "final answer" sentence that states a value (else: "The final answer is positive, since ...").
_STATES_VALUE_RE = re.compile(r"\d|\$|\\[(\[]|\\boxed")


def _box_key(content: str) -> str:
    """Boxes holding one value written differently are one answer: "12", "\\textbf{(012)}", "12."."""
    key = _squash(_BOX_DRESS_RE.sub(r"\1", content))
    if _INTEGER_BOX_RE.match(key):
        return str(int(key.rstrip(".")))
    return key


def final_answer(block: str) -> Final:
    """The final answer of an `<answer>` block and whether the words around it hedge or negate it."""
    spans = box_spans(block)
    if spans:
        restated = [
            m
            for m in _FINAL_PHRASE_RE.finditer(block, spans[-1][1])
            if _STATES_VALUE_RE.search(_sentence_tail(block, m.end())[0])
        ]
        if restated:
            # "... \\boxed{200} ... \\boxed{255} ... The final answer is $10,455$.": the restatement.
            return _unboxed(block[restated[-1].start() :], block)
        contents: list[str] = []
        for _, _, content in spans:
            if _box_key(content) not in {_box_key(c) for c in contents}:
                contents.append(content.strip())
        if any(len(c) > MAX_ANSWER_CHARS for c in contents):
            return Final("", None, too_long=True)
        first, last = spans[0][0], spans[-1][1]
        between = " ".join(block[a[1] : b[0]] for a, b in zip(spans, spans[1:], strict=False))
        head = _clause_head(block, first)
        tail, next_words = _sentence_tail(block, last)
        hedge, negated = _qualified(
            head,
            tail,
            next_words,
            contents[0] if len(contents) == 1 else None,
            block[: first - len(head)],
            boxed=True,
        )
        # Boxes that all hold one value are one answer, whatever the prose between them says.
        hedge = (
            hedge
            or (len(contents) > 1 and bool(_OR_RE.search(between)))
            or any(_OR_RE.search(c) for c in contents)
        )
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
        hedge, negated = _qualified(head, tail, next_words, final.group(0), text[: final.start() - len(head)])
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


_LATEX_NOISE_RE = re.compile(
    r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\displaystyle|\\[,!;: ]|\\q?quad|\s+|\$|\\\(|\\\)|\\\[|\\\]"
)
_LATEX_SAME = (
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("{,}", ","),
    ("^{\\circ}", "^\\circ"),
    ("\\%", "%"),
)


def latex_key(text: str) -> str:
    """A formula as written, less what LaTeX does not render as a difference: spaces, math
    delimiters, `\\left`/`\\right`, spacing commands, `\\dfrac` for `\\frac`, `{,}` for `,`,
    a final full stop. Two answers with the same key are the same answer (no reading involved);
    "" for prose (words are not squeezed together)."""
    if len(text) > 512 or is_wordy(text):
        return ""
    # A space between two digits or letters may separate two things ("2 3"): kept, as one space.
    s = _LATEX_NOISE_RE.sub("", re.sub(r"(?<=[0-9A-Za-z])\s+(?=[0-9A-Za-z])", "\x00", text)).replace(
        "\x00", " "
    )
    for a, b in _LATEX_SAME:
        s = s.replace(a, b)
    return s.rstrip(".")


# --- exact surds: a rational times the square root of an integer, times a power of pi -------------

Surd = tuple[Fraction, int, int]  # (rational factor, square-free radicand, power of pi)
_SURD_NOISE_RE = re.compile(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\[,!;: ]|\s+|\$|\\\(|\\\)")
_SURD_TOKEN_RE = re.compile(r"\d+|\\[dt]?frac|\\sqrt|\\pi(?![a-zA-Z])|\\cdot|\\times|[{}()/*]|.", re.DOTALL)
_MAX_RADICAND = 10**8


def _square_free(n: int) -> tuple[int, int]:
    """(k, m) with n = k*k*m and m square-free (n >= 1, at most `_MAX_RADICAND`)."""
    k, m, f = 1, n, 2
    while f * f <= m:
        while m % (f * f) == 0:
            m //= f * f
            k *= f
        f += 1
    return k, m


def _surd(coef: Fraction, radicand: int, pi: int) -> Surd | None:
    if radicand > _MAX_RADICAND or abs(pi) > 8:
        return None
    if coef == 0:
        return Fraction(0), 1, 0
    k, m = _square_free(radicand)
    return coef * k, m, pi


def _times(a: Surd | None, b: Surd | None) -> Surd | None:
    if a is None or b is None:
        return None
    return _surd(a[0] * b[0], a[1] * b[1], a[2] + b[2])


def _over(a: Surd | None, b: Surd | None) -> Surd | None:
    if a is None or b is None or b[0] == 0:
        return None
    # 1 / (c sqrt(m) pi^k) = sqrt(m) / (c m) pi^-k
    return _times(a, _surd(1 / (b[0] * b[1]), b[1], -b[2]))


class _SurdReader:
    """A product of integers, `\\frac{..}{..}`, `\\sqrt{integer}`, `\\pi` and one top-level `/`."""

    def __init__(self, tokens: list[str]) -> None:
        self.t, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, want: str | None = None) -> str | None:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            return None
        self.i += 1
        return tok

    def group(self) -> Surd | None:
        if not self.take("{"):
            return None
        value = self.product()
        return value if self.take("}") else None

    def factor(self) -> Surd | None:
        tok = self.take()
        if tok is None:
            return None
        if tok.isdigit():
            return _surd(Fraction(int(tok)), 1, 0) if len(tok) < 16 else None
        if tok in ("\\frac", "\\dfrac", "\\tfrac"):
            if self.peek() is not None and self.peek().isdigit() and len(self.peek()) == 2:  # \frac12
                digits = self.take() or "00"
                return _over(_surd(Fraction(int(digits[0])), 1, 0), _surd(Fraction(int(digits[1])), 1, 0))
            return _over(self.group(), self.group())
        if tok == "\\sqrt":
            if self.peek() == "{":
                self.take()
                n = self.take()
                if n is None or not n.isdigit() or not self.take("}") or int(n) == 0:
                    return None
                return _surd(Fraction(1), int(n), 0)
            n = self.take()
            return (
                _surd(Fraction(1), int(n[0]), 0) if n and n.isdigit() and len(n) == 1 and n != "0" else None
            )
        if tok == "\\pi":
            return Fraction(1), 1, 1
        if tok == "(":
            value = self.product()
            return value if self.take(")") else None
        return None

    def product(self) -> Surd | None:
        value: Surd | None = (Fraction(1), 1, 0)
        seen = False
        while self.peek() not in (None, "}", ")", "/"):
            if self.peek() in ("\\cdot", "\\times", "*"):
                if not seen:
                    return None
                self.take()
            value = _times(value, self.factor())
            if value is None:
                return None
            seen = True
        return value if seen else None


def surd_value(text: str) -> Surd | None:
    """The exact value of an answer made of integers, fractions, square roots of integers and pi
    ("2\\sqrt{3}", "\\frac{\\sqrt{6}}{8}", "\\frac{\\pi}{4}", "-\\frac{1}{3}\\sqrt{71}", "\\pi/6"),
    as (rational, square-free radicand, power of pi); None for anything else (decimals included:
    they are read as math-verify reads them). Square roots of distinct square-free integers are
    linearly independent over the rationals and pi is transcendental, so two such values are equal
    exactly when the triples are."""
    if len(text) > 120:
        return None
    s = _SQRT_RE.sub(_sqrt, _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text))
    if re.search(r"\d\s+\d", s):
        return None  # "2 3": two numbers, or one with a thousands space; not read here
    s = _SURD_NOISE_RE.sub("", s).rstrip(".")
    sign = 1
    while s[:1] in ("-", "+"):
        sign, s = (-sign if s[0] == "-" else sign), s[1:]
    if not s or "." in s:
        return None
    reader = _SurdReader(_SURD_TOKEN_RE.findall(s))
    value = reader.product()
    if reader.take("/"):
        value = _over(value, reader.product())
    if value is None or reader.peek() is not None:
        return None
    return _surd(sign * value[0], value[1], value[2])


def truncate_pred(pred: str) -> str:
    return pred if len(pred) <= MAX_PRED_LOG_CHARS else pred[:MAX_PRED_LOG_CHARS] + "..."
