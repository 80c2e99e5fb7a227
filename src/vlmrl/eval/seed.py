"""The seed's whole evaluation of one checkpoint in one call: text (AIME 2024, MATH-500, GPQA-Diamond;
Pass@1 over n=8 samples at temperature 0.6) and multimodal (MathVerse testmini, MathVista
testmini_format, MME, MMStar through lmms-eval), into one `results.json`.

It starts the servers it needs -- vLLM serving the checkpoint for the text half, vLLM serving the judge
for MathVerse/MathVista (`--judge-model`) -- on 127.0.0.1 only, and stops them when done; or it uses
the URLs it is given. A finished benchmark (same checkpoint, same settings) is not run again:
`seed_state.json` in the output directory records each one as it finishes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmrl.errors import UserError
from vlmrl.eval.benchmarks import registry
from vlmrl.eval.grading import DEFAULT_GRADER, check_grader
from vlmrl.eval.results import read_result, write_result
from vlmrl.utils.io import write_json_atomic

TEXT_BENCHMARKS = ("aime24", "math500", "gpqa_diamond")
MM_TASKS = ("mathverse_testmini", "mathvista_testmini_format", "mme", "mmstar")
SEED_BENCHMARKS = TEXT_BENCHMARKS + MM_TASKS
STATE_FILE = "seed_state.json"
# lmms-eval 0.7's vLLM model generates max(the task's cap, its own max_new_tokens). The seed ran
# lmms-eval 0.3.5, which took the task's cap: MME 16, MMStar none (1024), MathVerse/MathVista 4096
# (0.7.3's yamls say 16384, which wins over whatever is passed). So MME runs alone at 16 and the
# other three together at 1024.
MM_GROUPS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("mme",), 16),
    (("mmstar", "mathverse_testmini", "mathvista_testmini_format"), 1024),
)
JUDGE_KEY_DEFAULT = "local"  # lmms-eval's openai client wants a non-empty key; a loopback judge takes any

Event = Callable[[str], None]
Progress = Callable[[str, int, int], None]


@dataclass
class SeedSettings:
    """What `vlmrl eval seed` runs. `data` maps benchmark names to local copies (text: a file in the
    hub's columns; multimodal: a directory in the dataset's hub layout)."""

    model: str
    out_dir: Path
    model_name: str | None = None
    benchmarks: Sequence[str] = SEED_BENCHMARKS
    data: Mapping[str, str] = field(default_factory=dict)
    # text half
    text_url: str | None = None  # a server already serving `model`; else one is started here
    served_model_name: str | None = None
    n: int = 8
    temperature: float = 0.6
    top_p: float = 1.0
    max_new_tokens: int = 8192
    grader: str = DEFAULT_GRADER
    instruction: str | None = None
    concurrency: int = 32
    # judge for MathVerse / MathVista
    judge_model: str | None = None  # served here (vLLM on 127.0.0.1)
    judge_url: str | None = None  # or already served there (OpenAI-compatible base URL, .../v1)
    judge_served_model_name: str | None = None
    judge_api_key: str | None = None
    judge_max_model_len: int = 8192  # lmms-eval's judge asks for up to 1024 tokens after its prompt
    # engines
    max_model_len: int | None = None
    dtype: str = "auto"
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    server_args: Sequence[str] = ()  # extra `vllm serve` arguments for the servers started here
    model_args: Mapping[str, str] = field(default_factory=dict)  # lmms-eval's vLLM engine arguments
    lmms_python: str | None = None
    mm_batch_size: int = 64
    ready_timeout_s: float = 900.0
    limit: int | None = None

    @property
    def label(self) -> str:
        return self.model_name or self.model


@dataclass
class SeedResult:
    model: str
    out_dir: Path
    results_path: Path
    scores: dict[str, float | None]
    ran: list[str]  # benchmarks run by this call
    reused: list[str]  # benchmarks found finished from an earlier call
    servers: list[str]  # what this call started (and stopped)
    timings_s: dict[str, float]
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ checks


def check_settings(s: SeedSettings) -> None:
    """Bad input, each as one line naming it and what to do; raised before anything starts."""
    check_grader(s.grader)
    unknown = [b for b in s.benchmarks if b not in SEED_BENCHMARKS]
    if unknown:
        raise UserError(
            f"unknown benchmark {unknown[0]!r} in --benchmarks; the seed's are: {', '.join(SEED_BENCHMARKS)}"
        )
    if not s.benchmarks:
        raise UserError(f"--benchmarks is empty; the seed's are: {', '.join(SEED_BENCHMARKS)}")
    stray = [name for name in s.data if name not in s.benchmarks]
    if stray:
        raise UserError(
            f"--data {stray[0]}=...: {stray[0]!r} is not among the benchmarks run "
            f"({', '.join(s.benchmarks)}); add it to --benchmarks or drop the --data"
        )
    for name, path in s.data.items():
        if not Path(path).expanduser().exists():
            kind = "directory in the dataset's hub layout" if name in MM_TASKS else "file"
            raise UserError(f"--data {name}={path}: no such {kind}")
    if s.judge_model and s.judge_url:
        raise UserError("--judge-model and --judge-url both given: serve a judge here, or use one, not both")
    judged = [b for b in s.benchmarks if b in MM_TASKS and registry()[b].judged]
    if judged and not (s.judge_model or s.judge_url or os.environ.get("OPENAI_API_KEY")):
        raise UserError(
            f"{', '.join(judged)} are scored by an LLM judge and none is given: pass --judge-model DIR "
            "(served here on 127.0.0.1) or --judge-url http://HOST:PORT/v1, or leave them out with "
            "--benchmarks"
        )
    if s.n < 1:
        raise UserError(f"--n must be >= 1, got {s.n}")
    if s.text_url and not s.text_url.startswith(("http://", "https://")):
        raise UserError(
            f"--text-url {s.text_url!r}: an OpenAI-compatible URL starts with http:// or https://"
        )


def _check_lmms(s: SeedSettings, tasks: Sequence[str]) -> None:
    from vlmrl.eval.lmms_env import LMMS_EVAL_VERSION, SETUP_HINT, find_lmms_python, probe

    text_only = "or run only the text benchmarks with --benchmarks " + ",".join(TEXT_BENCHMARKS)
    try:
        python = find_lmms_python(s.lmms_python)
    except UserError as exc:
        raise UserError(f"{exc}; {text_only}") from exc
    info = probe(python) if python is not None else None
    if info is None or info.version is None:
        raise UserError(
            f"the multimodal benchmarks need lmms-eval {LMMS_EVAL_VERSION} and none was found: {SETUP_HINT} "
            f"(or pass --lmms-python), {text_only}"
        )
    if info.version != LMMS_EVAL_VERSION:
        raise UserError(
            f"{info.python} has lmms-eval {info.version}, vlmrl targets {LMMS_EVAL_VERSION}: {SETUP_HINT}"
        )
    if info.vllm is None:
        raise UserError(f"{info.python} has lmms-eval but no vLLM, its engine: install vLLM, then retry")
    lacking = info.missing_for(tasks)
    if lacking:
        task, modules = next(iter(lacking.items()))
        raise UserError(
            f"{info.python} cannot run {task}: it imports {', '.join(modules)}, not installed there; "
            f"{SETUP_HINT} again to add it, or leave {task} out with --benchmarks"
        )


def _require_vllm(what: str) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise UserError(
            f"{what} needs vLLM to serve it and vLLM is not installed here: install it, or start the "
            "server elsewhere and pass its URL (--text-url / --judge-url)"
        )


# ------------------------------------------------------------------ state


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _model_identity(model: str) -> Any:
    from vlmrl.eval.text import _model_fingerprint

    return [model, _model_fingerprint(model)]


def benchmark_key(s: SeedSettings, name: str) -> str:
    """What makes a finished benchmark reusable: the checkpoint, its data and the settings it ran with."""
    common = [_model_identity(s.model), name, s.data.get(name), s.limit]
    if name in TEXT_BENCHMARKS:
        settings = [s.n, s.temperature, s.top_p, s.max_new_tokens, s.grader, s.instruction]
    else:
        judge = [s.judge_model, s.judge_url, s.judge_served_model_name] if registry()[name].judged else []
        settings = [s.instruction, s.max_model_len, sorted(s.model_args.items()), judge]
    return _fingerprint([*common, settings])


def _read_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"benchmarks": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); delete it to run every benchmark again") from exc
    if not isinstance(state, dict) or not isinstance(state.get("benchmarks"), dict):
        raise UserError(f"{path}: not a vlmrl seed state file; delete it to run every benchmark again")
    return state


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _served(
    what: str,
    model: str,
    served_model_name: str | None,
    s: SeedSettings,
    log_path: Path,
    max_model_len: int,
    event: Event,
    started: list[str],
) -> Iterator[tuple[str, str]]:
    """vLLM serving `model` on 127.0.0.1 for the duration; yields (base URL …/v1, served name)."""
    from vlmrl.reward.verifier_service import serve_verifier

    _require_vllm(what)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    event(f"{what}: starting vLLM for {model} on 127.0.0.1 (log: {log_path})")
    last = [0.0]

    def waiting(seconds: float) -> None:
        if seconds - last[0] >= 30:
            last[0] = seconds
            event(f"{what}: waiting for vLLM to be ready ({seconds:.0f} s)")

    server, seconds = serve_verifier(
        model,
        host="127.0.0.1",
        port=_free_port(),
        served_model_name=served_model_name,
        log_path=log_path,
        ready_timeout_s=s.ready_timeout_s,
        on_wait=waiting,
        max_model_len=max_model_len,
        gpu_memory_utilization=s.gpu_memory_utilization,
        tensor_parallel_size=s.tensor_parallel_size,
        dtype=s.dtype,
        extra=list(s.server_args),
    )
    started.append(f"{what}: vLLM pid {server.pid} at {server.url} ({seconds:.0f} s to start)")
    event(f"{what}: ready in {seconds:.0f} s at {server.url}")
    try:
        yield server.url, server.model
    finally:
        code = server.stop()
        event(f"{what}: vLLM stopped (exit code {code})")


@contextlib.contextmanager
def _judge_env(url: str, model: str, api_key: str) -> Iterator[None]:
    """The variables lmms-eval 0.7.3's judge reads (docs/evaluation.md), set for the duration."""
    wanted = {"API_TYPE": "openai", "OPENAI_API_URL": url, "MODEL_VERSION": model, "OPENAI_API_KEY": api_key}
    old = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _judge_name(url: str, given: str | None, api_key: str | None) -> str:
    """The judge's model name: given, else the one model the server lists."""
    if given:
        return given
    from vlmrl.utils.openai_api import sole_model

    return sole_model(
        url,
        api_key=api_key,
        timeout_setting="--ready-timeout",
        name_option="--judge-served-model-name",
        where=f"--judge-url {url}",
        hint="; start the judge first",
    )


