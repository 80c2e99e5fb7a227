"""How long `vlmrl train --dry-run`'s validation takes per veRL preset (compose + validate_config), on CPU.

Run: PYTHONPATH=src python bench/bench_verl_validate.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from vlmrl.train.config import load_config
    from vlmrl.train.verl.launch import plan

    print(f"import vlmrl.train + veRL launch modules: {time.perf_counter() - t0:.2f} s")
    first = True
    print(f"{'preset':<16} {'first (s)':>10} {'median (s)':>11} {'overrides':>10}")
    for path in sorted(PRESETS.glob("*.yaml")):
        cfg = load_config(path)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            launch = plan(cfg)
            times.append(time.perf_counter() - t)
        label = " (incl. veRL/Hydra import)" if first else ""
        first = False
        print(
            f"{path.stem:<16} {times[0]:>10.2f} {statistics.median(times):>11.2f} {len(launch.hydra_args):>10}{label}"
        )


if __name__ == "__main__":
    main()
