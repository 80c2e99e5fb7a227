"""Readings of answers as the ecosystem writes them: prose around a committed answer, repeated boxes,
options given as letters or as texts (both ways), yes/no and options in a final sentence; and the
hedges and probes that must stay wrong."""

from __future__ import annotations

import pytest

from vlmrl.data.example import make_example
from vlmrl.data.normalize import option_letters, option_texts
from vlmrl.reward import compute_score
from vlmrl.reward.extract import final_answer

PLANETS = ["Mercury", "Venus", "Jupiter", "Mars"]
TEXTS = {"answer_type": "choice", "choices": PLANETS, "question": "Which planet is largest?"}
LETTERS = {"answer_type": "choice", "choices": ["A", "B", "C", "D"], "question": "Pick."}


def wrap(answer: str) -> str:
    return f"<think>\nworking\n</think>\n<answer>\n{answer}\n</answer>"


def acc(answer: str, gold: str, info=None) -> int:
    return compute_score("s", wrap(answer), [gold], info, rule_timeout_s=30)["acc"]


# --- prose around a committed answer, repeated boxes ----------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "Therefore the answer is \\boxed{12}, which is more than the initial estimate.",
        "Hence, \\boxed{12} is the answer, no more and no less.",
        "This gives \\boxed{12}. Hence, the final answer is \\boxed{12}.",
        "So the answer is \\boxed{12}. Alternatively, working backwards also gives \\boxed{12}.",
        "So the answer is \\boxed{12}. Alternatively, one could use symmetry.",
        "So the answer is \\boxed{12}. Otherwise, the second condition would fail.",
        "We get \\boxed{12} or, written differently, \\boxed{12}.",
        "The total is \\boxed{12}, which is less than 20 as expected.",
    ],
)
def test_prose_around_a_committed_answer_is_not_a_hedge(answer):
    assert acc(answer, "12") == 1


@pytest.mark.parametrize(
    "answer",
    [
        "The answer is \\boxed{12} or \\boxed{13}.",
        "So the answer is \\boxed{12}. Or maybe 13.",
        "So the answer is \\boxed{12}, but it could also be 13.",
        "The answer is \\boxed{12}, or 13.",
        "The answer is \\boxed{12} or more.",
        "The answer is not \\boxed{12}.",
        "It is either 12 or 13.",
        "So the result is at least \\boxed{12}.",
        "\\boxed{12}. Alternatively, it could be 13.",
    ],
)
def test_real_hedges_stay_wrong(answer):
    assert acc(answer, "12") == 0


# Forms found in published reference solutions and model generations (MATH, Minerva, AIME and
# Qwen2.5-Math samples; see docs/benchmarks.md), written here in our own words.
@pytest.mark.parametrize(
    "answer",
    [
        # The sentence restates the question (with "not", "or", "less than") before its verb.
        "Therefore, the number of integers less than 30 that are not multiples of 4 or 6 is \\boxed{12}.",
        "Thus the count of orders in which the red ball is not first is $\\boxed{12}$.",
        # "or" joining a computation to its value, not offering an alternative.
        "Multiplying out, $3x + 4 = 40$ or $x = \\boxed{12}$.",
        "The walk takes $\\frac{1}{5}$ hours, or $\\frac{1}{5}\\cdot 60 = \\boxed{12}$ minutes.",
        "The total length is $5 + 7$ or $\\boxed{12}$ metres.",
        # "or" followed by words: the same answer said in words.
        "The required count is \\boxed{12}, or one dozen.",
        # One value boxed in several ways (several solutions, AIME's three digits).
        "Solution 1 gives \\boxed{12}. Solution 2 gives the answer $\\boxed{\\textbf{(012)}}$.",
        "So $m + n = \\boxed{12}$.\n~author\nSolution 2: the same count is $\\boxed{012}$.",
        # A superlative about the answer, not a bound on it.
        "Checking each case, $n = \\boxed{12}$ is the least value.",
        # A closing sentence with "final answer" but no value: the box stands.
        "So the product is $\\boxed{12}$. The final answer is positive, as both factors are negative.",
    ],
)
def test_published_solution_prose_is_not_a_hedge(answer):
    assert acc(answer, "12") == 1


@pytest.mark.parametrize(
    "answer",
    [
        "The answer is 13 or \\boxed{12}.",
        "So $x = 13$ or $x = \\boxed{12}$.",
        "The answer is $\\frac{1}{2}$ or $\\boxed{12}$.",
        "The answer is \\boxed{12}, or perhaps thirteen.",
        "The answer is \\boxed{12} or $13$.",
        "The answer is \\boxed{12} or \\boxed{\\textbf{(13)}}.",
        "It is \\boxed{12} at least.",
        "The answer is not \\boxed{12}.",
        "The final answer is $\\boxed{12}$. The final answer is 13.",
    ],
)
def test_hedges_beside_those_forms_stay_wrong(answer):
    assert acc(answer, "12") == 0


def test_one_value_in_several_boxes_is_one_answer():
    final = final_answer("First \\boxed{12}. Alternatively \\boxed{ 12 }.")
    assert (final.value, final.hedge) == ("12", False)


