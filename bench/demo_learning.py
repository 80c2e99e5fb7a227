"""Does `vlmrl demo` (default settings) improve held-out Pass@1? One full demo per seed, numbers printed.

    PYTHONPATH=src python bench/demo_learning.py                 # seeds 0 1 2, default settings
    PYTHONPATH=src python bench/demo_learning.py --seeds 0 --steps 60 algorithm.lr=1e-3
    PYTHONPATH=src python bench/demo_learning.py --model-family qwen3_vl   # on the tiny Qwen3-VL

Prints, per seed: held-out Pass@1 before and after GRPO, overall and per kind (text, image), the
change, and the wall time with the load average beside it (the machine is shared: timings move).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="GRPO steps (default: the preset's)")
    parser.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temp dir)")
    parser.add_argument(
        "--model-family", default="qwen2_5_vl", help="tiny model family (vlmrl.tiny.FAMILIES)"
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides of configs/train/demo.yaml")
    args = parser.parse_args()

    import datasets
    from transformers.utils import logging as hf_logging

    from vlmrl.demo.pipeline import DemoSettings, run_demo

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    root = args.out or Path(tempfile.mkdtemp(prefix="vlmrl-demo-bench-"))
    rows = []
    for seed in args.seeds:
        load_before = os.getloadavg()[0]
        t = time.perf_counter()
        result = run_demo(
            DemoSettings(
                out_dir=root / f"seed{seed}",
                seed=seed,
                steps=args.steps,
                overrides=args.overrides,
                model_family=args.model_family,
            )
        )
        wall = time.perf_counter() - t
        load = (load_before + os.getloadavg()[0]) / 2
        b, a = result.before, result.after
        cells = [f"{b['pass@1']:.1f} -> {a['pass@1']:.1f} ({a['pass@1'] - b['pass@1']:+.1f})"]
        for kind in ("text", "image"):
            kb, ka = b["by_kind"][kind]["pass@1"], a["by_kind"][kind]["pass@1"]
            cells.append(f"{kb:.1f} -> {ka:.1f} ({ka - kb:+.1f})")
        rows.append((seed, *cells, f"{wall:.0f}", f"{load:.1f}"))
        print(f"seed {seed} done: {cells[0]} in {wall:.0f} s (load ~{load:.1f})", flush=True)
    header = ("seed", "Pass@1 all", "Pass@1 text", "Pass@1 image", "wall (s)", "load avg")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


if __name__ == "__main__":
    main()
