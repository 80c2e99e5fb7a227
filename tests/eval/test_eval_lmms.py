"""lmms-eval: the chat template, the command line, local task copies, judge checks, and parsing
results files in 0.7.3's layout (the real run is in test_eval_lmms_run.py)."""

from __future__ import annotations

import json
import shlex
import sys

import pytest
import yaml

from vlmrl.errors import UserError
from vlmrl.eval.mm import (
    LmmsEvalNotInstalled,
    build_lmms_command,
    check_judge_env,
    evaluate_mm,
    find_results_json,
    judge_counts,
    judge_notes,
    parse_lmms_results,
    probe_judge,
    write_chat_template,
    write_local_tasks,
    write_task_yamls,
)

INSTRUCTION = "Think first, then answer.\nUse <think>\n...\n</think> and <answer>\n...\n</answer>."


def test_template_appends_instruction_to_user_turns_only(tmp_path, tiny_processor):
    path = write_chat_template(tmp_path / "t.jinja", INSTRUCTION)
    tokenizer = tiny_processor.tokenizer
    conversation = [
        {"role": "user", "content": "What is 1+1?"},
        {"role": "assistant", "content": "<think>\nadd\n</think>\n<answer>\n2\n</answer>"},
        # lmms-eval's vllm model sends the text part first, then image_url parts.
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    text = tokenizer.apply_chat_template(
        conversation, chat_template=path.read_text(), tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\nWhat is 1+1?\n\n{INSTRUCTION}<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nadd\n</think>\n<answer>\n2\n</answer><|im_end|>\n"
        f"<|im_start|>user\nAnd this picture?<|vision_start|><|image_pad|><|vision_end|>\n\n{INSTRUCTION}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert text.count(INSTRUCTION) == 2


def test_default_instruction_is_the_training_one(tmp_path):
    prompt = pytest.importorskip("vlmrl.data.prompt", reason="the data stage is not merged yet")
    path = write_chat_template(tmp_path / "t.jinja")
    assert json.dumps(prompt.DEFAULT_INSTRUCTION, ensure_ascii=False) in path.read_text()


def test_command_for_pinned_lmms_eval(tmp_path):
    cmd = build_lmms_command(
        "/ckpt/hf",
        ["mme", "mmstar"],
        tmp_path / "t.jinja",
        tmp_path / "out",
        python="/envs/lmms/bin/python",
        batch_size=16,
        max_new_tokens=16,
        include_path=tmp_path / "tasks",
        reasoning_tags="none",
        extra_model_args={"limit_mm_per_prompt": '{"image":1,"video":0}'},
    )
    assert cmd[:3] == ["/envs/lmms/bin/python", "-m", "lmms_eval"]
    assert cmd[cmd.index("--model") + 1] == "vllm"
    model_args = cmd[cmd.index("--model_args") + 1]
    assert model_args.startswith("model=/ckpt/hf,")  # 0.7 renamed `model_version`
    assert f",chat_template={tmp_path / 't.jinja'}," in model_args
    assert ",max_new_tokens=16," in model_args
    assert model_args.endswith(',limit_mm_per_prompt={"image":1,"video":0}')  # JSON commas are fine
    assert cmd[cmd.index("--tasks") + 1] == "mme,mmstar"
    assert cmd[cmd.index("--output_path") + 1] == str(tmp_path / "out")
    assert cmd[cmd.index("--include_path") + 1] == str(tmp_path / "tasks")
    assert cmd[cmd.index("--reasoning_tags") + 1] == "none"
    assert "--log_samples" in cmd
    with pytest.raises(UserError, match="comma"):
        build_lmms_command("/a,b", ["mme"], "t", "o", python="python")


def test_local_task_copy_includes_the_installed_yaml(tmp_path):
    tasks_dir = tmp_path / "lmms_eval" / "tasks"
    (tasks_dir / "mme").mkdir(parents=True)
    (tasks_dir / "mme" / "mme.yaml").write_text("dataset_path: lmms-lab/MME\ntask: mme\n")
    data = tmp_path / "MME"
    data.mkdir()
    names = write_local_tasks({"mme": data}, tasks_dir, tmp_path / "local")
    assert names == {"mme": "vlmrl_local_mme"}
    doc = yaml.safe_load((tmp_path / "local" / "vlmrl_local_mme.yaml").read_text())
    assert doc == {
        "include": str(tasks_dir / "mme" / "mme.yaml"),
        "task": "vlmrl_local_mme",
        "task_alias": "mme",
        "dataset_path": str(data),
        "dataset_kwargs": {},
    }
    with pytest.raises(UserError, match="no mmstar.yaml"):
        write_local_tasks({"mmstar": data}, tasks_dir, tmp_path / "local")
    with pytest.raises(UserError, match="not a directory"):
        write_local_tasks({"mme": data / "missing"}, tasks_dir, tmp_path / "local")


class _TaskLoader(yaml.SafeLoader):
    """YAML with lmms-eval's `!function module.name` tag read as ("!function", "module.name")."""


_TaskLoader.add_constructor("!function", lambda loader, node: ("!function", loader.construct_scalar(node)))


def test_judged_tasks_run_under_a_yaml_that_records_each_judge_call(tmp_path):
    tasks_dir = tmp_path / "lmms_eval" / "tasks"
    for family, task in (("mathverse", "mathverse_testmini"), ("mathvista", "mathvista_testmini_format")):
        (tasks_dir / family).mkdir(parents=True)
        (tasks_dir / family / f"{task}.yaml").write_text(f"task: {task}\n")
    (tasks_dir / "mmstar").mkdir()
    (tasks_dir / "mmstar" / "mmstar.yaml").write_text("task: mmstar\n")
    data = tmp_path / "MathVista"
    data.mkdir()
    out = tmp_path / "tasks"
    tasks = ["mathverse_testmini", "mathvista_testmini_format", "mmstar"]
    names = write_task_yamls(tasks, {"mathvista_testmini_format": data}, tasks_dir, out)
    # MMStar is rule-scored and read from the hub: it runs as itself.
    assert names == {
        "mathverse_testmini": "vlmrl_mathverse_testmini",
        "mathvista_testmini_format": "vlmrl_local_mathvista_testmini_format",
    }
    hub = yaml.load((out / "vlmrl_mathverse_testmini.yaml").read_text(), _TaskLoader)
    assert hub == {
        "include": str(tasks_dir / "mathverse" / "mathverse_testmini.yaml"),
        "task": "vlmrl_mathverse_testmini",
        "task_alias": "mathverse_testmini",
        "process_results": ("!function", "vlmrl_judge_hooks.mathverse_process_results"),
    }
    local = yaml.load((out / "vlmrl_local_mathvista_testmini_format.yaml").read_text(), _TaskLoader)
    assert local["dataset_path"] == str(data) and local["dataset_kwargs"] == {}
    assert local["process_results"] == ("!function", "vlmrl_judge_hooks.mathvista_process_results")
    # The hooks travel beside the yamls: lmms-eval imports `!function` modules from the yaml's folder.
    hooks = (out / "vlmrl_judge_hooks.py").read_text()
    assert "def mathverse_process_results" in hooks and "def mathvista_process_results" in hooks
    assert "vlmrl" not in "".join(line for line in hooks.splitlines() if line.startswith(("import", "from")))


def _samples(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"doc_id": i, **r}) + "\n" for i, r in enumerate(records)))


