"""Shared fixtures: the tiny offline VLM (built once per session) and temp data dirs."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
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
    from vlmrl.tiny.qwen2_5_vl import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-vlm", seed=0)


@pytest.fixture(scope="session")
def tiny_qwen3_vl_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the tiny Qwen3-VL (model, tokenizer, processor), seed 0."""
    from vlmrl.tiny.qwen3_vl import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-qwen3-vl", seed=0)


@pytest.fixture(scope="session")
def tiny_processor(tiny_vlm_path: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_vlm_path)


@pytest.fixture
def silent_url():
    """http://127.0.0.1:PORT/v1 of a socket that accepts connections (the kernel's backlog) and never
    answers: every request to it times out."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}/v1"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty directory for the files a test writes."""
    d = tmp_path / "data"
    d.mkdir()
    return d


_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
# veRL's own recipes write fewer extra_info keys than we do; their files must pass too.
_EXTRA = pa.struct(
    [("index", pa.int64()), ("split", pa.string()), ("question", pa.string()), ("answer", pa.string())]
)


def _write_foreign(
    path: Path, *, images: bool, ground_truth_as_list: bool = True, drop: str | None = None
) -> Path:
    gt_type = pa.list_(pa.string()) if ground_truth_as_list else pa.string()
    gt = [["2", "2.0"]] if ground_truth_as_list else ["['2']"]
    columns = {
        "data_source": pa.array(["mmk12" if images else "skywork/or1-math"]),
        "prompt": pa.array(
            [[{"role": "user", "content": ("<image>" if images else "") + "1+1?"}]], _MESSAGES
        ),
        "ability": pa.array(["math"]),
        "reward_model": pa.array(
            [{"style": "rule", "ground_truth": gt[0]}],
            pa.struct([("style", pa.string()), ("ground_truth", gt_type)]),
        ),
        "extra_info": pa.array([{"index": 0, "split": "train", "question": "1+1?", "answer": "2"}], _EXTRA),
    }
    if images:
        columns["images"] = pa.array(
            [[{"bytes": b"\x89PNG fake"}]], pa.list_(pa.struct([("bytes", pa.binary())]))
        )
    if drop:
        columns.pop(drop)
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture
def foreign_parquet():
    """Writes a one-row parquet file in the row contract as veRL's own recipes do (fewer `extra_info`
    keys than ours), optionally broken: `(path, *, images, ground_truth_as_list=True, drop=None)`."""
    return _write_foreign


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
