"""Fixtures for the training tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """The tiny model runs fastest on one thread, and the test machine's cores are shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
