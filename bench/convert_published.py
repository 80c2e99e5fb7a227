"""Convert published model generations (with their published correctness labels) and published
reference solutions into the labelled-response format of `bench/reward_reference.py --responses`.

Run: PYTHONPATH=src python bench/convert_published.py {mathvista,qwen-math-samples,qwen-math-refs} PATH
     -o OUT.jsonl [--per-model 40] [--per-set 100] [--seed 0] [--answer-block last-paragraph|whole]

PATH is a clone of the publishing repository, read in its published layout (nothing is
downloaded here, and no converted file is committed: convert locally, then pass the output to the
bench). The readers and what they expect:

- `mathvista`: `git clone https://github.com/lupantech/MathVista` (read at commit
  53d525874bdde205128e6b160b7357a88277d479). Reads `results/<model>/output_<run>.json` for the runs
  in `MATHVISTA_RUNS` (a dict keyed by problem id; each value has `question`, `choices`, `answer`,
  `question_type`, `answer_type`, `precision`, the model's `response` and the published
  `true_false` label, which MathVista's own pipeline set: GPT-4 extracted an answer from the
  response and `evaluation/calculate_score.py` compared it, normalised, with the answer). Text-only
  LLMs given OCR text (`gpt4`, `claude`, `chatgpt`, 2-shot) and multimodal models (`bard`, `llava`,
  `mplugowl`, `minigpt4`, `idefics`, `llavar`, `llama_adapter_v2`, `instruct_blip2`) on the 1,000
  testmini problems; `--per-model` problems drawn per run with a seeded RNG. One set per run.
- `qwen-math-samples`: `git clone https://github.com/QwenLM/Qwen2.5-Math` (read at commit
  a45202bd16f1ec06f433442dc1152d0074773465). Reads
  `evaluation/data/eval_rm_maj_example/math_cot_100.jsonl`: 100 MATH test problems, each with 8
  sampled chain-of-thought `response`s of a Qwen2.5-Math model and the published per-sample `score`
  (the repository's rule grader on the last `\\boxed{}`), and the problem's `answer`. Set
  `qwen2.5-math-cot` (800 responses).
- `qwen-math-refs`: the same clone. Right reference solutions, labelled right: the MATH reference
  `solution` of the 100 problems above (ground truth: the file's `answer`; set `ref-math`), Minerva
  Math `evaluation/data/minerva_math/test.jsonl` (272 `solution`s; the file has no separate answer,
  so the ground truth is the solution's last `\\boxed{}`, the answer the repository's own evaluation
  reads; set `ref-minerva`), AIME 2024 `evaluation/data/aime24/test.jsonl` (30 AoPS solutions,
  ground truth `answer`; set `ref-aime24`), and OlympiadBench `evaluation/data/olympiadbench/
  test.jsonl` (`--per-set` problems drawn with the seed; the first `solution`, ground truth
  `final_answer`; set `ref-olympiadbench`).

How a generation is wrapped: our policy writes `<think>reasoning</think><answer>final text</answer>`
and the reward grades the answer block only, so a published response is split the same way: its
last paragraph (text after the last blank line; `--answer-block last-paragraph`, the default) is
the model's own final text and goes inside `<answer>`, everything before it inside `<think>`
(a response of one paragraph has nothing before it: `<think>` then holds a fixed note, since the
format gate needs a non-empty think block). `--answer-block whole` puts the whole response inside
`<answer>` instead. Reference solutions always go inside `<answer>` whole (a solution is the
answer block a policy imitating it would write). The text itself is never edited.

Ground truths, `extra_info.question`, `extra_info.choices` and `answer_type` are built by the data
stage's own `make_example` (the way a training or eval row would carry them). Each published label
is kept as `expected`; nothing is relabelled. Every row left out is counted with its reason and
printed (an empty response, a missing label, text that holds our own tags, ...). The output is
written to a temporary file and renamed into place.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import tempfile
from pathlib import Path

from vlmrl.data.example import make_example

# (set name, file under results/): text-only LLMs (given OCR text) and multimodal models.
MATHVISTA_RUNS = {
    "mathvista-gpt4-ocr": "gpt4/output_gpt4_2shot_solution_use_ocr.json",
    "mathvista-claude-ocr": "claude/output_claude_2shot_solution_use_ocr.json",
    "mathvista-chatgpt-ocr": "chatgpt/output_chatgpt_2shot_solution_use_ocr.json",
    "mathvista-bard": "bard/output_bard.json",
    "mathvista-llava-13b": "llava/output_llava_llama_2_13b.json",
    "mathvista-mplugowl-7b": "mplugowl/output_mplugowl_7b_ft.json",
    "mathvista-minigpt4": "minigpt4/output_minigpt4_llama2.json",
    "mathvista-idefics-9b": "idefics/output_idefics_9b_instruct.json",
    "mathvista-llavar": "llavar/output_llavar.json",
    "mathvista-llama-adapter-v2": "llama_adapter_v2/output_llama_adapter_v2.json",
    "mathvista-instructblip-13b": "instruct_blip2/output_instruct_blip2_vicuna_13b.json",
}
QWEN_SAMPLES = "evaluation/data/eval_rm_maj_example/math_cot_100.jsonl"
NO_REASONING = "(The published response has no reasoning before its final paragraph.)"
_OUR_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n")


class Skips:
    """Rows left out, by source and reason: counted, printed, never silent."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def __call__(self, where: str, why: str) -> None:
        self.counts[(where, why)] += 1

    def report(self) -> None:
        if not self.counts:
            print("skipped: none")
        for (where, why), n in sorted(self.counts.items()):
            print(f"skipped {n} from {where}: {why}")


