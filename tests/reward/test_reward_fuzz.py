"""Fuzz: any response or ground truth, up to 100k characters, scores in range and never raises."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlmrl.reward import compute_score
from vlmrl.reward.check import prepare
from vlmrl.reward.choice import extract_letters, gold_letters
from vlmrl.reward.extract import check_format, final_answer, number_with_unit, plain_number, prose_number

KEYS = {
    "score",
    "acc",
    "format_ok",
    "pred",
    "verdict",
    "verifier_error",
    "verifier_called",
    "verifier_latency_s",
    "verifier_overturned",
}
# Pieces that drive the parser into its interesting corners.
ATOMS = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "\\boxed{",
        "\\frac{",
        "}",
        "{",
        "$",
        "$$",
        "\\(",
        "\\sqrt",
        "^",
        "_",
        "\\text{",
        " or ",
        ",",
        "1,000",
        "√",
        "½",
        "−",
        "°",
        "%",
        "(A)",
        "x=",
        "9^{9^{9}}",
        "\\left(",
        "\\right)",
        "\n",
        " ",
        "1",
        "2",
        "0.5",
        "e",
        "\\infty",
        "\\pi",
        "[",
        "]",
        "(",
        ")",
    ]
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(ATOMS, max_size=80).map("".join),
    st.tuples(st.sampled_from("{([<\\$^"), st.integers(0, 100_000)).map(lambda t: t[0] * t[1]),
)
RESPONSE = st.one_of(
    TEXT,
    st.tuples(TEXT, TEXT).map(lambda t: f"<think>{t[0]}</think><answer>{t[1]}</answer>"),
    st.tuples(TEXT, st.integers(0, 100_000)).map(
        lambda t: f"<think>x</think><answer>{t[0] * (t[1] // max(1, len(t[0])))}</answer>"[:100_010]
    ),
)
GROUND_TRUTH = st.lists(TEXT, max_size=3)


@pytest.fixture(autouse=True)
def _no_verifier(monkeypatch):
    monkeypatch.delenv("REWARD_MODEL_URL", raising=False)
    monkeypatch.delenv("REWARD_MODEL_NAME", raising=False)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=TEXT)
def test_parsers_never_raise(text):
    # The test fails on any exception; the type checks catch a parser that returns garbage instead.
    check_format(text)
    assert isinstance(final_answer(text).math_text, str)
    assert isinstance(extract_letters(text), list)
    assert isinstance(gold_letters(text), set)
    for reader in (plain_number, prose_number, number_with_unit):
        reader(text)
    decided, question, pred = prepare(text, [text[:50] or "1"])
    assert isinstance(pred, str) and (decided is None) != (question is None)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(response=RESPONSE, ground_truth=GROUND_TRUTH)
def test_compute_score_never_raises_and_stays_in_range(response, ground_truth):
    # A short bound keeps the fuzz run quick; overruns come back as undecided, never as exceptions.
    result = compute_score("fuzz", response, ground_truth, {"question": "q"}, rule_timeout_s=1.0)
    assert set(result) == KEYS
    assert result["score"] in (1.0, -1.0)
    assert result["acc"] in (0, 1) and result["format_ok"] in (0, 1) and result["verifier_error"] == 0
    assert result["verdict"] in ("rule", "format", "none")
    assert result["acc"] == (1 if result["score"] == 1.0 else 0)
