"""lmms-eval: the chat template, the command line, and parsing results files in 0.3.5's layout."""

from __future__ import annotations

import json
import os
import shlex

import pytest

from vlmrl.errors import UserError
from vlmrl.eval.mm import (
    LmmsEvalNotInstalled,
    build_lmms_command,
    check_judge_env,
    evaluate_mm,
    find_results_json,
    lmms_eval_version,
    parse_lmms_results,
    probe_judge,
    write_chat_template,
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
        f"<|im_start|>user\nWhat is 1+1? {INSTRUCTION}<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nadd\n</think>\n<answer>\n2\n</answer><|im_end|>\n"
        f"<|im_start|>user\nAnd this picture?<|vision_start|><|image_pad|><|vision_end|> {INSTRUCTION}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert text.count(INSTRUCTION) == 2


def test_default_instruction_is_the_training_one(tmp_path):
    prompt = pytest.importorskip("vlmrl.data.prompt", reason="the data stage is not merged yet")
    path = write_chat_template(tmp_path / "t.jinja")
    assert json.dumps(prompt.DEFAULT_INSTRUCTION, ensure_ascii=False) in path.read_text()


def test_command_for_pinned_lmms_eval(tmp_path):
    cmd = build_lmms_command(
        "/ckpt/hf", ["mme", "mmstar"], tmp_path / "t.jinja", tmp_path / "out", batch_size=16, python="python3"
    )
    assert cmd[:3] == ["python3", "-m", "lmms_eval"]
    assert cmd[cmd.index("--model") + 1] == "vllm"
    model_args = cmd[cmd.index("--model_args") + 1].split(",")
    assert model_args[0] == "model_version=/ckpt/hf"
    assert f"chat_template={tmp_path / 't.jinja'}" in model_args
    assert cmd[cmd.index("--tasks") + 1] == "mme,mmstar"
    assert cmd[cmd.index("--output_path") + 1] == str(tmp_path / "out")
    assert "--log_samples" in cmd
    with pytest.raises(UserError, match="comma"):
        build_lmms_command("/a,b", ["mme"], "t", "o")


def _write_lmms_results(root, date="2026-11-23T10-00-00", mathvista=61.3):
    """A results file as lmms-eval 0.3.5 writes it: <output_path>/<model_name_sanitized>/<date>_results.json."""
    path = root / "" / f"{date}_results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "results": {
            "mathverse_testmini": {
                "alias": "mathverse_testmini",
                "gpt_eval_score,none": 46.7,
                "gpt_eval_score_stderr,none": "N/A",
                "submission,none": None,
                "submission_stderr,none": "N/A",
            },
            "mathvista_testmini_format": {
                "alias": "mathvista_testmini_format",
                "gpt_eval_score,none": mathvista,
                "gpt_eval_score_stderr,none": "N/A",
            },
            "mme": {
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
            "model_args": "model_version=/ckpt/step50,chat_template=/x/t.jinja",
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
        "mathverse_testmini": 46.7,
        "mathvista_testmini_format": 61.3,
        "mme_cognition": 612.5,
        "mme_perception": 1550.25,
        "mmstar": pytest.approx(62.93),
    }
    assert parsed["lmms_eval"]["mmstar"]["coarse perception"] == 0.7
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
    bad = tmp_path / "bad_results.json"
    bad.write_text(json.dumps({"scores": {}}))
    with pytest.raises(UserError, match="no `results`"):
        parse_lmms_results(bad)


def test_judge_variables_checked():
    assert check_judge_env(["mme", "mmstar"], env={}) == []
    problems = check_judge_env(["mathvista_testmini_format"], env={})
    assert "OPENAI_API_KEY" in problems[0] and "gpt-3.5-turbo" in problems[0]
    local = {"OPENAI_API_KEY": "x", "OPENAI_API_URL": "http://127.0.0.1:8000/v1/chat/completions"}
    assert check_judge_env(["mathverse_testmini"], env=local) == []
    assert (
        "chat/completions"
        in check_judge_env(["mathverse_testmini"], env={**local, "OPENAI_API_URL": "http://h/v1"})[0]
    )


@pytest.mark.skipif(lmms_eval_version() is not None, reason="lmms-eval is installed here")
def test_without_lmms_eval_the_command_is_given(tmp_path):
    with pytest.raises(LmmsEvalNotInstalled, match="pip install 'lmms-eval==0.3.5'") as info:
        evaluate_mm("/ckpt/hf", ["mme"], tmp_path / "mm", instruction=INSTRUCTION)
    run = info.value.run
    assert run.chat_template.is_file()
    assert shlex.split(run.command_line) == run.command
    assert "--log_samples" in run.command


def test_local_judge_probe(chat_server):
    env = {"OPENAI_API_KEY": "local"}
    wrong_name = chat_server(lambda body: (200, {}), models=("Qwen/Qwen2.5-72B-Instruct",))
    problems = probe_judge(
        ["mathverse_testmini"], {**env, "OPENAI_API_URL": wrong_name.url + "/v1/chat/completions"}
    )
    assert "--served-model-name gpt-3.5-turbo" in problems[0]
    right = chat_server(lambda body: (200, {}), models=("gpt-3.5-turbo",))
    assert (
        probe_judge(
            ["mathvista_testmini_format"], {**env, "OPENAI_API_URL": right.url + "/v1/chat/completions"}
        )
        == []
    )
    assert probe_judge(["mme"], {**env, "OPENAI_API_URL": "http://127.0.0.1:9/v1/chat/completions"}) == []
    down = probe_judge(
        ["mathverse_testmini"], {**env, "OPENAI_API_URL": "http://127.0.0.1:9/v1/chat/completions"}
    )
    assert "unreachable" in down[0]


FAKE_LMMS_MAIN = '''
"""Stand-in for `python -m lmms_eval` (the real one needs a GPU and the hub): checks the
arguments vlmrl passes and writes a results file in 0.3.5's layout."""
import argparse, json, pathlib, sys
p = argparse.ArgumentParser()
for flag in ("--model", "--model_args", "--tasks", "--batch_size", "--output_path", "--log_samples_suffix", "--limit"):
    p.add_argument(flag)
p.add_argument("--log_samples", action="store_true")
a = p.parse_args()
args = dict(kv.split("=", 1) for kv in a.model_args.split(","))
template = pathlib.Path(args["chat_template"]).read_text()
if a.model != "vllm" or not a.log_samples or "Think first" not in template or "FAIL" in args["model_version"]:
    print("bad invocation", file=sys.stderr)
    sys.exit(1)
out = pathlib.Path(a.output_path)
out.mkdir(parents=True, exist_ok=True)
results = {"mme": {"alias": "mme", "mme_cognition_score,none": 300.0, "mme_perception_score,none": 1400.0},
           "mmstar": {"alias": "mmstar", "average,none": 0.5}}
doc = {"results": {t: results[t] for t in a.tasks.split(",")}, "config": {"model_args": a.model_args}}
(out / "2026-11-24T00-00-00_results.json").write_text(json.dumps(doc))
print("done")
'''


@pytest.fixture
def fake_lmms_eval(tmp_path, monkeypatch):
    root = tmp_path / "fake_site"
    pkg = root / "lmms_eval"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE_LMMS_MAIN)
    dist = root / "lmms_eval-0.3.5.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lmms_eval\nVersion: 0.3.5\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    return root


def test_evaluate_mm_runs_lmms_eval_and_writes_our_results(fake_lmms_eval, tmp_path):
    assert lmms_eval_version() == "0.3.5"
    lines = []
    run = evaluate_mm(
        "/ckpt/hf",
        ["mme", "mmstar"],
        tmp_path / "mm",
        model_name="base",
        instruction=INSTRUCTION,
        on_output=lines.append,
    )
    assert run.ran and lines[-1] == "done"
    result = json.loads((tmp_path / "mm" / "results.json").read_text())
    assert result["model"] == "base"
    assert result["scores"] == {"mme_cognition": 300.0, "mme_perception": 1400.0, "mmstar": 50.0}
    with pytest.raises(UserError, match=r"(?s)lmms-eval exited with code 1.*bad invocation"):
        evaluate_mm("/ckpt/FAIL", ["mme"], tmp_path / "mm2", instruction=INSTRUCTION)
