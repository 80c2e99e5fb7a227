"""Small local copies of the seed's four lmms-eval datasets, each in its hub repo's layout (the files
and dataset card `huggingface-cli download --repo-type dataset REPO --local-dir DIR` makes, images
embedded as the hub stores them), with the columns lmms-eval 0.7.3's task utils read.

`vlmrl eval mm --data TASK=DIR` points lmms-eval's task at such a directory.
"""

from __future__ import annotations

import io
from pathlib import Path

import datasets
from PIL import Image

COLOURS = ("red", "blue", "green", "white", "black", "yellow")


def png(i: int, size: int = 56) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), COLOURS[i % len(COLOURS)]).save(buf, "PNG")
    return buf.getvalue()


def _card(path: Path, config: str, split: str, data_file: str) -> None:
    """The dataset card's `configs:` header, which is how the hub maps a config and split to files."""
    path.write_text(
        f"---\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: {split}\n    path: {data_file}\n---\n"
    )


# MME (lmms-lab-encoder/MME): data/test-*.parquet, default config, split `test`.
# Two questions per image, as MME pairs them; 2 perception and 2 cognition categories.
MME_CATEGORIES = ("count", "existence", "numerical_calculation", "code_reasoning")


def write_mme_copy(root: Path) -> Path:
    rows: dict[str, list] = {k: [] for k in ("question_id", "image", "question", "answer", "category")}
    for i, category in enumerate(MME_CATEGORIES):
        for answer in ("Yes", "No"):
            rows["question_id"].append(f"{category}/{i}.png")
            rows["image"].append({"bytes": png(i), "path": None})
            rows["question"].append(f"Is the picture number {i} {answer.lower()}? Please answer yes or no.")
            rows["answer"].append(answer)
            rows["category"].append(category)
    features = datasets.Features(
        {
            "question_id": datasets.Value("string"),
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "category": datasets.Value("string"),
        }
    )
    (root / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        root / "data" / "test-00000-of-00001.parquet"
    )
    return root


# MathVerse (CaraJ/MathVerse-lmmseval, config `testmini`): testmini.parquet, split `testmini`.
MATHVERSE = (
    # (question_type, answer, question)
    ("multi-choice", "B", "In the figure, what is the angle x?\nChoices:\nA:30\nB:60\nC:90\nD:120"),
    ("free-form", "5", "The square in the figure has side 5. What is its side length?"),
)


