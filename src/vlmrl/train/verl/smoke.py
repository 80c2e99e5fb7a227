"""`vlmrl train CONFIG --smoke`: a user's veRL config, scaled down, through veRL's real trainer here.

Before GPU hours are spent: the first rows of the config's own train/val files (real images and all),
the tiny model unless another is given, rollout n 2, short responses, 2 steps + checkpoint, then one
resumed step, then veRL's model merger and a generation from the merged model. On a machine without
a GPU veRL runs on the CPU (vlmrl.train.verl.cpu). Each stage ends `ok` or with what failed and the
fix when it is known; `smoke_summary.json` holds the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.train.verl.launch import diagnose, gpu_available, launch_here
from vlmrl.utils.io import atomic_path, write_json_atomic

STAGES = ("launch", "train", "checkpoint", "resume", "export")
SUMMARY_FILE = "smoke_summary.json"

# stage, status ("running" | "ok" | an error): drives the CLI's display (library code never prints).
Progress = Callable[[str, str], None]


@dataclass
class SmokeSettings:
    config: Path
    out_dir: Path = Path("outputs/smoke")
    overrides: list[str] = field(default_factory=list)
    smoke_model: str | None = None  # None = the built-in tiny model of the config's model family
    train_rows: int = 4
    val_rows: int = 2
    steps: int = 2
    response_length: int = 32
    #: Raw veRL overrides appended to both launches (tests use it for their own reward function).
    verl_args: list[str] = field(default_factory=list)
    #: Raw veRL overrides for the resumed launch only; None = `verl_args`.
    resume_verl_args: list[str] | None = None
    timeout_s: float = 1200.0
    device: str = "auto"  # auto = a GPU when torch sees one, else the CPU


@dataclass
class SmokeResult:
    ok: bool
    steps: int
    stages: dict[str, str]
    summary_path: Path
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "steps": self.steps, "stages": dict(self.stages), **self.details}


def smoke_family(model_path: str) -> str:
    """The family of the tiny model a smoke run of a config with `model.path` uses: the model's own
    (config.json's `model_type` when it is a local directory, else its name: `Qwen/Qwen3-VL-8B-Instruct`
    -> qwen3_vl), a stand-in for a family without a tiny model (a MoE -> its dense family), Qwen2.5-VL
    for a name that says nothing; a `UserError` naming the supported families for a local model of
    another family."""
    from vlmrl.tiny import tiny_family_for

    try:
        return tiny_family_for(model_path)
    except ValueError as exc:
        raise UserError(f"{exc}; or pass --smoke-model DIR") from None


def first_rows(sources: list[str], rows: int, out_path: Path) -> int:
    """Write the first `rows` rows of `sources` (in order) to `out_path`; returns how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, taken = [], 0
    for source in sources:
        if taken >= rows:
            break
        path = Path(source)
        if not path.is_file():
            raise UserError(f"{path}: data file not found (from the config's data.*_files)")
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=rows - taken):
            tables.append(pa.Table.from_batches([batch]))
            taken += batch.num_rows
            break
    if not tables:
        raise UserError(f"{', '.join(sources) or '(no files)'}: no rows to smoke-test with")
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp)
    return taken