@contextlib.contextmanager
def _judge(s: SeedSettings, out: Path, event: Event, started: list[str]) -> Iterator[None]:
    """The judge of MathVerse/MathVista for the duration: served here, given by URL, or the environment's."""
    key = s.judge_api_key or os.environ.get("OPENAI_API_KEY") or JUDGE_KEY_DEFAULT
    if s.judge_url:
        url = s.judge_url.rstrip("/")
        url = url if url.endswith("/v1") else url + "/v1"
        name = _judge_name(url, s.judge_served_model_name, key)
        event(f"judge: {name} at {url}")
        with _judge_env(url, name, key):
            yield
    elif s.judge_model:
        with (
            _served(
                "judge",
                s.judge_model,
                s.judge_served_model_name,
                s,
                out / "logs" / "judge_server.log",
                s.judge_max_model_len,
                event,
                started,
            ) as (url, name),
            _judge_env(url, name, s.judge_api_key or JUDGE_KEY_DEFAULT),
        ):
            yield
    else:
        event(
            "judge: from the environment (API_TYPE, OPENAI_API_KEY, OPENAI_API_URL, MODEL_VERSION; "
            f"OPENAI_API_URL={os.environ.get('OPENAI_API_URL', 'unset: api.openai.com')})"
        )
        yield


