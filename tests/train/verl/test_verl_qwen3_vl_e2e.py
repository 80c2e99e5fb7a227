"""`vlmrl train configs/train/qwen3vl_mixed.yaml --smoke`: Qwen3-VL through veRL 0.9.1's own trainer here.

One smoke run, started as a user would (the CLI, the preset, `--out` and the data files; no
`--smoke-model`: the preset's family picks the tiny Qwen3-VL), shared by every test here; veRL starts
twice (2 steps + checkpoint, then 1 resumed step). The data is natively mixed (text rows carry no
image) with real-size pictures (640x480 and 480x640), in a fixed order so that step 1 trains on text
rows only (veRL's Qwen3-VL forward with no pixels) and step 2 on image rows only. A reward that varies
with every response (verl_test_reward.py, through `extra_overrides`) gives both steps a gradient.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TEST_REWARD = Path(__file__).with_name("verl_test_reward.py")
#: (kind, ground truth) in dataloader order (data.shuffle=false), two prompts a step
ORDER = [("text", "1001"), ("text", "1002"), ("image", "2001"), ("image", "2002")]


def _picture(rng: random.Random, width: int, height: int) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x, y = rng.randint(0, width - 120), rng.randint(0, height - 120)
        draw.ellipse((x, y, x + 100, y + 100), fill=rng.choice(["red", "blue", "green"]))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _write(path: Path) -> None:
    from vlmrl.data.build import build_from_examples
    from vlmrl.data.example import make_example

    rng = random.Random(0)
    examples = []
    for i, (kind, answer) in enumerate(ORDER):
        if kind == "image":
            size = (640, 480) if i % 2 == 0 else (480, 640)
            image = _picture(rng, *size)
            examples.append(
                make_example("demo/count", i, "train", "<image>\nHow many circles?", [answer], [image])
            )
        else:
            examples.append(make_example("demo/arithmetic", i, "train", f"What is {i} + 1?", [answer]))
    report = build_from_examples(examples, path, with_images=True, mixed_policy="native")
    assert report.kept == len(ORDER) and report.images == 2


def _ours(marker: str) -> list[int]:
    """Live processes whose environment names this run's metrics file (every process veRL started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry))
    return found


@pytest.fixture(scope="session")
def qwen3_smoke(tmp_path_factory):
    from typer.testing import CliRunner

    from vlmrl.cli import app

    base = tmp_path_factory.mktemp("verl_qwen3_vl")
    data = base / "given"
    data.mkdir()
    _write(data / "train.parquet")
    _write(data / "val.parquet")
    out = base / "smoke"
    dump = base / "rollouts"
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(ROOT / "configs" / "train" / "qwen3vl_mixed.yaml"),
            "--smoke",
            "--out",
            str(out),
            f"data.train_files=[{data / 'train.parquet'}]",
            f"data.val_files=[{data / 'val.parquet'}]",
            "data.shuffle=false",
            "algorithm.lr=1e-3",
            f"extra_overrides=[reward.custom_reward_function.path={TEST_REWARD},trainer.rollout_data_dir={dump}]",
        ],
        env={"COLUMNS": "200"},
    )
    summary = (
        json.loads((out / "smoke_summary.json").read_text()) if (out / "smoke_summary.json").is_file() else {}
    )
    return result, summary, out, dump


def test_every_stage_passes_on_the_tiny_qwen3_vl(qwen3_smoke):
    result, summary, out, _ = qwen3_smoke
    assert result.exit_code == 0, (result.output, summary)
    assert summary["ok"] is True and set(summary["stages"].values()) == {"ok"}, summary["stages"]
    assert summary["family"] == "qwen3_vl" and summary["steps"] == 3
    model = Path(summary["model"])
    assert json.loads((model / "config.json").read_text())["model_type"] == "qwen3_vl"
    # veRL patched the Qwen3-VL model class (its own monkey patch, for text-only and image micro-batches)
    log = (out / "logs" / "train.log").read_text()
    assert "Monkey patch Qwen3VLForConditionalGeneration model forward" in log


def test_text_only_and_image_steps_both_train(qwen3_smoke):
    _, summary, _, dump = qwen3_smoke
    rows = [
        json.loads(line) for line in Path(summary["train_metrics"]).read_text().splitlines() if line.strip()
    ]
    metrics = {int(r["step"]): r["data"] for r in rows}
    assert sorted(metrics) == [1, 2]
    kinds = {}
    for step in (1, 2):
        samples = [
            json.loads(line) for line in (dump / f"{step}.jsonl").read_text().splitlines() if line.strip()
        ]
        answers = " ".join(str(s["gts"]) for s in samples)
        has_text = re.search(r"\b1\d{3}\b", answers) is not None
        has_image = re.search(r"\b2\d{3}\b", answers) is not None
        kinds[step] = "mixed" if has_text and has_image else "text" if has_text else "image"
        assert metrics[step]["actor/grad_norm"] > 0, f"step {step}: zero gradient"
    assert kinds == {1: "text", 2: "image"}


def test_export_is_a_qwen3_vl_model_that_generates_from_an_image(qwen3_smoke):
    import torch
    from PIL import Image
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    _, summary, _, _ = qwen3_smoke
    hf = Path(summary["exported_model"])
    assert json.loads((hf / "config.json").read_text())["model_type"] == "qwen3_vl"
    assert summary["generated"]
    processor = AutoProcessor.from_pretrained(hf)
    model = Qwen3VLForConditionalGeneration.from_pretrained(hf, dtype=torch.float32)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many circles?"}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (640, 480), "white")], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_no_process_of_the_run_is_left(qwen3_smoke):
    _, summary, out, _ = qwen3_smoke
    # VERL_FILE_LOGGER_PATH names this run's metrics files: every process veRL started inherited it
    assert _ours(str(out / "run")) == []
