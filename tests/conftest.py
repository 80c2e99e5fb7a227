"""Shared fixtures: the tiny offline VLM (built once per session) and temp data dirs."""

from __future__ import annotations

import os
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
