"""`vlmrl eval mm` runs the real lmms-eval 0.7.3 (its vLLM model, on CPU) with the tiny model on local
copies of the seed's four tasks in their hub layouts, all in one lmms-eval run: MME and MMStar scored
by rule, MathVerse and MathVista by a judge that `vlmrl verifier serve` serves (the session's vLLM
server: the tiny model again, on every interface, with its API key). Every judge call is counted per
task, and the numbers of the four tasks reach `vlmrl report table`. A second, short run of MathVista
against a judge that is down shows the outage counted, not hidden.

The tiny models' words are random: the tests check what ran, what was counted and where the numbers
went, not the scores.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
from lmms_hub_copies import MATHVERSE, MATHVISTA, MME_CATEGORIES, MMSTAR, WRITERS
from typer.testing import CliRunner

from vlmrl.cli import app
from vlmrl.eval.lmms_env import LMMS_EVAL_VERSION, find_lmms_python, probe
from vlmrl.testing.scripted_judge import ChatServer

pytestmark = pytest.mark.slow

INSTRUCTION = "Think it through, then answer."
# If vLLM fell back to the model's own template instead of ours, rendering would raise this.
MODEL_OWN_TEMPLATE = (
    "{{ raise_exception('the model directory chat template was used, not vlmrl eval mm one') }}"
)
TASKS = ("mme", "mathverse_testmini", "mathvista_testmini_format", "mmstar")
ROWS = {
    "mme": 2 * len(MME_CATEGORIES),
    "mathverse_testmini": len(MATHVERSE),
    "mathvista_testmini_format": len(MATHVISTA),
    "mmstar": len(MMSTAR),
}
# The evaluated model's context: MathVerse and MathVista ask for 16384 new tokens, so this bounds their
# responses (and keeps each judge prompt inside the judge's context).
MAX_MODEL_LEN = 384


@pytest.fixture(scope="module")
def lmms_python() -> str:
    python = find_lmms_python()
    info = probe(python) if python else None
    if info is None or info.version != LMMS_EVAL_VERSION or info.vllm is None or info.missing:
        why = (
            f"no lmms-eval {LMMS_EVAL_VERSION} venv with vLLM and every task's modules (found {info}); "
            "create it with `make lmms-env`"
        )
        if os.environ.get("VLMRL_REQUIRE_LMMS") == "1":  # `make test` builds it, so there it must exist
            pytest.fail(why)
        pytest.skip(why)
    return python


def _cpu_env(tmp: Path) -> dict[str, str]:
    return {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp / "hf"),
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine in-process: one vLLM import fewer
    }


def _eval_mm(model: Path, tasks: list[str], data: dict[str, Path], out: Path, lmms_python: str):
    args = ["eval", "mm", "--model", str(model), "--tasks", ",".join(tasks), "-o", str(out)]
    for task in tasks:
        args += ["--data", f"{task}={data[task]}"]
    args += ["--lmms-python", lmms_python, "--instruction", INSTRUCTION, "--model-name", "tiny"]
    args += ["--max-new-tokens", "16", "--max-model-len", str(MAX_MODEL_LEN), "--batch-size", "8"]
    for engine_arg in (
        "dtype=float32",
        "enforce_eager=True",
        "skip_mm_profiling=True",
        'limit_mm_per_prompt={"image":1,"video":0}',
        'mm_processor_kwargs={"max_pixels":12544}',
    ):
        args += ["--model-arg", engine_arg]
    return CliRunner().invoke(app, args)


def _judge_requests(server) -> float:
    """The judge server's own count of finished requests (vLLM's Prometheus /metrics)."""
    text = httpx.get(server.url.removesuffix("/v1") + "/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total")
    )


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub-copies")
    return {task: write(root / task) for task, write in WRITERS.items()}


@pytest.fixture(scope="module")
def model_dir(tiny_vlm_path, tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("model") / "tiny"
    shutil.copytree(tiny_vlm_path, model)
    (model / "chat_template.jinja").write_text(MODEL_OWN_TEMPLATE)
    return model


@pytest.fixture(scope="module")
def four_tasks(lmms_python, model_dir, copies, vllm_server, tmp_path_factory):
    """One `vlmrl eval mm` run of the four tasks, judged by the session's `vlmrl verifier serve` server."""
    tmp = tmp_path_factory.mktemp("mm-four")
    judge = {
        "API_TYPE": "openai",
        "OPENAI_API_URL": vllm_server.url,
        "OPENAI_API_KEY": vllm_server.api_key,
        "MODEL_VERSION": vllm_server.model,
    }
    before = _judge_requests(vllm_server)
    with pytest.MonkeyPatch.context() as mp:
        for var, value in {**_cpu_env(tmp), **judge}.items():
            mp.setenv(var, value)
        result = _eval_mm(model_dir, list(TASKS), copies, tmp / "mm", lmms_python)
    assert result.exit_code == 0, result.output[-6000:]
    return {
        "out": tmp / "mm",
        "output": result.output,
        "judge_requests": _judge_requests(vllm_server) - before,
    }


