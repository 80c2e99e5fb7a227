"""Multimodal benchmarks through lmms-eval 0.3.5: chat template, command, run, results parsing.

The template appends the reasoning instruction to every user turn (the seed's approach); the
parser turns lmms-eval's `<date>_results.json` into our result format with MME labelled right.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.eval.benchmarks import LMMS, benchmarks, registry
from vlmrl.eval.results import write_result
from vlmrl.utils.io import write_text_atomic

LMMS_EVAL_VERSION = "0.3.5"
INSTALL_HINT = (
    f"pip install 'lmms-eval=={LMMS_EVAL_VERSION}' vllm  "
    "(0.3.5 is the last release where `--model vllm --model_args chat_template=...` works)"
)
# The lmms-eval tasks, their columns and metric keys are declared in `vlmrl.eval.benchmarks` (lmms-eval
# 0.3.5 tasks/*/<task>.yaml, utils.py).
DEFAULT_TASKS = tuple(b.name for b in benchmarks(LMMS))
JUDGED_TASKS = frozenset(b.name for b in benchmarks(LMMS) if b.judged)


# Qwen2.5-VL's chat format, with the instruction appended to the text of each user turn only.
# lmms-eval's vllm model sends content as a list (text part first, then image_url parts).
_TEMPLATE = (
    "{%- set reasoning_instruction = INSTRUCTION -%}"
    "{%- set image_count = namespace(value=0) -%}"
    "{%- set video_count = namespace(value=0) -%}"
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nSYSTEM<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or part['type'] == 'image_url' or 'image' in part -%}"
    "{%- set image_count.value = image_count.value + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Picture ' ~ image_count.value ~ ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}"
    "{%- set video_count.value = video_count.value + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Video ' ~ video_count.value ~ ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in part -%}"
    "{{- part['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- if message['role'] == 'user' -%}{{- SEPARATOR + reasoning_instruction -}}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def _jinja_literal(text: str) -> str:
    # Jinja string literals take Python escapes; a JSON string is a valid one.
    return json.dumps(text, ensure_ascii=False)


def chat_template(
    instruction: str, *, separator: str = " ", system: str = "You are a helpful assistant."
) -> str:
    """The Jinja chat template text (Qwen2.5-VL format) with `instruction` after each user turn.

    The default separator (one space) matches how training prompts join question and instruction
    (`vlmrl.data.prompt.prompt_text`).
    """
    return (
        _TEMPLATE.replace("INSTRUCTION", _jinja_literal(instruction))
        .replace("SEPARATOR", _jinja_literal(separator))
        .replace("SYSTEM", system.replace("\\", "\\\\").replace("'", "\\'"))
    )


def write_chat_template(
    path: str | os.PathLike[str],
    instruction: str | None = None,
    *,
    separator: str = " ",
    system: str = "You are a helpful assistant.",
) -> Path:
    """Write the template file passed to lmms-eval as `chat_template=`; default: the training instruction."""
    if instruction is None:
        instruction = default_instruction()
    return write_text_atomic(path, chat_template(instruction, separator=separator, system=system))


def default_instruction() -> str:
    """The reasoning instruction used in training (`vlmrl.data.prompt.DEFAULT_INSTRUCTION`)."""
    from vlmrl.data.prompt import DEFAULT_INSTRUCTION

    return DEFAULT_INSTRUCTION


def build_lmms_command(
    model: str,
    tasks: Sequence[str],
    chat_template_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    batch_size: int = 64,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
    limit: int | None = None,
    extra_model_args: dict[str, Any] | None = None,
    python: str | None = None,
) -> list[str]:
    """The lmms-eval 0.3.5 command line (vLLM engine, our chat template, samples logged)."""
    if not tasks:
        raise UserError("no lmms-eval tasks given; e.g. --tasks " + ",".join(DEFAULT_TASKS))
    model_args: dict[str, Any] = {
        "model_version": model,
        "chat_template": str(chat_template_path),
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
    }
    if max_model_len is not None:
        model_args["max_model_len"] = max_model_len
    model_args.update(extra_model_args or {})
    for key, value in model_args.items():
        # lmms-eval splits --model_args on commas and the first '='; neither can appear in a value.
        if "," in str(value):
            raise UserError(f"lmms-eval model arg {key}={value!r} contains a comma; rename the path")
    cmd = [
        python or sys.executable,
        "-m",
        "lmms_eval",
        "--model",
        "vllm",
        "--model_args",
        ",".join(f"{k}={v}" for k, v in model_args.items()),
        "--tasks",
        ",".join(tasks),
        "--batch_size",
        str(batch_size),
        "--output_path",
        str(output_path),
        "--log_samples",
        "--log_samples_suffix",
        "vllm",
    ]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    return cmd


def lmms_eval_version() -> str | None:
    """The installed lmms-eval version, or None when it is not importable."""
    if importlib.util.find_spec("lmms_eval") is None:
        return None
    for dist in ("lmms_eval", "lmms-eval"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def check_judge_env(tasks: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
    """Problems with the GPT-judge variables for MathVista/MathVerse (empty when fine or not needed)."""
    env = dict(os.environ if env is None else env)
    judged = [t for t in tasks if t in JUDGED_TASKS]
    if not judged:
        return []
    problems = []
    api_type = env.get("API_TYPE", "openai")
    if api_type == "openai":
        if not env.get("OPENAI_API_KEY"):
            problems.append(
                f"{', '.join(judged)} are scored by a GPT judge: set OPENAI_API_KEY (any non-empty value for "
                "a local judge) and, for a local judge, OPENAI_API_URL=http://HOST:PORT/v1/chat/completions "
                "with the judge served as `gpt-3.5-turbo` (docs/evaluation.md)"
            )
        url = env.get("OPENAI_API_URL")
        if url and not url.rstrip("/").endswith("/chat/completions"):
            problems.append(f"OPENAI_API_URL={url} must be the full .../v1/chat/completions URL")
    elif api_type == "azure":
        missing = [k for k in ("AZURE_ENDPOINT", "AZURE_API_KEY") if not env.get(k)]
        if missing:
            problems.append(f"API_TYPE=azure needs {', '.join(missing)}")
    else:
        problems.append(f"API_TYPE={api_type!r}: lmms-eval 0.3.5 knows `openai` and `azure`")
    return problems


JUDGE_MODEL = "gpt-3.5-turbo"  # tasks/mathvista|mathverse/*.yaml metadata.gpt_eval_model_name in 0.3.5


def probe_judge(tasks: Sequence[str], env: dict[str, str] | None = None, timeout_s: float = 5.0) -> list[str]:
    """For a judge at OPENAI_API_URL (not api.openai.com): is it up, and does it serve `gpt-3.5-turbo`?

    Worth asking before a long run: MathVerse's judge client retries a failing call ~10^7 times.
    """
    env = dict(os.environ if env is None else env)
    url = env.get("OPENAI_API_URL", "")
    if not any(t in JUDGED_TASKS for t in tasks) or not url or "api.openai.com" in url:
        return []
    import httpx

    base = url.rstrip("/")
    base = base[: -len("/chat/completions")] if base.endswith("/chat/completions") else base
    try:
        response = httpx.get(
            f"{base}/models",
            headers={"Authorization": f"Bearer {env.get('OPENAI_API_KEY', '')}"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        return [f"the judge at OPENAI_API_URL={url} is unreachable ({type(exc).__name__}); start it first"]
    if response.status_code != 200:
        return []  # not every server lists models; the run will tell
    try:
        ids = [m.get("id") for m in response.json().get("data", [])]
    except (ValueError, AttributeError):
        return []
    if ids and JUDGE_MODEL not in ids:
        return [
            f"the judge at {base} serves {ids}, but lmms-eval 0.3.5 asks for {JUDGE_MODEL!r}: "
            f"serve it with --served-model-name {JUDGE_MODEL}"
        ]
    return []


def find_results_json(output_path: str | os.PathLike[str]) -> Path:
    """The newest `*_results.json` lmms-eval wrote under `output_path` (it adds a model subdir)."""
    root = Path(output_path)
    if root.is_file():
        return root
    found = sorted(root.rglob("*_results.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UserError(f"{root}: no lmms-eval *_results.json here; did the lmms-eval run finish?")
    return found[-1]


def parse_lmms_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read lmms-eval's results JSON into {"model", "scores", "lmms_eval", "notes"}.

    `scores` uses our columns (each task's `Benchmark.columns`); every other metric of every task is kept
    under `lmms_eval[task]` so nothing is lost.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{p}: cannot read lmms-eval results JSON ({exc})") from exc
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict):
        raise UserError(f"{p}: no `results` object; is this an lmms-eval *_results.json?")
    scores: dict[str, float | None] = {}
    raw: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for task, metrics in results.items():
        if not isinstance(metrics, dict):
            continue
        raw[task] = {
            key.split(",")[0]: value
            for key, value in metrics.items()
            if "," in key and "_stderr" not in key.split(",")[0]
        }
        bench = registry().get(task)
        for tm in bench.columns if bench is not None and bench.harness == LMMS else ():
            key = f"{tm.metric},none"
            if key not in metrics:
                notes.append(f"{p}: results.{task} has no {key!r}; {tm.key} left empty")
                continue
            value = metrics[key]
            if value is None or isinstance(value, str):
                # MathVista/MathVerse return None when accuracy is 0 (often: every judge call failed).
                notes.append(
                    f"{p}: results.{task}.{key} is {value!r} (lmms-eval reports None for 0% accuracy, "
                    "which usually means the GPT judge was unreachable); left empty"
                )
                scores[tm.key] = None
                continue
            scores[tm.key] = float(value) * tm.scale
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    model = _model_from_args(str(config.get("model_args", ""))) or str(doc.get("model_name") or "")
    return {"model": model, "scores": scores, "lmms_eval": raw, "notes": notes, "source": str(p)}


def _model_from_args(model_args: str) -> str:
    for part in model_args.split(","):
        key, _, value = part.partition("=")
        if key.strip() in ("model_version", "pretrained", "model"):
            return value.strip()
    return ""


@dataclass
class MMRun:
    """What `evaluate_mm` did: the command, whether it ran, and the parsed scores."""

    command: list[str]
    chat_template: Path
    output_path: Path
    ran: bool
    result_path: Path | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def command_line(self) -> str:
        return shlex.join(self.command)


class LmmsEvalNotInstalled(UserError):
    """lmms-eval is missing or the wrong version; carries the command to run once it is installed."""

    def __init__(self, message: str, run: MMRun):
        super().__init__(message)
        self.run = run


def evaluate_mm(
    model: str,
    tasks: Sequence[str] = DEFAULT_TASKS,
    out_dir: str | os.PathLike[str] = "eval_mm",
    *,
    model_name: str | None = None,
    instruction: str | None = None,
    separator: str = " ",
    batch_size: int = 64,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    check_judge: bool = True,
    on_output: Callable[[str], None] | None = None,
) -> MMRun:
    """Write the template, build and (when lmms-eval 0.3.5 is installed) run lmms-eval, parse results.

    Raises `LmmsEvalNotInstalled` (with `.run.command`) when lmms-eval is missing; `dry_run` only
    prepares the template and command. Results land in `out_dir/results.json` (our format).
    """
    unknown = [t for t in tasks if t not in DEFAULT_TASKS]
    out = Path(out_dir)
    template = write_chat_template(out / "chat_template.jinja", instruction, separator=separator)
    lmms_out = out / "lmms_eval"
    cmd = build_lmms_command(
        model,
        tasks,
        template.resolve(),
        lmms_out.resolve(),
        batch_size=batch_size,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        limit=limit,
    )
    run = MMRun(cmd, template, lmms_out, ran=False)
    if unknown:
        run.notes.append(f"tasks without a result column (kept under lmms_eval only): {unknown}")
    run.notes += [b.notes for b in benchmarks(LMMS) if b.name in tasks and b.notes]
    if dry_run:
        return run
    version = lmms_eval_version()
    if version is None:
        raise LmmsEvalNotInstalled(f"lmms-eval is not installed; install it with: {INSTALL_HINT}", run)
    if version != LMMS_EVAL_VERSION:
        raise LmmsEvalNotInstalled(
            f"lmms-eval {version} is installed but this command targets {LMMS_EVAL_VERSION} "
            f"(`--model vllm` with chat_template= changed after 0.3.5); install it with: {INSTALL_HINT}",
            run,
        )
    if check_judge:
        problems = check_judge_env(tasks) or probe_judge(tasks)
        if problems:
            raise UserError("; ".join(problems))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        if on_output is not None:
            on_output(line.rstrip("\n"))
    code = proc.wait()
    if code != 0:
        raise UserError(
            f"lmms-eval exited with code {code}; last lines:\n{''.join(tail)}\ncommand: {run.command_line}"
        )
    run.ran = True
    run.result_path = find_results_json(lmms_out)
    parsed = parse_lmms_results(run.result_path)
    run.scores = parsed["scores"]
    run.notes += parsed["notes"]
    write_result(
        out / "results.json",
        model_name or model,
        run.scores,
        lmms_eval={
            "results_json": str(run.result_path),
            "command": run.command_line,
            "metrics": parsed["lmms_eval"],
        },
    )
    return run
