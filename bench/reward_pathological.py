"""Worst-case inputs for the reward: seconds per item must stay under its bound (about 2x rule_timeout_s).

Run: PYTHONPATH=src python bench/reward_pathological.py [--rule-timeout-s 5]
Deep braces, 200k-character responses, huge exponents, nested roots and fractions, regex traps.
"""

from __future__ import annotations

import argparse
import time

from vlmrl.data.normalize import answer_list
from vlmrl.reward import RewardSettings, compute_score
from vlmrl.reward.pool import get_pool


def wrap(answer: str, think: str = "work") -> str:
    return f"<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>"


CASES: list[tuple[str, str, str]] = [
    ("deep braces, 100k", wrap("{" * 50_000 + "1" + "}" * 50_000), "1"),
    ("deep braces, fits", wrap("{" * 1_900 + "1" + "}" * 1_900), "1"),
    ("nested \\boxed x1000", wrap("\\boxed{" * 1000 + "1" + "}" * 1000), "1"),
    ("unbalanced braces 200k", wrap("{" * 200_000), "1"),
    ("200k think, right", wrap("7", think="Let $x=1$. " * 18_000), "7"),
    ("200k no tags", "x^2 " * 50_000, "1"),
    ("200k of <think>", "<think>" * 28_000, "1"),
    ("200k answer", wrap("1+" * 100_000 + "1"), "2"),
    ("huge exponent 9^9^9^9", wrap("9^{9^{9^{9}}}"), "1"),
    ("huge exponent 10^10^100", wrap("10^{10^{100}}"), "1"),
    ("power tower 2^...^2 (x7)", wrap("2^{2^{2^{2^{2^{2^{2}}}}}}"), "2"),
    ("10^{1000000}", wrap("10^{1000000}"), "1"),
    ("1e999999", wrap("1e999999"), "1"),
    ("factorial 100000!", wrap("100000!"), "1"),
    ("4,000-digit integer", wrap("9" * 4_000), "1"),
    ("nested fractions x300", wrap("\\frac{1}{" * 300 + "2" + "}" * 300), "\\frac{1}{2}"),
    ("nested roots x300", wrap("\\sqrt{" * 300 + "2" + "}" * 300), "\\sqrt{2}"),
    ("nested powers x400", wrap("x^{" * 400 + "2" + "}" * 400), "x^2"),
    ("thousands-separator trap", wrap("1," * 1_500 + "000"), "1000"),
    ("assignment trap", wrap("x=" * 1_500 + "1"), "1"),
    ("hedge trap", wrap("1 or " * 700 + "2"), "2"),
    ("unicode roots", wrap("\u221a" * 3_000 + "2"), "\\sqrt{2}"),
    ("unicode halves", wrap("\u00bd" * 3_000), "\\frac{1}{2}"),
    ("gaussian integral", wrap("\\int_0^\\infty e^{-x^2} dx"), "\\frac{\\sqrt{\\pi}}{2}"),
    ("basel sum", wrap("\\sum_{n=1}^{\\infty} \\frac{1}{n^2}"), "\\frac{\\pi^2}{6}"),
    ("big polynomial", wrap("(x+1)^{200}"), "(1+x)^{200}"),
    (
        "50x50 matrix",
        wrap("\\begin{pmatrix}" + "\\\\".join(["&".join(["x"] * 50)] * 50) + "\\end{pmatrix}"),
        "0",
    ),
    ("many ground truths", wrap("\\sqrt{8}"), str([f"{i}\\sqrt{{2}}" for i in range(1, 200)])),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule-timeout-s", type=float, default=5.0)
    args = parser.parse_args()
    settings = RewardSettings.from_kwargs(rule_timeout_s=args.rule_timeout_s)
    pool = get_pool(settings.workers)
    pool.start()
    worst = 0.0
    print(f"{'case':30} {'seconds':>8}  verdict   acc  chars")
    for name, response, ground_truth in CASES:
        t = time.perf_counter()
        result = compute_score("bench", response, answer_list(ground_truth), {"question": "q"}, settings)
        dt = time.perf_counter() - t
        worst = max(worst, dt)
        print(f"{name:30} {dt:8.3f}  {result['verdict']:8} {result['acc']:4}  {len(response)}")
    bound = 2 * args.rule_timeout_s
    print(
        f"max seconds per item: {worst:.3f} (bound {bound:.1f} s = 2 x rule_timeout_s); workers killed: {pool.kills}"
    )


if __name__ == "__main__":
    main()
