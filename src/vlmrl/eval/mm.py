"""Multimodal benchmarks through lmms-eval 0.7.3: chat template, command, local task copies, run, results.

The template appends the reasoning instruction to every user turn (the seed's approach); lmms-eval
runs in its own environment (`vlmrl.eval.lmms_env`), called by interpreter path; the parser turns
lmms-eval's `<date>_results.json` into our result format with MME labelled right.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmrl.data.prompt import INSTRUCTION_SEPARATOR, VISION_MARKERS
from vlmrl.errors import UserError
from vlmrl.eval.benchmarks import LMMS, benchmarks, registry
from vlmrl.eval.lmms_env import LMMS_EVAL_VERSION, SETUP_HINT, LmmsInfo, find_lmms_python, probe
from vlmrl.eval.results import load_json, write_result
from vlmrl.utils import openai_api
from vlmrl.utils.io import write_text_atomic

INSTALL_HINT = f"lmms-eval {LMMS_EVAL_VERSION} runs in its own venv: {SETUP_HINT}"
# The lmms-eval tasks, their columns and metric keys are declared in `vlmrl.eval.benchmarks` (lmms-eval
# 0.7.3 tasks/*/<task>.yaml, utils.py).
DEFAULT_TASKS = tuple(b.name for b in benchmarks(LMMS))
JUDGED_TASKS = frozenset(b.name for b in benchmarks(LMMS) if b.judged)
LOCAL_TASK_PREFIX = "vlmrl_local_"


# Qwen2.5-VL's chat format, with the instruction appended to the text of each user turn only.
# lmms-eval's vllm model sends content as a list of text and image_url parts; vLLM renders them as
# {'type': 'text'} / {'type': 'image'} parts.
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
    "{{- '" + VISION_MARKERS + "' -}}"
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
    instruction: str,
    *,
    separator: str = INSTRUCTION_SEPARATOR,
    system: str = "You are a helpful assistant.",
) -> str:
    """The Jinja chat template text (Qwen2.5-VL format) with `instruction` after each user turn.

    The default separator (a blank line) is the one training prompts put between question and
    instruction (`vlmrl.data.prompt.prompt_text`).
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
    separator: str = INSTRUCTION_SEPARATOR,
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


def _model_args_text(model_args: Mapping[str, Any]) -> str:
    parts = []
    for key, value in model_args.items():
        text = str(value)
        # lmms-eval 0.7 splits --model_args on commas outside quotes and braces (JSON values may
        # hold commas); a comma in a plain value such as a path would split it.
        if "," in text and not (text.startswith("{") or text.startswith(("'", '"'))):
            raise UserError(f"lmms-eval model arg {key}={value!r} contains a comma; rename the path")
        parts.append(f"{key}={text}")
    return ",".join(parts)