def scaled_overrides(
    cfg, *, model_path: str, data_dir: Path, run_dir: Path, steps: int, settings
) -> list[str]:
    """The experiment-config overrides that scale `cfg` down to a smoke run (user keys kept otherwise)."""
    response = settings.response_length
    out = [
        f"model.path={model_path}",
        f"data.train_files=[{data_dir / 'train.parquet'}]",
        f"data.val_files=[{data_dir / 'val.parquet'}]" if cfg.data.val_files else "data.val_files=[]",
        "data.train_batch_size=2",
        "data.val_batch_size=2",
        "data.dataloader_num_workers=0",
        "algorithm.ppo_mini_batch_size=2",
        "algorithm.ppo_micro_batch_size_per_gpu=2",
        "algorithm.lr_warmup_steps=0",
        "rollout.n=2",
        f"rollout.max_response_length={response}",
        "rollout.val_n=1",
        f"reward.overlong.len={min(cfg.reward.overlong.len, response // 4)}",
        f"trainer.total_training_steps={steps}",
        f"trainer.save_freq={steps}",
        f"trainer.test_freq={steps if cfg.data.val_files else -1}",
        "trainer.val_before_train=false",
        "trainer.logger=[console,jsonl]",
        "trainer.experiment_name=smoke",
        f"trainer.output_dir={run_dir}",
        "trainer.resume_mode=auto",
        "trainer.max_actor_ckpt_to_keep=2",
        "trainer.nnodes=1",
        "trainer.n_gpus_per_node=1",
        "trainer.ray_address=null",
    ]
    # Dynamic sampling is off in every smoke run: a handful of rows cannot refill the groups it evicts.
    # With an untrained model (the tiny one, or a `--smoke-model` fresh from transformers) every
    # response fails the format gate, every group scores alike and is evicted, and veRL 0.9.1's sync
    # sampler refills two prompts per eviction forever: the first step never ends.
    out.append("algorithm.filter_groups.enable=false")
    return out


