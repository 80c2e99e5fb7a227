"""Option letters: which options an answer names, which a ground truth names, and the verdict.

math-verify compares mathematics, not multiple-choice answers; this module reads "C", "(B)",
"A. 11" (the GPQA form), "option D", "the correct answer is C", "I think it's B", "réponse est C",
"答案是C", and every other option the answer names ("A. 17 or B. 18" names two: a hedge). Options
named in a negated clause ("D. it can't be A or B", "B。不是 A") are not answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CJK = "\u4e00-\u9fff"
_CJK_PUNCT = str.maketrans({"。": ".", "，": ",", "：": ":", "（": "(", "）": ")", "．": ".", "、": ","})
_LETTER_ONLY_RE = re.compile(r"^\(?\s*([A-Za-z])\s*\)?\s*[.:)]?$")
_LETTER_LEAD_RE = re.compile(rf"^\(?([A-Z])(?:\)|\.|:|\s*[)．、])\s*\S|^\(?([A-Z])\)?(?=[{_CJK}])")
_ANSWER_WORDS = r"(?i:answer|option|choice|réponse|reponse|respuesta|antwort|resposta)|答案|选项?"
# Keywords in any case, but the option itself must be a capital ("answer is B", never the "i" of "is");
# up to three lower-case filler words may stand between ("the answer is for sure D").
_LETTER_PHRASE_RE = re.compile(
    rf"(?:{_ANSWER_WORDS})(?:\s+(?i:is|est|es|ist))?(?:\s+[a-z]+){{0,3}}?\s*[:：是为]?\s*[\"'“‘*]*"
    r"\(?([A-Z])\)?(?![A-Za-z])"
)
_LETTER_IS_RE = re.compile(
    r"^\(?([A-Z])\)?\s+(?i:is\s+(?:correct|right|the\s+(?:(?:correct|right|best)\s+)?(?:answer|option|choice)))"
    r"\b[\s.!]*$"
)
# "... therefore I think it's B", "so it is (B)." at the very end.
_LETTER_END_RE = re.compile(r"(?i:\b(?:it's|it\s+is|is|be|so|thus|therefore|hence))\s+\(?([A-Z])\)?[\s.!]*$")
# Every other way an answer names an option: "(B)", "B.", "B)", "B:", "option B", "or B". Bare letters
# count only up to H, so a unit or a point in the option text ("(B) 5 N.", "point P.") is no option.
_LETTER_MENTION_RE = re.compile(
    r"\(\s*([A-Z])\s*\)"
    r"|(?<![A-Za-z\\])([A-H])\s*[.:)．、](?!\d)"
    r"|(?i:option|choice|选项?)\s*[:：]?\s*\(?([A-Z])\)?(?![A-Za-z])"
    r"|(?i:\b(?:or|either|and)\s+)\(?([A-H])\)?(?![A-Za-z])"
)
# A clause that negates what follows it: "it can't be A or B", "not A", "不是 A", "non A".
_NEGATION_RE = re.compile(
    r"(?i:\b(?:not|no|never|isn't|can't|cannot|couldn't|won't|doesn't|don't|non|neither|nor|except|"
    r"rather\s+than|instead\s+of|wrong|incorrect)\b|n't\b)|不是|不|非"
)
# Where a clause of an option answer ends: any punctuation ("D. it can't be A": the clause after D).
_OPTION_CLAUSE_RE = re.compile(r"[.!?;,:]|\n")
_WRAPPER_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|boxed|fbox)\s*\{([^{}]*)\}")
_DELIMS_RE = re.compile(r"\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_OR_SPLIT_RE = re.compile(r"\s+(?:or|either)\s+|或者?|\s+and\s+", re.IGNORECASE)
_LEAD_WORDS_RE = re.compile(
    r"^(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)?|答案是|答案为)\s*:?\s*", re.IGNORECASE
)


def _clean(text: str) -> str:
    s = text.translate(_CJK_PUNCT).strip()
    for _ in range(3):
        s = _WRAPPER_RE.sub(r"\1", s)
    s = _DELIMS_RE.sub(" ", s)
    return re.sub(r"\s+", " ", s).strip()


def _negated(s: str, pos: int) -> bool:
    """Whether a negation precedes `pos` within its clause."""
    start = 0
    for m in _OPTION_CLAUSE_RE.finditer(s, 0, pos):
        # "D. it can't be A": the break right after a leading option letter ends that clause only.
        start = m.end()
    return bool(_NEGATION_RE.search(s, start, pos))


def extract_letters(answer: str) -> list[str]:
    """Option letters an answer names: "C", "(B)", "A. 42", "option D", "A or B" -> ["A", "B"].

    Every option the answer mentions outside a negated clause counts: "A. 17 or B. 18" names two
    (a hedge), "D. it can't be A or B" names D.
    """
    if len(answer) > 4096:
        return []
    s = _clean(answer)
    if len(s) > 600:
        s = s[-600:]
    m = _LETTER_ONLY_RE.match(s)
    if m:
        return [m.group(1).upper()]
    found: list[tuple[int, str]] = []
    m = _LETTER_LEAD_RE.match(s) or _LETTER_IS_RE.match(s)
    if m:
        idx = 1 if m.group(1) else 2
        found.append((m.start(idx), m.group(idx)))
    for m in _LETTER_PHRASE_RE.finditer(s):
        found.append((m.start(1), m.group(1)))
    m = _LETTER_END_RE.search(s)
    if m:
        found.append((m.start(1), m.group(1)))
    strong = [(p, letter) for p, letter in found if not _negated(s, p)]
    if strong:
        letters: list[str] = []
        for _, letter in sorted(strong):
            if letter not in letters:
                letters.append(letter)
        for mention in _LETTER_MENTION_RE.finditer(s):
            idx = next(i for i, g in enumerate(mention.groups(), start=1) if g)
            letter = mention.group(idx)
            if letter not in letters and not _negated(s, mention.start(idx)):
                letters.append(letter)
        return letters
    if found:
        return []  # every option it names is negated ("the answer is not A")
    body = _LEAD_WORDS_RE.sub("", s)
    parts = [p.strip() for p in re.split(r"[,;]", _OR_SPLIT_RE.sub(",", body)) if p.strip()]
    letters = []
    for p in parts:
        pm = _LETTER_ONLY_RE.match(p)
        if not pm:
            return []
        letters.append(pm.group(1).upper())
    return letters if len(letters) > 1 else []


def is_letter(gt: str) -> bool:
    return bool(re.fullmatch(r"\(?[A-Z]\)?", gt.strip()))


def gold_letters(gold: str) -> set[str]:
    """The option(s) a ground truth names: "C", "A, C", "(D) Alina", "C Cecile", "... the answer is (C) Cecile"."""
    s = _clean(gold)
    parts = [p.strip("() ") for p in re.split(r"[,;/ ]+", s) if p.strip("() ")]
    if parts and all(len(p) == 1 and p.isupper() for p in parts):
        return set(parts)
    m = re.match(r"^\(?([A-Z])\)?(?:[.:)]|\s+(?=[A-Z]))", s)
    if m:
        return {m.group(1)}
    phrase = list(_LETTER_PHRASE_RE.finditer(s))
    return {phrase[-1].group(1)} if phrase else set()


def choice_verdict(pred: str, golds: Sequence[str], choices: Sequence[str]) -> tuple[bool, str] | None:
    """(correct, how) when the answer names options and a ground truth is an option; None otherwise."""
    letters = extract_letters(pred)
    if not letters:
        return None
    gold_sets = [g for g in (gold_letters(x) for x in golds) if g]
    if not gold_sets:
        return None
    allowed = {c.strip().upper() for c in choices if isinstance(c, str) and c.strip()}
    if allowed and not set(letters) <= allowed:
        return False, "choice"
    if any(set(letters) == gs for gs in gold_sets):
        return True, "choice"
    return False, "choice" if len(letters) == 1 else "hedge"


# --- options given as texts -----------------------------------------------------------------------

_LEAD_IN_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence|in\s+conclusion)\s*,?\s*)?(?:the\s+)?(?:(?:final|correct|right|best)\s+)?"
    r"(?:answer|option|choice)\s*(?:is|:)?\s*:?\s*",
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?。])\s+|\n+")


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", _clean(text)).strip().rstrip(".!").strip().casefold()


def last_sentence(text: str) -> str:
    """The last sentence of an answer (its final line or clause ending in . ! ?), for the readings of
    a final sentence ("So the answer is no.", "The correct choice is (A).")."""
    parts = [p for p in _SENTENCE_END_RE.split(text.strip()) if p.strip()]
    return parts[-1].strip() if parts else ""


def _named_option(text: str, texts: Sequence[str]) -> list[int]:
    """The options whose text `text` is (after lead-in words), or, failing that, names as a whole
    phrase outside a negated clause."""
    body = _key(_LEAD_IN_RE.sub("", _clean(text)))
    exact = [k for k, t in enumerate(texts) if _key(t) and _key(t) == body]
    if exact:
        return exact[:1]
    s = _clean(text)
    named = []
    for k, t in enumerate(texts):
        key = _key(t)
        if len(key) < 2:
            continue  # a one-character option text ("5") is read only as the whole answer
        # Whole words only, and a number's text not inside a longer number ("12" in "12.5", "-12").
        for m in re.finditer(r"(?<![\w.,-])" + re.escape(key) + r"(?![\w])(?![.,]\d)", s.casefold()):
            if not _negated(s, m.start()):
                named.append(k)
                break
    # An option's text inside another's ("Iron" in "Iron oxide") is not a second option.
    return [k for k in named if not any(j != k and _key(texts[k]) in _key(texts[j]) for j in named)]


_LETTER_AND_TEXT_RE = re.compile(r"^(?:\(([A-Z])\)|([A-Z])\s*[.:)])\s*(\S.*)$")


def options_verdict(
    final_value: str | None, answer: str, golds: Sequence[str], texts: Sequence[str]
) -> tuple[bool, str, str] | None:
    """(correct, how, what was read) when the options' texts are known and a ground truth is an
    option, by letter or by text; None when the answer names no option (letter or text)."""
    letters = [chr(ord("A") + k) for k in range(len(texts))]
    gold_sets = []
    for g in golds:
        found = [k for k, t in enumerate(texts) if _key(t) == _key(g)]
        named = gold_letters(g) if is_letter(g) or not found else {letters[found[0]]}
        if named:
            gold_sets.append(named)
    if not gold_sets:
        return None
    source = final_value if final_value is not None else last_sentence(answer)
    said = extract_letters(source) or (extract_letters(answer) if final_value is not None else [])
    if not said:
        # An option's text: the whole final answer, else named in its last sentence (never in the
        # reasoning before it, which may mention every option).
        picked = _named_option(last_sentence(source), texts)
        said = [letters[k] for k in picked]
    if not said:
        return None
    lead = _LETTER_AND_TEXT_RE.match(_clean(source))
    if lead and (lead.group(1) or lead.group(2)) in said:
        # "C: Mars": a letter with an option's text; another option's text contradicts the letter.
        letter = lead.group(1) or lead.group(2)
        named = [letters[k] for k, t in enumerate(texts) if _key(t) and _key(t) == _key(lead.group(3))]
        if named and named[0] != letter:
            said = [letter, named[0]]
    if not set(said) <= set(letters):
        return False, "choice", ", ".join(said)
    if any(set(said) == gs for gs in gold_sets):
        return True, "choice", ", ".join(said)
    return False, "choice" if len(said) == 1 else "hedge", ", ".join(said)


# --- yes / no -------------------------------------------------------------------------------------

_YES_NO = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
_YES_NO_ANSWER_RE = re.compile(r"(?i:\banswer\s*(?:is|:)\s*:?\s*[*\"'“(]*\s*(yes|no)\b(?!\s*(?:or|/)\s))")
_YES_NO_LEAD_RE = re.compile(r"^(?i:(yes|no))\s*[,.!:;]")
_YES_NO_HEDGE_RE = re.compile(r"(?i:\b(?:yes|no)\s*(?:or|/)\s*(?:yes|no)\b|\b(?:maybe|perhaps|not\s+sure)\b)")


def yes_no_gold(gold: str) -> str | None:
    return _YES_NO.get(_key(gold))


def read_yes_no(final_value: str | None, answer: str) -> str | None:
    """ "yes" or "no" when the answer commits to one: a box or a whole answer that is the word, "the
    answer is no" in its final sentence, or a final sentence that opens with "Yes," / "No.";
    "hedge" when it offers both; None when it says neither."""
    if final_value is not None and _key(final_value) in _YES_NO:
        return _YES_NO[_key(final_value)]
    sentence = last_sentence(answer)
    if _YES_NO_HEDGE_RE.search(sentence):
        return "hedge"
    said = {m.group(1).lower() for m in _YES_NO_ANSWER_RE.finditer(sentence)}
    lead = _YES_NO_LEAD_RE.match(sentence)
    if lead:
        said.add(lead.group(1).lower())
    if len(said) == 1:
        return said.pop()
    return "hedge" if said else None


_QUESTION_OPTION_RE = re.compile(r"^[ \t]*\(?([A-H])[.):：]\s*(\S.*?)\s*$", re.MULTILINE)


def options_in_question(question: str, letters: Sequence[str]) -> list[str] | None:
    """The options' texts as the question lists them ("(A) Mercury" / "A. 11", one per line), when
    it lists exactly the option letters `letters`, in order; else None."""
    found = _QUESTION_OPTION_RE.findall(question[-4000:])
    if not letters or [k for k, _ in found] != list(letters):
        return None
    return [t for _, t in found]
