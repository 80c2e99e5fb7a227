"""Verifier throughput: 1,024 responses the rules cannot decide, against a loopback judge with 50 ms latency.

Run: PYTHONPATH=src python bench/verifier_concurrency.py [--n 1024] [--latency 0.05] [--concurrency 64]
Compares our batch path (concurrent, pooled client) with one request at a time (the seed's way).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from vlmrl.reward import compute_score, score_batch
from vlmrl.reward import verifier as vf


def make_items(n: int, tag: str) -> list[dict]:
    # Word answers: the rules cannot compare them, so every item goes to the verifier, and the
    # tag keeps the two runs from sharing the verifier cache.
    return [
        {
            "data_source": "bench",
            "solution_str": f"<think>\ncounting\n</think>\n<answer>\nthere are {tag} apples number {i}\n</answer>",
            "ground_truth": [f"apples number {i}"],
            "extra_info": {"question": f"How many apples in basket {i}?"},
        }
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--latency", type=float, default=0.05, help="judge's seconds per reply")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    # The judge runs in its own process so its threads do not share the client's GIL.
    server = subprocess.Popen(
        [sys.executable, "-m", "vlmrl.testing.scripted_judge", "--delay-s", str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = server.stdout.readline().strip()  # type: ignore[union-attr]
    try:
        kwargs = {
            "verifier_url": url,
            "verifier_model": "scripted-judge",
            "verifier_concurrency": args.concurrency,
            "verifier_timeout_s": 30,
        }
        vf.reset_state()
        items = make_items(args.n, "batch")
        t = time.perf_counter()
        batch = score_batch(items, **kwargs)
        batch_s = time.perf_counter() - t
        assert all(r["verdict"] == "verifier" for r in batch), "every item must reach the verifier"

        vf.reset_state()
        items = make_items(args.n, "serial")
        t = time.perf_counter()
        serial = [
            compute_score(
                it["data_source"], it["solution_str"], it["ground_truth"], it["extra_info"], **kwargs
            )
            for it in items
        ]
        serial_s = time.perf_counter() - t
        assert all(r["verdict"] == "verifier" for r in serial)
        errors = sum(r["verifier_error"] for r in batch + serial)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=30)

    print(f"items: {args.n}  judge latency: {args.latency * 1000:.0f} ms  concurrency: {args.concurrency}")
    print(f"batch (score_batch)   : {batch_s:7.2f} s  {args.n / batch_s:8.1f} items/s")
    print(f"one at a time         : {serial_s:7.2f} s  {args.n / serial_s:8.1f} items/s")
    print(f"speed-up              : {serial_s / batch_s:7.1f}x  (target >= 20x)  verifier errors: {errors}")


if __name__ == "__main__":
    main()