def generate_from(model_dir: Path, prompt: str = "What is 2+3?", max_new_tokens: int = 8) -> str:
    """Load a Hugging Face vision-language model directory (any supported family: the class its
    config.json names) and generate from one chat prompt (greedy)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    if new.numel() == 0:
        raise UserError(f"{model_dir}: the exported model generated no tokens")
    return processor.decode(new, skip_special_tokens=False)


def run_smoke(settings: SmokeSettings, progress: Progress | None = None) -> SmokeResult:
    """Run the smoke stages into `settings.out_dir`; never raises for a failed stage (it is reported)."""
    from vlmrl.train.config import load_config
    from vlmrl.train.verl.export import export, latest_checkpoint

    def mark(stage: str, status: str) -> None:
        stages[stage] = status
        if progress is not None:
            progress(stage, status)

    out = Path(settings.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    user_cfg = load_config(settings.config, settings.overrides)
    if user_cfg.backend != "verl":
        raise UserError(
            f"{settings.config}: --smoke runs veRL configs (backend: verl), got {user_cfg.backend}"
        )
    device = settings.device
    if device == "auto":
        device = "cuda" if gpu_available() else "cpu"
    on_cpu = device == "cpu"
    stages = {stage: "not run" for stage in STAGES}
    details: dict[str, Any] = {"device": device, "config": str(settings.config), "notes": []}
    timings: dict[str, float] = {}

    data_dir = out / "data"
    rows = {"train": first_rows(user_cfg.data.train_files, settings.train_rows, data_dir / "train.parquet")}
    if user_cfg.data.val_files:
        rows["val"] = first_rows(user_cfg.data.val_files, settings.val_rows, data_dir / "val.parquet")
    details["rows"] = rows
    if settings.smoke_model:
        model_path = settings.smoke_model
    else:
        family = smoke_family(user_cfg.model.path)
        from vlmrl.tiny import SUPPORTED, family_module, model_family

        stood_for = model_family(user_cfg.model.path)
        if stood_for is None:
            details["notes"].append(
                f"{user_cfg.model.path}: no family known from its name or config.json; "
                f"smoke-testing with the tiny {family} (--smoke-model DIR picks another model)"
            )
        elif stood_for != family:
            details["notes"].append(
                f"{SUPPORTED[stood_for].label} has no tiny model of its own; the tiny {family} stands in"
            )
        details["family"] = family
        model_path = str(family_module(family).build_tiny_vlm(out / f"tiny_model_{family}", seed=0))
    details["model"] = model_path
    run_dir = out / "run"
    common = dict(model_path=model_path, data_dir=data_dir, run_dir=run_dir, settings=settings)
    smoke = scaled_overrides(user_cfg, steps=settings.steps, **common)
    if user_cfg.algorithm.filter_groups.enable:
        details["notes"].append(
            "algorithm.filter_groups off: a smoke run's few rows cannot refill the groups dynamic sampling "
            "evicts (an untrained model scores every group alike, and veRL would refill forever)"
        )
    cfg = load_config(
        settings.config,
        [*settings.overrides, *smoke, f"model.dtype={'float32' if on_cpu else user_cfg.model.dtype}"],
    )

    # launch + train: the first run, `steps` steps and a checkpoint at the last one
    mark("launch", "running")
    t = time.perf_counter()
    try:
        code, log, metrics = launch_here(
            cfg,
            on_cpu,
            settings.verl_args,
            run_dir / "train_metrics.jsonl",
            out / "logs" / "train.log",
            settings.timeout_s,
        )
    except UserError as exc:
        mark("launch", f"veRL refused the scaled config: {exc}")
        return _finish(out, stages, details, timings, 0)
    timings["train"] = round(time.perf_counter() - t, 1)
    trained = sorted({int(r["step"]) for r in metrics if r.get("step") is not None})
    details["train_metrics"] = str(run_dir / "train_metrics.jsonl")
    if not trained:
        mark("launch", "timed out before the first step" if code is None else diagnose(log))
        return _finish(out, stages, details, timings, 0)
    mark("launch", "ok")
    if trained[-1] < settings.steps or code not in (0, None):
        mark("train", f"stopped after step {trained[-1]} of {settings.steps}: " + diagnose(log))
    else:
        mark("train", "ok")
    details["first_run_steps"] = trained

    ckpt_root = run_dir / "checkpoints"
    saved = latest_checkpoint(ckpt_root)
    if saved is not None and saved.name == f"global_step_{settings.steps}" and (saved / "actor").is_dir():
        mark("checkpoint", "ok")
    else:
        mark("checkpoint", f"no checkpoint for step {settings.steps} under {ckpt_root}")
        return _finish(out, stages, details, timings, trained[-1])

    # resume: the same config one step longer; veRL must pick the checkpoint up and run only that step
    mark("resume", "running")
    t = time.perf_counter()
    resume_cfg = load_config(
        settings.config,
        [
            *settings.overrides,
            *scaled_overrides(user_cfg, steps=settings.steps + 1, **common),
            f"trainer.save_freq={settings.steps}",
            f"model.dtype={'float32' if on_cpu else user_cfg.model.dtype}",
        ],
    )
    resume_args = settings.verl_args if settings.resume_verl_args is None else settings.resume_verl_args
    code, log, resumed = launch_here(
        resume_cfg,
        on_cpu,
        resume_args,
        run_dir / "resume_metrics.jsonl",
        out / "logs" / "resume.log",
        settings.timeout_s,
    )
    timings["resume"] = round(time.perf_counter() - t, 1)
    resumed_steps = sorted({int(r["step"]) for r in resumed if r.get("step") is not None})
    details["resumed_steps"] = resumed_steps
    details["resume_metrics"] = str(run_dir / "resume_metrics.jsonl")
    if resumed_steps == [settings.steps + 1]:
        mark("resume", "ok")
    elif not resumed_steps:
        mark("resume", "timed out" if code is None else diagnose(log))
    else:
        mark(
            "resume",
            f"ran steps {resumed_steps}, expected only step {settings.steps + 1} after the checkpoint",
        )
    total_steps = max(trained + resumed_steps)

    # export: veRL's model merger on the newest checkpoint, then a generation from the merged model
    mark("export", "running")
    t = time.perf_counter()
    hf_dir = out / "hf_model"
    try:
        if hf_dir.exists():
            import shutil

            shutil.rmtree(hf_dir)
        export(ckpt_root, hf_dir)
        details["exported_model"] = str(hf_dir)
        details["generated"] = generate_from(hf_dir)
        mark("export", "ok")
    except Exception as exc:  # reported as the stage's result: the summary must still be written
        mark("export", f"{type(exc).__name__}: {exc}".splitlines()[0][:400])
    timings["export"] = round(time.perf_counter() - t, 1)
    return _finish(out, stages, details, timings, total_steps)


def _finish(out: Path, stages, details, timings, steps: int) -> SmokeResult:
    details["timings_s"] = timings
    ok = all(status == "ok" for status in stages.values())
    result = SmokeResult(ok=ok, steps=steps, stages=stages, summary_path=out / SUMMARY_FILE, details=details)
    write_json_atomic(result.summary_path, result.as_dict())
    return result
