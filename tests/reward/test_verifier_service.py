"""Starting, probing and stopping a server process (`vlmrl.reward.verifier_service`), with real programs that
are not vLLM: one that exits at once, and Python's own HTTP server, which never lists a model."""

from __future__ import annotations

import sys

import pytest

from real_servers import free_port, group_alive, port_open
from vlmrl.errors import UserError
from vlmrl.reward import verifier_service as sv
from vlmrl.testing.scripted_judge import Script, ScriptedJudge
from vlmrl.train.preflight import check_verifier


def test_vllm_command_carries_the_settings_and_extra_arguments():
    cmd = sv.serve_command(
        "/models/xVerify-0.5B-I", host="127.0.0.1", port=9001, dtype="float32", extra=["--enforce-eager"]
    )
    assert cmd[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    text = " ".join(cmd)
    assert "--served-model-name xVerify-0.5B-I" in text and "--port 9001" in text
    assert "--generation-config vllm" in text and cmd[-1] == "--enforce-eager"
    assert sv.client_url("0.0.0.0", 9001) == "http://127.0.0.1:9001/v1"


def test_a_server_that_exits_before_it_is_ready_is_an_error_with_its_log(tmp_path):
    command = [sys.executable, "-c", "import sys; print('no such model: /x', flush=True); sys.exit(3)"]
    server = sv.start_server(command, "http://127.0.0.1:9/v1", "x", log_path=tmp_path / "server.log")
    with pytest.raises(UserError, match=r"(?s)exited with code 3 before it was ready.*no such model: /x"):
        sv.wait_until_ready(server, timeout_s=60, poll_s=0.1)
    assert server.stop() == 3


def test_a_server_that_never_lists_the_model_times_out_and_is_stopped(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    server = sv.start_server(command, f"http://127.0.0.1:{port}/v1", "x", log_path=tmp_path / "server.log")
    try:
        with pytest.raises(UserError, match=r"did not list 'x' within 1 s.*--ready-timeout"):
            sv.wait_until_ready(server, timeout_s=1, poll_s=0.2)
    finally:
        server.stop(grace_s=5)
    assert server.process.returncode is not None
    assert not group_alive(server.pid) and not port_open(port)


def test_a_verifier_that_answers_too_slowly_is_named_with_its_url_and_the_setting():
    # The judge lists its model at once but takes 5 s per judgement; the check waits 0.5 s.
    with ScriptedJudge(Script(delay_s=5.0)) as judge:
        report = sv.check_verifier(judge.url, judge.model_name, timeout_s=0.5)
    assert report.failures == 2
    for row in report.results[1:]:
        assert f"no answer from {judge.url}/chat/completions within 0.5 s" in row.got, row.got
        assert "reward.verifier.timeout_s" in row.got and "--timeout-s" in row.got
        assert "TimeoutError" not in row.got


def test_a_models_list_that_never_comes_names_the_url_and_the_setting(silent_url):
    url = silent_url
    report = sv.check_verifier(url, "m", timeout_s=0.5)
    ok, detail = check_verifier(url, "m", timeout_s=0.5)  # the preflight's check: the same words
    assert report.results[0].got == f"{url}/models: no answer within 0.5 s (raise --timeout-s)"
    assert not ok and detail == f"{url}/models: no answer within 0.5 s (raise reward.verifier.timeout_s)"


def test_a_served_model_name_the_server_does_not_list_fails_without_judging():
    with ScriptedJudge() as judge:
        report = sv.check_verifier(judge.url, "other", timeout_s=5)
        assert judge.script.requests == 0
    assert report.failures == 1 and report.results[-1].got == judge.model_name
    assert "lists 'other'" in report.results[-1].check


def test_a_server_beyond_loopback_always_requires_a_key():
    assert sv.server_api_key("127.0.0.1", None) == (None, False)  # this machine only: a key is optional
    assert sv.server_api_key("127.0.0.1", "mine") == ("mine", False)
    assert sv.server_api_key("0.0.0.0", "mine") == ("mine", False)
    key, generated = sv.server_api_key("0.0.0.0", None)
    assert generated and len(key) >= 24 and key != sv.server_api_key("0.0.0.0", None)[0]
    assert sv.server_api_key("::", None)[1] and sv.server_api_key("10.1.2.3", None)[1]
    line = sv.export_lines("0.0.0.0", 8888, "xv", key)
    assert (
        line
        == f"export REWARD_MODEL_URL=http://<this host>:8888/v1 REWARD_MODEL_NAME=xv REWARD_MODEL_API_KEY={key}"
    )


def test_verifier_serve_dry_run_says_where_the_key_comes_from(monkeypatch):
    from typer.testing import CliRunner

    from vlmrl.cli import app

    monkeypatch.delenv("REWARD_MODEL_API_KEY", raising=False)
    runner = CliRunner()
    every = runner.invoke(app, ["verifier", "serve", "--model", "/m/xv", "--dry-run"])
    assert every.exit_code == 0 and every.output.startswith(
        "VLLM_API_KEY=<generated at start> python -m vllm"
    )
    local = runner.invoke(app, ["verifier", "serve", "--model", "/m/xv", "--host", "127.0.0.1", "--dry-run"])
    assert local.exit_code == 0 and local.output.startswith("python -m vllm")
    given = runner.invoke(
        app, ["verifier", "serve", "--model", "/m/xv", "--dry-run"], env={"REWARD_MODEL_API_KEY": "s3"}
    )
    assert "VLLM_API_KEY=<--api-key>" in given.output and "s3" not in given.output  # the secret is not echoed
