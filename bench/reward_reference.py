"""The reward against the field's labelled checker cases, and its speed against veRL's scorer.

Run: PYTHONPATH=src python bench/reward_reference.py --cases CASES.jsonl [--responses FILE.jsonl ...]
     [--n 1024] [--groups 64] [--repeat 3] [--only cases responses sequential throughput] [--dump V.jsonl]

1. Agreement: each labelled case (jsonl rows with `id`, `source`, `gold`, `pred`, `expected`, and
   `doubtful` on cases whose label is not about equivalence) is scored as a response whose answer
   block is `pred`, by vlmrl (ground truth normalised as the data stage does), plain math-verify
   (`verify(parse(gold), parse(pred))`) and veRL's `verl.utils.reward_score.math_verify`; agreement
   per source and every false positive (scored correct against a `false` label) are printed.
2. Unique responses: `--n` generated responses to `--n` different problems (no repeats, cold cache),
   right or wrong by construction; seconds and how many each scorer scores right.
3. GRPO-shaped: `--groups` prompts x 16 responses, repeating answers as real groups do.
Each kind is drawn `--repeat` times with different seeds (cold for both scorers every time), and
timed by vlmrl's `score_batch`, veRL's scorer and vlmrl's `compute_score_async` called for every
response at once (as veRL's reward loop calls it).
Also: how many answers the rules leave to a verifier (math-verify says unequal, or nothing could
compare them).

Fair to both sides: the same responses and ground truths; each scorer has the whole machine, one
after the other, with as many worker processes: veRL's scorer its own pool of 4 spawned processes,
fed from `--verl-threads` threads as veRL's reward loop calls a sync scorer; vlmrl
`--rule-workers` (default 4) math-verify processes. On an idle machine both use every core; on a
machine others load too, the same process count gives both the same share of it. Both pools are started and warm before timing;
vlmrl's verdict cache is emptied before each set (its workers keep only what a long-running
process keeps: parsed ground truths of earlier sets, which no later set shares).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


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
            [f"\\sqrt{{{k * k * b}}}", f"{k}\u221a{b}", f"{k} \\sqrt{{{b}}}"],
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
    """`n` responses to `n` different problems: right or wrong by construction, 10% badly formatted."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        choice = rng.random() < 0.1
        gt, rights, wrongs = CHOICE if choice else _problem(rng)
        heavy = rng.random() < 0.25
        think = " ".join(
            rng.choice(LATEX_FILLER) for _ in range(rng.randint(20, 60) if heavy else rng.randint(2, 8))
        )
        roll = rng.random()
        right = roll < 0.5
        answer = rng.choice(rights) if right else rng.choice(wrongs)
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
            {
                "data_source": "bench",
                "solution_str": text,
                "ground_truth": [gt],
                "extra_info": extra,
                "answer": answer,
                "expected": int(right and roll <= 0.9),
                "formatted": roll <= 0.9,
            }
        )
    return items


def grpo_groups(groups: int, seed: int) -> list[dict]:
    """`groups` prompts x 16 responses; each group draws from a few answers, as sampled groups do."""
    rng = random.Random(seed + 1)
    items = []
    for _ in range(groups):
        gt, rights, wrongs = _problem(rng)
        forms = [(a, 1) for a in rng.sample(rights, min(2, len(rights)))] + [
            (a, 0) for a in rng.sample(wrongs, min(2, len(wrongs)))
        ]
        thinks = [" ".join(rng.choice(LATEX_FILLER) for _ in range(rng.randint(2, 8))) for _ in range(3)]
        for _ in range(16):
            answer, right = rng.choice(forms)
            text = f"<think>\n{rng.choice(thinks)}\n</think>\n<answer>\n{answer}\n</answer>"
            items.append(
                {
                    "data_source": "bench",
                    "solution_str": text,
                    "ground_truth": [gt],
                    "extra_info": {"question": "q", "answer_type": "expression", "choices": []},
                    "answer": answer,
                    "expected": right,
                    "formatted": True,
                }
            )
    return items


