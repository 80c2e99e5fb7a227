"""Synthetic math questions for the demo: text arithmetic, and PIL-drawn images of shapes to count.

Deterministic for a seed; every question has one exact integer answer, so the rule check decides it.
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


def arithmetic_example(index: int, split: str, rng: random.Random) -> Example:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    op = rng.choice(["+", "-", "*"])
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return Example(
        source="demo/arithmetic",
        index=index,
        split=split,
        question=f"What is {a} {op} {b}?",
        answers=[str(value)],
        answer_type="number",
        meta={"a": a, "b": b, "op": op},
    )


def counting_example(index: int, split: str, rng: random.Random) -> Example:
    target = rng.choice(SHAPES)
    counts = {shape: 0 for shape in SHAPES}
    counts[target] = rng.randint(1, 5)
    for other in SHAPES:
        if other != target:
            counts[other] = rng.randint(0, 2)
    return Example(
        source="demo/count_shapes",
        index=index,
        split=split,
        question=f"<image>How many {target}s are in the picture?",
        answers=[str(counts[target])],
        images=[draw_shapes(counts, rng)],
        answer_type="number",
        meta={"counts": counts, "target": target},
    )


def make_examples(n: int, split: str, seed: int = 0, image_fraction: float = 0.5) -> list[Example]:
    """`n` questions, about `image_fraction` of them image counting, the rest arithmetic, interleaved."""
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


def formatted_solution(example: Example) -> str:
    """A response in the reasoning format whose answer is right, for the warm-up's supervised steps."""
    meta = example.meta
    if "op" in meta:
        think = f"{meta['a']} {meta['op']} {meta['b']} = {example.answers[0]}"
    else:
        think = f"count the {meta['target']}s: {example.answers[0]}"
    return f"<think>\n{think}\n</think>\n<answer>\n{example.answers[0]}\n</answer>"
