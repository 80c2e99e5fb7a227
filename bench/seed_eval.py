"""`vlmrl eval seed` end to end on this machine with the tiny model: wall time and peak memory.

Run: PYTHONPATH=src python bench/seed_eval.py [--n 8] [--max-new-tokens 64] [--benchmarks all] [--out DIR]

Builds the tiny Qwen2.5-VL model (`vlmrl.tiny`), writes small local copies of the seven benchmarks in
their hub layouts (the tests' writers: tests/eval/test_eval_seed.py, tests/eval/lmms_hub_copies.py),
then runs the one command as a user would, with CPU settings: it starts vLLM for the text half and
the judge (the tiny model again, `--judge-model`) on 127.0.0.1, runs lmms-eval for the multimodal
tasks, stops everything and prints the seed's two tables. Peak memory is the largest sum of resident
memory over the command's whole process tree (the CLI, its vLLM servers, lmms-eval and its engine),
sampled every 0.5 s. Prints one JSON line with the numbers, the load average and the command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "eval"))


def tree_rss(pid: int) -> int:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--benchmarks", default="all")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from test_eval_seed import write_text_benchmarks

    from vlmrl.tiny.qwen2_5_vl import build_tiny_vlm

    work = args.out or Path(tempfile.mkdtemp(prefix="seed-eval-"))
    model = build_tiny_vlm(work / "tiny-vlm", seed=0)
    data = write_text_benchmarks(work / "data")
    try:
        import lmms_hub_copies as hub

        writers = {
            "mme": hub.write_mme_copy,
            "mathverse_testmini": getattr(hub, "write_mathverse_copy", None),
            "mathvista_testmini_format": getattr(hub, "write_mathvista_copy", None),
            "mmstar": getattr(hub, "write_mmstar_copy", None),
        }
    except ImportError:
        from test_eval_lmms_run import write_mme_copy

        writers = {"mme": write_mme_copy}
    for task, writer in writers.items():
        if writer is not None and not (work / "mm" / task).exists():
            data[task] = str(writer(work / "mm" / task))
        elif writer is not None:
            data[task] = str(work / "mm" / task)
    cmd = [sys.executable, "-m", "vlmrl.cli", "eval", "seed", "--model", str(model), "--model-name", "tiny"]
    cmd += ["-o", str(work / "seed"), "-b", args.benchmarks, "--n", str(args.n)]
    cmd += ["--max-new-tokens", str(args.max_new_tokens), "--max-model-len", "1024", "--dtype", "float32"]
    cmd += ["--judge-model", str(model), "--judge-served-model-name", "tiny-judge", "--mm-batch-size", "8"]
    cmd += ["--judge-max-model-len", "4096"]
    for engine_arg in (
        "dtype=float32",
        "enforce_eager=True",
        'limit_mm_per_prompt={"image":1,"video":0}',
        'mm_processor_kwargs={"max_pixels":12544}',
    ):
        cmd += ["--model-arg", engine_arg]
    from vlmrl.eval.seed import MM_TASKS, SEED_BENCHMARKS, TEXT_BENCHMARKS

    aliases = {"all": SEED_BENCHMARKS, "text": TEXT_BENCHMARKS, "mm": MM_TASKS}
    chosen = {n for b in args.benchmarks.split(",") for n in aliases.get(b.strip(), (b.strip(),))}
    for name, path in data.items():
        if name in chosen:
            cmd += ["--data", f"{name}={path}"]
    cmd += ["--", "--enforce-eager", "--language-model-only"]
    env = dict(
        os.environ,
        VLLM_CPU_KVCACHE_SPACE="1",
        VLLM_ENABLE_V1_MULTIPROCESSING="0",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    print(
        json.dumps(
            {
                "exit_code": code,
                "wall_s": round(wall, 1),
                "peak_tree_rss_gib": round(peak[0] / 2**30, 2),
                "load_avg_before": [round(x, 2) for x in load_before],
                "load_avg_after": [round(x, 2) for x in os.getloadavg()],
                "benchmarks": args.benchmarks,
                "n": args.n,
                "max_new_tokens": args.max_new_tokens,
                "out": str(work / "seed"),
            }
        )
    )
    sys.exit(code)


if __name__ == "__main__":
    main()
