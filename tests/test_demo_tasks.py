"""The demo's synthetic tasks and its answer-weighted warm-up, checked against what they claim."""

from __future__ import annotations

import io
import random
import re

import pytest

from vlmrl.data.decontam import dedup_key
from vlmrl.demo import synthetic
from vlmrl.reward.score import compute_score


def test_held_out_questions_are_new_and_both_kinds_are_present():
    train, test = synthetic.make_splits(256, 128, seed=0)
    train_keys = {dedup_key(e) for e in train}
    assert not train_keys & {dedup_key(e) for e in test}
    for split in (train, test):
        kinds = [synthetic.kind_of(e.source) for e in split]
        assert kinds.count("image") == kinds.count("text") == len(split) // 2


class _Digits(random.Random):
    """An rng whose `randint` deals the digits of one triple, in order."""

    def __init__(self, digits):
        super().__init__(0)
        self._next = iter(digits)

    def randint(self, a, b):
        return next(self._next)


def test_an_exhausted_question_space_is_an_error_not_a_repeat():
    everything = {
        dedup_key(synthetic.largest_digit_example(0, "x", _Digits(map(int, f"{i:03d}")))) for i in range(1000)
    }
    assert len(everything) == 1000  # every digit triple, so nothing is left to draw
    with pytest.raises(ValueError, match="could not draw a text question"):
        synthetic.make_examples(1, "test", seed=0, image_fraction=0.0, exclude=everything)


def test_text_answers_are_the_largest_digit():
    for ex in synthetic.make_examples(64, "train", seed=1, image_fraction=0.0):
        digits = [int(d) for d in re.findall(r"\d", ex.question)]
        assert len(digits) == 3 and ex.answers == [str(max(digits))]


def test_image_answers_name_the_colour_drawn():
    from PIL import Image

    numbers = {name: i for i, name in enumerate(synthetic.COLOURS, start=1)}
    for ex in synthetic.make_examples(64, "train", seed=1, image_fraction=1.0):
        assert ex.question == synthetic.COLOUR_QUESTION and len(ex.images) == 1
        image = Image.open(io.BytesIO(ex.images[0])).convert("RGB")
        assert image.size == (synthetic.COLOUR_IMAGE_SIDE,) * 2
        # the shape's pixels are the one non-white colour in the picture
        drawn = [c for _n, c in image.getcolors() if c != (255, 255, 255)]
        name = next(n for n, rgb in synthetic.COLOURS.items() if rgb in drawn)
        assert ex.answers == [str(numbers[name])]
        assert f"{numbers[name]} = {name}" in ex.question


@pytest.mark.parametrize("kind", ["text", "image"])
def test_the_real_reward_passes_the_teacher_and_fails_its_slips(kind):
    fraction = 1.0 if kind == "image" else 0.0
    for ex in synthetic.make_examples(40, "train", seed=2, image_fraction=fraction):
        info = {"answer_type": ex.answer_type, "question": ex.question}
        right = compute_score(ex.source, synthetic.formatted_solution(ex), ex.answers, info)
        slip = compute_score(ex.source, synthetic.formatted_solution(ex, slip=True), ex.answers, info)
        assert (right["acc"], right["format_ok"]) == (1, 1)
        assert (slip["acc"], slip["format_ok"]) == (0, 1)


def _demo_rows(tmp_path, n: int):
    from vlmrl.data.build import build_from_examples
    from vlmrl.data.trl_view import to_trl_dataset

    examples = synthetic.make_examples(n, "train", seed=4)
    path = tmp_path / "train.parquet"
    build_from_examples(
        examples, path, instruction=synthetic.INSTRUCTION, with_images=True, mixed_policy="native"
    )
    rows = list(to_trl_dataset([path]))
    by_index = {e.index: e for e in examples}
    return rows, [synthetic.formatted_solution(by_index[r["extra_info"]["index"]]) for r in rows]


def test_answer_weights_cover_exactly_the_answer_tokens(tiny_processor, tmp_path):
    from vlmrl.demo.warmup import encode_batch

    rows, responses = _demo_rows(tmp_path, 6)
    batch = encode_batch(tiny_processor, rows, responses, answer_weight=5.0)
    for i, response in enumerate(responses):
        heavy = batch["input_ids"][i][batch["loss_weights"][i] == 5.0]
        answer = response.split("<answer>")[1].split("</answer>")[0]
        assert tiny_processor.tokenizer.decode(heavy).strip() == answer.strip() != ""
        assert bool(((batch["loss_weights"][i] == 5.0) <= (batch["labels"][i] != -100)).all())
    assert "loss_weights" not in encode_batch(tiny_processor, rows, responses)


def test_unit_weights_give_the_models_own_loss(tiny_vlm_path, tiny_processor, tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText

    from vlmrl.demo.warmup import encode_batch, weighted_loss

    rows, responses = _demo_rows(tmp_path, 4)
    batch = encode_batch(tiny_processor, rows, responses)
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_path, dtype=torch.float32)
    with torch.no_grad():
        out = model(**batch)
        ones = torch.ones(batch["labels"].shape)
        assert weighted_loss(out.logits, batch["labels"], ones).item() == pytest.approx(
            out.loss.item(), rel=1e-5
        )
        heavy = encode_batch(tiny_processor, rows, responses, answer_weight=5.0)["loss_weights"]
        assert weighted_loss(out.logits, batch["labels"], heavy).item() != pytest.approx(out.loss.item())
