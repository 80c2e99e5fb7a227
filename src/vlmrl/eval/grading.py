"""How `vlmrl eval text` grades a response: two protocols over one rule check.

`final-answer` (the default) is the protocol the field's evaluators use (R1-Evaluation, lighteval,
Qwen2.5-Math's evaluator, lmms-eval): the final answer is read from the whole response -- the last
`\\boxed{}`, else the last answer-like statement ("the answer is ...", then the last line holding an
expression or an option letter) -- and compared with the reward's own rule check
(`vlmrl.reward.check.prepare` + math-verify, option letters by `vlmrl.reward.choice`). There is no
`<think>`/`<answer>` format gate: a right answer in plain prose counts. A closed `<think>` block
followed by text is left out, as lmms-eval 0.7 and lighteval leave out reasoning.

`reward` is the training reward exactly as training scores it (`vlmrl.reward.score_batch`: format
gate, `<answer>` block, rules, verifier when configured): a right answer outside the format scores 0.

Both report `format_ok` (the reward's format gate), so the format rate is its own number either way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from vlmrl.errors import UserError
from vlmrl.reward import check
from vlmrl.reward import extract as ex
from vlmrl.reward.check import Outcome
from vlmrl.reward.mathtext import box_spans

FINAL_ANSWER = "final-answer"
REWARD = "reward"
GRADERS = {
    FINAL_ANSWER: "the final answer read from the whole response (last \\boxed{}, else the last "
    "answer-like statement; option letters for multiple choice), checked by the reward's rules; "
    "no format gate -- the field's protocol",
    REWARD: "the training reward as training scores it: <think>/<answer> format gate, the <answer> "
    "block's final answer, rules (and the verifier when configured)",
}
DEFAULT_GRADER = FINAL_ANSWER

# Rule settings the final-answer grader takes from reward keyword arguments; others are the reward's.
_RULE_KEYS = ("rule_timeout_s", "rule_workers")
_TAG_RE = re.compile(r"</?(?:think|answer)>")
_THINK_CLOSE = "</think>"
# A sentence ends at . ! ? (before a space or the end; "3.5" is no end), at a blank line, or at 。.
_SENTENCE_END_RE = re.compile(r"[.!?]\$?(?=\s|$)|\n\s*\n|。")
_LINE_END_RE = re.compile(r"[.!?]\$?(?=\s|$)|\n|。")
# "The final answer is", "Answer:", and the words other languages use.
_ANSWER_PHRASE_RE = re.compile(
    r"(?i:\b(?:final\s+answer|answer)\b)|答案|(?i:\b(?:réponse|reponse|respuesta|antwort|resposta|risposta)\b)"
)
_PHRASE_GLUE_RE = re.compile(r"(?:\s*(?i:is|was|would\s+be|will\s+be|be|:|=|est|es|ist)|\s*[:：是为])*\s*")
# Something an answer can be: a digit, math, or a bare option letter ("C", "(C)", "C.").
_ANSWER_LIKE_RE = re.compile(r"\d|\$|\\\(|\\\[|\\frac|\\sqrt|\\pi|\\infty|\(\s*[A-J]\s*\)")
_BARE_LETTER_RE = re.compile(r"^\s*\(?[A-J]\)?\s*[.:)]?\s*$")
_CONTEXT = 400


def check_grader(grader: str) -> str:
    if grader not in GRADERS:
        raise UserError(f"unknown grader {grader!r}; choose one of: {', '.join(GRADERS)}")
    return grader


def after_reasoning(response: str) -> str:
    """The text after the last `</think>` when there is any, else the whole response."""
    cut = response.rfind(_THINK_CLOSE)
    if cut >= 0 and response[cut + len(_THINK_CLOSE) :].strip():
        return response[cut + len(_THINK_CLOSE) :]
    return response


def _sentence_start(s: str, pos: int) -> int:
    start = max(0, pos - _CONTEXT)
    last = start
    for m in _SENTENCE_END_RE.finditer(s, start, pos):
        last = m.end()
    return last


def _sentence_stop(s: str, pos: int) -> int:
    m = _SENTENCE_END_RE.search(s, pos, pos + _CONTEXT)
    return m.start() + (1 if m.group(0)[:1] in ".!?。" else 0) if m else min(len(s), pos + _CONTEXT)


def final_statement(response: Any) -> str:
    """The statement of a whole response that holds its final answer ("" when it has none).

    1. the sentence holding the last `\\boxed{}` (the box whole, with the words around it, so the
       reward's hedge and negation guards still read "5 or 6" and "not 5");
    2. else the sentence of the last answer phrase ("the final answer is $\\frac12$", "Answer: C"),
       running on past a line break or blank line right after the phrase;
    3. else the last line or sentence holding something answer-like (a digit, math, an option letter).
    `<think>`/`<answer>` tags are read as line breaks, so they never glue to an answer.
    """
    if not isinstance(response, str) or not response.strip():
        return ""
    s = _TAG_RE.sub("\n", after_reasoning(response))
    spans = box_spans(s)
    if spans:
        start, end, _ = spans[-1]
        return s[_sentence_start(s, start) : _sentence_stop(s, end)].strip()
    phrases = list(_ANSWER_PHRASE_RE.finditer(s))
    if phrases:
        m = phrases[-1]
        body = _PHRASE_GLUE_RE.match(s, m.end())
        body_start = body.end() if body else m.end()
        if s[body_start:].strip():
            return s[_sentence_start(s, m.start()) : _sentence_stop(s, body_start + 1)].strip()
    pieces: list[str] = []
    pos = 0
    for m in _LINE_END_RE.finditer(s):
        pieces.append(s[pos : m.end()])
        pos = m.end()
    pieces.append(s[pos:])
    for piece in reversed(pieces):
        text = piece.strip()
        if text and (_ANSWER_LIKE_RE.search(text) or _BARE_LETTER_RE.match(text)):
            return text[-ex.MAX_ANSWER_CHARS :]
    return ""


def _info(extra_info: Any) -> tuple[str | None, list[str]]:
    if not isinstance(extra_info, Mapping):
        return None, []
    answer_type = extra_info.get("answer_type")
    choices = extra_info.get("choices")
    if hasattr(choices, "tolist"):
        choices = choices.tolist()
    return (
        str(answer_type) if answer_type else None,
        [str(c) for c in choices] if isinstance(choices, list | tuple) else [],
    )


def _result(acc: bool, format_ok: bool, pred: str, verdict: str) -> dict[str, Any]:
    return {
        "score": float(acc),
        "acc": int(acc),
        "format_ok": int(format_ok),
        "pred": ex.truncate_pred(pred),
        "verdict": verdict,
        "verifier_error": 0,
    }


def grade_final_answer(
    items: Sequence[Mapping[str, Any]], rule_timeout_s: float = 5.0, rule_workers: int = 0
) -> list[dict[str, Any]]:
    """The field's protocol over many responses (`solution_str` or `response`, `ground_truth` list,
    optional `extra_info` with answer_type/choices): the same dict keys as `vlmrl.reward.score_batch`;
    `verdict` is `rule` (the rules decided) or `none` (no final answer found, or nothing could compare)."""
    workers = rule_workers or max(1, min(4, os.cpu_count() or 1))
    out: list[dict[str, Any] | None] = []
    waiting: dict[check.Question, list[tuple[int, str, bool]]] = {}
    for i, item in enumerate(items):
        response = item.get("solution_str", item.get("response", ""))
        response = "" if response is None else str(response)
        format_ok = ex.check_format(response).format_ok
        golds = [str(g) for g in (item.get("ground_truth") or [])]
        statement = final_statement(response)
        if not statement:
            out.append(_result(False, format_ok, "", "none"))
            continue
        answer_type, choices = _info(item.get("extra_info"))
        try:
            decided, question, pred = check.prepare(statement, golds, answer_type, choices)
        except Exception:  # a reader's bug must not stop an evaluation: nothing was compared
            out.append(_result(False, format_ok, statement, "none"))
            continue
        if decided is not None:
            verdict = "none" if decided.outcome is Outcome.UNDECIDED else "rule"
            out.append(_result(decided.outcome is Outcome.CORRECT, format_ok, pred, verdict))
        else:
            assert question is not None
            waiting.setdefault(question, []).append((i, pred, format_ok))
            out.append(None)
    if waiting:
        questions = list(waiting)
        for question, rule in zip(
            questions, check.math_verify_many(questions, rule_timeout_s, workers), strict=True
        ):
            for i, pred, format_ok in waiting[question]:
                verdict = "none" if rule.outcome is Outcome.UNDECIDED else "rule"
                out[i] = _result(rule.outcome is Outcome.CORRECT, format_ok, pred, verdict)
    return [r for r in out if r is not None]


def grade(
    items: Sequence[Mapping[str, Any]], grader: str, reward_kwargs: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Grade responses under `grader` (GRADERS); reward_kwargs are the reward's (`vlmrl.reward`)."""
    if check_grader(grader) == REWARD:
        from vlmrl.reward import score_batch

        return score_batch(items, **reward_kwargs)
    rules = {k: reward_kwargs[k] for k in _RULE_KEYS if k in reward_kwargs}
    return grade_final_answer(items, **rules)
