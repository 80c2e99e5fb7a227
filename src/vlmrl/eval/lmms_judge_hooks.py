"""Runs inside lmms-eval 0.7.3 (copied beside the task yamls `vlmrl eval mm` writes): wraps the
`process_results` of the judge-scored tasks so every sample says what its judge call did.

lmms-eval scores a sample 0 when its judge call fails after retries, or when the judge's reply
cannot be read, and logs nothing per sample. Each wrapper here calls lmms-eval's own
`process_results` unchanged, watches the task's judge client (`server.evaluate`) while it runs,
and adds `vlmrl_judge` = {"status": "judged" | "failed" | "not_needed", "detail": ...} to the
sample's result. lmms-eval keeps that key in its samples log (`--log_samples`) and ignores it in its
metrics; `vlmrl.eval.mm.judge_counts` counts it. Standard library and lmms-eval only: this file
is loaded by lmms-eval's task loader, in lmms-eval's environment.
"""

from __future__ import annotations

import re
import threading
from typing import Any

KEY = "vlmrl_judge"
JUDGED, FAILED, NOT_NEEDED = "judged", "failed", "not_needed"
_lock = threading.Lock()


def _watch(server: Any) -> threading.local:
    """Wrap `server.evaluate` once (per server object, however often this file is loaded) so that the
    calls made in a thread while a `calls.log` list is set are appended to it: ("ok", reply text) or
    ("error", what went wrong)."""
    with _lock:
        calls = getattr(server, "_vlmrl_calls", None)
        if calls is not None:
            return calls
        calls = threading.local()
        original = server.evaluate

        def evaluate(request: Any, *args: Any, **kwargs: Any) -> Any:
            log = getattr(calls, "log", None)
            try:
                response = original(request, *args, **kwargs)
            except Exception as exc:
                if log is not None:
                    log.append(("error", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"))
                raise
            if log is not None:
                if getattr(response, "success", True):
                    log.append(("ok", str(getattr(response, "content", "") or "")))
                else:
                    log.append(("error", str(getattr(response, "error", "") or "the judge reported failure")))
            return response

        server.evaluate = evaluate
        server._vlmrl_calls = calls
        return calls


def _observed(process: Any, evaluator: Any, doc: Any, results: Any) -> tuple[dict[str, Any], list]:
    calls = _watch(evaluator.server)
    calls.log = []
    try:
        out = process(doc, results)
        return out, calls.log
    finally:
        calls.log = None


def _status(status: str, detail: str = "", calls: int = 0) -> dict[str, Any]:
    return {"status": status, "detail": detail[:300], "calls": calls}


def mathverse_process_results(doc: dict, results: list) -> dict[str, Any]:
    """MathVerse: the judge answers 0/1 on each response; lmms-eval reads any reply without a "1" as 0."""
    from lmms_eval.tasks.mathverse import utils

    out, log = _observed(utils.mathverse_process_results, utils.mathverse_evaluator, doc, results)
    if not log:
        out[KEY] = _status(NOT_NEEDED, "no reference answer: nothing to judge")
    elif log[-1][0] == "error":
        out[KEY] = _status(FAILED, log[-1][1], len(log))
    elif not re.search(r"[01]", log[-1][1]):
        out[KEY] = _status(FAILED, f"unparseable reply (no 0 or 1): {log[-1][1][:120]!r}", len(log))
    else:
        out[KEY] = _status(JUDGED, log[-1][1][:120], len(log))
    return out


def mathvista_process_results(doc: dict, results: list) -> dict[str, Any]:
    """MathVista: the judge extracts the answer from a response the rules could not read (a response
    that is a choice or a number needs no judge); an extraction that is empty, or that is no number
    where the answer is one, is a failed judgement."""
    from lmms_eval.tasks.mathvista import utils

    out, log = _observed(utils.mathvista_process_results, utils.mathvista_evaluator, doc, results)
    result = out.get("llm_as_judge_eval") or {}
    replies = [text for kind, text in log if kind == "ok" and text.strip()]
    if not log:
        out[KEY] = _status(NOT_NEEDED, "answer read without the judge")
    elif not replies:
        out[KEY] = _status(FAILED, log[-1][1] or "empty reply", len(log))
    elif result.get("prediction") is None and doc.get("question_type") != "multi_choice":
        what = doc.get("answer_type")
        out[KEY] = _status(
            FAILED, f"unparseable extraction for an answer of type {what}: {replies[-1][:120]!r}", len(log)
        )
    else:
        out[KEY] = _status(JUDGED, replies[-1][:120], len(log))
    return out