def test_judge_counts_per_task_from_the_samples_logs(tmp_path):
    root = tmp_path / "lmms_eval" / "model"
    judged = {"vlmrl_judge": {"status": "judged", "detail": "1"}}
    failed = {"vlmrl_judge": {"status": "failed", "detail": "APIConnectionError: Connection error."}}
    _samples(root / "20261204_samples_vlmrl_mathverse_testmini.jsonl", [judged, failed, judged, {}])
    _samples(root / "20261204_samples_mmstar.jsonl", [{"average": {"score": 1.0}}] * 3)
    names = {
        "mathverse_testmini": "vlmrl_mathverse_testmini",
        "mmstar": "mmstar",
        "mathvista_testmini_format": "vlmrl_mathvista_testmini_format",
    }
    counts = judge_counts(tmp_path / "lmms_eval", names)
    verse = counts["mathverse_testmini"]
    assert (verse["judged"], verse["failed"], verse["not_needed"], verse["samples"]) == (2, 2, 0, 4)
    assert verse["failures"] == [
        {"doc_id": 1, "detail": "APIConnectionError: Connection error."},
        {"doc_id": 3, "detail": "judge call not recorded"},  # a sample the hooks did not see: failed
    ]
    star = counts["mmstar"]
    assert (star["judged"], star["failed"], star["not_needed"], star["samples"]) == (0, 0, 3, 3)
    assert counts["mathvista_testmini_format"]["samples"] is None  # no log: said, not zero
    notes = judge_notes(counts)
    assert any("mathverse_testmini: the judge failed on 2 of 4 samples" in n for n in notes)
    assert any("mathvista_testmini_format: no samples log" in n for n in notes)
    assert not any(n.startswith("mmstar") for n in notes)