def wrap_generation(text: str, mode: str = "last-paragraph") -> str:
    """A published generation as our policy writes it (see the module docstring)."""
    text = text.strip().replace("\r\n", "\n")
    if mode == "whole":
        return f"<think>\n{NO_REASONING}\n</think>\n<answer>\n{text}\n</answer>"
    parts = [p for p in _PARAGRAPH_RE.split(text) if p.strip()]
    final = parts[-1].strip()
    reasoning = "\n\n".join(parts[:-1]).strip() or NO_REASONING
    return f"<think>\n{reasoning}\n</think>\n<answer>\n{final}\n</answer>"


def wrap_solution(text: str) -> str:
    """A reference solution inside `<answer>` whole."""
    return f"<think>\nWorking, then the solution.\n</think>\n<answer>\n{text.strip()}\n</answer>"


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (braces matched), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _row(set_name: str, rid: str, response: str, example, expected: bool, **more) -> dict:
    return {
        "id": rid,
        "set": set_name,
        "response": response,
        "ground_truth": example.answers,
        "extra_info": {
            "question": example.question,
            "answer_type": example.answer_type,
            "choices": example.choices,
        },
        "expected": bool(expected),
        **more,
    }


def _has_our_tags(text: str) -> bool:
    return any(tag in text for tag in _OUR_TAGS)


def read_mathvista(root: Path, per_model: int, seed: int, mode: str, skips: Skips) -> list[dict]:
    rows = []
    for set_name, rel in MATHVISTA_RUNS.items():
        path = root / "results" / rel
        data = json.loads(path.read_text(encoding="utf-8"))
        pids = sorted(data, key=lambda p: int(p) if str(p).isdigit() else 0)
        kept = []
        for pid in pids:
            rec = data[pid]
            response = rec.get("response")
            if not isinstance(response, str) or not response.strip():
                skips(rel, "empty response")
                continue
            if not isinstance(rec.get("true_false"), bool):
                skips(rel, "no true_false label")
                continue
            if _has_our_tags(response):
                skips(rel, "response holds <think>/<answer> tags")
                continue
            kept.append(pid)
        rng = random.Random(f"{seed}:{set_name}")
        chosen = sorted(rng.sample(kept, min(per_model, len(kept))), key=int)
        for pid in chosen:
            rec = data[pid]
            example = make_example(
                "mathvista",
                int(pid),
                "testmini",
                rec.get("question"),
                [rec.get("answer")],
                choices=rec.get("choices") or [],
            )
            rows.append(
                _row(
                    set_name,
                    f"{set_name}-{pid}",
                    wrap_generation(rec["response"], mode),
                    example,
                    rec["true_false"],
                    model=rel.split("/")[0],
                    published_extraction=rec.get("extraction"),
                )
            )
        print(f"{set_name}: {len(chosen)} of {len(kept)} usable ({len(pids)} published)")
    return rows


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_qwen_samples(root: Path, mode: str, skips: Skips) -> list[dict]:
    rows = []
    for rec in _jsonl(root / QWEN_SAMPLES):
        example = make_example("math", int(rec["idx"]), "test", rec["question"], [rec["answer"]])
        responses, scores = rec.get("response") or [], rec.get("score") or []
        if len(responses) != len(scores):
            skips(QWEN_SAMPLES, "responses and scores of different lengths")
            continue
        for k, (text, score) in enumerate(zip(responses, scores, strict=True)):
            if not isinstance(text, str) or not text.strip():
                skips(QWEN_SAMPLES, "empty response")
                continue
            if not isinstance(score, bool):
                skips(QWEN_SAMPLES, "no boolean score")
                continue
            if _has_our_tags(text):
                skips(QWEN_SAMPLES, "response holds <think>/<answer> tags")
                continue
            rows.append(
                _row(
                    "qwen2.5-math-cot",
                    f"qwen2.5-math-cot-{rec['idx']}-{k}",
                    wrap_generation(text, mode),
                    example,
                    score,
                )
            )
    print(f"qwen2.5-math-cot: {len(rows)} responses")
    return rows


