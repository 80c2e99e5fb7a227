"""Small fixture files in the published column layouts of each source (no hub), for tests/data."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def png(size=(40, 30), color=(200, 30, 30), mode="RGB") -> bytes:
    out = io.BytesIO()
    img = Image.new("RGB", size, color)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(out, format="PNG")
    return out.getvalue()


def jpeg(size=(64, 48), color=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


def write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def skywork(path: Path, n: int = 6) -> Path:
    """Skywork-OR1 `math` layout: chat `prompt`, ground truth a string holding a Python list."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "data_source": "train-math-deepscaler",
                "prompt": [
                    {"role": "user", "content": f"Compute {i} + {i + 2}, then add the number {i * 7}."}
                ],
                "ability": "math",
                "reward_model": {
                    "ground_truth": str([str(2 * i + 2 + i * 7), f"{2 * i + 2 + i * 7}.0"]),
                    "style": "rule",
                },
                "extra_info": {"index": 1000 + i, "model_difficulty": {"DeepSeek-R1-Distill-Qwen-1.5B": i}},
            }
        )
    return write_parquet(path, rows)


def mmk12(path: Path, n: int = 5) -> Path:
    """MMK12 layout: one `image` struct {bytes, path}, `$$`-wrapped LaTeX answers."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"mmk12-{i}",
                "subject": "math",
                "question": f"In the figure, triangle number {i} has legs {i + 3} and {i + 4}. Find the area.",
                "image": {"bytes": png((30 + 10 * i, 40), (i * 40, 100, 50)), "path": None},
                "answer": f"$${(i + 3) * (i + 4) / 2:g}$$",
            }
        )
    return write_parquet(path, rows)


def geometry3k(path: Path, n: int = 4) -> Path:
    """geometry3k layout: `images` list, `problem` with `<image>`, free-form `answer`, option strings."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "images": [{"bytes": jpeg((60 + i, 50)), "path": None}],
                "problem": f"<image>Find x in polygon {i} so that the angle is {30 + i} degrees.",
                "answer": str(30 + i),
                "id": str(i),
                "choices": [str(30 + i), "12", "7", "9"],
                "ground_truth": "A",
            }
        )
    return write_parquet(path, rows)


def aime24(path: Path) -> Path:
    rows = [
        {"id": 60 + i, "problem": q, "solution": "...", "answer": a, "url": "https://x", "year": "2024"}
        for i, (q, a) in enumerate(
            [
                ("Find the number of ordered pairs of integers (x, y) with x^2 + y^2 = 25.", "12"),
                ("Let $N$ be the greatest four-digit integer with a property. Find $N$ mod 1000.", "699"),
            ]
        )
    ]
    return write_jsonl(path, rows)


def math500(path: Path) -> Path:
    rows = [
        {
            "problem": "What is $\\frac{1}{2} + \\frac{1}{3}$?",
            "solution": "...",
            "answer": "\\frac{5}{6}",
            "subject": "Algebra",
            "level": 1,
            "unique_id": "test/algebra/1.json",
        },
        {
            "problem": "Compute 0 + 2, then add the number 0.",
            "solution": "...",
            "answer": "2",
            "subject": "Prealgebra",
            "level": 1,
            "unique_id": "test/prealgebra/2.json",
        },
    ]
    return write_parquet(path, rows)


def gpqa(path: Path) -> Path:
    cols = [
        "Record ID",
        "Question",
        "Correct Answer",
        "Incorrect Answer 1",
        "Incorrect Answer 2",
        "Incorrect Answer 3",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        for i in range(3):
            w.writerow(
                {
                    "Record ID": f"rec{i}",
                    "Question": f"Which particle {i} is a lepton?",
                    "Correct Answer": "electron",
                    "Incorrect Answer 1": "proton",
                    "Incorrect Answer 2": "neutron",
                    "Incorrect Answer 3": "pion",
                }
            )
    return path


def all_sources(root: Path) -> dict[str, Path]:
    return {
        "skywork": skywork(root / "skywork" / "math.parquet"),
        "mmk12": mmk12(root / "mmk12" / "train.parquet"),
        "geometry3k": geometry3k(root / "geometry3k" / "train.parquet"),
        "aime24": aime24(root / "aime24.jsonl"),
        "math500": math500(root / "math500.parquet"),
        "gpqa": gpqa(root / "gpqa_diamond.csv"),
    }
