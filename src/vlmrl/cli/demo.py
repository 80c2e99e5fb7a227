"""`vlmrl demo`: the whole loop on the built-in tiny model, on CPU."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vlmrl.cli._common import Command, console


def _describe_model(path: Path, family: str) -> None:
    from vlmrl.tiny import SUPPORTED, family_module

    info = family_module(family).describe(path)
    table = Table(title=f"tiny offline {SUPPORTED[family].label}")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for key, value in info.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) and key != "seed" else str(value))
    console.print(table)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


HELP = (
    "Run data -> reward -> GRPO training -> curves -> evaluation on a tiny model, on CPU.\n\n"
    "Builds the tiny Qwen2.5-VL (or Qwen3-VL: --model-family qwen3_vl); synthesises text questions (the largest of three digits) and image "
    "questions (a PIL-drawn shape's colour) into veRL parquet with the data stage, the held-out split "
    "disjoint from the training one; warms the model up from a sloppy teacher (right format, half the "
    "answers wrong); evaluates the held-out split; trains GRPO with TRL and the real reward "
    "(configs/train/demo.yaml); draws reward, length, accuracy and format-rate curves; evaluates again; "
    "prints the before/after table (overall, text, image) and every artifact's path. "
    "About 2-3 minutes on 2 shared CPU cores.\n\n"
    "Extra key=value arguments override the training preset, e.g. `vlmrl demo rollout.n=4 algorithm.lr=1e-4`."
)


def register(app: typer.Typer) -> None:
    @app.command(
        "demo",
        cls=Command,
        help=HELP,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )
    def demo(
        ctx: typer.Context,
        out: Path = typer.Option(
            Path("outputs/demo"), "--out", help="Directory for every artifact of the run."
        ),
        config: Path = typer.Option(
            None, "--config", help="Training preset (default: configs/train/demo.yaml)."
        ),
        steps: int = typer.Option(None, "--steps", min=1, help="GRPO steps (default: the preset's, 40)."),
        train_size: int = typer.Option(256, "--train-size", min=2, help="Synthetic training questions."),
        eval_size: int = typer.Option(
            128, "--eval-size", min=1, help="Held-out questions evaluated before/after."
        ),
        model_size: str = typer.Option(
            "demo",
            "--model-size",
            help="Tiny-model size: `demo` (~0.8M parameters, learns the demo's tasks) or `tiny` (~220k, "
            "the tests' model).",
        ),
        model_family: str = typer.Option(
            "qwen2_5_vl",
            "--model-family",
            help="Tiny-model architecture: qwen2_5_vl (Qwen2.5-VL) or qwen3_vl (Qwen3-VL: 16-px patches, "
            "DeepStack, interleaved M-RoPE; its demo trains GRPO at lr 2.5e-4, half the preset's 5e-4, "
            "which one seed in three collapsed at; an algorithm.lr=... override still wins).",
        ),
        image_fraction: float = typer.Option(
            0.5, "--image-fraction", min=0.0, max=1.0, help="Share of image (shape-colour) questions."
        ),
        warmup_steps: int = typer.Option(
            400, "--warmup-steps", min=0, help="Supervised warm-up steps (batch 16) before GRPO (0 = skip)."
        ),
        warmup_slip: float = typer.Option(
            0.5,
            "--warmup-slip",
            min=0.0,
            max=1.0,
            help="Share of warm-up solutions with a wrong answer (the sloppy teacher GRPO improves on).",
        ),
        warmup_answer_weight: float = typer.Option(
            5.0,
            "--warmup-answer-weight",
            min=0.0,
            help="Weight of the answer's tokens in the warm-up loss, against 1 for the format's.",
        ),
        eval_samples: int = typer.Option(4, "--eval-samples", min=1, help="Samples per held-out question."),
        seed: int = typer.Option(0, "--seed", help="Seed for the tiny model, the data and training."),
        threads: int = typer.Option(
            1, "--threads", min=1, help="torch CPU threads (1 is fastest for the tiny model)."
        ),
        build_model_only: bool = typer.Option(
            False,
            "--build-model-only",
            help="Only build (or reuse) the tiny offline model (of --model-family) and describe it.",
        ),
        model_dir: Path = typer.Option(
            None,
            "--model-dir",
            help="Where the tiny model goes (default: OUT/tiny_model; with --build-model-only, $VLMRL_CACHE "
            "or ~/.cache/vlmrl).",
        ),
        force: bool = typer.Option(
            False, "--force", help="Rebuild the tiny model even if a cached copy exists (--build-model-only)."
        ),
        backend: str = typer.Option(
            "trl",
            "--backend",
            help="GRPO engine: trl (TRL's GRPOTrainer) or verl (veRL's own trainer, on the CPU here; "
            "16 steps unless --steps; a veRL start takes a minute or more).",
        ),
    ) -> None:
        """Run data -> reward -> GRPO training -> curves -> evaluation on a tiny model, on CPU."""
        from vlmrl.tiny import FAMILIES, SUPPORTED, family_module

        if model_family not in FAMILIES:
            raise typer.BadParameter(
                f"--model-family must be one of {', '.join(FAMILIES)}, got {model_family!r}"
            )
        if build_model_only:
            label = SUPPORTED[model_family].label
            with console.status(f"building the tiny {label} (tokenizer, model, processor)..."):
                path = family_module(model_family).build_tiny_vlm(
                    model_dir, seed=seed, force=force, size=model_size
                )
            _describe_model(path, model_family)
            return

        import datasets
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from transformers.utils import logging as hf_logging

        from vlmrl.demo.pipeline import PHASES, DemoSettings, run_demo

        settings = DemoSettings(
            out_dir=out,
            config=config,
            steps=steps,
            train_size=train_size,
            eval_size=eval_size,
            model_size=model_size,
            model_family=model_family,
            warmup_slip=warmup_slip,
            warmup_answer_weight=warmup_answer_weight,
            image_fraction=image_fraction,
            warmup_steps=warmup_steps,
            eval_samples=eval_samples,
            seed=seed,
            threads=threads,
            model_dir=model_dir,
            overrides=list(ctx.args),
            backend=backend,
        )
        if backend not in ("trl", "verl"):
            raise typer.BadParameter(f"--backend must be trl or verl, got {backend!r}")
        # Our bars and tables report progress; the libraries' own bars and notices would interleave with them.
        datasets.disable_progress_bars()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        columns = (
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bars:
            tasks = {phase: bars.add_task(phase, total=None, start=False) for phase in PHASES}

            def progress(phase: str, done: int, total: int) -> None:
                task = tasks[phase]
                bars.start_task(task)
                bars.update(task, completed=done, total=max(total, done, 1))

            result = run_demo(settings, progress)

        table = Table(title="vlmrl demo: held-out split, before and after GRPO")
        table.add_column("metric")
        table.add_column("before", justify="right")
        table.add_column("after", justify="right")
        graded = (
            "the training reward" if result.before.get("grader") == "reward" else result.before.get("grader")
        )
        for key, label in (("pass@1", f"pass@1 (%, graded by {graded})"), ("format_rate", "format rate (%)")):
            table.add_row(label, _fmt(result.before.get(key)), _fmt(result.after.get(key)))
        for kind in result.before.get("by_kind", {}):
            before, after = result.before["by_kind"][kind], result.after["by_kind"].get(kind, {})
            table.add_row(
                f"  pass@1, {kind} questions (%)", _fmt(before["pass@1"]), _fmt(after.get("pass@1"))
            )
        train = result.train
        table.add_row(
            f"train reward (mean of first / last {train['window']} steps)",
            _fmt(train["reward_first"], 3),
            _fmt(train["reward_last"], 3),
        )
        console.print(table)
        console.print(
            f"[dim]held-out numbers sample at temperature {settings.eval_temperature} (the usual evaluation "
            "setting); training rewards sample at the preset's rollout.temperature, so they read lower.[/dim]"
        )

        timing = Table(title="time per phase (s)")
        for phase in result.timings_s:
            timing.add_column(phase, justify="right")
        timing.add_row(*(f"{v:.1f}" for v in result.timings_s.values()))
        console.print(timing)

        where = Table(title="artifacts")
        where.add_column("what")
        where.add_column("path", overflow="fold")
        for key, value in result.artifacts.items():
            where.add_row(key, value)
        where.add_row("summary", str(result.summary_path))
        console.print(where)
        for note in result.notes:
            console.print(f"[dim]note: {note}[/dim]")
