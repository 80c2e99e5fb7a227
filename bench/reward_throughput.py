"""Rule-path throughput of the reward on 4,096 realistic responses, against veRL's math_verify scorer.

Run: PYTHONPATH=src python bench/reward_throughput.py [--n 4096] [--seed 0] [--verl-threads 8]
Prints responses/s for our batch API, our per-call API and `verl.utils.reward_score.math_verify`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def _problem(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """(ground truth, equivalent forms a model writes, wrong answers), with random parameters so
    answers rarely repeat across problems; about a third need math-verify."""
    a, b, k = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
    kind = rng.randrange(12)
    if kind == 0:
        n = rng.randint(1, 9999)
        return (
            str(n),
            [str(n), f"\\boxed{{{n}}}", f"${n}$", f"{n}.0", f"x = {n}", f"\\text{{The answer is }} {n}"],
            [str(n + 1), f"\\boxed{{{n - 1}}}"],
        )
    if kind == 1:
        return (
            f"\\frac{{{a}}}{{{a + b}}}",
            [
                f"\\dfrac{{{a}}}{{{a + b}}}",
                f"{a}/{a + b}",
                f"\\boxed{{\\frac{{{a}}}{{{a + b}}}}}",
                f"\\frac{{{2 * a}}}{{{2 * (a + b)}}}",
            ],
            [f"\\frac{{{a + b}}}{{{a}}}", f"{a / (a + b) + 0.1:.3f}"],
        )
    if kind == 2:
        return (
            f"{k}\\sqrt{{{b}}}",
            [f"\\sqrt{{{k * k * b}}}", f"{k}\u221a{b}", f"{k} \\sqrt {b}"],
            [f"\\sqrt{{{k * b}}}", f"{k + 1}\\sqrt{{{b}}}"],
        )
    if kind == 3:
        return (
            f"x^2+{2 * a}x+{a * a}",
            [f"(x+{a})^2", f"x^2 + {2 * a}x + {a * a}", f"{a * a}+{2 * a}x+x^2"],
            [f"(x-{a})^2", f"x^2+{a * a}"],
        )
    if kind == 4:
        n = rng.randint(1000, 10**7)
        return str(n), [f"{n:,}", f"{n:,}".replace(",", "{,}"), str(n)], [f"{n + 1000:,}", f"{n // 10:,}"]
    if kind == 5:
        d = rng.randint(1, 179)
        return (
            str(d),
            [f"{d}^\\circ", f"{d}\u00b0", f"{d} degrees", f"\\boxed{{{d}^{{\\circ}}}}"],
            [f"{180 - d + 1}^\\circ", str(d + 90)],
        )
    if kind == 6:
        return (
            f"[{a}, {a + b})",
            [f"[{a},{a + b})", f"\\left[{a}, {a + b}\\right)"],
            [f"({a},{a + b}]", f"[{a},{a + b}]"],
        )
    if kind == 7:
        return (
            f"\\frac{{\\pi}}{{{k}}}",
            [f"\\frac{{1}}{{{k}}}\\pi", f"\\pi/{k}", f"\\dfrac{{\\pi}}{{{k}}}"],
            [f"\\frac{{\\pi}}{{{k + 1}}}", f"{k}\\pi"],
        )
    if kind == 8:
        return (
            f"-\\frac{{1}}{{{k}}}",
            [f"\u2212\\frac{{1}}{{{k}}}", f"-1/{k}", f"-\\frac1{k}"],
            [f"\\frac{{1}}{{{k}}}", f"-{k}"],
        )
    if kind == 9:
        return (
            f"\\frac{{\\sqrt{{{b}}}}}{{{k}}}",
            [f"\\frac{{1}}{{{k}}}\\sqrt{{{b}}}", f"\u221a{b}/{k}"],
            [f"\\frac{{\\sqrt{{{b + 1}}}}}{{{k}}}", f"\\frac{{{b}}}{{{k}}}"],
        )
    if kind == 10:
        return str(a), [f"{a} \\text{{ cm}}", f"{a}cm", f"\\${a}"], [f"{a + 1} cm", f"{a} or {a + 1}"]
    return f"({a}, -{b})", [f"({a},-{b})", f"\\left( {a}, -{b} \\right)"], [f"(-{b}, {a})", f"({a}, {b})"]


CHOICE = ("C", ["C", "(C)", "\\boxed{C}", "C. 17"], ["B", "D", "C or D"])
LATEX_FILLER = [
    "Let $f(x) = \\frac{x^2 - 1}{x + 1}$ for $x \\neq -1$.",
    "By the quadratic formula, $x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$.",
    "We have $\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$ and $\\int_0^1 x^2 \\, dx = \\frac{1}{3}$.",
    "Since $\\sin^2\\theta + \\cos^2\\theta = 1$, we get $\\cos\\theta = \\frac{\\sqrt{3}}{2}$.",
    "Therefore the area is $\\frac{1}{2} \\cdot 6 \\cdot 4 = 12$ square units.",
    "Check: $\\left(\\frac{a}{b}\\right)^{2} = \\frac{a^2}{b^2}$, so nothing changes.",
    "Wait, let me recompute that step carefully.",
]


def make_responses(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        choice = rng.random() < 0.1
        gt, rights, wrongs = CHOICE if choice else _problem(rng)
        heavy = rng.random() < 0.25
        think = " ".join(
            rng.choice(LATEX_FILLER) for _ in range(rng.randint(20, 60) if heavy else rng.randint(2, 8))
        )
        roll = rng.random()
        answer = rng.choice(rights) if roll < 0.5 else rng.choice(wrongs)
        if roll > 0.9:  # badly formatted
            text = rng.choice(
                [
                    f"{think}\nThe answer is {answer}.",
                    f"<think>{think}</think><answer>{answer}</answer><answer>{answer}</answer>",
                    f"<think></think><answer>{answer}</answer>",
                    f"Sure! <think>{think}</think><answer>{answer}</answer>",
                ]
            )
        else:
            text = f"<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>"
        extra = {
            "question": "q",
            "answer_type": "choice" if choice else "expression",
            "choices": ["A", "B", "C", "D"] if choice else [],
        }
        items.append(
            {"data_source": "bench", "solution_str": text, "ground_truth": [gt], "extra_info": extra, "i": i}
        )
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verl-threads", type=int, default=8, help="veRL runs sync scorers in a thread pool")
    parser.add_argument("--skip-verl", action="store_true")
    args = parser.parse_args()

    from vlmrl.reward import compute_score, score_batch
    from vlmrl.reward.rule import get_pool

    os.environ.pop("REWARD_MODEL_URL", None)
    items = make_responses(args.n, args.seed)
    pool = get_pool()
    pool.warm_up()  # one-time worker start is not throughput
    print(f"responses: {len(items)}  math-verify workers: {pool.size}  cores: {os.cpu_count()}")

    t = time.perf_counter()
    batch = score_batch(items)
    batch_s = time.perf_counter() - t
    print(f"vlmrl score_batch          : {len(items) / batch_s:8.1f} responses/s  ({batch_s:.2f} s)")

    from vlmrl.reward import rule

    rule._cache.clear()  # the loop gets no help from the batch's math-verify cache
    t = time.perf_counter()
    single = [
        compute_score(it["data_source"], it["solution_str"], it["ground_truth"], it["extra_info"])
        for it in items
    ]
    single_s = time.perf_counter() - t
    print(f"vlmrl compute_score (loop) : {len(items) / single_s:8.1f} responses/s  ({single_s:.2f} s)")
    differ = sum(a["acc"] != b["acc"] for a, b in zip(batch, single, strict=True))

    verdicts = {v: sum(r["verdict"] == v for r in batch) for v in ("rule", "format", "none")}
    acc = sum(r["acc"] for r in batch) / len(batch)
    print(
        f"vlmrl: acc {acc:.3f}, verdicts {verdicts}, math-verify kills {pool.kills}, batch/loop acc differ {differ}"
    )

    if args.skip_verl:
        return
    from verl.utils.reward_score import math_verify as verl_math_verify

    def verl_score(it: dict) -> float:
        return verl_math_verify.compute_score(it["solution_str"], it["ground_truth"][0])

    verl_score(items[0])  # start its spawn pool
    t = time.perf_counter()
    with ThreadPoolExecutor(args.verl_threads) as ex:
        verl_scores = list(ex.map(verl_score, items))
    verl_s = time.perf_counter() - t
    print(
        f"verl math_verify ({args.verl_threads} thr) : {len(items) / verl_s:8.1f} responses/s  ({verl_s:.2f} s)"
        f"  acc {sum(verl_scores) / len(items):.3f} (no format gate)"
    )
    formatted = [i for i, r in enumerate(batch) if r["format_ok"]]
    agree = sum(batch[i]["acc"] == int(verl_scores[i] > 0) for i in formatted) / max(1, len(formatted))
    print(f"agreement on well-formatted responses: {agree:.3f}")
    print(f"speed-up vs verl math_verify: {verl_s / batch_s:.1f}x (batch), {verl_s / single_s:.1f}x (loop)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
