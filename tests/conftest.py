"""Shared fixtures: the tiny offline VLM (built once per session) and temp data dirs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# No test may reach a model or dataset hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def tiny_vlm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the tiny Qwen2.5-VL (model, tokenizer, processor), seed 0."""
    from vlmrl.testing.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-vlm", seed=0)


@pytest.fixture(scope="session")
def tiny_processor(tiny_vlm_path: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_vlm_path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty directory for the files a test writes."""
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def vllm_server(tiny_vlm_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real vLLM OpenAI server (CPU) serving the tiny model as `tiny-verifier`, started once per
    session through `vlmrl verifier serve`. Teardown checks the CLI stops vLLM when it gets SIGTERM."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed in this environment")
    import real_servers

    server = real_servers.start_vllm_via_cli(tiny_vlm_path, tmp_path_factory.mktemp("vllm-server"))
    yield server
    code = real_servers.stop_cli(server.process)
    deadline = time.monotonic() + 30
    while server.inner_pid and real_servers.group_alive(server.inner_pid):
        if time.monotonic() > deadline:
            real_servers.kill_group(server.inner_pid)
            raise AssertionError(f"`vlmrl verifier serve` left vLLM (pid {server.inner_pid}) running")
        time.sleep(0.5)
    assert code == 0, f"`vlmrl verifier serve` exited {code} on SIGTERM:\n{server.log()[-3000:]}"
    assert not real_servers.port_open(server.port), "port still open after `vlmrl verifier serve` stopped"


@pytest.fixture(scope="session")
def transformers_server(tiny_vlm_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """`transformers serve` (a real OpenAI-compatible server the project did not write) on the tiny model."""
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in ("fastapi", "uvicorn")):
        pytest.skip("`transformers serve` needs fastapi and uvicorn")
    import real_servers

    base = tmp_path_factory.mktemp("transformers-serve")
    hub_cache = base / "hub"
    hub_cache.mkdir()
    server = real_servers.start_transformers_serve(tiny_vlm_path, base, hub_cache)
    yield server
    real_servers.stop_group(server.process)