def _wrap(pred: str) -> str:
    return f"<think>\nx\n</think>\n<answer>\n{pred}\n</answer>"


def _plain_math_verify(gold: str, pred: str) -> bool:
    from math_verify import parse, verify

    try:
        g, p = parse(gold), parse(pred)
        return bool(g and p and verify(g, p))
    except Exception:
        return False


def _verl(pred: str, gold: str) -> bool:
    from verl.utils.reward_score import math_verify as verl_math_verify

    return verl_math_verify.compute_score(pred, gold) > 0


def agreement(path: Path, settings) -> None:
    from vlmrl.data.normalize import normalize_answers, parse_answer_list
    from vlmrl.reward import score_batch

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [
        {"solution_str": _wrap(r["pred"]), "ground_truth": normalize_answers(parse_answer_list(r["gold"]))}
        for r in rows
    ]
    t = time.perf_counter()
    scored = score_batch(items, settings)
    ours_s = time.perf_counter() - t
    ours = [bool(x["acc"]) for x in scored]
    plain = [_plain_math_verify(r["gold"], r["pred"]) for r in rows]
    verl = [_verl(r["pred"], r["gold"]) for r in rows]
    scorers = {"vlmrl": ours, "math-verify": plain, "veRL math_verify": verl}
    by_source: dict[str, list[int]] = collections.defaultdict(list)
    for i, r in enumerate(rows):
        if not r.get("doubtful"):
            by_source[r["source"].split(":")[-1]].append(i)
    firm = [i for idx in by_source.values() for i in idx]
    print(f"\n## Agreement with {len(firm)} labelled cases ({len(rows) - len(firm)} doubtful left out)")
    print("| source | cases | " + " | ".join(scorers) + " |")
    print("|---|---:|" + "---:|" * len(scorers))
    for source, idx in sorted(by_source.items()):
        cells = [f"{sum(s[i] == rows[i]['expected'] for i in idx) / len(idx):.1%}" for s in scorers.values()]
        print(f"| {source} | {len(idx)} | " + " | ".join(cells) + " |")
    cells = [
        f"**{sum(s[i] == rows[i]['expected'] for i in firm) / len(firm):.1%}**" for s in scorers.values()
    ]
    print(f"| all | {len(firm)} | " + " | ".join(cells) + " |")
    for name, s in scorers.items():
        fps = [rows[i]["id"] for i in firm if s[i] and not rows[i]["expected"]]
        misses = [rows[i]["id"] for i in firm if not s[i] and rows[i]["expected"]]
        print(f"{name}: false positives {len(fps)} {fps}; false negatives {len(misses)} {misses}")
    doubtful = [i for i, r in enumerate(rows) if r.get("doubtful")]
    print(f"vlmrl on the doubtful cases: {[(rows[i]['id'], ours[i], rows[i]['expected']) for i in doubtful]}")
    undecided = [rows[i]["id"] for i, x in enumerate(scored) if x["verdict"] == "none"]
    print(f"vlmrl scored the {len(rows)} cases in {ours_s:.2f} s; undecided (none): {undecided}")


def left_to_verifier(items: list[dict]) -> int:
    """Well-formatted answers the rules leave open (math-verify unequal, or nothing could compare)."""
    from vlmrl.reward.check import Outcome, rule_check
    from vlmrl.reward.extract import check_format

    n = 0
    for it in items:
        parsed = check_format(it["solution_str"])
        if parsed.format_ok:
            info = it["extra_info"]
            result = rule_check(parsed.answer, it["ground_truth"], info["answer_type"], info["choices"])
            n += result.outcome in (Outcome.MISMATCH, Outcome.UNDECIDED)
    return n


async def _per_item(items: list[dict], settings) -> list[dict]:
    from vlmrl.reward.score import compute_score_async

    return list(
        await asyncio.gather(
            *(
                compute_score_async(
                    it["data_source"], it["solution_str"], it["ground_truth"], it["extra_info"], settings
                )
                for it in items
            )
        )
    )


