"""Backend parity on the demo: `vlmrl demo` with TRL and with veRL on the same seeds and step counts.

Run: PYTHONPATH=src python bench/demo_parity.py --backends trl verl --seeds 0 1 2 --steps 16 [--repeats 2]
     PYTHONPATH=src python bench/demo_parity.py --table-only      # the table of what has finished

Each run is the whole `vlmrl demo` (tiny model, data, warm-up, eval before, GRPO, eval after) in its own
process tree, into OUT/<backend>-s<seed>-n<steps>-r<repeat>/. Per run it records held-out Pass@1 before
and after, overall and per kind (text, image), the training reward per step, the wall time, the GRPO
stage's time, the peak RSS of the process tree (Ray, vLLM and every worker included, sampled every
0.5 s) and the 1-minute load average at start and end (the box is shared: times mean little without
it). A run whose demo_summary.json exists is not run again (`--rerun` to redo), so an interrupted
sweep resumes where it stopped. Results go to OUT/parity.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REWARD_KEYS = {"verl": "critic/score/mean", "trl": "reward_mean"}


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


def measure(argv: list[str], log: Path, env: dict[str, str]) -> tuple[int, float, int]:
    """(exit code, wall seconds, peak tree RSS in bytes) of one child process."""
    peak = [0]
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
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


def per_step(metrics_path: Path, key: str) -> list[float]:
    """`key` at each step that logged it, from the run's metrics.jsonl (veRL rows nest under `data`)."""
    if not metrics_path.is_file():
        return []
    by_step: dict[int, float] = {}
    for line in metrics_path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        row = {**row.get("data", {}), **row}
        if key in row and row.get("step") is not None:
            by_step[int(row["step"])] = float(row[key])
    return [by_step[s] for s in sorted(by_step)]


#: Per-kind training curves both backends log (vlmrl.train.metrics.reward_metrics).
KIND_KEYS = tuple(f"modality/{k}/{q}" for k in ("text", "image") for q in ("reward_mean", "format_rate"))


def run_one(
    out: Path, backend: str, seed: int, steps: int, repeat: int, rerun: bool, extra: list[str]
) -> dict:
    name = f"{backend}-s{seed}-n{steps}-r{repeat}"
    run_dir = out / name
    record_path = run_dir / "parity_run.json"
    if record_path.is_file() and not rerun:
        return json.loads(record_path.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "vlmrl.cli",
        "demo",
        "--backend",
        backend,
        "--steps",
        str(steps),
        "--seed",
        str(seed),
        "--out",
        str(run_dir / "demo"),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    load_start = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    code, wall, rss = measure(argv, run_dir / "demo.log", env)
    record: dict = {
        "name": name,
        "backend": backend,
        "seed": seed,
        "steps": steps,
        "repeat": repeat,
        "argv": argv[2:],
        "exit_code": code,
        "started": started,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(rss / 2**30, 2),
        "load_1min_start": round(load_start, 2),
        "load_1min_end": round(os.getloadavg()[0], 2),
    }
    summary_path = run_dir / "demo" / "demo_summary.json"
    if code == 0 and summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        record["before"], record["after"] = summary["before"], summary["after"]
        record["grpo_s"] = summary["timings_s"].get("GRPO")
        metrics = Path(summary["artifacts"]["metrics.jsonl"])
        record["rewards"] = per_step(metrics, REWARD_KEYS[backend])
        record["by_kind"] = {key: per_step(metrics, key) for key in KIND_KEYS}
    (run_dir / "parity_run.json").write_text(json.dumps(record, indent=1))
    return record


def _pass(record: dict, when: str, kind: str | None) -> float | None:
    block = record.get(when)
    if not block:
        return None
    if kind is None:
        return block.get("pass@1")
    return block.get("by_kind", {}).get(kind, {}).get("pass@1")


def table(records: list[dict]) -> str:
    head = (
        "| backend | seed | steps | run | Pass@1 all before -> after (delta) | text | image | "
        "reward first -> last step | lowest training format rate text / image | wall s | GRPO s | "
        "peak RSS GB | load 1-min start/end |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in sorted(records, key=lambda r: (r["steps"], r["seed"], r["backend"], r["repeat"])):
        if "after" not in r:
            lines.append(
                f"| {r['backend']} | {r['seed']} | {r['steps']} | {r['repeat']} | failed (exit "
                f"{r['exit_code']}) | | | | | {r['wall_s']} | | {r['peak_rss_gb']} | "
                f"{r['load_1min_start']}/{r['load_1min_end']} |"
            )
            continue
        cells = []
        for kind in (None, "text", "image"):
            b, a = _pass(r, "before", kind), _pass(r, "after", kind)
            cells.append(f"{b:.1f} -> {a:.1f} ({a - b:+.1f})" if b is not None and a is not None else "-")
        rw = r.get("rewards") or []
        reward = f"{rw[0]:.2f} -> {rw[-1]:.2f}" if rw else "-"
        fmt = [(r.get("by_kind") or {}).get(f"modality/{k}/format_rate") for k in ("text", "image")]
        lowest = " / ".join(f"{min(f):.2f}" if f else "-" for f in fmt)
        lines.append(
            f"| {r['backend']} | {r['seed']} | {r['steps']} | {r['repeat']} | {cells[0]} | {cells[1]} | "
            f"{cells[2]} | {reward} | {lowest} | {r['wall_s']:.0f} | {r.get('grpo_s') or 0:.0f} | {r['peak_rss_gb']} | "
            f"{r['load_1min_start']}/{r['load_1min_end']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["trl", "verl"], choices=["trl", "verl"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", nargs="+", type=int, default=[16])
    ap.add_argument("--repeats", type=int, default=1, help="runs per (backend, seed, steps)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/demo_parity"))
    ap.add_argument("--rerun", action="store_true", help="run again even where a result exists")
    ap.add_argument("--table-only", action="store_true", help="print the table of the finished runs")
    ap.add_argument("extra", nargs="*", help="key=value overrides passed to every `vlmrl demo`")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        # Steps first, then seeds, then backends side by side: a sweep cut short still pairs them.
        for steps in args.steps:
            for repeat in range(1, args.repeats + 1):
                for seed in args.seeds:
                    for backend in args.backends:
                        r = run_one(out, backend, seed, steps, repeat, args.rerun, args.extra)
                        print(f"{r['name']}: exit {r['exit_code']}, {r['wall_s']} s", flush=True)
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*/parity_run.json"))]
    (out / "parity.json").write_text(json.dumps(records, indent=1))
    print(table(records))
    rewards = [r for r in records if r.get("rewards")]
    if rewards:
        print("\nTraining reward per step:")
        for r in sorted(rewards, key=lambda r: (r["steps"], r["seed"], r["backend"], r["repeat"])):
            print(f"  {r['name']}: " + " ".join(f"{x:.2f}" for x in r["rewards"]))


if __name__ == "__main__":
    main()
