"""The hf backend on the tiny model (CPU), and the vllm backend's message when vLLM is absent."""

from __future__ import annotations

import importlib.util
import io

import pytest

from vlmrl.errors import UserError
from vlmrl.eval.generation import GenerationRequest, SamplingParams, make_backend


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (56, 56), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_hf_backend_generates_text_and_image_samples(tiny_vlm_path):
    backend = make_backend("hf", str(tiny_vlm_path), batch_size=3)
    requests = [
        GenerationRequest("t0", ({"role": "user", "content": "What is 2 + 2?"},)),
        GenerationRequest("t1", ({"role": "user", "content": "What is 2 + 2?"},), sample_index=1),
        GenerationRequest(
            "i0", ({"role": "user", "content": "<image>What colour is this?"},), images=(_png(),)
        ),
        GenerationRequest("t2", ({"role": "user", "content": "Find the sum of 3 and 4."},)),
    ]
    got = {}
    params = SamplingParams(temperature=1.0, top_p=1.0, top_k=-1, max_new_tokens=6, seed=0)
    backend.generate(requests, params, lambda r, c: got.__setitem__(r.key, c))
    assert sorted(got) == ["i0", "t0", "t1", "t2"]
    for completion in got.values():
        assert isinstance(completion.text, str)
        assert 1 <= completion.num_tokens <= 6
        assert completion.finish_reason in ("stop", "length")
        if completion.finish_reason == "length":
            assert completion.num_tokens == 6


def test_hf_greedy_is_deterministic(tiny_vlm_path):
    backend = make_backend("hf", str(tiny_vlm_path), batch_size=2)
    request = GenerationRequest("g", ({"role": "user", "content": "Compute 5 times 6."},))
    texts = []
    for _ in range(2):
        backend.generate(
            [request], SamplingParams(temperature=0.0, max_new_tokens=5), lambda r, c: texts.append(c.text)
        )
    assert texts[0] == texts[1]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_what_to_do():
    with pytest.raises(UserError, match=r"needs vLLM installed.*--backend openai.*--backend hf"):
        make_backend("vllm", "some/model")
