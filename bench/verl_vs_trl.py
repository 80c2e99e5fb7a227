"""veRL on CPU beside TRL on the same tiny config: start-up, per-step time and peak RSS, one run.

Run: PYTHONPATH=src python bench/verl_vs_trl.py [--steps 3] [--out /tmp/verl_vs_trl]
Both train the built-in tiny Qwen2.5-VL with GRPO on the demo's synthetic mixed data
(configs/train/demo.yaml: 4 prompts x 8 responses, 48 tokens), veRL through `main_ppo` on its CPU
platform, TRL through vlmrl's TRL backend, each in its own process tree. Peak RSS is the largest sum
over the tree (Ray, vLLM and every worker included), sampled every 0.5 s. Start-up = wall time minus
the time spent in training steps (veRL's `timing_s/step`, TRL's `step_time_s`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRL_CHILD = """
import sys
from vlmrl.train.trl import backend as trl_backend
from vlmrl.train.config import load_config
cfg = load_config(sys.argv[1], sys.argv[2:])
trl_backend.run(cfg)
"""

VERL_CHILD = """
import sys
from pathlib import Path
from vlmrl.train.config import load_config
from vlmrl.train.verl.launch import train_here
cfg = load_config(sys.argv[1], sys.argv[3:])
run = train_here(cfg, Path(sys.argv[2]), on_cpu=True)
sys.exit(0 if run.error is None else 1)
"""


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def measure(argv: list[str], log: Path) -> tuple[int, float, int]:
    """(exit code, wall seconds, peak tree RSS in bytes) of one child process."""
    peak = [0]
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                done.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
    return code, time.perf_counter() - t, peak[0]


def step_times(path: Path, key: str) -> list[float]:
    rows = (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )
    rows = [{**r.get("data", {}), **r} for r in rows]
    return [float(r[key]) for r in rows if key in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/verl_vs_trl"))
    args = ap.parse_args()

    from vlmrl.data.build import build_from_examples
    from vlmrl.demo.synthetic import make_examples
    from vlmrl.tiny.qwen2_5_vl import build_tiny_vlm

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = build_tiny_vlm(out / "tiny_model", seed=0)
    train = out / "train.parquet"
    build_from_examples(make_examples(32, "train", 0), train, with_images=True, mixed_policy="native")
    config = ROOT / "configs" / "train" / "demo.yaml"
    common = [
        f"model.path={model}",
        f"data.train_files=[{train}]",
        f"trainer.total_training_steps={args.steps}",
        "trainer.save_freq=-1",
        "trainer.logger=[console,jsonl]",
    ]
    results = {}
    trl_dir = out / "trl"
    code, wall, rss = measure(
        [sys.executable, "-c", TRL_CHILD, str(config), *common, f"trainer.output_dir={trl_dir}"],
        out / "trl.log",
    )
    steps = step_times(trl_dir / "metrics.jsonl", "step_time_s")
    results["trl"] = (code, wall, rss, steps)
    verl_dir = out / "verl"
    verl_overrides = [
        *common,
        f"trainer.output_dir={verl_dir}",
        "backend=verl",
        "rollout.engine=vllm",
        "trainer.n_gpus_per_node=1",
        "trainer.resume_mode=disable",
        f"trainer.save_freq={args.steps}",  # train_here exports the last checkpoint
    ]
    code, wall, rss = measure(
        [sys.executable, "-c", VERL_CHILD, str(config), str(verl_dir), *verl_overrides], out / "verl.log"
    )
    steps = step_times(verl_dir / "verl_metrics.jsonl", "timing_s/step")
    results["verl"] = (code, wall, rss, steps)

    print(
        f"{'backend':8} {'exit':>4} {'wall s':>8} {'start-up s':>10} {'step s (mean)':>14} {'peak RSS GB':>11}"
    )
    for name, (code, wall, rss, steps) in results.items():
        mean = sum(steps) / len(steps) if steps else float("nan")
        print(
            f"{name:8} {code:>4} {wall:>8.1f} {wall - sum(steps):>10.1f} {mean:>14.2f} {rss / 2**30:>11.2f}"
        )
    (_, tw, tr, ts), (_, vw, vr, vs) = results["trl"], results["verl"]
    if ts and vs:
        print(
            f"verl/trl: start-up x{(vw - sum(vs)) / max(tw - sum(ts), 1e-9):.1f}, "
            f"step x{(sum(vs) / len(vs)) / (sum(ts) / len(ts)):.1f}, peak RSS x{vr / max(tr, 1):.1f}"
        )


if __name__ == "__main__":
    main()