def _write_lmms_results(root, date="2026-11-23T10-00-00", mathvista=61.3):
    """A results file as lmms-eval 0.7.3 writes it: <output_path>/<model_name_sanitized>/<date>_results.json."""
    path = root / "" / f"{date}_results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "results": {
            "mathverse_testmini": {
                "alias": "mathverse_testmini",
                "gpt_eval_score,none": 0.467,
                "gpt_eval_score_stderr,none": "N/A",
                "submission,none": None,
                "submission_stderr,none": "N/A",
            },
            "mathvista_testmini_format": {
                "alias": "mathvista_testmini_format",
                "llm_as_judge_eval,none": mathvista,
                "llm_as_judge_eval_stderr,none": "N/A",
            },
            "vlmrl_local_mme": {
                "alias": "mme",
                "mme_cognition_score,none": 612.5,
                "mme_cognition_score_stderr,none": "N/A",
                "mme_perception_score,none": 1550.25,
                "mme_perception_score_stderr,none": "N/A",
            },
            "mmstar": {
                "alias": "mmstar",
                "coarse perception,none": 0.7,
                "average,none": 0.6293,
                "average_stderr,none": "N/A",
            },
        },
        "group_subtasks": {"mme": [], "mmstar": []},
        "configs": {},
        "versions": {"mme": "Yaml", "mmstar": "Yaml"},
        "n-shot": {},
        "higher_is_better": {},
        "n-samples": {"mme": {"original": 2374, "effective": 2374}},
        "config": {
            "model": "vllm",
            "model_args": "model=/ckpt/step50,chat_template=/x/t.jinja",
            "batch_size": "64",
        },
        "git_hash": "abc",
        "date": "20261123_100000",
        "model_name": "",
        "model_name_sanitized": "",
    }
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_parse_results_labels_mme_right_and_scales_mmstar(tmp_path):
    path = _write_lmms_results(tmp_path / "lmms")
    parsed = parse_lmms_results(path)
    assert parsed["model"] == "/ckpt/step50"
    assert parsed["scores"] == {
        "mathverse_testmini": pytest.approx(46.7),
        "mathvista_testmini_format": 61.3,
        "mme_cognition": 612.5,
        "mme_perception": 1550.25,
        "mmstar": pytest.approx(62.93),
    }
    assert parsed["lmms_eval"]["mmstar"]["coarse perception"] == 0.7
    assert parsed["lmms_eval"]["mme"]["mme_perception_score"] == 1550.25  # the local copy, by its alias
    assert parsed["notes"] == []


def test_parse_results_null_judge_score_and_newest_file(tmp_path):
    _write_lmms_results(tmp_path / "lmms", date="2026-11-23T10-00-00")
    newest = _write_lmms_results(tmp_path / "lmms" / "model", date="2026-11-23T11-00-00", mathvista=None)
    assert find_results_json(tmp_path / "lmms") == newest
    parsed = parse_lmms_results(newest)
    assert parsed["scores"]["mathvista_testmini_format"] is None
    assert any("judge" in n for n in parsed["notes"])
    with pytest.raises(UserError, match="no lmms-eval"):
        find_results_json(tmp_path / "empty")
    # After a run: only a file written since it started counts (lmms-eval 0.7 exits 0 on errors).
    assert find_results_json(tmp_path / "lmms", newer_than=newest.stat().st_mtime) == newest
    assert find_results_json(tmp_path / "lmms", newer_than=newest.stat().st_mtime + 10) is None
    bad = tmp_path / "bad_results.json"
    bad.write_text(json.dumps({"scores": {}}))
    with pytest.raises(UserError, match="no `results`"):
        parse_lmms_results(bad)


