"""Each step of the reward cascade: format gate, final answer and hedges, option letters, rule check, scores."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vlmrl.data.normalize import answer_list
from vlmrl.errors import UserError
from vlmrl.reward import RewardSettings, compute_score, score_batch
from vlmrl.reward.check import Outcome, rule_check
from vlmrl.reward.choice import extract_letters
from vlmrl.reward.extract import check_format, final_answer
from vlmrl.reward.pool import get_pool

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


def wrap(answer: str, think: str = "Let me work it out.") -> str:
    return f"<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>"


@pytest.fixture(autouse=True)
def _no_verifier_env(monkeypatch):
    monkeypatch.delenv("REWARD_MODEL_URL", raising=False)
    monkeypatch.delenv("REWARD_MODEL_NAME", raising=False)


# --- (1) format gate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        wrap("5"),
        "<think>a</think><answer>5</answer>",
        "  \n<think>a</think>\n\n<answer> 5 </answer>\n ",
    ],
)
def test_format_gate_accepts(response):
    parsed = check_format(response)
    assert parsed.format_ok, parsed.reason
    assert parsed.answer == "5"


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("<think></think><answer>5</answer>", "empty <think>"),
        ("<think>  \n </think><answer>5</answer>", "empty <think>"),
        ("<think>a</think><answer>5</answer><answer>6</answer>", "<answer> appears 2 times"),
        ("<think>a</think><think>b</think><answer>5</answer>", "<think> appears 2 times"),
        ("<answer>5</answer><think>a</think>", "out of order"),
        ("Sure! <think>a</think><answer>5</answer>", "outside"),
        ("<think>a</think> so <answer>5</answer>", "outside"),
        ("<think>a</think><answer>5</answer> done", "after </answer>"),
        ("<think>a</think><answer>  </answer>", "empty <answer>"),
        ("<think>a</think>", "appears 0 times"),
        ("the answer is 5", "appears 0 times"),
        ("", "appears 0 times"),
    ],
)
def test_format_gate_rejects(response, reason):
    parsed = check_format(response)
    assert not parsed.format_ok
    assert reason in parsed.reason
    result = compute_score("x", response, ["5"])
    assert result == {
        "score": -1.0,
        "acc": 0,
        "format_ok": 0,
        "pred": "",
        "verdict": "format",
        "verifier_error": 0,
        "verifier_called": 0,
        "verifier_latency_s": 0.0,
        "verifier_overturned": 0,
    }


# --- (2) the final answer ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "value", "hedge"),
    [
        ("42", "42", False),
        ("The answer is \\boxed{42}.", "42", False),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", False),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}", False),
        ("\\fbox{7}", "7", False),
        ("Since $2x=8$, $x=\\boxed{4}$.", "4", False),
        ("\\boxed{5} or \\boxed{6}", None, True),
        ("\\boxed{5} or 6", "5", True),
        ("\\boxed{2}, \\boxed{3}", None, False),
        ("\\boxed{4} and again \\boxed{4}", "4", False),
        ("\\boxed{unbalanced", "\\boxed{unbalanced", False),
    ],
)
def test_final_answer(block, value, hedge):
    final = final_answer(block)
    assert (final.value, final.hedge) == (value, hedge)


def test_several_boxes_are_one_list_answer():
    assert final_answer("\\boxed{(2,2)} \\quad \\text{and} \\quad \\boxed{(6,2)}").math_text == (
        "\\boxed{(2,2), (6,2)}"
    )
    # A restatement after the boxes is the final answer (math-verify reads it so too).
    restated = final_answer("$\\boxed{200}$ then $\\boxed{255}$. The final answer is $10,455$.")
    assert restated.value is None and "10,455" in restated.math_text


@pytest.mark.parametrize(
    ("answer", "letters"),
    [
        ("C", ["C"]),
        ("(B)", ["B"]),
        ("b.", ["B"]),
        ("A. 42 apples", ["A"]),
        ("(D) \\frac{1}{2}", ["D"]),
        ("The answer is C", ["C"]),
        ("option D", ["D"]),
        ("\\text{(B)}", ["B"]),
        ("A or B", ["A", "B"]),
        ("A, C", ["A", "C"]),
        ("42", []),
    ],
)
def test_extract_letters(answer, letters):
    assert extract_letters(answer) == letters


# --- (3) the rule check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("$5$", "5"),
        ("$$5$$", "5"),
        ("\\(5\\)", "5"),
        ("\\[ 5 \\]", "5"),
        ("5.0", "5"),
        ("1,000", "1000"),
        ("1{,}000", "1000"),
        ("12,345,678", "12345678"),
        ("30^\\circ", "30"),
        ("30^{\\circ}", "30"),
        ("30°", "30"),
        ("30 degrees", "30"),
        ("5 cm", "5"),
        ("5 \\text{ cm}", "5"),
        ("12\\mbox{ m}^2", "12"),
        ("\\$12", "12"),
        ("−3", "-3"),
        ("½", "\\frac{1}{2}"),
        ("\\dfrac{1}{2}", "\\frac12"),
        ("0.5", "\\frac{1}{2}"),
        ("1/2", "0.5"),
        ("√2", "\\sqrt{2}"),
        ("2√3", "2\\sqrt{3}"),
        ("x²+1", "x^2+1"),
        ("\\text{The answer is } 7", "7"),
        ("The final answer is: 7.", "7"),
        ("x = 4", "4"),
        ("y=-2", "-2"),
        ("50\\%", "50"),
        ("50%", "0.5"),
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("Yes", "yes"),
        ("1.5\\times10^{3}", "1500"),
        ("3.14", "3.14"),
        ("\\frac{1}{3}", "0.33"),
        # real answer forms: solution text around one final box, short prose with one number
        ("Since $2x=8$, $x=\\boxed{4}$.", "4"),
        ("The walk takes 204 minutes.", "204"),
        ("The distance is $\\boxed{125\\textnormal{ miles}}.$", "125"),
        ("1000,99", "1000.99"),
        ("is $\\boxed{11,\\! 111,\\! 111,\\! 100}$", "11111111100"),
        ("Therefore $x \\geq 5$ is the solution.", "x \\ge 5"),
        ("$$\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}$$", "(2, 2), (6, 2)"),
        (
            "The identity matrix is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.",
            "\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}",
        ),
    ],
)
def test_rule_check_reads_the_answer(pred, gold):
    result = rule_check(pred, [gold], timeout_s=30)
    assert result.outcome is Outcome.CORRECT, (pred, gold, result)


@pytest.mark.parametrize(
    ("pred", "gold", "how"),
    [
        ("\\sqrt{8}", "2\\sqrt{2}", "surd"),  # exact surds: decided in-process
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "surd"),
        ("x^2 + 2x + 1", "(x+1)^2", "math_verify"),
        ("\\pi r^2", "r^2\\pi", "math_verify"),
        ("[1, 3)", "[1,3)", "exact"),  # the same formula but for spaces
    ],
)
def test_math_verify_symbolic_equivalence(pred, gold, how):
    result = rule_check(pred, [gold], timeout_s=30)
    assert result.outcome is Outcome.CORRECT and result.how == how


@pytest.mark.parametrize(
    ("pred", "gold", "how"),
    [
        ("5", "6", "number"),
        ("5.1", "5", "number"),
        (".4", "4", "number"),
        (".5", "5", "number"),
        ("5 or 6", "5", "hedge"),
        ("6 or 5", "5", "hedge"),
        ("either 5 or 6", "5", "hedge"),
        ("x = 5 or x = 6", "5", "hedge"),
        ("\\boxed{5} or \\boxed{6}", "5", "hedge"),
        ("B", "A", "choice"),
        ("A or B", "A", "hedge"),
        ("It is not 5.", "5", "negated"),
        ("The answer is not \\boxed{5}", "5", "negated"),
    ],
)
def test_certain_mismatches_are_final(pred, gold, how):
    result = rule_check(pred, [gold], timeout_s=30)
    assert result.outcome is Outcome.WRONG and result.how == how, result


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        (".4", "4"),  # the leading dot is part of the number
        ("\\boxed{1}\\boxed{2}\\boxed{3}", "3"),  # several answers, one of them right
        ("1, 2, 3, 4, 5", "3"),
        ("\\boxed{.5}", "5"),
    ],
)
def test_answers_that_list_or_mangle_the_gold_are_wrong(pred, gold):
    assert rule_check(pred, [gold], timeout_s=30).outcome is not Outcome.CORRECT


def test_hedge_is_wrong_end_to_end():
    result = compute_score("math", wrap("5 or 6"), ["5"])
    assert result["acc"] == 0 and result["score"] == -1.0 and result["verdict"] == "rule"
    assert result["pred"] == "5 or 6"


def test_listed_alternatives_match_a_listed_ground_truth():
    assert rule_check("x = 2 or x = -2", ["2, -2"], timeout_s=30).outcome is Outcome.CORRECT
    assert rule_check("-2, 2", ["2, -2"], timeout_s=30).outcome is Outcome.CORRECT
    assert rule_check("2, 3", ["2, -2"], timeout_s=30).outcome is Outcome.MISMATCH


def test_symbolic_mismatch_is_tentative():
    result = rule_check("x^2", ["x^3"], timeout_s=30)
    assert result.outcome is Outcome.MISMATCH
    scored = compute_score("math", wrap("x^2"), ["x^3"])
    assert scored["acc"] == 0 and scored["verdict"] == "rule"


def test_every_acceptable_ground_truth_counts():
    assert compute_score("s", wrap("3.0"), ["three", "3"])["acc"] == 1
    assert compute_score("s", wrap("3"), ["2", "4"])["acc"] == 0


def test_ground_truth_is_read_once_a_string_being_one_answer():
    assert compute_score("s", wrap("3"), "3")["acc"] == 1
    with pytest.raises(TypeError, match="list"):
        compute_score("s", wrap("3"), 3)
    assert answer_list("5") == ["5"]
    assert answer_list(["5", "five"]) == ["5", "five"]
    assert answer_list(("5",)) == ["5"]
    assert answer_list(np.array(["5", "6"], dtype=object)) == ["5", "6"]
    assert answer_list("['3', '3.0']") == ["3", "3.0"]
    assert answer_list("[0, 1]") == ["[0, 1]"]  # an interval, not a list of answers
    assert answer_list(None) == []


def test_multiple_choice():
    info = {"answer_type": "choice", "choices": np.array(["A", "B", "C", "D"]), "question": "Pick."}
    assert compute_score("mmk12", wrap("\\boxed{C}"), ["C"], info)["acc"] == 1
    assert compute_score("mmk12", wrap("(C) 42"), ["C"], info)["acc"] == 1
    assert compute_score("mmk12", wrap("B"), ["C"], info)["acc"] == 0
    assert compute_score("mmk12", wrap("C or D"), ["C"], info)["acc"] == 0
    assert compute_score("mmk12", wrap("E"), ["C"], info)["acc"] == 0  # not an offered option
    # The option's text rather than its letter: the rules cannot tell, nobody decided.
    undecided = compute_score("mmk12", wrap("42 apples"), ["C"], info)
    assert undecided["verdict"] == "none" and undecided["acc"] == 0


def test_letter_ground_truth_without_answer_type():
    assert compute_score("geo", wrap("(A)"), ["A"])["acc"] == 1
    assert compute_score("geo", wrap("B"), ["A"])["acc"] == 0


@pytest.mark.parametrize(
    ("answer", "gold", "acc"),
    [
        ("A. 11", "A", 1),  # GPQA's answer form: the letter and the option's text
        ("D. it can't be A or B", "D", 1),  # options named in a negated clause are not answers
        ("The answer is for sure D, it can't be A or B", "D", 1),
        ("It's not A because it doesn't make sense, therefore I think it's B", "B", 1),
        ("B。不是 A", "B", 1),
        ("The answer is not A", "A", 0),
        ("C", "C Cecile", 1),  # a ground truth carrying the option's text
        ("C", "(A) Cecile", 0),
    ],
)
def test_option_letters_in_sentences(answer, gold, acc):
    info = {"answer_type": "choice", "choices": ["A", "B", "C", "D"]} if len(gold) == 1 else None
    assert compute_score("gpqa", wrap(answer), [gold], info)["acc"] == acc


def test_too_long_answer_is_wrong_without_math_verify():
    result = rule_check("1+" * 5000 + "1", ["2"])
    assert result is not None and result.outcome is Outcome.WRONG and result.how == "too_long"


def test_think_tags_quoted_in_the_answer_pass_the_gate():
    response = wrap("<think> Okay, let me restate. </think> So the answer is \\boxed{143}.")
    assert compute_score("s", response, ["143"])["acc"] == 1


# --- scores and settings -------------------------------------------------------------------------


def test_scores_are_configurable_and_keys_always_present():
    kw = {"correct_score": 2.0, "incorrect_score": 0.0, "format_score": -0.5}
    right = compute_score("s", wrap("5"), ["5"], None, **kw)
    wrong = compute_score("s", wrap("4"), ["5"], None, **kw)
    bad = compute_score("s", "5", ["5"], None, **kw)
    assert (right["score"], wrong["score"], bad["score"]) == (2.0, 0.0, -0.5)
    for r in (right, wrong, bad):
        assert set(r) == KEYS


def test_bad_setting_is_a_clear_error():
    with pytest.raises(UserError, match="unknown reward setting.*unknown_kwarg"):
        RewardSettings.from_kwargs(unknown_kwarg=1)
    with pytest.raises(UserError, match="unknown reward setting"):
        compute_score("s", wrap("5"), ["5"], None, rule_timout_s=3)  # a typo is not silently ignored
    with pytest.raises(UserError, match="rule_timeout_s"):
        RewardSettings.from_kwargs(rule_timeout_s="soon")
    with pytest.raises(UserError, match="model"):
        RewardSettings.from_kwargs(verifier_url="http://127.0.0.1:1/v1")


def test_verifier_settings_fall_back_to_env(monkeypatch):
    monkeypatch.setenv("REWARD_MODEL_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("REWARD_MODEL_NAME", "judge")
    settings = RewardSettings.from_kwargs()
    assert settings.verifier is not None
    assert (settings.verifier.url, settings.verifier.model) == ("http://127.0.0.1:9/v1", "judge")
    assert RewardSettings.from_kwargs(verifier_model="other").verifier.model == "other"


def test_batch_matches_single_and_works_from_threads():
    items = [
        {"solution_str": wrap("5"), "ground_truth": ["5"]},
        {"response": wrap("\\sqrt{8}"), "ground_truth": ["2\\sqrt{2}"]},
        {"solution_str": "no format", "ground_truth": ["5"]},
        {"solution_str": wrap("7"), "ground_truth": ["5"]},
    ]
    batch = score_batch(items, RewardSettings.from_kwargs(rule_timeout_s=30))
    assert [r["acc"] for r in batch] == [1, 1, 0, 0]
    assert [r["verdict"] for r in batch] == ["rule", "rule", "format", "rule"]
    # veRL calls the sync function from a thread pool: no signal / event-loop assumptions.
    results: list[dict] = []
    threads = [
        threading.Thread(target=lambda: results.append(compute_score("s", wrap("\\sqrt{8}"), ["2\\sqrt{2}"])))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["acc"] for r in results] == [1, 1, 1, 1]


# --- (hard bound) killable workers ---------------------------------------------------------------


def test_overrunning_check_is_killed_and_the_pool_recovers():
    pool = get_pool(1)
    pool.start()
    kills = pool.kills
    # Nested huge powers keep sympy busy far beyond a 0.5 s bound.
    nasty = "9^{9^{9^{9^{9^{9}}}}} - 8^{8^{8^{8^{8}}}}"
    result = rule_check(nasty, ["1"], timeout_s=0.5)
    assert result.outcome in (Outcome.UNDECIDED, Outcome.MISMATCH)
    if result.outcome is Outcome.UNDECIDED:
        assert pool.kills == kills + 1
    # A fresh worker answers the next check.
    assert rule_check("\\sqrt{8}", ["2\\sqrt{2}"], timeout_s=30).outcome is Outcome.CORRECT


# --- reviewed false positives / negatives ---------------------------------------------------------

CHOICE = {"answer_type": "choice", "choices": ["A", "B", "C", "D"], "question": "Pick."}


@pytest.mark.parametrize(
    ("answer", "gold", "info"),
    [
        # (1) a single box must not hide a hedge outside it
        ("\\boxed{5} or 6", "5", None),
        ("\\boxed{5}, but it could also be 6", "5", None),
        ("\\boxed{A} or B", "A", CHOICE),
        # (2) several options named at once
        ("(A) or (B)", "A", CHOICE),
        ("A. 17 or B. 18", "A", CHOICE),
        ("Option A or option B", "A", CHOICE),
        ("A) 3, B) 4", "A", CHOICE),
        ("A: 3; B: 4; C: 5; D: 6", "A", CHOICE),
        ("(A) or (B)", "A", None),
        # (3) trailing words that change the meaning
        ("5 or more", "5", None),
        ("5 or fewer", "5", None),
        ("5 is wrong", "5", None),
        ("5 is not the answer", "5", None),
        # (4) swapped assignments
        ("x=6, y=5", "x=5, y=6", None),
        ("z=5, y=6", "x=5, y=6", None),
        # (5) single-letter variables are not units
        ("3", "3m", None),
        ("n + s", "n + m", None),
        ("2h", "2", None),
        # (6) a decimal ground truth is not any fraction that rounds to it
        ("27/50", "0.5", None),
        ("\\frac{349}{100}", "3.5", None),
    ],
)
def test_reviewed_false_positives_score_wrong(answer, gold, info):
    result = compute_score("s", wrap(answer), [gold], info, rule_timeout_s=30)
    assert result["acc"] == 0, (answer, gold, result)


@pytest.mark.parametrize(
    ("answer", "gold", "info"),
    [
        ("The answer is \\boxed{5}.", "5", None),
        ("$\\boxed{5}$", "5", None),
        ("x = \\boxed{5}", "5", None),
        ("\\boxed{5} cm", "5", None),
        ("The answer is \\boxed{B}.", "B", CHOICE),
        # (7) option named in a sentence
        ("The correct option is B", "B", CHOICE),
        ("The best choice is B", "B", CHOICE),
        ("B is correct", "B", CHOICE),
        ("B is the answer", "B", CHOICE),
        ("The correct option is B", "B", None),
        ("(B) 42", "B", CHOICE),
        ("A, C", "A, C", None),
        # numbers with words and units that are still plain answers
        ("5 apples", "5", None),
        ("12 square feet", "12", None),
        ("5 \\text{ m}", "5", None),
        ("5 m", "5", None),
        ("x = 5 s", "5", None),
        ("3m", "3m", None),
        ("2 km", "2 km", None),
        # assignments
        ("x=5, y=6", "x=5, y=6", None),
        ("y=6, x=5", "x=5, y=6", None),
        ("x = 1/2, y = 3", "x=0.5, y=3", None),
        ("x = 2 or x = -2", "2, -2", None),
        # exact fractions of a decimal
        ("1/2", "0.5", None),
        ("\\frac{7}{2}", "3.5", None),
        ("\\frac{1}{3}", "0.33", None),
    ],
)
def test_reviewed_forms_still_score_correct(answer, gold, info):
    result = compute_score("s", wrap(answer), [gold], info, rule_timeout_s=30)
    assert result["acc"] == 1, (answer, gold, result)


@pytest.mark.parametrize(
    ("answer", "letters"),
    [
        ("(A) or (B)", ["A", "B"]),
        ("A. 17 or B. 18", ["A", "B"]),
        ("Option A or option B", ["A", "B"]),
        ("A) 3, B) 4", ["A", "B"]),
        ("A: 3; B: 4; C: 5; D: 6", ["A", "B", "C", "D"]),
        ("The correct option is B", ["B"]),
        ("The best choice is B", ["B"]),
        ("B is correct", ["B"]),
        ("B is wrong", []),
        ("(B) 5 N.", ["B"]),
    ],
)
def test_extract_letters_sees_every_option(answer, letters):
    assert extract_letters(answer) == letters


@pytest.mark.parametrize(
    "text", ["1" + " " * 16000 + "x", "5 " + "\\, " * 3000 + "m", "\\boxed{5}" + " " * 16000 + "x"]
)
@pytest.mark.timeout(120)  # a hang guard, not a speed target: the cubic version took hours on these
def test_reading_stays_linear(text):
    final = final_answer(text)  # the answer survives the long run of spaces
    assert final.too_long or final.math_text.lstrip("$\\boxed{")[0] in "15"
    extract_letters(text)


def test_the_experiment_config_bridge_builds_valid_settings():
    from vlmrl.train.config import load_config

    cfg = load_config(None, ["reward.format_score=-0.5", "reward.rule_timeout_s=7"])
    settings = RewardSettings.from_kwargs(**cfg.reward.reward_kwargs())
    assert (settings.format_score, settings.rule_timeout_s) == (-0.5, 7.0)
    assert compute_score("s", wrap("5"), ["5"], None, settings)["acc"] == 1