# --- options: letters and texts, both ways --------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gold", "info", "expected"),
    [
        ("C", "C", TEXTS, 1),  # choices hold the options' texts, ground truth and answer letters
        ("\\boxed{C}", "C", TEXTS, 1),
        ("B", "C", TEXTS, 0),
        ("C", "Jupiter", TEXTS, 1),  # a letter answer, the option's text as ground truth
        ("The correct choice is (C).", "Jupiter", TEXTS, 1),
        ("The correct choice is (D).", "Jupiter", TEXTS, 0),
        ("The answer is Jupiter.", "C", TEXTS, 1),  # a text answer, a letter ground truth
        ("\\boxed{Jupiter}", "C", TEXTS, 1),
        ("The answer is Mars.", "C", TEXTS, 0),
        ("It is not Mars, so the answer is Jupiter.", "C", TEXTS, 1),
        ("(C) Jupiter", "Jupiter", TEXTS, 1),
        ("A or C", "C", TEXTS, 0),
        ("The answer is Jupiter or Mars.", "C", TEXTS, 0),
        ("The answer is E.", "C", TEXTS, 0),  # not an offered option
        # Forms from published multimodal generations (MathVista): a quoted letter, and a letter
        # whose text names another option (a contradiction, never right).
        ('The correct answer is "C." Mars is smaller than Jupiter.', "Jupiter", TEXTS, 1),
        ('The correct answer is "D." Jupiter is the largest.', "Jupiter", TEXTS, 0),
        ("A: Jupiter", "Jupiter", TEXTS, 0),
        ("C: Mars", "Jupiter", TEXTS, 0),
        ("C: Jupiter", "Jupiter", TEXTS, 1),
        ("(D) Jupiter", "Jupiter", TEXTS, 0),
        ("C", "C", LETTERS, 1),  # letters only, as before
        ("The correct choice is (C).", "C", LETTERS, 1),
    ],
)
def test_options_letters_and_texts_both_ways(answer, gold, info, expected):
    assert acc(answer, gold, info) == expected


def test_choices_hold_letters_or_texts():
    assert option_texts(["A", "B", "(C)", "D."]) is None
    assert option_texts(["A. 11", "B. 12"]) == ["11", "12"]
    assert option_texts(PLANETS) == PLANETS
    assert option_letters(PLANETS) == ["A", "B", "C", "D"]
    assert option_letters(["a", "b"]) == ["A", "B"]
    # The data stage keeps the options' texts and still types a letter answer as a choice.
    ex = make_example("s", 0, "test", "Which planet is largest?", ["c"], choices=PLANETS)
    assert (ex.answers, ex.answer_type, ex.choices) == (["C"], "choice", PLANETS)


# --- final sentences: yes / no --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("Both cases fail, so the answer is no.", "No", 1),
        ("Both cases fail, so the answer is no.", "Yes", 0),
        ("We checked every case. No, it cannot.", "No", 1),
        ("Hence the answer is: Yes.", "yes", 1),
        ("\\boxed{No}", "No", 1),
        ("The answer is yes or no.", "No", 0),
        ("The answer is yes or no.", "Yes", 0),
        ("Maybe yes.", "Yes", 0),
    ],
)
def test_yes_no_in_a_final_sentence(answer, gold, expected):
    assert acc(answer, gold, {"question": "Is it?", "answer_type": "text"}) == expected


# --- the fast rule path agrees with math-verify ---------------------------------------------------

SAME_AS_MATH_VERIFY = [
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\frac{\\sqrt{6}}{8}", "\\frac{1}{8}\\sqrt{6}"),
    ("\\frac{\\sqrt{48}}{4}", "\\frac{48}{4}"),
    ("\\frac{\\pi}{4}", "\\pi/4"),
    ("\\frac{\\pi}{4}", "4\\pi"),
    ("5\\sqrt{15}", "\\sqrt{375}"),
    ("5\\sqrt{15}", "\\sqrt{75}"),
    ("-\\frac{1}{3}", "-\\dfrac{1}{3}"),
    ("\\frac{2}{\\sqrt{2}}", "\\sqrt{2}"),
    ("[3, 5)", "\\left[3,5\\right)"),
    ("x^2 + 6x + 9", "x^2+6x+9"),
]


@pytest.mark.parametrize(("gold", "pred"), SAME_AS_MATH_VERIFY)
def test_in_process_verdicts_are_math_verify_verdicts(gold, pred):
    from vlmrl.reward.check import Outcome, prepare
    from vlmrl.reward.pool import get_pool

    decided, question, _ = prepare(pred, [gold])
    assert question is None and decided is not None, "decided in-process, no worker"
    status = get_pool(1).check((gold,), f"${pred}$", timeout_s=60)
    assert (decided.outcome is Outcome.CORRECT) == (status == "equal"), (decided, status)


def test_letters_only_choices_read_the_options_the_question_lists():
    question = "Which planet is largest?\n(A) Mercury\n(B) Venus\n(C) Jupiter\n(D) Mars"
    info = {"answer_type": "choice", "choices": ["A", "B", "C", "D"], "question": question}
    assert acc("The answer is \\boxed{Jupiter}.", "C", info) == 1
    assert acc("The answer is \\boxed{Mars}.", "C", info) == 0
    # A question that lists other letters than the choices is not read.
    info_other = {**info, "question": "Which?\n(A) Mercury\n(B) Venus"}
    assert acc("The answer is \\boxed{Jupiter}.", "C", info_other) == 0


def test_a_text_ground_truth_among_the_options_still_reads_the_answer_its_own_way():
    info = {"answer_type": "choice", "choices": ["10", "12", "14", "16"], "question": "How long?"}
    assert acc("The side is \\boxed{12.0}.", "12", info) == 1
    assert acc("The side is \\boxed{B}.", "12", info) == 1
    assert acc("The side is \\boxed{13}.", "12", info) == 0
    assert acc("The side is \\boxed{12.5}.", "12", info) == 0  # not option B's "12"
    assert acc("The side is -12.", "12", info) == 0