def build_lmms_command(
    model: str,
    tasks: Sequence[str],
    chat_template_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    python: str,
    batch_size: int = 64,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
    max_new_tokens: int | None = None,
    limit: int | None = None,
    include_path: str | os.PathLike[str] | None = None,
    reasoning_tags: str | None = None,
    extra_model_args: Mapping[str, Any] | None = None,
) -> list[str]:
    """The lmms-eval 0.7.3 command line (vLLM engine, our chat template, samples logged)."""
    if not tasks:
        raise UserError("no lmms-eval tasks given; e.g. --tasks " + ",".join(DEFAULT_TASKS))
    model_args: dict[str, Any] = {
        "model": model,
        "chat_template": str(chat_template_path),
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
    }
    if max_model_len is not None:
        model_args["max_model_len"] = max_model_len
    if max_new_tokens is not None:
        model_args["max_new_tokens"] = max_new_tokens
    model_args.update(extra_model_args or {})
    cmd = [
        python,
        "-m",
        "lmms_eval",
        "--model",
        "vllm",
        "--model_args",
        _model_args_text(model_args),
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
    if include_path is not None:
        cmd += ["--include_path", str(include_path)]
    if reasoning_tags is not None:
        # lmms-eval 0.7 removes <think>...</think> blocks before scoring unless this is `none`.
        cmd += ["--reasoning_tags", reasoning_tags]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    return cmd


def task_yaml(tasks_dir: Path, task: str) -> Path:
    """The installed task's own yaml: `<tasks_dir>/<family>/<task>.yaml`."""
    found = sorted(tasks_dir.glob(f"*/{task}.yaml")) or sorted(tasks_dir.glob(f"**/{task}.yaml"))
    if not found:
        raise UserError(
            f"--data {task}=...: lmms-eval {LMMS_EVAL_VERSION} has no {task}.yaml under {tasks_dir}; "
            "a local copy works for tasks defined in their own yaml (e.g. " + ", ".join(DEFAULT_TASKS) + ")"
        )
    return found[0]


# The judge-scored tasks' `process_results`, wrapped by `lmms_judge_hooks` (copied beside the task
# yamls as HOOKS_MODULE) so each sample records what its judge call did.
JUDGE_HOOKS = {
    "mathverse_testmini": "mathverse_process_results",
    "mathvista_testmini_format": "mathvista_process_results",
}
HOOKS_MODULE = "vlmrl_judge_hooks"
JUDGE_KEY = "vlmrl_judge"  # the per-sample key the hooks add (lmms_judge_hooks.KEY)
TASK_PREFIX = "vlmrl_"


def write_local_tasks(
    data: Mapping[str, str | os.PathLike[str]], tasks_dir: Path, out_dir: Path
) -> dict[str, str]:
    """For each `task=PATH`, a task yaml reading the local copy at PATH; returns {task: its name}
    (`write_task_yamls` for exactly the tasks of `data`)."""
    return write_task_yamls(list(data), data, tasks_dir, out_dir)


def write_task_yamls(
    tasks: Sequence[str],
    data: Mapping[str, str | os.PathLike[str]],
    tasks_dir: Path,
    out_dir: Path,
) -> dict[str, str]:
    """Task yamls for the tasks that need one; returns {task: the name to run it under}.

    A task gets one when `data` has a local copy of it (`task=PATH`, PATH a directory in the dataset's
    hub layout, e.g. a `huggingface-cli download` snapshot) and when a judge scores it (`JUDGE_HOOKS`:
    its `process_results` is wrapped so each sample records its judge call). The yaml includes the
    installed task's yaml, so prompts, generation settings and metrics are lmms-eval's own; only
    the dataset location and the recording change. lmms-eval indexes its own tasks first, so the
    copy needs its own name (`vlmrl_local_<task>` for a local copy, else `vlmrl_<task>`);
    `task_alias` carries the original one into the results file.
    """
    names = {}
    for task in tasks:
        path = data.get(task)
        hook = JUDGE_HOOKS.get(task)
        if path is None and hook is None:
            continue
        lines = [
            f"include: {json.dumps(str(task_yaml(tasks_dir, task)))}",
            f"task_alias: {json.dumps(task)}",
        ]
        prefix = TASK_PREFIX
        if path is not None:
            local = Path(path).expanduser().absolute()
            if not local.is_dir():
                raise UserError(
                    f"--data {task}={path}: not a directory; give the dataset's hub layout "
                    "(the folder `huggingface-cli download --repo-type dataset ...` makes)"
                )
            prefix = LOCAL_TASK_PREFIX
            lines += [f"dataset_path: {json.dumps(str(local))}", "dataset_kwargs: {}"]  # {}: no token
        if hook is not None:
            lines.append(f"process_results: !function {HOOKS_MODULE}.{hook}")
        name = prefix + re.sub(r"\W", "_", task)
        lines.insert(1, f"task: {json.dumps(name)}")
        # One `key: JSON value` per line: JSON scalars are YAML, and the !function tag is lmms-eval's.
        write_text_atomic(out_dir / f"{name}.yaml", "\n".join(lines) + "\n")
        names[task] = name
    if any(t in JUDGE_HOOKS for t in names):
        hooks = Path(__file__).with_name("lmms_judge_hooks.py")
        write_text_atomic(out_dir / f"{HOOKS_MODULE}.py", hooks.read_text(encoding="utf-8"))
    return names


API_TYPES = ("openai", "async_openai", "azure", "async_azure", "bedrock", "local", "dummy")
DEFAULT_JUDGE_MODEL = "gpt-4o-2024-11-20"  # MathVista/MathVerse `MODEL_VERSION` default in 0.7.3


def check_judge_env(tasks: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Problems with the judge variables for MathVista/MathVerse (empty when fine or not needed)."""
    env = dict(os.environ if env is None else env)
    judged = [t for t in tasks if t in JUDGED_TASKS]
    if not judged:
        return []
    problems = []
    api_type = env.get("API_TYPE", "openai").lower()
    if api_type in ("openai", "async_openai"):
        if not env.get("OPENAI_API_KEY"):
            problems.append(
                f"{', '.join(judged)} are scored by an LLM judge: set OPENAI_API_KEY (any non-empty value for "
                "a local judge) and, for a local judge, OPENAI_API_URL=http://HOST:PORT/v1 and "
                "MODEL_VERSION=<its served model name> (docs/evaluation.md)"
            )
        url = env.get("OPENAI_API_URL")
        if url and url.rstrip("/").endswith("/chat/completions"):
            problems.append(
                f"OPENAI_API_URL={url}: lmms-eval {LMMS_EVAL_VERSION} wants the base URL "
                f"({url.rstrip('/')[: -len('/chat/completions')]}); the client appends /chat/completions"
            )
    elif api_type in ("azure", "async_azure"):
        missing = [k for k in ("AZURE_ENDPOINT", "AZURE_API_KEY") if not env.get(k)]
        if missing:
            problems.append(f"API_TYPE={api_type} needs {', '.join(missing)}")
    elif api_type not in API_TYPES:
        problems.append(f"API_TYPE={api_type!r}: lmms-eval {LMMS_EVAL_VERSION} knows {', '.join(API_TYPES)}")
    return problems


def probe_judge(
    tasks: Sequence[str], env: Mapping[str, str] | None = None, timeout_s: float = 5.0
) -> list[str]:
    """For a judge at OPENAI_API_URL (not api.openai.com): is it up, and does it serve MODEL_VERSION?

    Worth asking before a long run: every judge call that fails scores the sample 0 after retries.
    """
    env = dict(os.environ if env is None else env)
    url = env.get("OPENAI_API_URL", "")
    if not any(t in JUDGED_TASKS for t in tasks) or not url or "api.openai.com" in url:
        return []
    if env.get("API_TYPE", "openai").lower() not in ("openai", "async_openai"):
        return []
    import httpx

    base = openai_api.base_url(url)
    model = env.get("MODEL_VERSION", DEFAULT_JUDGE_MODEL)
    try:
        ids = openai_api.list_models(url, api_key=env.get("OPENAI_API_KEY") or None, timeout_s=timeout_s)
    except httpx.TimeoutException:
        return [
            f"the judge at OPENAI_API_URL={url} did not answer {base}/models within {timeout_s:g} s; start "
            "it first, or pass --no-judge-check if it is only slow"
        ]
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 401:
            return [
                f"the judge at OPENAI_API_URL={url} refused OPENAI_API_KEY (HTTP 401): set it to the key "
                "the judge server was started with"
            ]
        return []  # not every server lists models; the run will tell
    except httpx.HTTPError as exc:
        return [f"the judge at OPENAI_API_URL={url} is unreachable ({type(exc).__name__}); start it first"]
    except ValueError:
        return []
    if ids and model not in ids:
        how = "MODEL_VERSION" if "MODEL_VERSION" in env else f"MODEL_VERSION (unset: {DEFAULT_JUDGE_MODEL})"
        return [
            f"the judge at {base} serves {ids}, but {how} asks for {model!r}: set MODEL_VERSION to one of them"
        ]
    return []


def find_results_json(output_path: str | os.PathLike[str], newer_than: float | None = None) -> Path | None:
    """The newest `*_results.json` lmms-eval wrote under `output_path` (it adds a model subdir).

    With `newer_than` (a time.time()), only files written since count, and None means there is none.
    """
    root = Path(output_path)
    if root.is_file():
        return root
    found = sorted(root.rglob("*_results.json"), key=lambda p: p.stat().st_mtime)
    if newer_than is not None:
        found = [p for p in found if p.stat().st_mtime >= newer_than]
        return found[-1] if found else None
    if not found:
        raise UserError(f"{root}: no lmms-eval *_results.json here; did the lmms-eval run finish?")
    return found[-1]


def parse_lmms_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read lmms-eval's results JSON into {"model", "scores", "lmms_eval", "notes"} (`lmms_scores`)."""
    p = Path(path)
    return lmms_scores(load_json(p), p)


def lmms_scores(doc: Any, p: Path) -> dict[str, Any]:
    """lmms-eval's loaded results JSON (from file `p`) as {"model", "scores", "lmms_eval", "notes"}.

    `scores` uses our columns (each task's `Benchmark.columns`); every other metric of every task is kept
    under `lmms_eval[task]` so nothing is lost.
    """
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict):
        raise UserError(f"{p}: no `results` object; is this an lmms-eval *_results.json?")
    scores: dict[str, float | None] = {}
    raw: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for name, metrics in results.items():
        if not isinstance(metrics, dict):
            continue
        # A local copy (`--data`) runs under its own name and carries the original as its alias.
        alias = metrics.get("alias")
        task = name if name in registry() or not isinstance(alias, str) else alias.strip()
        raw[task] = {
            key.split(",")[0]: value
            for key, value in metrics.items()
            if "," in key and "_stderr" not in key.split(",")[0]
        }
        bench = registry().get(task)
        for tm in bench.columns if bench is not None and bench.harness == LMMS else ():
            key = f"{tm.metric},none"
            if key not in metrics:
                notes.append(f"{p}: results.{name} has no {key!r}; {tm.key} left empty")
                continue
            value = metrics[key]
            if value is None or isinstance(value, str):
                # MathVista returns None when accuracy is 0 (often: every judge call failed).
                notes.append(
                    f"{p}: results.{name}.{key} is {value!r} (lmms-eval reports None for 0% accuracy, "
                    "which usually means the judge was unreachable); left empty"
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


def judge_identity(env: Mapping[str, str]) -> dict[str, str]:
    """Which judge lmms-eval asked (API_TYPE, the URL for an OpenAI-style one, MODEL_VERSION)."""
    api_type = env.get("API_TYPE", "openai").lower()
    who = {"api_type": api_type, "judge_model": env.get("MODEL_VERSION", DEFAULT_JUDGE_MODEL)}
    if api_type in ("openai", "async_openai"):
        who["judge_url"] = env.get("OPENAI_API_URL", "https://api.openai.com/v1")
    return who


def _samples_file(root: Path, run_name: str, newer_than: float | None) -> Path | None:
    found = [
        p
        for p in sorted(root.rglob(f"*_samples_{run_name}.jsonl"), key=lambda p: p.stat().st_mtime)
        if newer_than is None or p.stat().st_mtime >= newer_than
    ]
    return found[-1] if found else None


def judge_counts(
    root: str | os.PathLike[str], task_names: Mapping[str, str], newer_than: float | None = None
) -> dict[str, dict[str, Any]]:
    """Per task, what the judge did for its samples: {"judged", "failed", "not_needed", "samples",
    "failures": [{"doc_id", "detail"}, ... first 5]}, read from lmms-eval's samples logs under `root`.

    Judge-scored tasks count the `vlmrl_judge` key `lmms_judge_hooks` adds to each sample; a
    sample without it counts as failed (its judge call was not recorded). Rule-scored tasks need no
    judge: every sample is `not_needed`. A task whose samples log is missing gets `samples: None`.
    """
    out: dict[str, dict[str, Any]] = {}
    for task, run_name in task_names.items():
        path = _samples_file(Path(root), run_name, newer_than)
        counts: dict[str, Any] = {"judged": 0, "failed": 0, "not_needed": 0, "samples": None}
        if path is None:
            out[task] = {**counts, "failures": [], "note": "no samples log: judge calls not counted"}
            continue
        failures = []
        samples = 0
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                sample = json.loads(line)
                samples += 1
                if task not in JUDGED_TASKS:
                    counts["not_needed"] += 1
                    continue
                record = sample.get(JUDGE_KEY)
                status = record.get("status") if isinstance(record, dict) else None
                if status in ("judged", "not_needed"):
                    counts[status] += 1
                    continue
                counts["failed"] += 1
                detail = record.get("detail", "") if isinstance(record, dict) else "judge call not recorded"
                if len(failures) < 5:
                    failures.append({"doc_id": sample.get("doc_id"), "detail": detail})
        counts["samples"] = samples
        out[task] = {**counts, "failures": failures, "samples_log": str(path)}
    return out


def judge_notes(judge: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per judge-scored task whose judge failed on some samples (or was not counted)."""
    notes = []
    for task, counts in judge.items():
        if task not in JUDGED_TASKS:
            continue
        if counts.get("samples") is None:
            notes.append(f"{task}: {counts.get('note', 'judge calls not counted')}")
        elif counts["failed"]:
            first = counts["failures"][0]["detail"] if counts.get("failures") else ""
            notes.append(
                f"{task}: the judge failed on {counts['failed']} of {counts['samples']} samples, which "
                f"lmms-eval scored 0 (first: {first})"
            )
    return notes


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
    task_names: dict[str, str] = field(default_factory=dict)  # task -> the name lmms-eval ran it as
    judge: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> `judge_counts` entry

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
    lmms_python: str | os.PathLike[str] | None = None,
    data: Mapping[str, str | os.PathLike[str]] | None = None,
    batch_size: int = 64,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
    max_new_tokens: int | None = None,
    model_args: Mapping[str, Any] | None = None,
    reasoning_tags: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    check_judge: bool = True,
    on_output: Callable[[str], None] | None = None,
) -> MMRun:
    """Write the template, build and run lmms-eval (in its own venv, see `lmms_env`), parse results.

    `data` maps tasks to local copies in their hub layout (`write_local_tasks`). Raises
    `LmmsEvalNotInstalled` (with `.run.command`) when no interpreter has lmms-eval 0.7.3; `dry_run`
    only prepares the template and command. Results land in `out_dir/results.json` (our format).
    """
    unknown = [t for t in tasks if t not in DEFAULT_TASKS]
    missing = [t for t in (data or {}) if t not in tasks]
    if missing:
        raise UserError(f"--data given for {missing}, which are not in --tasks {','.join(tasks)}")
    out = Path(out_dir)
    template = write_chat_template(out / "chat_template.jinja", instruction, separator=separator)
    lmms_out = (out / "lmms_eval").absolute()
    python = find_lmms_python(lmms_python)
    info = probe(python) if python is not None else None
    names: dict[str, str] = {}
    include = None
    if data and (info is None or info.tasks_dir is None):
        raise LmmsEvalNotInstalled(
            f"--data needs lmms-eval's task files and no lmms-eval was found; {SETUP_HINT}",
            MMRun([], template, lmms_out, ran=False),
        )
    usable = info is not None and info.tasks_dir is not None and info.version == LMMS_EVAL_VERSION
    if data or (usable and any(t in JUDGE_HOOKS for t in tasks)):
        assert info is not None and info.tasks_dir is not None
        include = (out / "lmms_tasks").absolute()
        names = write_task_yamls(tasks, data or {}, info.tasks_dir, include)
    run_tasks = [names.get(t, t) for t in tasks]
    cmd = build_lmms_command(
        model,
        run_tasks,
        template.absolute(),
        lmms_out,
        python=python or "python",
        batch_size=batch_size,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        max_new_tokens=max_new_tokens,
        limit=limit,
        include_path=include,
        reasoning_tags=reasoning_tags,
        extra_model_args=model_args,
    )
    run = MMRun(cmd, template, lmms_out, ran=False, task_names={t: names.get(t, t) for t in tasks})
    if unknown:
        run.notes.append(f"tasks without a result column (kept under lmms_eval only): {unknown}")
    run.notes += [b.notes for b in benchmarks(LMMS) if b.name in tasks and b.notes]
    if dry_run:
        return run
    _check_runnable(info, run, tasks)
    if check_judge:
        problems = check_judge_env(tasks) or probe_judge(tasks)
        if problems:
            raise UserError("; ".join(problems))
    started = time.time() - 1.0  # mtimes may be coarser than time.time()
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
    result_path = find_results_json(lmms_out, newer_than=started)
    if result_path is None:
        # lmms-eval 0.7 logs an error raised during evaluation and still exits 0.
        raise UserError(
            f"lmms-eval wrote no results file under {lmms_out}; last lines:\n{''.join(tail)}\n"
            f"command: {run.command_line}"
        )
    run.ran = True
    run.result_path = result_path
    parsed = parse_lmms_results(run.result_path)
    run.scores = parsed["scores"]
    run.notes += parsed["notes"]
    run.judge = judge_counts(result_path.parent, run.task_names, started)
    run.notes += judge_notes(run.judge)
    judge_env = dict(os.environ)
    write_result(
        out / "results.json",
        model_name or model,
        run.scores,
        lmms_eval={
            "version": LMMS_EVAL_VERSION,
            "results_json": str(run.result_path),
            "command": run.command_line,
            "metrics": parsed["lmms_eval"],
        },
        judge={
            task: {**counts, **judge_identity(judge_env)} if task in JUDGED_TASKS else counts
            for task, counts in run.judge.items()
        },
    )
    return run


def _check_runnable(info: LmmsInfo | None, run: MMRun, tasks: Sequence[str] = ()) -> None:
    if info is None or info.version is None:
        where = f" ({info.python} has no lmms_eval)" if info is not None else ""
        raise LmmsEvalNotInstalled(f"lmms-eval is not installed{where}; {INSTALL_HINT}", run)
    if info.version != LMMS_EVAL_VERSION:
        raise LmmsEvalNotInstalled(
            f"{info.python} has lmms-eval {info.version}, but vlmrl targets {LMMS_EVAL_VERSION} (its model "
            f"arguments, task metric keys and judge variables); {INSTALL_HINT}",
            run,
        )
    if info.vllm is None:
        raise LmmsEvalNotInstalled(
            f"{info.python} has lmms-eval but no vLLM, its engine here: install vllm into vlmrl's environment "
            "(shared with the lmms-eval venv) or into the venv, then retry",
            run,
        )
    lacking = info.missing_for(tasks)
    if lacking:
        what = "; ".join(f"{task} imports {', '.join(mods)}" for task, mods in lacking.items())
        raise LmmsEvalNotInstalled(
            f"{info.python} cannot run every task: {what}, which is not installed there (lmms-eval lists it only "
            f"in an extra); {SETUP_HINT} again to add it",
            run,
        )
