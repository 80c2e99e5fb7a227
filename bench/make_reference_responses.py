"""Write labelled, realistic long responses for `bench/reward_reference.py --responses`.

Run: python bench/make_reference_responses.py [-o bench/data/reference_responses.jsonl] [--seed 0]

Each line is one response in the bench's response format (the same a converted set of published
model generations uses):
  {"id": str, "set": str, "response": "<think>...</think>\n<answer>...</answer>",
   "ground_truth": str | [str, ...], "extra_info": {"question", "answer_type", "choices"} (optional),
   "expected": true | false}
Sets (written by this script with a seeded RNG, so the file is reproducible):
- `reference`: right reference solutions: a few sentences inside <answer>, the final answer boxed at
  the end, with the prose such solutions carry (a comparison word after the box, the answer boxed
  twice, "Alternatively" and the same answer again, a check, units, "$\\boxed{}$"). Label: right.
- `wrong`: the same prose with a wrong final answer. Label: wrong.
- `hedges`: real hedges as the answer ("5 or 6", "not 5", "5 or more", two different boxes, "but it
  could also be"). Label: wrong.
- `options`: multiple choice with the options' texts in `extra_info.choices` or letters only; the
  ground truth a letter or the option's text; the answer a letter, a text, or a final sentence
  ("the correct choice is (B)"); right and wrong ones.
- `yesno`: yes/no questions answered in a final sentence ("so the answer is no"); right and wrong.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

OPENERS = [
    "We start from the given conditions.",
    "Let us set up the problem carefully.",
    "First, write down what is known.",
    "Consider the quantities involved.",
    "We solve this step by step.",
]
STEPS = [
    "Substituting the values gives a linear equation in one unknown.",
    "Simplifying both sides, the common factor cancels.",
    "By the Pythagorean theorem, the remaining side follows directly.",
    "Collecting like terms, we obtain a single expression.",
    "Using the formula for the sum of an arithmetic series, we get the total.",
    "Since the triangle is isosceles, the two base angles are equal.",
    "Multiplying through by the denominator clears the fraction.",
    "The discriminant is positive, so there are two real roots, and only one is admissible here.",
    "Rearranging, we isolate the unknown on the left-hand side.",
    "We note that $x \\neq 0$, since the expression would be undefined otherwise.",
]


def _problems(rng: random.Random) -> tuple[str, str, str, str]:
    """(question, ground truth, the answer as a solution boxes it, a wrong answer)."""
    a, b, k = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 9)
    kind = rng.randrange(9)
    if kind == 0:
        n = a * b
        return f"What is {a} times {b}?", str(n), str(n), str(n + rng.choice([-2, -1, 1, 10]))
    if kind == 1:
        g = f"\\frac{{{a}}}{{{a + b}}}"
        return (
            "Find the probability.",
            g,
            rng.choice([g, f"\\dfrac{{{a}}}{{{a + b}}}"]),
            f"\\frac{{{b}}}{{{a + b}}}",
        )
    if kind == 2:
        return "Simplify the radical.", f"{k}\\sqrt{{{b}}}", f"{k}\\sqrt{{{b}}}", f"{k + 1}\\sqrt{{{b}}}"
    if kind == 3:
        return "Find the angle.", f"{a + 20}", f"{a + 20}^\\circ", f"{a + 21}^\\circ"
    if kind == 4:
        return "Solve the inequality.", f"[{a}, {a + b})", f"[{a}, {a + b})", f"({a}, {a + b}]"
    if kind == 5:
        return (
            "Find the area in square centimetres.",
            str(a * k),
            f"{a * k} \\text{{ cm}}^2",
            f"{a * k + k} \\text{{ cm}}^2",
        )
    if kind == 6:
        return "Find the point of intersection.", f"({a}, {-b})", f"({a}, -{b})", f"(-{b}, {a})"
    if kind == 7:
        return "Expand the square.", f"x^2+{2 * a}x+{a * a}", f"x^2 + {2 * a}x + {a * a}", f"x^2+{a * a}"
    return "What is the value in dollars?", f"{a}.{b:02d}", f"\\${a}.{b:02d}", f"\\${a + 1}.{b:02d}"


def _prose(rng: random.Random, n: int) -> str:
    return " ".join([rng.choice(OPENERS)] + rng.sample(STEPS, n))


def _reference_answer(rng: random.Random, boxed: str, question: str) -> str:
    """A reference solution that commits to `boxed`, with one of the kinds of prose around it."""
    box = f"\\boxed{{{boxed}}}"
    body = _prose(rng, rng.randint(1, 4))
    style = rng.randrange(10)
    if style == 0:  # a comparison word after the box
        return f"{body} Therefore the answer is {box}, which is more than the initial estimate."
    if style == 1:  # the same value boxed twice
        return f"{body} This gives {box}. Hence, the final answer is {box}."
    if style == 2:  # "Alternatively", the same answer again
        return f"{body} So the answer is {box}. Alternatively, working backwards also gives {box}."
    if style == 3:  # a check after the answer
        return f"{body} Thus {box}. Checking, this is not less than zero, as required."
    if style == 4:
        return f"{body} The answer is ${box}$."
    if style == 5:  # an "or" in the reasoning before the committed answer
        return f"{body} Either case leads to the same value, so the answer is {box}."
    if style == 6:
        return f"{body}\n\nFinal answer: {box}"
    if style == 7:  # prose after that mentions other numbers
        return f"{body} We conclude {box}. Note that the answer does not depend on the order of the steps."
    if style == 8:
        return f"{body} Alternatively, one could use symmetry. Either way, the result is {box}."
    return f"{body} Hence, {box} is the answer, no more and no less."


def _think(rng: random.Random) -> str:
    return _prose(rng, rng.randint(2, 6)) + " Wait, let me double-check the arithmetic. Yes, it holds."


def _wrap(rng: random.Random, answer: str) -> str:
    return f"<think>\n{_think(rng)}\n</think>\n<answer>\n{answer}\n</answer>"


def _hedge(rng: random.Random, gold: str, wrong: str) -> str:
    body = _prose(rng, rng.randint(1, 3))
    return rng.choice(
        [
            f"{body} The answer is {gold} or {wrong}.",
            f"{body} The answer is \\boxed{{{gold}}} or \\boxed{{{wrong}}}.",
            f"{body} So the answer is \\boxed{{{gold}}}, but it could also be {wrong}.",
            f"{body} The answer is not \\boxed{{{gold}}}.",
            f"{body} The answer is \\boxed{{{gold}}} or more.",
            f"{body} It is either {gold} or {wrong}.",
            f"{body} So the result is at least \\boxed{{{gold}}}.",
            f"{body} I am not sure: perhaps \\boxed{{{gold}}}, perhaps \\boxed{{{wrong}}}.",
        ]
    )


OPTION_SETS = [
    ("Which planet is largest?", ["Mercury", "Venus", "Jupiter", "Mars"]),
    ("Which gas do plants take in for photosynthesis?", ["Oxygen", "Carbon dioxide", "Nitrogen", "Helium"]),
    ("What is the derivative of $x^2$?", ["$x$", "$2x$", "$x^2$", "$2$"]),
    ("Which shape has three sides?", ["Square", "Circle", "Triangle", "Hexagon"]),
    ("What is the boiling point of water at sea level in Celsius?", ["90", "100", "110", "120"]),
    ("Which organelle makes ATP?", ["Nucleus", "Ribosome", "Mitochondrion", "Golgi apparatus"]),
    ("What is $\\sqrt{49}$?", ["5", "6", "7", "8"]),
    ("Which metal is liquid at room temperature?", ["Iron", "Mercury", "Copper", "Zinc"]),
]
LETTERS = "ABCD"


def _option_item(rng: random.Random, i: int) -> dict:
    question, texts = rng.choice(OPTION_SETS)
    texts = texts[:]
    rng.shuffle(texts)
    right = rng.randrange(4)
    pick = right if rng.random() < 0.6 else rng.choice([j for j in range(4) if j != right])
    gold_is_text = rng.random() < 0.5
    choices_are_texts = gold_is_text or rng.random() < 0.7
    gold = texts[right] if gold_is_text else LETTERS[pick * 0 + right]
    letter, text = LETTERS[pick], texts[pick]
    body = _prose(rng, rng.randint(1, 2))
    answer = rng.choice(
        [
            f"{body} The correct choice is ({letter}).",
            f"{body} So the answer is {letter}.",
            f"{body} Therefore, the answer is \\boxed{{{letter}}}.",
            f"{body} The answer is {text}.",
            f"{body} Therefore, the answer is \\boxed{{{text}}}.",
            f"{body} The correct option is ({letter}) {text}.",
        ]
    )
    options = "\n".join(f"({c}) {t}" for c, t in zip(LETTERS, texts, strict=True))
    return {
        "id": f"options-{i}",
        "set": "options",
        "response": _wrap(rng, answer),
        "ground_truth": gold,
        "extra_info": {
            "question": f"{question}\n{options}",
            "answer_type": "choice",
            "choices": texts if choices_are_texts else list(LETTERS),
        },
        "expected": pick == right,
    }


YES_NO = [
    "Is 91 a prime number?",
    "Is the sum of two odd numbers always even?",
    "Can a triangle have two right angles?",
    "Is $\\sqrt{2}$ rational?",
    "Does the series $\\sum 1/n$ converge?",
    "Is every square a rectangle?",
]


def _yes_no_item(rng: random.Random, i: int) -> dict:
    question = rng.choice(YES_NO)
    gold = rng.choice(["Yes", "No"])
    said = gold if rng.random() < 0.6 else ("No" if gold == "Yes" else "Yes")
    body = _prose(rng, rng.randint(1, 2))
    answer = rng.choice(
        [
            f"{body} So the answer is {said.lower()}.",
            f"{body} Therefore, the answer is \\boxed{{{said}}}.",
            f"{body} {said}, this always holds as shown."
            if said == "Yes"
            else f"{body} {said}, it does not.",
            f"{body} Hence the answer is: {said}.",
        ]
    )
    return {
        "id": f"yesno-{i}",
        "set": "yesno",
        "response": _wrap(rng, answer),
        "ground_truth": gold,
        "extra_info": {"question": question, "answer_type": "text", "choices": []},
        "expected": said == gold,
    }


def make(seed: int, per_set: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(per_set):
        question, gold, boxed, wrong = _problems(rng)
        info = {"question": question, "answer_type": "expression", "choices": []}
        rows.append(
            {
                "id": f"reference-{i}",
                "set": "reference",
                "response": _wrap(rng, _reference_answer(rng, boxed, question)),
                "ground_truth": gold,
                "extra_info": info,
                "expected": True,
            }
        )
        question, gold, boxed, wrong = _problems(rng)
        rows.append(
            {
                "id": f"wrong-{i}",
                "set": "wrong",
                "response": _wrap(rng, _reference_answer(rng, wrong, question)),
                "ground_truth": gold,
                "extra_info": {"question": question, "answer_type": "expression", "choices": []},
                "expected": False,
            }
        )
    for i in range(per_set // 2):
        question, gold, boxed, wrong = _problems(rng)
        rows.append(
            {
                "id": f"hedges-{i}",
                "set": "hedges",
                "response": _wrap(rng, _hedge(rng, boxed, wrong)),
                "ground_truth": gold,
                "extra_info": {"question": question, "answer_type": "expression", "choices": []},
                "expected": False,
            }
        )
        rows.append(_option_item(rng, i))
        rows.append(_yes_no_item(rng, i))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o", "--out", type=Path, default=Path(__file__).with_name("data") / "reference_responses.jsonl"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--per-set", type=int, default=200, help="reference and wrong responses; half as many of the others"
    )
    args = parser.parse_args()
    rows = make(args.seed, args.per_set)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["set"]] = counts.get(r["set"], 0) + 1
    print(f"{args.out}: {len(rows)} responses {counts}")


if __name__ == "__main__":
    main()
