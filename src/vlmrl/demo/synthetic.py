"""Synthetic questions for the demo: the largest of three digits (text), a shape's colour (image).

Deterministic for a seed; every question has one exact integer answer, so the rule check decides it
in-process. Both tasks suit the tiny model: picking the largest digit is one attention look-up, and a
shape's colour is what a tiny vision tower's patch embedding reads first. The question spaces are large
(1000 digit triples; shapes of random kind, size and place), so held-out questions are new ones:
`make_splits` keeps the held-out split disjoint from the training split.
"""

from __future__ import annotations

import io
import random
from collections.abc import Collection

from vlmrl.data.decontam import dedup_key
from vlmrl.data.example import Example
from vlmrl.data.prompt import IMAGE_PLACEHOLDER

SHAPES = ("circle", "square", "triangle")
# The image task's colours, numbered in this order in the question (answers 1..4).
COLOURS = {
    "red": (220, 40, 40),
    "green": (30, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
}
IMAGE_SIDE = 112  # 16 vision tokens for Qwen2.5-VL's 28-pixel merged patches: cheap on a CPU
COLOUR_IMAGE_SIDE = 56  # the colour task's pictures: 4 vision tokens (the tiny processor's minimum)
COLOUR_QUESTION = (
    IMAGE_PLACEHOLDER
    + "What colour is the shape? "
    + ", ".join(f"{i} = {name}" for i, name in enumerate(COLOURS, start=1))
)
# The demo's prompts carry no reasoning instruction: the tiny model cannot read one, it learns the
# format from the warm-up, and every prompt token costs CPU time in every stage.
INSTRUCTION = ""
TEXT_SOURCE = "demo/largest_digit"
IMAGE_SOURCE = "demo/shape_colour"


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _fill(draw, kind: str, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=colour)


def draw_shape(
    kind: str, colour: tuple[int, int, int], rng: random.Random, side: int = COLOUR_IMAGE_SIDE
) -> bytes:
    """PNG of one filled `kind` (circle, square, triangle) of a random size and place, on white."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    size = rng.randint(side // 2, side * 7 // 8)
    x0, y0 = rng.randint(0, side - size), rng.randint(0, side - size)
    _fill(draw, kind, (x0, y0, x0 + size, y0 + size), colour)
    return _png(image)


def draw_shapes(counts: dict[str, int], rng: random.Random, side: int = IMAGE_SIDE) -> bytes:
    """PNG of `counts[shape]` non-overlapping shapes on white, each in a random colour (one per cell)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    cell = side // 4  # a 4x4 grid of slots keeps shapes apart, so the count is unambiguous
    slots = rng.sample([(r, c) for r in range(4) for c in range(4)], sum(counts.values()))
    kinds = [shape for shape, n in counts.items() for _ in range(n)]
    for (row, col), kind in zip(slots, kinds, strict=True):
        x0, y0 = col * cell + 3, row * cell + 3
        _fill(draw, kind, (x0, y0, x0 + cell - 6, y0 + cell - 6), rng.choice(list(COLOURS.values())))
    return _png(image)


def largest_digit_example(index: int, split: str, rng: random.Random) -> Example:
    digits = [rng.randint(0, 9) for _ in range(3)]
    return Example(
        source=TEXT_SOURCE,
        index=index,
        split=split,
        question=f"What is the largest of {digits[0]}, {digits[1]} and {digits[2]}?",
        answers=[str(max(digits))],
        answer_type="number",
        meta={"kind": "text", "digits": digits},
    )


def shape_colour_example(index: int, split: str, rng: random.Random) -> Example:
    number = rng.randint(1, len(COLOURS))
    name = list(COLOURS)[number - 1]
    kind = rng.choice(SHAPES)
    return Example(
        source=IMAGE_SOURCE,
        index=index,
        split=split,
        question=COLOUR_QUESTION,
        answers=[str(number)],
        images=[draw_shape(kind, COLOURS[name], rng)],
        answer_type="number",
        meta={"kind": "image", "shape": kind, "colour": name},
    )


def kind_of(data_source: str) -> str:
    """'text' or 'image' for a demo row's `data_source`."""
    return "image" if data_source == IMAGE_SOURCE else "text"


def make_examples(
    n: int, split: str, seed: int = 0, image_fraction: float = 0.5, exclude: Collection[str] = ()
) -> list[Example]:
    """`n` questions, about `image_fraction` of them image (colour), the rest text (largest digit).

    Questions whose `vlmrl.data.decontam.dedup_key` (the build's own "same problem") is in `exclude`
    are drawn again, so a held-out split can be kept disjoint from the training one.
    """
    if not 0.0 <= image_fraction <= 1.0:
        raise ValueError(f"image_fraction must be in [0, 1], got {image_fraction}")
    # Different splits draw from different streams, so held-out questions are new draws.
    rng = random.Random(f"{seed}-{split}")
    n_images = round(n * image_fraction)
    kinds = ["image"] * n_images + ["text"] * (n - n_images)
    rng.shuffle(kinds)
    out = []
    for i, kind in enumerate(kinds):
        draw = shape_colour_example if kind == "image" else largest_digit_example
        for _attempt in range(1000):
            example = draw(i, split, rng)
            if dedup_key(example) not in exclude:
                break
        else:
            raise ValueError(f"{split}: could not draw a {kind} question outside the excluded ones")
        out.append(example)
    return out


def make_splits(
    train_size: int, eval_size: int, seed: int = 0, image_fraction: float = 0.5
) -> tuple[list[Example], list[Example]]:
    """The demo's training and held-out questions; no held-out question is also a training one."""
    train = make_examples(train_size, "train", seed, image_fraction)
    test = make_examples(eval_size, "test", seed, image_fraction, exclude={dedup_key(e) for e in train})
    return train, test


def formatted_solution(example: Example, slip: bool = False) -> str:
    """A worked response in the reasoning format, for the warm-up's supervised steps.

    `slip=True` is the sloppy teacher's version: the same reasoning, a wrong answer (the next digit,
    or the next colour's number).
    """
    value = int(example.answers[0])
    if example.meta.get("kind") == "image":
        think = "read the colour"
        if slip:
            value = value % len(COLOURS) + 1
    else:
        think = "find the largest"
        if slip:
            value = (value + 1) % 10
    # A fixed line of reasoning per task: the one thing to learn is the answer, right after it.
    return f"<think>\n{think}\n</think>\n<answer>\n{value}\n</answer>"