def _lmms_results(out: Path) -> tuple[Path, dict]:
    (results_file,) = (out / "lmms_eval").rglob("*_results.json")
    return results_file, json.loads(results_file.read_text())


def _table_row(tmp_path: Path, *sources: Path) -> tuple[list[str], str]:
    args = ["report", "table", *(f"tiny={s}" for s in sources), "--out", str(tmp_path / "t.md")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "t.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| tiny"))
    return [c.strip() for c in row.strip("|").split("|")][1:], text


def test_mme_runs_with_our_template_on_the_local_copy(four_tasks, copies):
    out = four_tasks["out"]
    results_file, lmms = _lmms_results(out)
    assert lmms["results"]["vlmrl_local_mme"]["alias"] == "mme"
    assert lmms["configs"]["vlmrl_local_mme"]["dataset_path"] == str(copies["mme"])
    assert f"chat_template={out.absolute() / 'chat_template.jinja'}" in lmms["config"]["model_args"]
    (samples_file,) = (out / "lmms_eval").rglob("*_samples_vlmrl_local_mme.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == ROWS["mme"]
    # The task's own prompt (lmms-eval's MME utils); our template adds the instruction when vLLM renders it.
    assert all(s["input"].endswith("\nAnswer the question using a single word or phrase.") for s in samples)
    assert INSTRUCTION in (out / "chat_template.jinja").read_text()
    ours = json.loads((out / "results.json").read_text())
    assert ours["model"] == "tiny"
    assert (
        0 <= ours["scores"]["mme_cognition"] <= 2 * 200 and 0 <= ours["scores"]["mme_perception"] <= 2 * 200
    )
    assert ours["scores"]["mme_cognition"] == lmms["results"]["vlmrl_local_mme"]["mme_cognition_score,none"]


def test_each_task_ran_on_its_copy_and_every_judge_call_is_counted(four_tasks, copies, vllm_server):
    out = four_tasks["out"]
    _, lmms = _lmms_results(out)
    ours = json.loads((out / "results.json").read_text())
    for task in TASKS:
        run_name = "vlmrl_local_" + task
        assert lmms["results"][run_name]["alias"] == task
        assert lmms["n-samples"][run_name]["effective"] == ROWS[task]
        assert lmms["configs"][run_name]["dataset_path"] == str(copies[task])
        counts = ours["judge"][task]
        assert counts["samples"] == ROWS[task]
        assert counts["judged"] + counts["failed"] + counts["not_needed"] == ROWS[task]
    # Rule-scored tasks need no judge.
    for task in ("mme", "mmstar"):
        assert ours["judge"][task]["not_needed"] == ROWS[task]
    # Judge-scored tasks: each sample records what its call did, in lmms-eval's own samples log.
    asked = answered = 0
    for task in ("mathverse_testmini", "mathvista_testmini_format"):
        counts = ours["judge"][task]
        assert counts["judge_model"] == vllm_server.model and counts["judge_url"] == vllm_server.url
        (log,) = (out / "lmms_eval").rglob(f"*_samples_vlmrl_local_{task}.jsonl")
        records = [json.loads(line)["vlmrl_judge"] for line in log.read_text().splitlines()]
        statuses = [r["status"] for r in records]
        assert statuses.count("judged") == counts["judged"] and statuses.count("failed") == counts["failed"]
        asked += sum(r["calls"] for r in records)
        for record in records:
            if record["status"] == "failed":
                assert record["detail"], record  # a failure says what went wrong
            # the judge answered: a reply it could read, or one it could not
            answered += record["status"] == "judged" or record["detail"].startswith("unparseable")
    # MathVerse asks the judge about every response; the answers the hooks saw came from the judge
    # server (vLLM counts the requests it finished).
    assert ours["judge"]["mathverse_testmini"]["not_needed"] == 0 and asked >= ROWS["mathverse_testmini"]
    assert four_tasks["judge_requests"] >= answered
    # Failures, when the tiny judge produced any, are in the run's notes, never silent.
    for task in ("mathverse_testmini", "mathvista_testmini_format"):
        if ours["judge"][task]["failed"]:
            assert f"{task}: the judge failed on {ours['judge'][task]['failed']} of" in four_tasks["output"]


def test_the_four_tasks_reach_the_report_table(four_tasks, tmp_path):
    out = four_tasks["out"]
    ours = json.loads((out / "results.json").read_text())
    scores = ours["scores"]
    assert set(scores) == {
        "mathverse_testmini", "mathvista_testmini_format", "mme_cognition", "mme_perception", "mmstar",
    }  # fmt: skip
    cells, text = _table_row(tmp_path, out / "results.json")
    # columns: AIME24, MATH-500, GPQA-D, MathVerse, MathVista, MME cognition, MME perception, MMStar
    for index, column in ((3, "mathverse_testmini"), (4, "mathvista_testmini_format"), (5, "mme_cognition")):
        value = scores[column]
        mark = (
            "*"
            if column in ("mathverse_testmini", "mathvista_testmini_format")
            and ours["judge"][column]["failed"]
            else ""
        )
        assert cells[index] == ("—" if value is None else f"{value:.1f}") + mark, (column, cells)
    assert cells[6] == f"{scores['mme_perception']:.1f}" and cells[7] == f"{scores['mmstar']:.1f}"
    judge_line = next(line for line in text.splitlines() if line.startswith("- tiny:"))
    for label, task in (("MathVerse", "mathverse_testmini"), ("MathVista", "mathvista_testmini_format")):
        c = ours["judge"][task]
        assert f"{label} {c['judged']}/{c['failed']}/{c['not_needed']}" in judge_line
    assert f"MMStar 0/0/{ROWS['mmstar']}" in judge_line
    # lmms-eval's own results file gives the same scores.
    results_file, _ = _lmms_results(out)
    raw, _ = _table_row(tmp_path, results_file)
    assert raw[5:8] == [
        f"{scores['mme_cognition']:.1f}",
        f"{scores['mme_perception']:.1f}",
        f"{scores['mmstar']:.1f}",
    ]


def test_a_judge_outage_is_counted_not_hidden(lmms_python, model_dir, copies, tmp_path, monkeypatch):
    """The judge is down (503 on every call, with a 1 ms Retry-After so the OpenAI client's own retries
    take no time; lmms-eval's MathVerse client still waits 10 s between its 5 tries): every MathVerse
    sample is a counted failure, scored 0 by lmms-eval; the run says so and the table marks the cell.
    (MathVerse asks the judge about every response; MathVista only about those its rules cannot read,
    and the tiny model's are empty.)"""

    def down(body):
        return (
            503,
            {"error": {"message": "judge overloaded", "type": "server_error"}},
            {"retry-after-ms": "1"},
        )

    with ChatServer(down, models=("judge",)) as judge:
        for var, value in {
            **_cpu_env(tmp_path),
            "API_TYPE": "openai",
            "OPENAI_API_URL": judge.url + "/v1",
            "OPENAI_API_KEY": "local",
            "MODEL_VERSION": "judge",
        }.items():
            monkeypatch.setenv(var, value)
        task = "mathverse_testmini"
        result = _eval_mm(model_dir, [task], copies, tmp_path / "mm", lmms_python)
        calls = len(judge.bodies)
    assert result.exit_code == 0, result.output[-6000:]
    ours = json.loads((tmp_path / "mm" / "results.json").read_text())
    counts = ours["judge"][task]
    assert (counts["samples"], counts["judged"], counts["failed"], counts["not_needed"]) == (
        ROWS[task],
        0,
        ROWS[task],
        0,
    )
    assert calls >= counts["failed"]
    assert all("503" in f["detail"] and "overloaded" in f["detail"] for f in counts["failures"]), counts
    assert ours["scores"][task] == 0.0  # what lmms-eval made of it: without the count, a silent 0
    assert f"{task}: the judge failed on {ROWS[task]} of {ROWS[task]} samples" in result.output
    cells, text = _table_row(tmp_path, tmp_path / "mm" / "results.json")
    assert cells[3] == "0.0*" and "the judge failed" in text
    assert f"MathVerse 0/{ROWS[task]}/0" in text