def write_mathverse_copy(root: Path) -> Path:
    rows: dict[str, list] = {
        k: []
        for k in (
            "sample_index", "problem_index", "problem_version", "question", "image", "answer",
            "question_type", "metadata", "query_wo", "query_cot", "question_for_eval",
        )
    }  # fmt: skip
    for i, (kind, answer, question) in enumerate(MATHVERSE):
        rows["sample_index"].append(str(i + 1))
        rows["problem_index"].append(str(i + 1))
        rows["problem_version"].append("Text Dominant")
        rows["question"].append(question)
        rows["image"].append({"bytes": png(i), "path": None})
        rows["answer"].append(answer)
        rows["question_type"].append(kind)
        rows["metadata"].append(
            {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"}
        )
        ask = "answer the option letter" if kind == "multi-choice" else "answer the question"
        rows["query_wo"].append(f"Please directly {ask} and provide the final answer.\nQuestion: {question}")
        rows["query_cot"].append(f"Please first conduct reasoning, then {ask}.\nQuestion: {question}")
        rows["question_for_eval"].append(question)
    features = datasets.Features(
        {
            **{k: datasets.Value("string") for k in rows if k not in ("image", "metadata")},
            "image": datasets.Image(),
            "metadata": {k: datasets.Value("string") for k in ("split", "source", "subject", "subfield")},
        }
    )
    root.mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(root / "testmini.parquet")
    _card(root / "README.md", "testmini", "testmini", "testmini.parquet")
    return root


# MathVista (AI4Math/MathVista): data/testmini-*.parquet (and data/test-*), split `testmini`.
MATHVISTA = (
    # (question_type, answer_type, answer, choices, question)
    ("multi_choice", "text", "red", ["red", "blue", "green"], "What colour is the square?"),
    ("free_form", "integer", "4", None, "How many corners does the square have?"),
)


def write_mathvista_copy(root: Path) -> Path:
    keys = (
        "pid", "question", "image", "decoded_image", "choices", "unit", "precision", "answer",
        "question_type", "answer_type", "metadata", "query",
    )  # fmt: skip
    rows: dict[str, list] = {k: [] for k in keys}
    for i, (qtype, atype, answer, choices, question) in enumerate(MATHVISTA):
        rows["pid"].append(str(i + 1))
        rows["question"].append(question)
        rows["image"].append(f"images/{i + 1}.png")
        rows["decoded_image"].append({"bytes": png(i), "path": None})
        rows["choices"].append(choices)
        rows["unit"].append(None)
        rows["precision"].append(None)
        rows["answer"].append(answer)
        rows["question_type"].append(qtype)
        rows["answer_type"].append(atype)
        rows["metadata"].append(
            {
                "category": "math-targeted-vqa",
                "context": "synthetic scene",
                "grade": "elementary school",
                "img_height": 56,
                "img_width": 56,
                "language": "english",
                "skills": ["arithmetic reasoning"],
                "source": "vlmrl-test",
                "source_type": "VQA",
                "split": "testmini",
                "task": "figure question answering",
            }
        )
        hint = (
            "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
            if choices
            else "Hint: Please answer the question requiring an integer answer and provide the final value, "
            "e.g., 1, 2, 3, at the end."
        )
        options = (
            "\nChoices:\n" + "\n".join(f"({chr(65 + j)}) {c}" for j, c in enumerate(choices))
            if choices
            else ""
        )
        rows["query"].append(f"{hint}\nQuestion: {question}{options}")
    string = datasets.Value("string")
    features = datasets.Features(
        {
            "pid": string,
            "question": string,
            "image": string,
            "decoded_image": datasets.Image(),
            "choices": datasets.Sequence(string),
            "unit": string,
            "precision": datasets.Value("float64"),
            "answer": string,
            "question_type": string,
            "answer_type": string,
            "metadata": {
                "category": string,
                "context": string,
                "grade": string,
                "img_height": datasets.Value("int64"),
                "img_width": datasets.Value("int64"),
                "language": string,
                "skills": datasets.Sequence(string),
                "source": string,
                "source_type": string,
                "split": string,
                "task": string,
            },
            "query": string,
        }
    )
    (root / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        root / "data" / "testmini-00000-of-00001.parquet"
    )
    _card(root / "README.md", "default", "testmini", "data/testmini-*")
    return root


# MMStar (Lin-Chen/MMStar, config `mmstar`): mmstar.parquet, split `val`.
MMSTAR = (
    # (answer, category, l2_category, question)
    ("A", "math", "geometry", "Which shape is shown?\nOptions: A: square, B: circle, C: triangle, D: star"),
    ("C", "coarse perception", "image scene and topic", "What is the colour?\nOptions: A: red, B: blue, C: green, D: white"),
)  # fmt: skip


def write_mmstar_copy(root: Path) -> Path:
    rows: dict[str, list] = {
        k: [] for k in ("index", "question", "image", "answer", "category", "l2_category", "meta_info")
    }
    for i, (answer, category, l2, question) in enumerate(MMSTAR):
        rows["index"].append(i)
        rows["question"].append(question)
        rows["image"].append({"bytes": png(i), "path": None})
        rows["answer"].append(answer)
        rows["category"].append(category)
        rows["l2_category"].append(l2)
        rows["meta_info"].append({"source": "vlmrl-test", "split": "val", "image_path": f"images/{i}.png"})
    string = datasets.Value("string")
    features = datasets.Features(
        {
            "index": datasets.Value("int64"),
            "question": string,
            "image": datasets.Image(),
            "answer": string,
            "category": string,
            "l2_category": string,
            "meta_info": {"source": string, "split": string, "image_path": string},
        }
    )
    root.mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(root / "mmstar.parquet")
    _card(root / "README.md", "mmstar", "val", "mmstar.parquet")
    return root


WRITERS = {
    "mme": write_mme_copy,
    "mathverse_testmini": write_mathverse_copy,
    "mathvista_testmini_format": write_mathvista_copy,
    "mmstar": write_mmstar_copy,
}
