"""Evaluation serves Qwen3-VL: vLLM's CPU engine (the eval's `vllm` backend) answers text and image
requests on the tiny Qwen3-VL, its vision encoder profiled and run (no --skip-mm-profiling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import io, json, sys
    from PIL import Image, ImageDraw
    from vlmrl.eval.generation import GenerationRequest, SamplingParams, make_backend

    img = Image.new("RGB", (640, 480), "white")
    ImageDraw.Draw(img).ellipse((100, 100, 300, 300), fill="red")
    buf = io.BytesIO(); img.save(buf, format="PNG")
    backend = make_backend(
        "vllm", sys.argv[1], enforce_eager=True, dtype="float32", max_model_len=1024,
        gpu_memory_utilization=0.5,
    )
    requests = [
        GenerationRequest("text", ({"role": "user", "content": "What is 2 + 3?"},)),
        GenerationRequest("image", ({"role": "user", "content": "<image>\\nHow many circles?"},), (buf.getvalue(),)),
    ]
    out = {}
    backend.generate(requests, SamplingParams(temperature=0.0, max_new_tokens=6),
                     lambda r, c: out.__setitem__(r.key, [c.text, c.num_tokens, c.finish_reason]))
    backend.close()
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.slow
def test_vllm_backend_answers_text_and_image_on_qwen3_vl(tiny_qwen3_vl_path):
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed in this environment")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_qwen3_vl_path)],
        capture_output=True,
        text=True,
        timeout=600,
        # vLLM's INFO log names the model class it runs; set it here, whatever an earlier test left in
        # os.environ (a suite-wide VLLM_LOGGING_LEVEL=WARN hid it once)
        env=dict(
            os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_LOGGING_LEVEL="INFO", VLLM_CONFIGURE_LOGGING="1"
        ),
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert set(out) == {"text", "image"}
    for key, (text, num_tokens, finish) in out.items():
        assert 1 <= num_tokens <= 6 and finish in ("stop", "length"), (key, out)
        assert isinstance(text, str)
    assert "Qwen3VLForConditionalGeneration" in proc.stdout + proc.stderr  # vLLM's own Qwen3-VL model