def _time_sets(sets: list[list[dict]], settings, verl_threads: int) -> list[dict]:
    """Each set scored cold by vlmrl's batch verb, by veRL's scorer and by vlmrl per item."""
    from vlmrl.reward import check, score_batch

    def verl_one(it: dict) -> bool:
        return _verl(it["solution_str"], it["ground_truth"][0])

    runs = []
    for items in sets:
        check._cache.clear()  # cold: nothing learnt from an earlier set
        t = time.perf_counter()
        ours = score_batch(items, settings)
        ours_s = time.perf_counter() - t
        t = time.perf_counter()
        with ThreadPoolExecutor(verl_threads) as ex:
            verl = list(ex.map(verl_one, items))
        verl_s = time.perf_counter() - t
        check._cache.clear()
        t = time.perf_counter()
        per_item = asyncio.run(_per_item(items, settings))
        per_item_s = time.perf_counter() - t
        assert [r["acc"] for r in per_item] == [r["acc"] for r in ours], "per-item and batch scores differ"
        formatted = [i for i, it in enumerate(items) if it["formatted"]]
        runs.append(
            {
                "n": len(items),
                "distinct": len({(it["answer"], it["ground_truth"][0]) for it in items}),
                "formatted": len(formatted),
                "ours_s": ours_s,
                "per_item_s": per_item_s,
                "verl_s": verl_s,
                "ours_right": sum(ours[i]["acc"] == items[i]["expected"] for i in formatted),
                "verl_right": sum(int(verl[i]) == items[i]["expected"] for i in formatted),
                "ours_fp": sum(bool(ours[i]["acc"]) and not items[i]["expected"] for i in formatted),
                "verl_fp": sum(bool(verl[i]) and not items[i]["expected"] for i in formatted),
                "open": left_to_verifier(items),
            }
        )
    return runs