def test_judge_variables_checked():
    assert check_judge_env(["mme", "mmstar"], env={}) == []
    problems = check_judge_env(["mathvista_testmini_format"], env={})
    assert "OPENAI_API_KEY" in problems[0] and "MODEL_VERSION" in problems[0]
    local = {"OPENAI_API_KEY": "x", "OPENAI_API_URL": "http://127.0.0.1:8000/v1"}
    assert check_judge_env(["mathverse_testmini"], env=local) == []
    full = check_judge_env(
        ["mathverse_testmini"], env={**local, "OPENAI_API_URL": "http://h/v1/chat/completions"}
    )
    assert "base URL (http://h/v1)" in full[0]
    assert (
        "AZURE_API_KEY"
        in check_judge_env(["mathverse_testmini"], env={"API_TYPE": "azure", "AZURE_ENDPOINT": "e"})[0]
    )
    assert "knows openai" in check_judge_env(["mathverse_testmini"], env={"API_TYPE": "gemini"})[0]


def test_without_lmms_eval_the_command_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bare = tmp_path / "bare"  # a venv directory with a python but no lmms-eval
    (bare / "bin").mkdir(parents=True)
    (bare / "bin" / "python").symlink_to(sys.executable)
    with pytest.raises(LmmsEvalNotInstalled, match=r"has no lmms_eval.*vlmrl eval mm --setup") as info:
        evaluate_mm("/ckpt/hf", ["mme"], tmp_path / "mm", instruction=INSTRUCTION, lmms_python=bare)
    run = info.value.run
    assert run.chat_template.is_file()
    assert shlex.split(run.command_line) == run.command
    assert run.command[:3] == [str(bare / "bin" / "python"), "-m", "lmms_eval"]
    with pytest.raises(UserError, match="not found"):
        evaluate_mm("/ckpt/hf", ["mme"], tmp_path / "mm", lmms_python=tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"--data given for \['mmstar'\]"):
        evaluate_mm("/ckpt/hf", ["mme"], tmp_path / "mm", data={"mmstar": tmp_path})


def test_local_judge_probe(chat_server, silent_url):
    env = {"OPENAI_API_KEY": "local"}
    wrong_name = chat_server(lambda body: (200, {}), models=("Qwen/Qwen2.5-72B-Instruct",))
    problems = probe_judge(["mathverse_testmini"], {**env, "OPENAI_API_URL": wrong_name.url + "/v1"})
    assert "'gpt-4o-2024-11-20'" in problems[0] and "set MODEL_VERSION" in problems[0]
    right = {**env, "OPENAI_API_URL": wrong_name.url + "/v1", "MODEL_VERSION": "Qwen/Qwen2.5-72B-Instruct"}
    assert probe_judge(["mathvista_testmini_format"], right) == []
    assert probe_judge(["mme"], {**env, "OPENAI_API_URL": "http://127.0.0.1:9/v1"}) == []
    down = probe_judge(["mathverse_testmini"], {**env, "OPENAI_API_URL": "http://127.0.0.1:9/v1"})
    assert "unreachable" in down[0]
    slow = probe_judge(["mathverse_testmini"], {**env, "OPENAI_API_URL": silent_url}, timeout_s=0.5)
    assert f"did not answer {silent_url}/models within 0.5 s" in slow[0] and "--no-judge-check" in slow[0]


def test_judged_hub_tasks_run_under_vlmrl_names_with_the_installed_yaml(tmp_path):
    from vlmrl.eval.lmms_env import LMMS_EVAL_VERSION, find_lmms_python, probe

    python = find_lmms_python()
    info = probe(python) if python else None
    if info is None or info.version != LMMS_EVAL_VERSION:
        pytest.skip(f"no lmms-eval {LMMS_EVAL_VERSION} here ({info})")
    run = evaluate_mm(
        "/ckpt/hf", ["mathverse_testmini", "mme"], tmp_path / "mm", lmms_python=python, dry_run=True
    )
    cmd = run.command
    assert cmd[cmd.index("--tasks") + 1] == "vlmrl_mathverse_testmini,mme"  # MME: rule-scored, as itself
    include = tmp_path.absolute() / "mm" / "lmms_tasks"
    assert cmd[cmd.index("--include_path") + 1] == str(include)
    doc = yaml.load((include / "vlmrl_mathverse_testmini.yaml").read_text(), _TaskLoader)
    assert doc["include"] == str(info.tasks_dir / "mathverse" / "mathverse_testmini.yaml")
    assert "dataset_path" not in doc  # the hub's, from lmms-eval's own yaml
    assert run.task_names == {"mathverse_testmini": "vlmrl_mathverse_testmini", "mme": "mme"}