# ------------------------------------------------------------------ the run


def run_seed(
    s: SeedSettings, *, on_event: Event | None = None, on_progress: Progress | None = None
) -> SeedResult:
    """Run every benchmark of `s` not yet finished, then write `results.json` with all of them."""
    event = on_event or (lambda _line: None)
    check_settings(s)
    out = Path(s.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    state = _read_state(state_path)
    done = state["benchmarks"]
    keys = {name: benchmark_key(s, name) for name in s.benchmarks}
    todo = [b for b in s.benchmarks if done.get(b, {}).get("key") != keys[b]]
    reused = [b for b in s.benchmarks if b not in todo]
    for name in reused:
        event(f"{name}: finished earlier ({done[name]['finished']}), not run again")
    if any(b in MM_TASKS for b in todo):
        # Before any server starts: a missing harness or module is found in seconds.
        _check_lmms(s, [b for b in todo if b in MM_TASKS])

    result = SeedResult(s.label, out, out / "results.json", {}, [], reused, [], {})

    def finish(name: str, scores: Mapping[str, float | None], extra: Mapping[str, Any]) -> None:
        done[name] = {"key": keys[name], "finished": _now(), "scores": dict(scores), **extra}
        write_json_atomic(state_path, state)
        result.ran.append(name)

    try:
        text_todo = [b for b in TEXT_BENCHMARKS if b in todo]
        if text_todo:
            t = time.perf_counter()
            _run_text(s, text_todo, out, event, on_progress, result.servers, finish)
            result.timings_s["text"] = round(time.perf_counter() - t, 1)
        mm_todo = [b for b in MM_TASKS if b in todo]
        if mm_todo:
            t = time.perf_counter()
            _run_mm(s, mm_todo, out, event, result.servers, result.notes, finish)
            result.timings_s["multimodal"] = round(time.perf_counter() - t, 1)
    finally:  # what finished is in results.json even when a later benchmark fails
        finished = [b for b in s.benchmarks if done.get(b, {}).get("key") == keys[b]]
        if finished:
            _write_results(s, finished, done, result)
    event(f"results: {result.results_path}")
    return result


def _write_results(
    s: SeedSettings, names: Sequence[str], done: Mapping[str, Any], result: SeedResult
) -> None:
    """Every finished benchmark's numbers into one results.json (our result format)."""
    scores: dict[str, float | None] = {}
    graders: dict[str, str] = {}
    benchmarks: dict[str, Any] = {}
    judge: dict[str, Any] = {}  # judged / failed / not needed per lmms-eval task (`vlmrl eval mm`)
    for name in names:
        record = done[name]
        scores.update(record["scores"])
        if name in TEXT_BENCHMARKS:
            graders.update(dict.fromkeys(record["scores"], record.get("grader", s.grader)))
        benchmarks[name] = {k: v for k, v in record.items() if k not in ("key", "scores", "judge")}
        if record.get("judge"):
            judge[name] = record["judge"]
    result.scores = scores
    write_result(
        result.results_path,
        s.label,
        scores,
        graders=graders,
        benchmarks=benchmarks,
        judge=judge,
        settings={
            "seed": {
                "model": s.model,
                "benchmarks": list(s.benchmarks),
                "n": s.n,
                "temperature": s.temperature,
                "top_p": s.top_p,
                "max_new_tokens": s.max_new_tokens,
                "grader": s.grader,
                "judge": s.judge_model or s.judge_url,
                "limit": s.limit,
            }
        },
    )


def _run_text(
    s: SeedSettings,
    names: list[str],
    out: Path,
    event: Event,
    on_progress: Progress | None,
    started: list[str],
    finish: Callable[[str, Mapping[str, float | None], Mapping[str, Any]], None],
) -> None:
    from vlmrl.eval.generation import make_backend
    from vlmrl.eval.text import evaluate

    with contextlib.ExitStack() as stack:
        if s.text_url:
            url, served = s.text_url, s.served_model_name
            event(f"text: using the server at {url}")
        else:
            max_len = s.max_model_len or s.max_new_tokens + 4096
            url, served = stack.enter_context(
                _served(
                    "text",
                    s.model,
                    s.served_model_name or "policy",
                    s,
                    out / "logs" / "text_server.log",
                    max_len,
                    event,
                    started,
                )
            )
        engine = make_backend("openai", url, served_model_name=served, concurrency=s.concurrency)
        audit = _audit_judge(s, event)
        for name in names:
            event(f"{name}: {s.n} samples per problem at temperature {s.temperature:g}, graded by {s.grader}")
            res = evaluate(
                s.model,
                [name],
                data_paths={k: v for k, v in s.data.items() if k == name},
                backend=engine,
                out_dir=out / "text",
                n=s.n,
                temperature=s.temperature,
                top_p=s.top_p,
                max_new_tokens=s.max_new_tokens,
                instruction=s.instruction,
                limit=s.limit,
                grader=s.grader,
                reward_kwargs=audit,
                model_name=s.label,
                on_progress=on_progress,
            )
            bench = res.benchmarks[name]
            column = registry()[name].column
            event(
                f"{name}: Pass@1 {bench.metrics['pass@1']:.1f} ({s.grader}), format {bench.metrics['format_rate']:.1f}"
            )
            finish(
                name,
                {column: bench.metrics["pass@1"]},
                {"grader": s.grader, "metrics": bench.metrics, "samples": str(bench.samples_path)},
            )


def _audit_judge(s: SeedSettings, event: Event) -> dict[str, Any]:
    """The judge given by --judge-url, as the verifier that audits the text half's rule verdicts
    (`vlmrl.eval.audit`); only under the final-answer grader, where it cannot change a grade."""
    if not s.judge_url or s.grader != DEFAULT_GRADER:
        return {}
    key = s.judge_api_key or os.environ.get("OPENAI_API_KEY") or None
    url = s.judge_url.rstrip("/")
    url = url if url.endswith("/v1") else url + "/v1"
    name = _judge_name(url, s.judge_served_model_name, key)
    event(f"text: {name} at {url} also audits the rule verdicts (rule versus judge)")
    return {"verifier_url": url, "verifier_model": name, **({"verifier_api_key": key} if key else {})}


def _run_mm(
    s: SeedSettings,
    names: list[str],
    out: Path,
    event: Event,
    started: list[str],
    notes: list[str],
    finish: Callable[[str, Mapping[str, float | None], Mapping[str, Any]], None],
) -> None:
    from vlmrl.eval.mm import evaluate_mm

    groups = [(tuple(t for t in tasks if t in names), tokens) for tasks, tokens in MM_GROUPS]
    groups = [(tasks, tokens) for tasks, tokens in groups if tasks]
    with contextlib.ExitStack() as stack:
        judge_on = False
        for tasks, tokens in groups:
            if not judge_on and any(registry()[t].judged for t in tasks):
                stack.enter_context(_judge(s, out, event, started))  # once, for the groups that need it
                judge_on = True
            group_dir = out / "mm" / "_".join(tasks)
            event(f"{', '.join(tasks)}: lmms-eval (max_new_tokens {tokens}); its log follows")
            run = evaluate_mm(
                s.model,
                list(tasks),
                group_dir,
                model_name=s.label,
                instruction=s.instruction,
                lmms_python=s.lmms_python,
                data={t: s.data[t] for t in tasks if t in s.data},
                batch_size=s.mm_batch_size,
                tensor_parallel_size=s.tensor_parallel_size,
                gpu_memory_utilization=s.gpu_memory_utilization,
                max_model_len=s.max_model_len,
                max_new_tokens=tokens,
                model_args=s.model_args,
                limit=s.limit,
                on_output=lambda line: event(f"  lmms-eval | {line}"),
            )
            notes.extend(run.notes)
            for task in tasks:
                columns = [c.key for c in registry()[task].columns]
                scores = {c: run.scores.get(c) for c in columns}
                missing = [c for c in columns if c not in run.scores]
                if missing:
                    raise UserError(
                        f"{task}: lmms-eval's results ({run.result_path}) hold no {', '.join(missing)}; "
                        "see its log above"
                    )
                saved = read_result(group_dir / "results.json").get("judge") or {}
                judge = saved.get(task, run.judge.get(task))
                extra = {"lmms_eval_results": str(run.result_path), "max_new_tokens": tokens}
                finish(task, scores, {**extra, **({"judge": judge} if judge else {})})
                event(
                    f"{task}: "
                    + ", ".join(f"{c} {'—' if v is None else f'{v:.1f}'}" for c, v in scores.items())
                )
