"""The TRL view: our parquet as GRPOTrainer's dataset, checked with TRL's and the processor's own code."""

from __future__ import annotations

import datafix
import pytest
from PIL import Image

from vlmrl.data.build import build_from_examples
from vlmrl.data.example import Example
from vlmrl.data.trl_view import to_trl_dataset
from vlmrl.errors import UserError


@pytest.fixture
def mixed_file(data_dir):
    examples = [
        Example("skywork/or1-math", 0, "math", "What is 2+2?", ["4", "4.0"], answer_type="number"),
        Example(
            "geometry3k",
            1,
            "train",
            "Compare <image> with <image>: which is larger?",
            ["A"],
            images=[datafix.png((60, 60)), datafix.jpeg((80, 60))],
            answer_type="choice",
            choices=["A", "B"],
        ),
    ]
    path = data_dir / "mixed.parquet"
    build_from_examples(examples, path, with_images=True, mixed_policy="native")
    return path


def test_columns_and_image_parts(mixed_file):
    ds = to_trl_dataset([mixed_file])
    assert set(ds.column_names) == {"prompt", "images", "ground_truth", "data_source", "extra_info"}
    text, image = ds[0], ds[1]
    assert text["images"] == [] and text["ground_truth"] == ["4", "4.0"]
    assert [p["type"] for p in text["prompt"][0]["content"]] == ["text"]
    assert [p["type"] for p in image["prompt"][0]["content"]] == ["text", "image", "text", "image", "text"]
    assert all(isinstance(img, Image.Image) for img in image["images"]) and len(image["images"]) == 2
    assert image["data_source"] == "geometry3k"
    assert image["extra_info"]["choices"] == ["A", "B"] and image["extra_info"]["answer_type"] == "choice"


def test_feeds_trl_and_the_processor(mixed_file, tiny_processor):
    from trl.data_utils import is_conversational, prepare_multimodal_messages

    ds = to_trl_dataset(mixed_file)
    assert is_conversational(ds[0]) and is_conversational(ds[1])
    # What GRPOTrainer does with a batch: fill image parts from `images`, template, then process.
    batch = [ds[1], ds[0]]
    prompts = [prepare_multimodal_messages(r["prompt"], images=r["images"]) for r in batch]
    texts = [
        tiny_processor.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts
    ]
    assert texts[0].count("<|vision_start|>") == 2 and "<|vision_start|>" not in texts[1]
    images = [img for r in batch for img in r["images"]]
    inputs = tiny_processor(text=texts, images=images, return_tensors="pt", padding=True)
    assert inputs["image_grid_thw"].shape[0] == 2


def test_bad_file_errors(data_dir):
    with pytest.raises(UserError, match="no such parquet file"):
        to_trl_dataset(data_dir / "absent.parquet")
