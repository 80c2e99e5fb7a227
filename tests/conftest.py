"""Shared fixtures: the tiny offline VLM (built once per session) and temp data dirs."""

from __future__ import annotations

import os
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
