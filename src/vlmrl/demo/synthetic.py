"""Synthetic math questions for the demo: adding two small digits, and PIL-drawn shapes to count.

Deterministic for a seed; every question has one exact integer answer, so the rule check decides it.
Both tasks have a small answer space, so the tiny model can learn them on a CPU in minutes.
"""

from __future__ import annotations

import io
import random

from vlmrl.data.example import Example

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (30, 160, 60)}
IMAGE_SIDE = 112  # 16 vision tokens for Qwen2.5-VL's 28-pixel merged patches: cheap on a CPU


def draw_shapes(counts: dict[str, int], rng: random.Random, side: int = IMAGE_SIDE) -> bytes:
    """PNG of `counts[shape]` non-overlapping shapes on white, each in a random colour."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    cell = side // 4  # a 4x4 grid of slots keeps shapes apart, so the count is unambiguous
    slots = rng.sample([(r, c) for r in range(4) for c in range(4)], sum(counts.values()))
    kinds = [shape for shape, n in counts.items() for _ in range(n)]
    for (row, col), kind in zip(slots, kinds, strict=True):
        x0, y0 = col * cell + 3, row * cell + 3
        x1, y1 = x0 + cell - 6, y0 + cell - 6
        colour = rng.choice(list(COLOURS.values()))
        if kind == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == "square":
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=colour)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


MAX_ADDEND = 5  # text questions add two digits 0..5: 36 questions, answers 0..10
MAX_SHAPES = 4  # image questions count 1..4 shapes, one per 28-pixel cell (= one merged vision token)


def arithmetic_example(index: int, split: str, rng: random.Random) -> Example:
    a, b = rng.randint(0, MAX_ADDEND), rng.randint(0, MAX_ADDEND)
    return Example(
        source="demo/addition",
        index=index,
        split=split,
        question=f"What is {a} + {b}?",
        answers=[str(a + b)],
        answer_type="number",
        meta={"kind": "text", "a": a, "b": b},
    )


def counting_example(index: int, split: str, rng: random.Random) -> Example:
    n = rng.randint(1, MAX_SHAPES)
    kinds = [rng.choice(SHAPES) for _ in range(n)]
    counts = {shape: kinds.count(shape) for shape in SHAPES}
    return Example(
        source="demo/count_shapes",
        index=index,
        split=split,
        question="<image>How many shapes are in the picture?",
        answers=[str(n)],
        images=[draw_shapes(counts, rng)],
        answer_type="number",
        meta={"kind": "image", "counts": counts},
    )


def kind_of(data_source: str) -> str:
    """'text' or 'image' for a demo row's `data_source`."""
    return "image" if data_source == "demo/count_shapes" else "text"


def make_examples(n: int, split: str, seed: int = 0, image_fraction: float = 0.5) -> list[Example]:
    """`n` questions, about `image_fraction` of them image counting, the rest addition, interleaved."""
    if not 0.0 <= image_fraction <= 1.0:
        raise ValueError(f"image_fraction must be in [0, 1], got {image_fraction}")
    # Different splits draw from different streams, so held-out questions are new draws.
    rng = random.Random(f"{seed}-{split}")
    n_images = round(n * image_fraction)
    kinds = ["image"] * n_images + ["text"] * (n - n_images)
    rng.shuffle(kinds)
    return [
        counting_example(i, split, rng) if kind == "image" else arithmetic_example(i, split, rng)
        for i, kind in enumerate(kinds)
    ]


def formatted_solution(example: Example, slip: bool = False) -> str:
    """A worked response in the reasoning format, for the warm-up's supervised steps.

    `slip=True` is the sloppy teacher's version: the same reasoning, an answer one too high.
    """
    value = int(example.answers[0]) + (1 if slip else 0)
    # A fixed line of reasoning per task: the one thing to learn is the answer, right after it.
    think = "add the two numbers" if example.meta.get("kind") == "text" else "count the shapes"
    return f"<think>\n{think}\n</think>\n<answer>\n{value}\n</answer>"
