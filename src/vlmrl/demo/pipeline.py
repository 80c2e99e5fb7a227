"""The demo's loop: tiny model -> synthetic data -> format warm-up -> eval -> GRPO (TRL) -> curves -> eval.

Every stage is the real one (data build, reward, TRL backend, evaluation, report); only the model is tiny.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.utils.io import write_json_atomic

# phase, done, total: drives the CLI's progress bars (library code never prints).
Progress = Callable[[str, int, int], None]

PHASES = ("model", "data", "warm-up", "eval before", "GRPO", "curves", "eval after")


def default_config_path() -> Path:
    """configs/train/demo.yaml: in the working directory, else beside the source tree (editable install)."""
    here = Path("configs/train/demo.yaml")
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[3] / "configs" / "train" / "demo.yaml"


@dataclass
class DemoSettings:
    out_dir: Path = Path("outputs/demo")
    config: Path | None = None
    steps: int | None = None  # GRPO steps; None = the config's trainer.total_training_steps
    train_size: int = 256
    eval_size: int = 128
    image_fraction: float = 0.5
    model_size: str = "demo"  # a key of the family module's SIZES
    model_family: str = "qwen2_5_vl"  # a key of vlmrl.tiny.FAMILIES: the tiny model's architecture
    warmup_steps: int = 400
    warmup_lr: float = 1.5e-3
    warmup_batch_size: int = 16
    warmup_answer_weight: float = 5.0  # the answer's tokens weigh this much more than the format's
    warmup_slip: float = 0.5  # share of warm-up solutions the sloppy teacher gets wrong
    eval_samples: int = 4
    eval_temperature: float = 0.6
    seed: int = 0
    threads: int = 1
    model_dir: Path | None = None  # where the tiny model is cached; None = under out_dir
    overrides: list[str] = field(default_factory=list)
    backend: str = "trl"  # "verl": the GRPO stage on veRL's own trainer (on the CPU when there is no GPU)


@dataclass
class DemoResult:
    summary_path: Path
    artifacts: dict[str, str]
    before: dict[
        str, Any
    ]  # grader, pass@1, format_rate (percent) and by_kind.{text,image}.{pass@1,format_rate}
    after: dict[str, Any]
    train: dict[str, Any]
    timings_s: dict[str, float]
    notes: list[str]


def _eval_metrics(results, name: str) -> dict[str, Any]:
    """Held-out Pass@1 and format rate (percent), overall and per kind of question (text, image)."""
    from vlmrl.demo.synthetic import kind_of
    from vlmrl.utils.io import iter_jsonl

    bench = results.benchmarks[name]
    out: dict[str, Any] = {
        k: float(bench.metrics[k]) for k in ("pass@1", "format_rate") if k in bench.metrics
    }
    out["grader"] = bench.metrics.get("grader")  # `reward`: the training reward, format gate included
    # Every problem has the same number of samples, so Pass@1 of a kind is its samples' mean accuracy.
    samples: dict[str, list[dict[str, Any]]] = {}
    for _line, record in iter_jsonl(bench.samples_path):
        samples.setdefault(kind_of(record["data_source"]), []).append(record)
    out["by_kind"] = {
        kind: {
            "problems": len({r["problem_id"] for r in records}),
            "pass@1": 100.0 * sum(r["acc"] for r in records) / len(records),
            "format_rate": 100.0 * sum(r["format_ok"] for r in records) / len(records),
        }
        for kind, records in sorted(samples.items())
    }
    return out


#: veRL's GRPO stage on a CPU: a veRL start costs a minute or more, so fewer steps than TRL's 40.
#: 16 raise held-out Pass@1 on both kinds (docs/parity.md); 4 moved it by a few points at most.
VERL_DEMO_STEPS = 16


def verl_demo_config(config_path: Path, overrides: list[str], settings: DemoSettings):
    """The experiment config of the demo's GRPO stage on veRL: the demo config turned to backend verl.

    Rolls out with vLLM, one training rank, `settings.steps` (default `VERL_DEMO_STEPS`) steps and a
    checkpoint at the last one (the model the after-eval loads), no validation set.
    """
    from vlmrl.train.config import load_config

    steps = settings.steps or VERL_DEMO_STEPS
    return load_config(
        config_path,
        [
            *overrides,
            "backend=verl",
            "rollout.engine=vllm",
            "trainer.n_gpus_per_node=1",
            "trainer.logger=[console,jsonl]",
            f"trainer.total_training_steps={steps}",
            f"trainer.save_freq={steps}",
            "trainer.resume_mode=disable",
            "data.val_files=[]",
        ],
    )


def _grpo_on_verl(config_path: Path, overrides: list[str], settings: DemoSettings, out: Path):
    """The demo's GRPO stage through veRL's `main_ppo` (vlmrl.train.verl.launch.train_here)."""
    from vlmrl.train.trl.backend import TrainSummary
    from vlmrl.train.verl.launch import train_here

    cfg = verl_demo_config(config_path, overrides, settings)
    t = time.perf_counter()
    run = train_here(cfg, out / "train")
    if run.error or run.final_model_dir is None:
        raise UserError(f"veRL GRPO stage failed (log: {run.log_path}): {run.error}")
    return TrainSummary(
        output_dir=out / "train",
        metrics_path=run.metrics_path,
        final_model_dir=run.final_model_dir,
        global_step=max(run.steps, default=0),
        device="cpu",
        train_runtime_s=time.perf_counter() - t,
        checkpoints=[str(p) for p in sorted(run.checkpoints_dir.glob("global_step_*"))],
        notes=["GRPO on veRL's main_ppo (vlmrl.train.verl.cpu on a CPU)"],
    )


def run_demo(settings: DemoSettings, progress: Progress | None = None) -> DemoResult:
    """Run the whole demo into `settings.out_dir`; returns the numbers and where every artifact went."""
    import torch

    from vlmrl.data.build import build_from_examples
    from vlmrl.data.trl_view import to_trl_dataset
    from vlmrl.demo.synthetic import INSTRUCTION, formatted_solution, make_splits
    from vlmrl.demo.warmup import warm_up
    from vlmrl.eval.text import evaluate
    from vlmrl.report.curves import plot_curves
    from vlmrl.tiny import FAMILIES, family_module
    from vlmrl.train.config import load_config
    from vlmrl.train.trl import backend as trl_backend

    def tick(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(phase, done, total)

    if settings.train_size < 2 or settings.eval_size < 1:
        raise UserError("--train-size must be at least 2 and --eval-size at least 1")
    if settings.model_family not in FAMILIES:
        raise UserError(f"--model-family {settings.model_family!r}: choose one of {', '.join(FAMILIES)}")
    tiny = family_module(settings.model_family)
    if settings.model_size not in tiny.SIZES:
        raise UserError(f"--model-size {settings.model_size!r}: choose one of {', '.join(tiny.SIZES)}")
    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config_path = Path(settings.config) if settings.config else default_config_path()
    if not config_path.is_file():
        raise UserError(f"{config_path}: demo config not found; pass --config configs/train/demo.yaml")
    timings: dict[str, float] = {}
    notes: list[str] = []
    threads_before = torch.get_num_threads()
    # One thread: the tiny model's matrices are too small to split, and a shared box's cores are busy.
    torch.set_num_threads(settings.threads)
    try:
        t = time.perf_counter()
        tick("model", 0, 1)
        default_dir = out / (
            "tiny_model" if settings.model_family == "qwen2_5_vl" else f"tiny_model_{settings.model_family}"
        )
        model_dir = tiny.build_tiny_vlm(
            settings.model_dir or default_dir, seed=settings.seed, size=settings.model_size
        )
        tick("model", 1, 1)
        timings["model"] = time.perf_counter() - t

        t = time.perf_counter()
        data_dir = out / "data"
        train_examples, eval_examples = make_splits(
            settings.train_size, settings.eval_size, settings.seed, settings.image_fraction
        )
        reports = {}
        for split, examples in (("train", train_examples), ("test", eval_examples)):
            tick("data", 0, len(examples))
            reports[split] = build_from_examples(
                examples,
                data_dir / f"{split}.parquet",
                instruction=INSTRUCTION,
                with_images=True,
                mixed_policy="native",
                rejects_path=data_dir / f"{split}.rejects.jsonl",
                name=split,
            )
            tick("data", len(examples), len(examples))
            rejected = sum(reports[split].rejected.values())
            if rejected:
                notes.append(
                    f"data: {rejected} {split} row(s) rejected, see {data_dir / f'{split}.rejects.jsonl'}"
                )
        timings["data"] = time.perf_counter() - t

        t = time.perf_counter()
        policy_dir = model_dir
        if settings.warmup_steps > 0:
            rows = list(to_trl_dataset([data_dir / "train.parquet"]))
            by_index = {ex.index: ex for ex in train_examples}
            # A sloppy teacher: a share of the worked solutions is wrong (the next digit, the next colour).
            # The warmed model learns the format and a partial skill (its samples are right about half
            # the time), so GRPO's groups mix right and wrong answers, and only the reward can tell which.
            slips = random.Random(f"{settings.seed}-slip")
            responses = [
                formatted_solution(
                    by_index[row["extra_info"]["index"]], slip=slips.random() < settings.warmup_slip
                )
                for row in rows
            ]
            policy_dir, losses = warm_up(
                model_dir,
                rows,
                responses,
                out / "warmup_model",
                steps=settings.warmup_steps,
                lr=settings.warmup_lr,
                batch_size=settings.warmup_batch_size,
                answer_weight=settings.warmup_answer_weight,
                seed=settings.seed,
                progress=lambda done, total, _loss: tick("warm-up", done, total),
            )
            notes.append(f"warm-up: supervised loss {losses[0]:.2f} -> {losses[-1]:.2f}")
        timings["warm-up"] = time.perf_counter() - t

        eval_kwargs = dict(
            rows_or_parquet=str(data_dir / "test.parquet"),
            rows_name="demo_test",
            backend="hf",
            backend_options={"device": "cpu", "dtype": "float32", "batch_size": 32},
            n=settings.eval_samples,
            temperature=settings.eval_temperature,
            seed=settings.seed,
            overwrite=True,
            grader="reward",  # training-style grading (format gate included); the table says so
        )

        t = time.perf_counter()
        cfg_overrides = [
            f"model.path={policy_dir}",
            f"data.train_files=[{data_dir / 'train.parquet'}]",
            f"trainer.output_dir={out / 'train'}",
            f"trainer.seed={settings.seed}",
            *tiny.DEMO_OVERRIDES,  # the family's own demo settings; the user's overrides come after
        ]
        if settings.steps is not None:
            cfg_overrides.append(f"trainer.total_training_steps={settings.steps}")
        cfg = load_config(config_path, [*cfg_overrides, *settings.overrides])
        max_new_tokens = cfg.rollout.max_response_length
        before = evaluate(
            str(policy_dir),
            out_dir=out / "eval" / "before",
            max_new_tokens=max_new_tokens,
            on_progress=lambda _name, done, total: tick("eval before", done, total),
            **eval_kwargs,
        )
        timings["eval before"] = time.perf_counter() - t

        t = time.perf_counter()
        total_steps = cfg.trainer.total_training_steps or 0
        tick("GRPO", 0, total_steps)
        if settings.backend == "verl":
            summary = _grpo_on_verl(config_path, [*cfg_overrides, *settings.overrides], settings, out)
        else:
            summary = trl_backend.run(cfg, progress=lambda step, total, _logs: tick("GRPO", step, total))
        tick("GRPO", total_steps, total_steps)
        notes.extend(f"train: {note}" for note in summary.notes)
        timings["GRPO"] = time.perf_counter() - t

        t = time.perf_counter()
        tick("curves", 0, 1)
        note = (
            f"training rewards sample at temperature {cfg.rollout.temperature:g} (exploration); the held-out "
            f"before/after numbers sample at {settings.eval_temperature:g}: the two differ on purpose"
        )
        pngs = plot_curves([summary.metrics_path], out / "curves", names=["demo"], smoothing=0.6, note=note)
        tick("curves", 1, 1)
        timings["curves"] = time.perf_counter() - t

        t = time.perf_counter()
        after = evaluate(
            str(summary.final_model_dir),
            out_dir=out / "eval" / "after",
            max_new_tokens=max_new_tokens,
            on_progress=lambda _name, done, total: tick("eval after", done, total),
            **eval_kwargs,
        )
        timings["eval after"] = time.perf_counter() - t
    finally:
        torch.set_num_threads(threads_before)

    from vlmrl.train.metrics import read_metrics

    rows = read_metrics(summary.metrics_path)
    window = max(1, min(5, len(rows) // 2))
    reward_key = "critic/score/mean" if settings.backend == "verl" else "reward_mean"
    step_time_key = "timing_s/step" if settings.backend == "verl" else "step_time_s"
    rows = [r if "data" not in r else {"step": r.get("step"), **r["data"]} for r in rows]
    rewards = [r[reward_key] for r in rows if reward_key in r]
    train = {
        "backend": settings.backend,
        "steps": summary.global_step,
        "reward_first": sum(rewards[:window]) / window if rewards else None,
        "reward_last": sum(rewards[-window:]) / window if rewards else None,
        "window": window,
        "lr": cfg.algorithm.lr,  # the config's, after the family's demo settings and the user's overrides
        "family_overrides": list(tiny.DEMO_OVERRIDES),
        "mean_step_time_s": sum(r.get(step_time_key, 0.0) for r in rows) / max(len(rows), 1),
    }
    artifacts = {
        "tiny model": str(model_dir),
        "train parquet": str(data_dir / "train.parquet"),
        "held-out parquet": str(data_dir / "test.parquet"),
        "warmed model": str(policy_dir),
        "metrics.jsonl": str(summary.metrics_path),
        "checkpoints": ", ".join(summary.checkpoints) or "(none)",
        "trained model": str(summary.final_model_dir),
        **{f"curve {Path(p).stem}": str(p) for p in pngs},
        "eval before": str(before.results_path),
        "eval after": str(after.results_path),
    }
    result = DemoResult(
        summary_path=out / "demo_summary.json",
        artifacts=artifacts,
        before=_eval_metrics(before, "demo_test"),
        after=_eval_metrics(after, "demo_test"),
        train=train,
        timings_s={k: round(v, 2) for k, v in timings.items()},
        notes=notes,
    )
    write_json_atomic(
        result.summary_path,
        {
            "backend": settings.backend,
            "steps": summary.global_step,
            "settings": {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in vars(settings).items()},
            "before": result.before,
            "after": result.after,
            "train": train,
            "timings_s": result.timings_s,
            "artifacts": artifacts,
            "notes": notes,
            "data": {
                split: {"kept": r.kept, "rejected": sum(r.rejected.values())} for split, r in reports.items()
            },
        },
    )
    return result
