"""Preflight: data files, model path, GPU count, verifier over real loopback HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmrl.data.example import Example
from vlmrl.data.rows import example_to_row, row_schema
from vlmrl.data.writer import write_rows_parquet
from vlmrl.testing.scripted_judge import ChatServer, chat_reply
from vlmrl.train.config import load_config
from vlmrl.train.preflight import PreflightError, run_preflight


@pytest.fixture
def verifier_url():
    """A loopback OpenAI-compatible server that lists the model xVerify-0.5B-I."""
    with ChatServer(lambda body: chat_reply(""), models=("xVerify-0.5B-I",)) as server:
        yield f"{server.url}/v1"


def _free_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _write_rows(path: Path, *, images: bool) -> Path:
    question = ("<image>" if images else "") + "1+1?"
    ex = Example("mmk12" if images else "skywork/or1-math", 0, "train", question, ["2", "2.0"])
    ex.images = [b"\x89PNG fake"] if images else []
    write_rows_parquet([example_to_row(ex, with_images=images)], path, row_schema(images))
    return path


def _cfg(data_dir, tiny_vlm_path, *more):
    train = _write_rows(data_dir / "mixed.parquet", images=True)
    val = _write_rows(data_dir / "val.parquet", images=False)
    return load_config(
        None,
        [
            f"data.train_files=['{train}']",
            f"data.val_files=['{val}']",
            "data.mixed_policy=native",
            f"model.path='{tiny_vlm_path}'",
            "trainer.n_gpus_per_node=1",
            *more,
        ],
    )


def _by_name(report):
    return {c.name: c for c in report.checks}


def test_preflight_report_on_this_cpu_machine(data_dir, tiny_vlm_path, verifier_url, tmp_path):
    reward_file = tmp_path / "verl_entry.py"
    reward_file.write_text("def compute_score(**kw):\n    return 0.0\n")
    cfg = _cfg(
        data_dir, tiny_vlm_path, f"reward.verifier.url={verifier_url}", "reward.verifier.model=xVerify-0.5B-I"
    )
    report = run_preflight(cfg, reward_path=str(reward_file))
    checks = _by_name(report)
    assert checks["data (train)"].status == "ok" and "1 rows, images column" in checks["data (train)"].detail
    assert checks["model"].status == "ok" and "qwen2_5_vl" in checks["model"].detail
    assert checks["verifier"].status == "ok" and "xVerify-0.5B-I" in checks["verifier"].detail
    assert checks["reward"].status == "ok"
    # No GPU here: reported as a failure, which a real launch refuses and a dry run exits 1 on.
    assert checks["gpus"].status == "fail" and "0 GPU" in checks["gpus"].detail
    with pytest.raises(PreflightError, match="gpus"):
        report.raise_on_failure()


def test_verifier_serving_another_model_or_down(data_dir, tiny_vlm_path, verifier_url, tmp_path):
    cfg = _cfg(data_dir, tiny_vlm_path, f"reward.verifier.url={verifier_url}", "reward.verifier.model=other")
    check = _by_name(run_preflight(cfg, reward_path="/nonexistent/verl_entry.py"))["verifier"]
    assert check.status == "warn" and "not 'other'" in check.detail
    down = _free_port_url()
    for mode, status in (("warn", "warn"), ("fail", "fail")):
        cfg = _cfg(
            data_dir, tiny_vlm_path, f"reward.verifier.url={down}", f"reward.verifier.on_unreachable={mode}"
        )
        report = run_preflight(cfg, reward_path="/nonexistent/verl_entry.py")
        assert _by_name(report)["verifier"].status == status
        assert _by_name(report)["reward"].status == "fail"


def test_cluster_mode_defers_gpu_and_remote_data_checks(data_dir, tiny_vlm_path):
    cfg = _cfg(data_dir, tiny_vlm_path, "data.val_files=[/shared/not/here.parquet]", "trainer.nnodes=2")
    local = _by_name(run_preflight(cfg, reward_path="/x", cluster=False))
    assert local["gpus"].status == "fail" and "Ray cluster" in local["gpus"].detail
    assert local["data (val)"].status == "fail"
    cluster = _by_name(run_preflight(cfg, reward_path="/x", cluster=True))
    assert cluster["gpus"].status == "info"
    assert cluster["data (val)"].status == "warn" and "every Ray node" in cluster["data (val)"].detail


def test_model_path_checks(data_dir, tiny_vlm_path, tmp_path):
    hub = _by_name(
        run_preflight(
            _cfg(data_dir, tiny_vlm_path, "model.path=Qwen/Qwen2.5-VL-7B-Instruct"), reward_path="/x"
        )
    )
    assert hub["model"].status == "info"
    (tmp_path / "empty").mkdir()
    bad = _by_name(
        run_preflight(_cfg(data_dir, tiny_vlm_path, f"model.path={tmp_path / 'empty'}"), reward_path="/x")
    )
    assert bad["model"].status == "fail" and "config.json" in bad["model"].detail
    typo = _by_name(
        run_preflight(_cfg(data_dir, tiny_vlm_path, "model.path=./no/such/dir"), reward_path="/x")
    )
    assert typo["model"].status == "fail"


def test_reward_named_by_module_is_checked_by_import(data_dir, tiny_vlm_path):
    cfg = _cfg(data_dir, tiny_vlm_path)
    ok = _by_name(run_preflight(cfg, reward_path="pkg://vlmrl.reward.verl_entry"))["reward"]
    assert ok.status == "ok" and "every node" in ok.detail
    missing = "pkg://vlmrl.reward.no_such_entry"
    assert _by_name(run_preflight(cfg, reward_path=missing))["reward"].status == "fail"
    assert _by_name(run_preflight(cfg, reward_path=missing, cluster=True))["reward"].status == "warn"