def read_qwen_refs(root: Path, per_set: int, seed: int, skips: Skips) -> list[dict]:
    data = root / "evaluation" / "data"
    rows = []

    def add(set_name: str, rid: str, question: str, solution, answers: list, where: str) -> None:
        if not isinstance(solution, str) or not solution.strip():
            skips(where, "no solution")
            return
        answers = [a for a in answers if a is not None and str(a).strip()]
        if not answers:
            skips(where, "no answer")
            return
        example = make_example(set_name, 0, "test", question, answers)
        rows.append(_row(set_name, f"{set_name}-{rid}", wrap_solution(solution), example, True))

    for rec in _jsonl(root / QWEN_SAMPLES):
        add(
            "ref-math",
            str(rec["idx"]),
            rec["question"],
            rec.get("solution"),
            [rec.get("answer")],
            QWEN_SAMPLES,
        )
    where = "evaluation/data/minerva_math/test.jsonl"
    for rec in _jsonl(data / "minerva_math" / "test.jsonl"):
        boxed = last_boxed(rec.get("solution") or "")
        if boxed is None:
            skips(where, "no \\boxed{} in the solution (no ground truth)")
            continue
        add("ref-minerva", str(rec["idx"]), rec["problem"], rec["solution"], [boxed], where)
    where = "evaluation/data/aime24/test.jsonl"
    for rec in _jsonl(data / "aime24" / "test.jsonl"):
        add("ref-aime24", str(rec["id"]), rec["problem"], rec.get("solution"), [rec.get("answer")], where)
    where = "evaluation/data/olympiadbench/test.jsonl"
    recs = _jsonl(data / "olympiadbench" / "test.jsonl")
    rng = random.Random(f"{seed}:olympiadbench")
    for rec in sorted(rng.sample(recs, min(per_set, len(recs))), key=lambda r: r["id"]):
        sols = rec.get("solution") or []
        add(
            "ref-olympiadbench",
            str(rec["id"]),
            rec["question"],
            sols[0] if sols else None,
            list(rec.get("final_answer") or []),
            where,
        )
    for name, n in collections.Counter(r["set"] for r in rows).items():
        print(f"{name}: {n} reference solutions")
    return rows


def write_atomic(rows: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reader", choices=["mathvista", "qwen-math-samples", "qwen-math-refs"])
    parser.add_argument("path", type=Path, help="a clone of the publishing repository")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--per-model", type=int, default=40, help="mathvista: problems drawn per run")
    parser.add_argument(
        "--per-set", type=int, default=100, help="qwen-math-refs: OlympiadBench solutions drawn"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--answer-block", choices=["last-paragraph", "whole"], default="last-paragraph")
    args = parser.parse_args()
    skips = Skips()
    if args.reader == "mathvista":
        rows = read_mathvista(args.path, args.per_model, args.seed, args.answer_block, skips)
    elif args.reader == "qwen-math-samples":
        rows = read_qwen_samples(args.path, args.answer_block, skips)
    else:
        rows = read_qwen_refs(args.path, args.per_set, args.seed, skips)
    write_atomic(rows, args.out)
    skips.report()
    labels = collections.Counter(r["expected"] for r in rows)
    print(f"wrote {len(rows)} rows ({labels[True]} labelled right, {labels[False]} wrong) to {args.out}")


if __name__ == "__main__":
    main()