def throughput(name: str, sets: list[list[dict]], settings, verl_threads: int) -> None:
    """One row per set (each drawn with its own seed, so every set is cold for both scorers)."""
    runs = _time_sets(sets, settings, verl_threads)
    print(f"\n## {name}: {len(runs)} sets of {runs[0]['n']} responses")
    print(
        "| set | distinct pairs | vlmrl `score_batch` s | vlmrl per item s | veRL s | speed-up (batch) "
        "| speed-up (per item) | right: vlmrl / veRL (of formatted) | false positives: vlmrl / veRL "
        "| left to a verifier |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, r in enumerate(runs, start=1):
        print(
            f"| {k} | {r['distinct']} | {r['ours_s']:.2f} | {r['per_item_s']:.2f} | {r['verl_s']:.2f} "
            f"| {r['verl_s'] / r['ours_s']:.1f}x | {r['verl_s'] / r['per_item_s']:.1f}x "
            f"| {r['ours_right']} / {r['verl_right']} (of {r['formatted']}) | {r['ours_fp']} / {r['verl_fp']} "
            f"| {r['open']} |"
        )
    ratios = sorted(r["verl_s"] / r["ours_s"] for r in runs)
    print(
        f"median speed-up (batch): {ratios[len(ratios) // 2]:.1f}x, range {ratios[0]:.1f}-{ratios[-1]:.1f}x"
    )


def read_responses(paths: list[Path]) -> list[dict]:
    """Labelled responses (the format `bench/make_reference_responses.py` documents: `id`, `set`,
    `response`, `ground_truth` (a string or a list), optional `extra_info`, `expected`), from each file;
    a line missing a field is an error naming the file and line."""
    rows = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [k for k in ("response", "ground_truth", "expected") if k not in row]
            if missing:
                raise SystemExit(f"{path} line {n}: missing {', '.join(missing)}")
            row.setdefault("set", path.stem)
            row.setdefault("id", f"{path.stem}-{n}")
            rows.append(row)
    return rows


def _first_gold(ground_truth) -> str:
    return ground_truth if isinstance(ground_truth, str) else str(ground_truth[0])


def responses_agreement(rows: list[dict], settings, dump: Path | None = None) -> None:
    """Per set: how many each scorer agrees with the label, how many right responses it scores right,
    and its false positives (scored right against a wrong label); then one caller scoring every
    response one at a time (as veRL's reward loop calls a scorer), vlmrl's `compute_score` against
    veRL's `math_verify.compute_score`, cold."""
    from vlmrl.reward import check, compute_score

    check._cache.clear()
    t = time.perf_counter()
    scored = [
        compute_score("bench", r["response"], r["ground_truth"], r.get("extra_info"), settings) for r in rows
    ]
    ours_s = time.perf_counter() - t
    ours = [bool(x["acc"]) for x in scored]
    t = time.perf_counter()
    verl = [_verl(r["response"], _first_gold(r["ground_truth"])) for r in rows]
    verl_s = time.perf_counter() - t
    plain = [_plain_math_verify(_first_gold(r["ground_truth"]), r["response"]) for r in rows]
    scorers = {"vlmrl": ours, "math-verify": plain, "veRL math_verify": verl}
    by_set: dict[str, list[int]] = collections.defaultdict(list)
    for i, r in enumerate(rows):
        by_set[r["set"]].append(i)
    print(f"\n## Labelled responses: {len(rows)} in {len(by_set)} sets")
    names = list(scorers)
    print(
        "| set | responses (right) | "
        + " | ".join(f"{n}: agree / right scored right / false pos." for n in names)
        + " |"
    )
    print("|---|---:|" + "---:|" * len(names))
    for name, idx in sorted(by_set.items()) + [("**all**", list(range(len(rows))))]:
        right = [i for i in idx if rows[i]["expected"]]
        cells = []
        for s in scorers.values():
            agree = sum(s[i] == bool(rows[i]["expected"]) for i in idx) / len(idx)
            recall = f"{sum(s[i] for i in right) / len(right):.1%}" if right else "-"
            fp = sum(s[i] and not rows[i]["expected"] for i in idx)
            cells.append(f"{agree:.1%} / {recall} / {fp}")
        print(f"| {name} | {len(idx)} ({len(right)}) | " + " | ".join(cells) + " |")
    misses = [rows[i]["id"] for i in range(len(rows)) if ours[i] != bool(rows[i]["expected"])]
    print(f"vlmrl disagrees on {len(misses)}: {misses[:40]}")
    if dump is not None:
        with dump.open("w", encoding="utf-8") as f:
            for i, r in enumerate(rows):
                verdicts = {"vlmrl": ours[i], "math-verify": plain[i], "veRL": verl[i]}
                f.write(
                    json.dumps(
                        {"id": r["id"], "set": r["set"], "expected": bool(r["expected"]), **verdicts}
                        | {k: scored[i][k] for k in ("pred", "verdict", "format_ok")},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        print(f"per-response verdicts written to {dump}")
    print(
        f"\n## One caller, unique responses one at a time ({len(rows)} responses, cold cache)\n"
        f"vlmrl compute_score {ours_s:.2f} s ({1000 * ours_s / len(rows):.2f} ms each), "
        f"veRL math_verify {verl_s:.2f} s ({1000 * verl_s / len(rows):.2f} ms each): "
        f"{verl_s / ours_s:.1f}x; scored right (agreeing with the label): vlmrl "
        f"{sum(o == bool(r['expected']) for o, r in zip(ours, rows, strict=True))}, veRL "
        f"{sum(v == bool(r['expected']) for v, r in zip(verl, rows, strict=True))} of {len(rows)}"
    )


def one_at_a_time(sets: list[list[dict]], settings) -> None:
    """The generated unique responses, one caller scoring them one at a time: vlmrl's sync
    `compute_score` against veRL's scorer (its own pool; the call waits for it), cold for both."""
    from vlmrl.reward import check, compute_score

    print("\n## Unique responses, one caller, one at a time")
    print("| set | responses | vlmrl s | veRL s | speed-up | right: vlmrl / veRL (of formatted) |")
    print("|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for k, items in enumerate(sets, start=1):
        check._cache.clear()
        t = time.perf_counter()
        ours = [
            compute_score(
                it["data_source"], it["solution_str"], it["ground_truth"], it["extra_info"], settings
            )
            for it in items
        ]
        ours_s = time.perf_counter() - t
        t = time.perf_counter()
        verl = [_verl(it["solution_str"], it["ground_truth"][0]) for it in items]
        verl_s = time.perf_counter() - t
        formatted = [i for i, it in enumerate(items) if it["formatted"]]
        ours_right = sum(ours[i]["acc"] == items[i]["expected"] for i in formatted)
        verl_right = sum(int(verl[i]) == items[i]["expected"] for i in formatted)
        ratios.append(verl_s / ours_s)
        print(
            f"| {k} | {len(items)} | {ours_s:.2f} | {verl_s:.2f} | {verl_s / ours_s:.1f}x "
            f"| {ours_right} / {verl_right} (of {len(formatted)}) |"
        )
    ratios.sort()
    print(f"median speed-up: {ratios[len(ratios) // 2]:.1f}x, range {ratios[0]:.1f}-{ratios[-1]:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, help="the field's labelled checker cases (jsonl)")
    parser.add_argument(
        "--responses",
        type=Path,
        nargs="*",
        default=[],
        help="labelled responses (jsonl; format in bench/make_reference_responses.py), e.g. "
        "bench/data/reference_responses.jsonl or published generations converted to it",
    )
    parser.add_argument(
        "--dump", type=Path, help="write each labelled response's verdicts (every scorer's) to this jsonl"
    )
    parser.add_argument(
        "--only",
        choices=["cases", "responses", "sequential", "throughput"],
        nargs="*",
        default=["cases", "responses", "sequential", "throughput"],
        help="which parts to run",
    )
    parser.add_argument("--n", type=int, default=1024, help="unique responses")
    parser.add_argument("--groups", type=int, default=64, help="GRPO groups of 16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="sets of each kind, each with its own seed")
    parser.add_argument("--verl-threads", type=int, default=8, help="veRL runs sync scorers in a thread pool")
    parser.add_argument(
        "--rule-workers", type=int, default=4, help="vlmrl's math-verify processes (veRL's scorer has 4)"
    )
    parser.add_argument(
        "--rule-timeout-s", type=float, default=5.0, help="vlmrl's bound on one math-verify check (default 5)"
    )
    args = parser.parse_args()

    from vlmrl.reward import RewardSettings
    from vlmrl.reward.pool import get_pool

    os.environ.pop("REWARD_MODEL_URL", None)
    settings = RewardSettings.from_kwargs(rule_workers=args.rule_workers, rule_timeout_s=args.rule_timeout_s)
    get_pool(settings.workers)  # started and ready: a one-off start is not throughput
    _verl("1", "1")  # starts veRL's spawn pool
    print(f"math-verify workers: {settings.workers}, cores: {os.cpu_count()}")
    print(f"load average: {os.getloadavg()}")
    if args.cases and "cases" in args.only:
        agreement(args.cases, settings)
    if args.responses and "responses" in args.only:
        responses_agreement(read_responses(args.responses), settings, args.dump)
    seeds = [args.seed + 1000 * k for k in range(args.repeat)]
    if "sequential" in args.only:
        one_at_a_time([make_responses(args.n, s) for s in seeds], settings)
    if "throughput" in args.only:
        throughput(
            "Unique responses", [make_responses(args.n, s) for s in seeds], settings, args.verl_threads
        )
        throughput("GRPO-shaped", [grpo_groups(args.groups, s) for s in seeds], settings, args.verl_threads)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
