"""Evaluation and report throughput: `eval text` over a loopback server, and curves from a long log.

Run: PYTHONPATH=src python bench/bench_eval.py [--problems 200] [--n 8] [--steps 2000]
The server answers at once, so the numbers are vlmrl's own cost (client, journal, grading, files).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vlmrl.testing.scripted_judge import ChatServer, chat_reply

ANSWERS = {
    # reply kind -> response text for a problem whose ground truth is \frac{1}{2}
    "exact": "<think>\nhalf of one\n</think>\n<answer>\n\\frac{1}{2}\n</answer>",
    "equivalent": "<think>\nhalf of one\n</think>\n<answer>\n0.5\n</answer>",  # needs math-verify
    "wrong": "<think>\nguess\n</think>\n<answer>\n\\frac{2}{3}\n</answer>",
    "unformatted": "The answer is 1/2.",
}


def start_server() -> ChatServer:
    """The scripted chat server, its answers cycling through `ANSWERS`."""
    kinds = list(ANSWERS)
    counter = {"i": 0}

    def respond(body):  # under the server's lock (serialize=True)
        kind = kinds[counter["i"] % len(kinds)]
        counter["i"] += 1
        return chat_reply(ANSWERS[kind], completion_tokens=len(ANSWERS[kind].split()))

    return ChatServer(respond, models=("m",))


def bench_eval_text(problems: int, n: int, concurrency: int) -> dict[str, float]:
    from vlmrl.eval.text import evaluate

    rows = [
        {
            "data_source": "bench",
            "prompt": [{"role": "user", "content": f"Problem {i}: what is half of one?"}],
            "reward_model": {"style": "rule", "ground_truth": ["\\frac{1}{2}"]},
            "extra_info": {"index": i, "answer_type": "expression"},
        }
        for i in range(problems)
    ]
    server = start_server()
    stamps: dict[str, float] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        kind = stage.rsplit(": ", 1)[-1]
        stamps.setdefault(f"{kind}_start", time.perf_counter())
        stamps[f"{kind}_end"] = time.perf_counter()

    url = server.url
    with tempfile.TemporaryDirectory() as tmp:
        run = dict(
            rows_or_parquet=rows,
            rows_name="bench",
            backend="openai",
            backend_options={"served_model_name": "m", "concurrency": concurrency},
            n=n,
            out_dir=Path(tmp) / "out",
        )
        t0 = time.perf_counter()
        res = evaluate(url, on_progress=on_progress, **run)
        total = time.perf_counter() - t0
        t1 = time.perf_counter()
        resumed = evaluate(url, **run)  # the same run again: everything is resumed, nothing generated
        resume_s = time.perf_counter() - t1
    server.close()
    samples = problems * n
    m = res.benchmarks["bench"].metrics
    assert resumed.benchmarks["bench"].generated == 0
    return {
        "samples": samples,
        "generate_samples_per_s": samples / (stamps["generate_end"] - stamps["generate_start"]),
        "grade_samples_per_s": samples / max(stamps["grade_end"] - stamps["generate_end"], 1e-9),
        "total_s": total,
        "resume_s": resume_s,
        "pass@1": m["pass@1"],
        "format_rate": m["format_rate"],
    }


def bench_curves(steps: int, keys: int) -> dict[str, float]:
    from vlmrl.report.curves import plot_curves
    from vlmrl.report.logs import read_log

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "train.log"
        with log.open("w") as fh:
            for step in range(1, steps + 1):
                parts = [f"step:{step}", f"critic/score/mean:np.float64({step / steps:.4f})"]
                parts.append(f"response_length/mean:{400 + step % 50}.5")
                parts += [f"extra/key_{k}:{k * 0.1:.3f}" for k in range(keys)]
                fh.write("(TaskRunner pid=1) " + " - ".join(parts) + "\n")
        t0 = time.perf_counter()
        run = read_log(log)
        read_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        plot_curves([run], Path(tmp) / "curves", smoothing=0.6)
        plot_s = time.perf_counter() - t1
        size_mb = log.stat().st_size / 1e6
    return {"log_mb": size_mb, "read_s": read_s, "plot_s": plot_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=100)
    args = parser.parse_args()

    e = bench_eval_text(args.problems, args.n, args.concurrency)
    print(
        f"eval text, openai backend on loopback, {e['samples']} samples ({args.problems} problems x n={args.n}, "
        f"concurrency {args.concurrency}):"
    )
    print(f"  generation (client + journal): {e['generate_samples_per_s']:.0f} samples/s")
    print(f"  grading (training reward, 1/4 need math-verify): {e['grade_samples_per_s']:.0f} samples/s")
    print(f"  whole run: {e['total_s']:.1f} s; resumed re-run (nothing to generate): {e['resume_s']:.1f} s")
    print(f"  pass@1 {e['pass@1']:.1f} (expected 50.0), format rate {e['format_rate']:.1f} (expected 75.0)")
    c = bench_curves(args.steps, args.keys)
    print(
        f"report curves, veRL console log of {args.steps} steps x {args.keys + 2} keys ({c['log_mb']:.1f} MB):"
    )
    print(f"  read {c['read_s']:.2f} s, plot {c['plot_s']:.2f} s")


if __name__ == "__main__":
    main()
