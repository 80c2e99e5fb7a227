"""The judge hooks (`vlmrl/eval/lmms_judge_hooks.py`) inside lmms-eval 0.7.3's own venv, around its real
MathVista and MathVerse scorers, with a scripted judge on loopback that answers, answers garbage or
is down: each sample's judge call is recorded as judged / failed / not needed, and lmms-eval's own
result is returned unchanged.

The real `vlmrl eval mm` run (test_eval_lmms_run.py) cannot reach MathVista's judge: the tiny model's
answers are empty, which MathVista reads without one. This calls the scorer with written answers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from vlmrl.eval.lmms_env import LMMS_EVAL_VERSION, find_lmms_python, probe
from vlmrl.eval.mm import write_task_yamls
from vlmrl.testing.scripted_judge import ChatServer, chat_reply, last_user_text

pytestmark = pytest.mark.slow

# Runs in lmms-eval's venv: imports the hooks as lmms-eval's task loader would (a file beside the yaml)
# and scores each (task, doc, response) given as JSON on stdin.
RUNNER = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("vlmrl_judge_hooks", sys.argv[1])
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)
out = []
for task, doc, response in json.load(sys.stdin):
    result = getattr(hooks, f"{task}_process_results")(doc, [response])
    mine = result.pop("vlmrl_judge")
    out.append({"judge": mine, "lmms": result.get("llm_as_judge_eval") or result.get("gpt_eval_score")})
print("RESULTS " + json.dumps(out, default=str))
"""

MATHVISTA_DOC = {
    "pid": "7",
    "question": "How many corners does the square have?",
    "query": "Answer the question using a single integer number.\nQuestion: How many corners does the square have?",
    "choices": None,
    "unit": None,
    "precision": None,
    "answer": "4",
    "question_type": "free_form",
    "answer_type": "integer",
    "metadata": {"split": "testmini", "source": "vlmrl-test"},
}
MATHVERSE_DOC = {
    "sample_index": "1",
    "problem_index": "1",
    "problem_version": "Text Dominant",
    "question": "What is the side length of the square?",
    "question_for_eval": "What is the side length of the square?",
    "answer": "5",
    "question_type": "free-form",
    "metadata": {"split": "testmini", "subfield": "Length"},
    "query_wo": "What is the side length?",
    "query_cot": "What is the side length?",
}


def judge_reply(body):
    """Extraction for MathVista ("4"), a verdict for MathVerse ("1"), unless the response asks otherwise."""
    prompt = last_user_text(body)
    if "JUDGE-DOWN" in prompt:
        return 503, {"error": {"message": "judge overloaded"}}, {"retry-after-ms": "1"}
    if "JUDGE-BABBLES" in prompt:
        return chat_reply("I cannot tell")
    return chat_reply("4" if "Extracted answer" in prompt else "1")


@pytest.fixture(scope="module")
def lmms_python() -> str:
    python = find_lmms_python()
    info = probe(python) if python else None
    if info is None or info.version != LMMS_EVAL_VERSION or info.missing:
        why = (
            f"no lmms-eval {LMMS_EVAL_VERSION} venv with every task's modules (found {info}); `make lmms-env`"
        )
        if os.environ.get("VLMRL_REQUIRE_LMMS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return python


def score(python: str, hooks: Path, url: str, cases: list) -> list[dict]:
    env = dict(os.environ, API_TYPE="openai", OPENAI_API_URL=url, OPENAI_API_KEY="k", MODEL_VERSION="judge")
    proc = subprocess.run(
        [python, "-c", RUNNER, str(hooks)], input=json.dumps(cases), capture_output=True, text=True,
        timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULTS "))
    return json.loads(line.removeprefix("RESULTS "))


def test_each_judge_call_is_recorded_around_lmms_evals_own_scorers(lmms_python, tmp_path):
    tasks_dir = Path(probe(lmms_python).tasks_dir)
    write_task_yamls(["mathvista_testmini_format"], {}, tasks_dir, tmp_path)
    hooks = tmp_path / "vlmrl_judge_hooks.py"
    cases = [
        ["mathvista", MATHVISTA_DOC, "The square has four corners."],  # the judge extracts 4
        ["mathvista", MATHVISTA_DOC, "7"],  # a number: read by rule, no judge
        ["mathvista", MATHVISTA_DOC, "JUDGE-BABBLES about corners"],  # extraction is no integer
        ["mathvista", MATHVISTA_DOC, "JUDGE-DOWN about corners"],  # every try answered 503
        ["mathverse", MATHVERSE_DOC, "The side is five."],  # the judge says 1
        ["mathverse", MATHVERSE_DOC, "JUDGE-BABBLES about the side"],  # no 0 or 1 in the reply
    ]
    with ChatServer(judge_reply, models=("judge",), serialize=False) as judge:
        results = score(lmms_python, hooks, judge.url + "/v1", cases)
        asked = len(judge.bodies)
    judged, by_rule, babble, down, verse, verse_babble = results
    assert judged["judge"]["status"] == "judged" and judged["judge"]["detail"] == "4"
    assert judged["lmms"]["true_false"] is True  # lmms-eval's own verdict, unchanged
    assert by_rule["judge"] == {"status": "not_needed", "detail": "answer read without the judge", "calls": 0}
    assert by_rule["lmms"]["true_false"] is False
    assert (
        babble["judge"]["status"] == "failed"
        and "unparseable extraction for an answer of type integer" in babble["judge"]["detail"]
    )
    assert down["judge"]["status"] == "failed" and "503" in down["judge"]["detail"]
    assert down["judge"]["calls"] == 5  # lmms-eval's MathVista client: 5 tries per response
    assert down["lmms"]["true_false"] is False  # what lmms-eval made of the outage: a wrong answer
    assert verse["judge"]["status"] == "judged" and verse["lmms"] == 1
    assert verse_babble["judge"]["status"] == "failed" and "no 0 or 1" in verse_babble["judge"]["detail"]
    assert verse_babble["lmms"] == 0
    assert asked >= 1 + 1 + 5 + 1 + 1
