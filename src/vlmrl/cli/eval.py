"""`vlmrl eval`: text benchmarks and lmms-eval multimodal benchmarks (`vlmrl.eval.benchmarks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vlmrl.cli._common import (
    Command,
    GpuMemoryUtilization,
    MaxModelLen,
    ModelLabel,
    TensorParallelSize,
    console,
    data_option,
    deprecated_alias,
    err_console,
    named_paths,
    new_group,
    prefer,
    served_model_name_option,
    stage_bars,
    verifier_name_option,
    verifier_url_option,
)
from vlmrl.errors import UserError
from vlmrl.eval.benchmarks import LMMS, TEXT
from vlmrl.eval.benchmarks import benchmarks as declared


def register(app: typer.Typer) -> None:
    group = new_group(
        f"Evaluate a checkpoint: `eval text` ({', '.join(b.header for b in declared(TEXT))}; Pass@1 over "
        "n samples, graded on the final answer as the field grades it, or by the training reward), `eval mm` "
        f"(lmms-eval: {', '.join(b.label for b in declared(LMMS))}), `eval seed` (both halves as the seed ran "
        "them, in one command, with its published rows) and `eval audit` (rule verdicts versus an LLM judge)."
    )

    @group.command("text", cls=Command)
    def text(
        model: str = typer.Option(
            ...,
            "--model",
            help="Checkpoint dir or hub id (hf, vllm), or an OpenAI-compatible server URL (openai).",
        ),
        benchmarks: str = typer.Option(
            "",
            "--benchmarks",
            "-b",
            help="Comma-separated registry names: "
            + ", ".join(f"{b.name} ({b.title}{': ' + b.notes if b.notes else ''})" for b in declared(TEXT))
            + ".",
        ),
        rows: list[str] = typer.Option(
            None, "--rows", help="NAME=FILE.parquet in our row schema (e.g. a held-out split); repeatable."
        ),
        data: list[str] = data_option("registry benchmark"),
        backend: str = typer.Option(
            "auto",
            "--backend",
            help="openai | vllm | hf; auto = openai for URLs, else vllm when installed, else hf.",
        ),
        out_dir: Path = typer.Option(
            Path("eval/text"),
            "--out-dir",
            "-o",
            help="Samples, metrics and results.json go here; re-runs resume.",
        ),
        n: int = typer.Option(
            8, "--n", help="Samples per problem (the seed: 8). Pass@1 = mean accuracy over them."
        ),
        temperature: float = typer.Option(0.6, "--temperature", help="Sampling temperature (the seed: 0.6)."),
        top_p: float = typer.Option(
            1.0, "--top-p", help="Nucleus sampling; 1.0 = off. Always sent explicitly."
        ),
        top_k: int = typer.Option(
            None,
            "--top-k",
            help="Top-k sampling; -1 = off (the default). openai: not part of the OpenAI schema, so sent "
            "only when given, or to vLLM/SGLang servers.",
        ),
        max_new_tokens: int = typer.Option(
            8192, "--max-new-tokens", help="Response budget per sample (tokens)."
        ),
        repetition_penalty: float = typer.Option(
            None,
            "--repetition-penalty",
            help="1.0 = off (the default). openai: sent only when given, or to vLLM/SGLang servers.",
        ),
        seed: int = typer.Option(0, "--seed", help="Sampling seed."),
        instruction: str = typer.Option(
            None,
            "--instruction",
            help="Reasoning instruction appended to registry questions (default: the training one; '' = none).",
        ),
        limit: int = typer.Option(
            None, "--limit", help="Only the first N problems of each benchmark (smoke tests)."
        ),
        model_name: ModelLabel = None,
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Discard samples made with other settings."
        ),
        grader: str = typer.Option(
            "final-answer",
            "--grader",
            help="final-answer (default): the field's protocol (R1-Evaluation, lighteval, lmms-eval) -- the "
            "final answer anywhere in the response (last \\boxed{}, else the last answer-like statement; "
            "option letters), checked by the reward's rules, no format gate. reward: the training reward "
            "as training scores it (a right answer outside <think>/<answer> scores 0). The format rate is "
            "reported either way.",
        ),
        verifier_url: str = verifier_url_option(),
        verifier_name: str = verifier_name_option(),
        audit_sample: int = typer.Option(
            200,
            "--audit-sample",
            help="With a verifier: rule verdicts per benchmark (half right, half wrong) also put to it, the "
            "agreement counted (`vlmrl eval audit`); 0 = none.",
        ),
        verifier_model: str = deprecated_alias("--verifier-served-model-name", "--verifier-model"),
        served_model_name: str = served_model_name_option(
            "openai: the name the server serves the model under (default: its only model)."
        ),
        concurrency: int = typer.Option(32, "--concurrency", help="openai: requests in flight at once."),
        max_retries: int = typer.Option(
            5, "--max-retries", help="openai: retries on connection errors, timeouts, 429, 5xx."
        ),
        request_timeout: float = typer.Option(
            3600.0, "--request-timeout", help="openai: seconds to wait for one response before retrying."
        ),
        tensor_parallel_size: TensorParallelSize = 1,
        gpu_memory_utilization: GpuMemoryUtilization = 0.85,
        max_model_len: MaxModelLen = None,
        enforce_eager: bool = typer.Option(
            False, "--enforce-eager", help="vllm: no graph capture / compilation (CPU, quick start-up)."
        ),
        skip_mm_profiling: bool = typer.Option(
            False,
            "--skip-mm-profiling",
            help="vllm: skip profiling the vision encoder at start-up (much faster on a CPU; its memory "
            "is then not reserved, so leave headroom).",
        ),
        dtype: str = typer.Option(
            "auto", "--dtype", help="vllm, hf: weights dtype (auto, bfloat16, float32)."
        ),
        batch_size: int = typer.Option(8, "--batch-size", help="hf: sequences per generate call."),
        device: str = typer.Option(
            None, "--device", help="hf: cpu, cuda, cuda:1 (default: cuda if available)."
        ),
    ) -> None:
        """Generate n samples per problem, grade them (--grader: the field's final-answer protocol, or the
        training reward), write per-sample jsonl, metrics (Pass@1, pass@k, format rate, lengths),
        results.json and a summary table. Resumable; re-grading under another --grader reuses samples."""
        from vlmrl.eval.generation import backend_options, choose_backend
        from vlmrl.eval.grading import GRADERS, check_grader
        from vlmrl.eval.text import evaluate

        check_grader(grader)
        names = [b.strip() for b in benchmarks.split(",") if b.strip()]
        row_files = named_paths(rows, "--rows")
        kind = choose_backend(model, backend)
        options = backend_options(
            kind,
            dict(
                served_model_name=served_model_name,
                concurrency=concurrency,
                max_retries=max_retries,
                timeout_s=request_timeout,
                tensor_parallel_size=tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=max_model_len,
                seed=seed,
                dtype=dtype,
                enforce_eager=enforce_eager,
                skip_mm_profiling=skip_mm_profiling,
                batch_size=batch_size,
                device=device,
            ),
        )
        verifier_name = prefer(
            verifier_name, verifier_model, "--verifier-model", "--verifier-served-model-name"
        )
        reward_kwargs = {
            k: v for k, v in {"verifier_url": verifier_url, "verifier_model": verifier_name}.items() if v
        }
        common = dict(
            backend=kind,
            backend_options=options,
            out_dir=out_dir,
            n=n,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            repetition_penalty=repetition_penalty,
            seed=seed,
            instruction=instruction,
            limit=limit,
            reward_kwargs=reward_kwargs,
            grader=grader,
            audit_sample=audit_sample,
            model_name=model_name,
            overwrite=overwrite,
        )
        err_console.print(
            f"backend [bold]{kind}[/], n={n}, temperature={temperature}, top_p={top_p}, "
            f"top_k={'off' if top_k is None else top_k}, "
            f"max_new_tokens={max_new_tokens}, grader {grader}",
            highlight=False,
        )
        with stage_bars(err_console) as (progress, on_progress):
            result = evaluate(
                model,
                names,
                rows_or_parquet=row_files or None,
                data_paths=named_paths(data, "--data"),
                **common,
                on_progress=on_progress,
            )

        table = Table(title=f"{result.model}: {out_dir} (graded by {grader})")
        for col in (
            "benchmark",
            "problems",
            "n",
            "Pass@1",
            f"pass@{n}",
            "format",
            "trunc.",
            "length",
            "new/old",
        ):
            table.add_column(col, justify="left" if col == "benchmark" else "right", no_wrap=True)
        for note in result.notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False)
        for name, r in result.benchmarks.items():
            m = r.metrics
            length = m.get("response_length", {}).get("mean")
            pass_n = m.get("pass@" + str(m["n"]))
            table.add_row(
                name,
                str(m["num_problems"]),
                str(m["n"]),
                f"{m['pass@1']:.1f}",
                "—" if pass_n is None else f"{pass_n:.1f}",
                f"{m['format_rate']:.1f}",
                f"{m['truncated_rate']:.1f}",
                "—" if length is None else f"{length:.0f}",
                f"{r.generated}/{r.reused}",
            )
        console.print(table)
        console.print(
            f"Pass@1 graded by {grader}: {GRADERS[grader]}. Rates in %; format = the training format "
            "gate's pass rate; length = mean response tokens; new/old = samples generated now / found from "
            "before",
            highlight=False,
        )
        for name, r in result.benchmarks.items():
            audit = r.metrics.get("audit")
            if audit:
                m = audit["matrix"]
                agreement = "—" if audit["agreement"] is None else f"{audit['agreement']:.1f}%"
                console.print(
                    f"{name}: rule vs judge on {sum(audit['sampled'].values())} rule verdicts: agreement "
                    f"{agreement} of {audit['judged']} judged (rule right/judge incorrect "
                    f"{m['rule_right_judge_incorrect']}, rule wrong/judge correct {m['rule_wrong_judge_correct']}, "
                    f"judge failed {audit['judge_failed']}); disagreements: {audit['file']}",
                    highlight=False,
                    soft_wrap=True,
                )
        console.print(f"results: {result.results_path}\nsummary: {result.summary_path}", soft_wrap=True)

    @group.command("mm", cls=Command)
    def mm(
        model: str = typer.Option(
            None, "--model", help="Checkpoint dir or hub id, loaded by lmms-eval's vLLM engine."
        ),
        tasks: str = typer.Option(
            ",".join(b.name for b in declared(LMMS)),
            "--tasks",
            help="Comma-separated lmms-eval tasks (the seed's four by default).",
        ),
        out_dir: Path = typer.Option(
            Path("eval/mm"), "--out-dir", "-o", help="Template, lmms-eval output, results.json."
        ),
        model_name: ModelLabel = None,
        instruction: str = typer.Option(
            None, "--instruction", help="Instruction appended to each user turn (default: the training one)."
        ),
        data: list[str] = data_option("lmms-eval task", " (in its hub layout)"),
        lmms_python: str = typer.Option(
            None,
            "--lmms-python",
            help="Interpreter (or venv dir) with lmms-eval; default $VLMRL_LMMS_PYTHON, then .venv-lmms.",
        ),
        setup: bool = typer.Option(
            False,
            "--setup",
            help="Create the lmms-eval venv (--lmms-env) sharing this environment, then exit.",
        ),
        lmms_env: Path = typer.Option(
            Path(".venv-lmms"), "--lmms-env", help="Where --setup creates the lmms-eval venv."
        ),
        batch_size: int = typer.Option(
            64, "--batch-size", help="lmms-eval --batch_size (prompts per vLLM call)."
        ),
        tensor_parallel_size: TensorParallelSize = 1,
        gpu_memory_utilization: GpuMemoryUtilization = 0.85,
        max_model_len: MaxModelLen = None,
        max_new_tokens: int = typer.Option(
            None,
            "--max-new-tokens",
            help="lmms-eval's model max_new_tokens; it generates max(this, the task's cap). 16 keeps MME's cap.",
        ),
        model_arg: list[str] = typer.Option(
            None,
            "--model-arg",
            help="KEY=VALUE added to lmms-eval's --model_args (vLLM engine args; repeatable).",
        ),
        reasoning_tags: str = typer.Option(
            None,
            "--reasoning-tags",
            help="lmms-eval --reasoning_tags: blocks removed before scoring (default <think>; `none` scores "
            "the whole response, as lmms-eval 0.3.5 did).",
        ),
        limit: int = typer.Option(None, "--limit", help="lmms-eval --limit: first N documents per task."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Write the template and print the command only."
        ),
        no_judge_check: bool = typer.Option(
            False, "--no-judge-check", help="Run even if the MathVista/MathVerse judge variables look unset."
        ),
    ) -> None:
        """Run lmms-eval 0.7.3 with a chat template that appends the reasoning instruction to each user turn,
        then parse its results into results.json (MME cognition/perception labelled right).

        lmms-eval runs in its own venv: create it once with `vlmrl eval mm --setup`. MathVista and MathVerse
        are scored by an LLM judge: set OPENAI_API_KEY, and for a local judge OPENAI_API_URL=http://HOST:PORT/v1
        and MODEL_VERSION=<served name> (see docs/evaluation.md)."""
        from vlmrl.eval.mm import INSTALL_HINT, LmmsEvalNotInstalled, evaluate_mm

        if setup:
            from vlmrl.eval.lmms_env import setup_env

            info = setup_env(
                lmms_env, on_output=lambda line: err_console.print(line, markup=False, highlight=False)
            )
            console.print(f"lmms-eval {info.version} in {info.python} (vLLM: {info.vllm or 'not installed'})")
            return
        if not model:
            raise UserError("--model is required (a checkpoint dir or hub id), unless --setup")
        task_list = [t.strip() for t in tasks.split(",") if t.strip()]
        try:
            run = evaluate_mm(
                model,
                task_list,
                out_dir,
                model_name=model_name,
                instruction=instruction,
                lmms_python=lmms_python,
                data=named_paths(data, "--data"),
                batch_size=batch_size,
                tensor_parallel_size=tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=max_model_len,
                max_new_tokens=max_new_tokens,
                model_args=named_paths(model_arg, "--model-arg"),
                reasoning_tags=reasoning_tags,
                limit=limit,
                dry_run=dry_run,
                check_judge=not no_judge_check,
                on_output=lambda line: err_console.print(line, markup=False, highlight=False),
            )
        except LmmsEvalNotInstalled as exc:
            err_console.print(f"[bold red]lmms-eval not runnable:[/] {exc}", highlight=False, soft_wrap=True)
            err_console.print(f"chat template written to {exc.run.chat_template}; once installed, run:")
            typer.echo(exc.run.command_line)
            raise typer.Exit(3) from None
        for note in run.notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
        if not run.ran:
            err_console.print(f"chat template: {run.chat_template}\ncommand ({INSTALL_HINT}):")
            typer.echo(run.command_line)
            return
        table = Table(title=f"{model_name or model}: lmms-eval")
        table.add_column("column")
        table.add_column("score", justify="right")
        for column, value in run.scores.items():
            table.add_row(column, "—" if value is None else f"{value:.1f}")
        console.print(table)
        counted = [
            f"{task} {c['judged']}/{c['failed']}/{c['not_needed']}"
            for task, c in run.judge.items()
            if c.get("samples") is not None
        ]
        if counted:
            console.print(
                "judge calls per task (judged/failed/not needed): " + ", ".join(counted),
                highlight=False,
                soft_wrap=True,
            )
        console.print(f"results: {Path(out_dir) / 'results.json'}   lmms-eval: {run.result_path}")

    @group.command(
        "seed", cls=Command, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )
    def seed(
        ctx: typer.Context,
        model: str = typer.Option(
            ..., "--model", help="The checkpoint (HF directory or hub id) to evaluate."
        ),
        model_name: ModelLabel = None,
        out_dir: Path = typer.Option(
            Path("eval/seed"),
            "--out-dir",
            "-o",
            help="Everything goes here: text/, mm/, logs/, seed_state.json, results.json, seed_tables.md. "
            "Re-running resumes: a finished benchmark is not run again.",
        ),
        benchmarks: str = typer.Option(
            "all",
            "--benchmarks",
            "-b",
            help="Comma-separated subset of aime24, math500, gpqa_diamond, mathverse_testmini, "
            "mathvista_testmini_format, mme, mmstar; `all` (default), `text` or `mm`.",
        ),
        data: list[str] = data_option(
            "benchmark",
            " (text: a file in the hub's columns; multimodal: a directory in the dataset's hub layout)",
        ),
        judge_model: str = typer.Option(
            None,
            "--judge-model",
            help="MathVerse/MathVista judge to serve here with vLLM on 127.0.0.1 (a directory or hub id).",
        ),
        judge_url: str = typer.Option(
            None,
            "--judge-url",
            help="Or a judge already served at this OpenAI-compatible URL (http://HOST:PORT/v1).",
        ),
        judge_served_model_name: str = typer.Option(
            None,
            "--judge-served-model-name",
            help="The judge's served name (default: the directory's name, or the one model --judge-url lists).",
        ),
        judge_max_model_len: int = typer.Option(
            8192,
            "--judge-max-model-len",
            help="vLLM context length of a judge served here (lmms-eval asks it for up to 1024 tokens).",
        ),
        text_url: str = typer.Option(
            None,
            "--text-url",
            help="A server already serving --model for the text half (default: vLLM started here on 127.0.0.1).",
        ),
        served_model_name: str = served_model_name_option("The name --text-url serves the model under."),
        n: int = typer.Option(8, "--n", help="Text: samples per problem (the seed: 8)."),
        temperature: float = typer.Option(
            0.6, "--temperature", help="Text: sampling temperature (the seed: 0.6)."
        ),
        top_p: float = typer.Option(1.0, "--top-p", help="Text: nucleus sampling (1.0 = off)."),
        max_new_tokens: int = typer.Option(8192, "--max-new-tokens", help="Text: response budget (tokens)."),
        grader: str = typer.Option(
            "final-answer",
            "--grader",
            help="Text: final-answer (the field's protocol, default) or reward (the training reward); see "
            "`vlmrl eval text --help`.",
        ),
        instruction: str = typer.Option(
            None,
            "--instruction",
            help="Reasoning instruction after each question (default: the training one).",
        ),
        max_model_len: MaxModelLen = None,
        dtype: str = typer.Option("auto", "--dtype", help="vLLM weights dtype for the servers started here."),
        tensor_parallel_size: TensorParallelSize = 1,
        gpu_memory_utilization: GpuMemoryUtilization = 0.85,
        model_arg: list[str] = typer.Option(
            None, "--model-arg", help="KEY=VALUE for lmms-eval's vLLM engine (repeatable; see `eval mm`)."
        ),
        lmms_python: str = typer.Option(
            None,
            "--lmms-python",
            help="Interpreter (or venv) with lmms-eval (default: as `eval mm` finds it).",
        ),
        mm_batch_size: int = typer.Option(64, "--mm-batch-size", help="lmms-eval --batch_size."),
        ready_timeout: float = typer.Option(
            900.0, "--ready-timeout", help="Seconds to wait for a vLLM server started here to be ready."
        ),
        limit: int = typer.Option(
            None, "--limit", help="Only the first N problems of each benchmark (smoke runs)."
        ),
        published: bool = typer.Option(
            True,
            "--published/--no-published",
            help="Show the seed's published rows beside this checkpoint's.",
        ),
    ) -> None:
        """The seed's whole evaluation of one checkpoint: AIME 2024, MATH-500, GPQA-Diamond (Pass@1 over
        8 samples at temperature 0.6) and MathVerse, MathVista, MME, MMStar (lmms-eval), one results.json,
        and the seed's two tables with this checkpoint beside the published rows.

        Starts vLLM for the text half and for the judge (--judge-model) on 127.0.0.1 and stops them when
        done; arguments after `--` go to those vLLM servers. Example:
        vlmrl eval seed --model /ckpt/rl_text/hf --model-name "RL text" --judge-model /models/Qwen2.5-72B-Instruct
        """
        from vlmrl.eval.seed import MM_TASKS, SEED_BENCHMARKS, TEXT_BENCHMARKS, SeedSettings, run_seed
        from vlmrl.report.table import load_rows, seed_tables
        from vlmrl.utils.io import write_text_atomic

        aliases = {"all": SEED_BENCHMARKS, "text": TEXT_BENCHMARKS, "mm": MM_TASKS}
        names: list[str] = []
        for item in (b.strip() for b in benchmarks.split(",")):
            for name in aliases.get(item, (item,) if item else ()):
                if name not in names:
                    names.append(name)
        settings = SeedSettings(
            model=model,
            out_dir=out_dir,
            model_name=model_name,
            benchmarks=names,
            data=named_paths(data, "--data"),
            text_url=text_url,
            served_model_name=served_model_name,
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            grader=grader,
            instruction=instruction,
            judge_model=judge_model,
            judge_url=judge_url,
            judge_served_model_name=judge_served_model_name,
            judge_max_model_len=judge_max_model_len,
            max_model_len=max_model_len,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            server_args=list(ctx.args),
            model_args=named_paths(model_arg, "--model-arg"),
            lmms_python=lmms_python,
            mm_batch_size=mm_batch_size,
            ready_timeout_s=ready_timeout,
            limit=limit,
        )
        with stage_bars(err_console) as (progress, on_progress):

            def on_event(line: str) -> None:
                progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

            result = run_seed(settings, on_event=on_event, on_progress=on_progress)
        for note in result.notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
        rows, _ = load_rows([result.results_path])
        tables = seed_tables(rows, published=published)
        typer.echo(tables, nl=False)
        write_text_atomic(Path(out_dir) / "seed_tables.md", tables)
        ran = ", ".join(result.ran) or "none"
        reused = ", ".join(result.reused) or "none"
        timing = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings_s.items()) or "nothing run"
        err_console.print(
            f"ran: {ran}; finished earlier: {reused}; time: {timing}\n"
            + "".join(f"started and stopped: {line}\n" for line in result.servers)
            + f"results: {result.results_path}\ntables: {Path(out_dir) / 'seed_tables.md'}",
            highlight=False,
            soft_wrap=True,
        )

    @group.command("audit", cls=Command)
    def audit(
        scored: list[str] = typer.Argument(
            ...,
            help="Scored samples: `vlmrl reward score` output (jsonl), an `eval text` samples.jsonl, or an "
            "`eval text` --out-dir (every <benchmark>/samples.jsonl in it).",
        ),
        verifier_url: str = verifier_url_option(),
        verifier_name: str = verifier_name_option(),
        sample: int = typer.Option(
            200, "--sample", help="Rule verdicts to ask the judge about: half right, half wrong (at most)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the sample."),
        timeout_s: float = typer.Option(30.0, "--timeout-s", help="Seconds to wait for one judge answer."),
        show: int = typer.Option(20, "--show", help="Disagreeing samples printed (all go to --out)."),
        out: Path = typer.Option(
            None, "--out", "-o", help="Write the counts and every disagreeing sample here (JSON)."
        ),
    ) -> None:
        """Ask an LLM judge about a sample of the rule check's verdicts, right and wrong alike, and print the
        agreement matrix (rule right/wrong x judge correct/incorrect/failed) with the disagreeing samples.

        The judge is asked through the reward's verifier client (xVerify's prompt). Example:
        vlmrl eval audit eval/base/text --verifier-url http://127.0.0.1:8888/v1 --verifier-served-model-name xVerify-0.5B-I
        """
        from vlmrl.eval.audit import audit_samples, judge_settings, read_scored, write_audit

        settings = judge_settings(verifier_url, verifier_name, verifier_timeout_s=timeout_s)
        samples, total = read_scored(scored)
        err_console.print(
            f"{total} scored records, {len(samples)} decided by the rules; judge {settings.model} at {settings.url}",
            highlight=False,
            soft_wrap=True,
        )
        if not samples:
            raise UserError(
                f"{', '.join(scored)}: no verdict decided by the rules (verdict `rule`) among {total} records; "
                "nothing to audit"
            )
        with Progress(
            TextColumn("judge"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console
        ) as progress:
            task = progress.add_task("judge", total=min(sample, len(samples)))
            result = audit_samples(
                samples,
                settings,
                n=sample,
                seed=seed,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        _print_audit(result, show)
        if out is not None:
            write_audit(out, result, scored)
            console.print(f"wrote {out}")

    app.add_typer(group, name="eval")


def _print_audit(result: Any, show: int) -> None:
    """The agreement matrix, the agreement rate, the judge's failures and the disagreeing samples."""
    m = result.matrix
    table = Table(title=f"rule vs judge ({result.judge['model']})")
    for col in ("rule verdict", "judge: correct", "judge: incorrect", "judge failed", "sampled / decided"):
        table.add_column(col, justify="left" if col == "rule verdict" else "right", no_wrap=True)
    for side in ("right", "wrong"):
        table.add_row(
            f"rule: {side}",
            str(m[f"rule_{side}_judge_correct"]),
            str(m[f"rule_{side}_judge_incorrect"]),
            str(m[f"rule_{side}_judge_failed"]),
            f"{result.sampled[f'rule_{side}']} / {result.population[f'rule_{side}']}",
        )
    console.print(table)
    agreement = result.agreement
    failed = m["rule_right_judge_failed"] + m["rule_wrong_judge_failed"]
    console.print(
        f"agreement: {'—' if agreement is None else f'{agreement:.1f}%'} of {result.judged} judged; "
        f"{len(result.disagreements)} disagree; judge failed on {failed} (not counted either way)",
        highlight=False,
    )
    for line in result.failures:
        err_console.print(f"[yellow]judge failed:[/] {line}", highlight=False, soft_wrap=True)
    if result.disagreements and show > 0:
        dis = Table(title="disagreeing samples")
        for col in ("source", "rule", "judge", "extracted", "answer"):
            dis.add_column(col, overflow="fold")
        for d in result.disagreements[:show]:
            dis.add_row(d["source"], d["rule"], d["judge"], d["pred"][:80], d["answer"][:80])
        console.print(dis)
        if len(result.disagreements) > show:
            console.print(f"... and {len(result.disagreements) - show} more (--show, --out)")
