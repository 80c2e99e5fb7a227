"""Data from files in the layouts the datasets are published in (written by the tests): what real
copies of MathVerse, Geometry3K, GPQA-Diamond, MATH-500 and AIME 2024 need from the build."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import datafix
import pyarrow.parquet as pq
import pytest

from vlmrl.data.build import build_recipe
from vlmrl.data.prompt import DEFAULT_INSTRUCTION
from vlmrl.data.recipe import load_recipe
from vlmrl.data.sources import load_examples
from vlmrl.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def _recipe(root: Path, sources: dict, outputs: dict, **extra):
    data = {"workers": 1, "rejects": str(root / "rejects.jsonl"), "sources": sources, "outputs": outputs}
    data.update(extra)
    return load_recipe(data=data)


def _rejects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _extra_info(path: Path) -> list[dict]:
    return pq.read_table(path).column("extra_info").to_pylist()


# ------------------------------------------------------------------------------------ dedup


def _mathverse(path: Path) -> Path:
    """MathVerse testmini's columns (AI4Math/MathVerse): one question asked of different diagrams."""
    question = "As shown in the figure, AB is the diameter of circle O. Find the measure of angle BCD."
    rows = [
        {"sample_index": str(i + 1), "problem_index": str(i + 1), "problem_version": "Text Dominant",
         "question": question, "image": {"bytes": datafix.png((40 + 8 * i, 40), (30 * i, 90, 20)), "path": None},
         "answer": answer, "question_type": "free-form", "metadata": {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry"}, "query_wo": question,
         "query_cot": question, "question_for_eval": question}
        for i, answer in enumerate(["30°", "45°", "60°"])
    ]  # fmt: skip
    return datafix.write_parquet(path, rows)


def test_same_question_with_other_images_or_answers_is_not_a_duplicate(data_dir):
    mathverse = _mathverse(data_dir / "mathverse" / "testmini.parquet")
    # Geometry3K's hub layout: "Find x." over and over, each with its own diagram; row 3 repeats row 0.
    diagrams = [datafix.jpeg((60 + i, 50)) for i in range(3)]
    g3k = [
        {"images": [{"bytes": diagrams[i % 3], "path": None}], "problem": "<image>Find x.",
         "answer": ["3", "7", "12", "3"][i], "id": str(i), "choices": ["3", "7", "12", "9"], "ground_truth": "A"}
        for i in range(4)
    ]  # fmt: skip
    datafix.write_parquet(data_dir / "geometry3k" / "train.parquet", g3k)
    recipe = _recipe(
        data_dir,
        {
            "mathverse": {"source": "generic", "path": str(mathverse),
                          "options": {"question_key": "question", "answer_key": "answer", "image_key": "image"}},
            "geometry3k": {"source": "geometry3k", "path": str(data_dir / "geometry3k")},
        },
        {"train": {"path": str(data_dir / "train.parquet"), "sources": ["mathverse", "geometry3k"],
                   "shuffle": False}},
    )  # fmt: skip
    (report,) = build_recipe(recipe).outputs
    assert report.kept == 6 and dict(report.rejected) == {"duplicate": 1}
    (reject,) = _rejects(data_dir / "rejects.jsonl")
    assert reject["source"] == "geometry3k" and reject["index"] == 3
    assert reject["detail"] == "same question, images and ground truth as geometry3k:0"


# ------------------------------------------------------------------------------------ umask


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_outputs_and_rejects_get_the_permissions_the_umask_gives(data_dir, umask, mode):
    math500 = datafix.math500(data_dir / "math500" / "test.parquet")
    recipe = _recipe(
        data_dir,
        {"math500": {"source": "math500", "path": str(math500)}},
        {"val": {"path": str(data_dir / "out" / "val.parquet"), "sources": ["math500"]}},
    )
    old = os.umask(umask)
    try:
        build_recipe(recipe)
    finally:
        os.umask(old)
    for path in (data_dir / "out" / "val.parquet", data_dir / "rejects.jsonl"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


# ------------------------------------------------------------------------------------ GPQA


GPQA_COLUMNS = [
    "Pre-Revision Question", "Pre-Revision Correct Answer", "Pre-Revision Incorrect Answer 1",
    "Pre-Revision Incorrect Answer 2", "Pre-Revision Incorrect Answer 3", "Pre-Revision Explanation",
    "Self-reported question-writing time (minutes)", "Question", "Correct Answer", "Incorrect Answer 1",
    "Incorrect Answer 2", "Incorrect Answer 3", "Explanation", "Revision Comments (from Question Writer)",
    "Subdomain", "Writer's Difficulty Estimate", "Extra Revised Question", "Extra Revised Explanation",
    "Extra Revised Correct Answer", "Extra Revised Incorrect Answer 1", "Extra Revised Incorrect Answer 2",
    "Extra Revised Incorrect Answer 3", "Non-Expert Validator Accuracy", "Majority Non-Expert Vals Incorrect",
    "Expert Validator Accuracy", "Record ID", "High-level domain",
]  # fmt: skip


def _gpqa_records(n: int = 12) -> list[dict]:
    records = []
    for i in range(n):
        rec = dict.fromkeys(GPQA_COLUMNS, "")
        rec.update(
            {
                "Question": f"Which of these is the product of reaction {i}? Consider the mechanism.",
                "Correct Answer": f"compound {i}-A",
                "Incorrect Answer 1": f"compound {i}-B",
                "Incorrect Answer 2": f"compound {i}-C",
                "Incorrect Answer 3": f"compound {i}-D",
                "Record ID": f"rec{i:03d}",
                "High-level domain": "Chemistry",
            }
        )
        records.append(rec)
    return records


def _write_gpqa(path: Path, records: list[dict], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.DictWriter(fh, GPQA_COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    return path


def test_gpqa_letters_do_not_depend_on_row_order(data_dir):
    records = _gpqa_records()
    forward = _write_gpqa(data_dir / "a" / "gpqa_diamond.csv", records)
    backward = _write_gpqa(data_dir / "b" / "gpqa_diamond.csv", records[::-1])

    def letters(path):
        return {
            ex.meta["record_id"]: (ex.answers[0], ex.question) for ex in load_examples("gpqa_diamond", path)
        }

    assert letters(forward) == letters(backward)
    assert len({letter for letter, _ in letters(forward).values()}) > 1  # still shuffled


def test_gpqa_in_gbk_reads_with_the_encoding_option(data_dir):
    records = _gpqa_records(2)
    records[0]["Question"] = "下列哪种化合物是反应的产物？"
    path = _write_gpqa(data_dir / "gpqa_diamond.csv", records, encoding="gbk")
    with pytest.raises(UserError, match=r"gpqa_diamond\.csv: not valid utf-8 text.*option `encoding`"):
        list(load_examples("gpqa_diamond", path))
    (first, _) = load_examples("gpqa_diamond", path, encoding="gbk")
    assert first.question.startswith("下列哪种化合物是反应的产物？")


def test_the_instruction_is_on_its_own_line_not_glued_to_option_d(data_dir):
    path = _write_gpqa(data_dir / "gpqa_diamond.csv", _gpqa_records(1))
    recipe = _recipe(
        data_dir,
        {"gpqa": {"source": "gpqa_diamond", "path": str(path)}},
        {"test": {"path": str(data_dir / "gpqa.parquet"), "sources": ["gpqa"]}},
    )
    build_recipe(recipe)
    content = pq.read_table(data_dir / "gpqa.parquet").column("prompt").to_pylist()[0][0]["content"]
    lines = content.split("\n")
    option_d = next(line for line in lines if line.startswith("D. "))
    assert option_d.startswith("D. compound 0-") and len(option_d) == len("D. compound 0-A")
    assert content.endswith("\n\n" + DEFAULT_INSTRUCTION)


# ----------------------------------------------------------------------- per-row problems


def _math500_jsonl(path: Path) -> Path:
    """MATH-500's published `test.jsonl`; line 2 lost its answer, line 3 is cut off."""
    lines = [
        json.dumps({"problem": "What is $1+1$?", "solution": "2", "answer": "2", "subject": "Algebra",
                    "level": 1, "unique_id": "test/algebra/1.json"}),
        json.dumps({"problem": "What is $2+2$?", "solution": "4", "subject": "Algebra", "level": 1,
                    "unique_id": "test/algebra/2.json"}),
        '{"problem": "What is $3+3$?", "solution": "6", "answ',
        json.dumps({"problem": "What is $4+4$?", "solution": "8", "answer": "8", "subject": "Algebra",
                    "level": 1, "unique_id": "test/algebra/4.json"}),
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_broken_row_is_rejected_and_the_build_goes_on(data_dir):
    path = _math500_jsonl(data_dir / "math500" / "test.jsonl")
    recipe = _recipe(
        data_dir,
        {"math500": {"source": "math500", "path": str(path)}},
        {"val": {"path": str(data_dir / "val.parquet"), "sources": ["math500"], "shuffle": False}},
    )
    (report,) = build_recipe(recipe).outputs
    assert report.read == 4 and report.kept == 2 and dict(report.rejected) == {"bad_record": 2}
    rejects = {r["index"]: r for r in _rejects(data_dir / "rejects.jsonl")}
    assert rejects[1]["detail"] == (
        f"{path}:2: missing field(s) 'answer' (has: problem, solution, subject, level, unique_id)"
    )
    assert rejects[2]["detail"].startswith(f"{path}:3: not valid JSON")
    assert [e["source_id"] for e in _extra_info(data_dir / "val.parquet")] == [
        "test/algebra/1.json",
        "test/algebra/4.json",
    ]


@pytest.mark.slow
def test_strict_stops_at_the_first_broken_row(data_dir):
    path = _math500_jsonl(data_dir / "math500" / "test.jsonl")
    recipe = data_dir / "recipe.yaml"
    recipe.write_text(
        json.dumps(
            {"workers": 1, "sources": {"math500": {"source": "math500", "path": str(path)}},
             "outputs": {"val": {"path": str(data_dir / "out" / "val.parquet"), "sources": ["math500"]}}}
        )
    )  # fmt: skip
    cmd = [sys.executable, "-m", "vlmrl.cli", "data", "build", str(recipe)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    strict = subprocess.run([*cmd, "--strict"], capture_output=True, text=True, timeout=120)
    assert strict.returncode == 2
    assert "math500 test row 1: bad_record" in strict.stderr and f"{path}:2" in strict.stderr
    assert "Traceback" not in strict.stderr


# --------------------------------------------------------------------------- Geometry3K


def _geometry3k_original(root: Path) -> Path:
    """Inter-GPS's release: <split>/<id>/data.json + img_diagram.png (answer = the choice's letter)."""
    problems = {
        "train": [("Find x.", ["3", "7", "12", "9"], "B"), ("Find the area of the figure.", ["24", "48", "12", "6"], "A")],
        "val": [("Find y.", ["2", "4", "6", "8"], "D")],
    }  # fmt: skip
    n = 0
    for split, items in problems.items():
        for text, choices, letter in items:
            folder = root / split / str(n)
            folder.mkdir(parents=True)
            (folder / "data.json").write_text(
                json.dumps({"id": n, "problem_text": text, "choices": choices, "answer": letter,
                            "problem_type_graph": ["Triangle"], "problem_type_goal": ["Length"],
                            "source": "textbook", "compact_text": text, "annotat_text": text, "unit": ""})
            )  # fmt: skip
            (folder / "img_diagram.png").write_bytes(datafix.png((50 + n, 40)))
            n += 1
    return root


def test_geometry3k_original_folder_layout(data_dir):
    root = _geometry3k_original(data_dir / "geometry3k")
    train = list(load_examples("geometry3k", str(root), split="train"))
    assert [ex.question for ex in train] == ["<image>\nFind x.", "<image>\nFind the area of the figure."]
    assert [ex.answers for ex in train] == [["7"], ["24"]]
    assert all(len(ex.images) == 1 and ex.images[0][:4] == b"\x89PNG" for ex in train)
    assert train[0].meta["choices_text"] == ["3", "7", "12", "9"]
    (val,) = load_examples("geometry3k", str(root), split="validation")
    assert val.answers == ["8"] and val.meta["id"] == 2


# --------------------------------------------------------------------- files and hints


def test_a_git_lfs_pointer_is_named_as_such(data_dir):
    pointer = data_dir / "aime_2024" / "aime_2024_problems.parquet"
    pointer.parent.mkdir()
    pointer.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 16123\n"
    )
    with pytest.raises(UserError, match=r"aime_2024_problems\.parquet: a git-LFS pointer file.*git lfs pull"):
        list(load_examples("aime24", str(pointer.parent)))


def test_missing_column_hints_name_the_options_the_source_takes(data_dir):
    datafix.write_parquet(data_dir / "m" / "test.parquet", [{"problem": "1+1?", "solution": "2"}])
    with pytest.raises(UserError, match="this source takes no column options") as no_options:
        list(load_examples("math500", str(data_dir / "m")))
    assert "map them with the source's options" not in str(no_options.value)
    datafix.write_parquet(data_dir / "a" / "train.parquet", [{"question": "1+1?", "solution": "2"}])
    with pytest.raises(UserError, match=r"option\(s\) problem_key, answer_key"):
        list(load_examples("aime24", str(data_dir / "a")))
    with pytest.raises(UserError, match=r"unknown option\(s\) question_key; allowed: encoding"):
        list(load_examples("math500", str(data_dir / "m"), question_key="q"))


# ------------------------------------------------------------- source ids, splits, decontam


def test_eval_recipe_keeps_source_ids_and_labels_rows_test(data_dir):
    aime = datafix.aime24(data_dir / "aime_2024" / "train.jsonl")
    math500 = datafix.math500(data_dir / "math500" / "test.parquet")
    gpqa = _write_gpqa(data_dir / "gpqa" / "gpqa_diamond.csv", _gpqa_records(2))
    os.chdir(data_dir)  # the recipe writes data/eval/ relative to the working directory
    recipe = load_recipe(
        REPO / "configs" / "data" / "eval.yaml",
        ["workers=1"],
        {"aime24": str(aime), "math500": str(math500), "gpqa_diamond": str(gpqa)},
    )
    build_recipe(recipe)
    aime_rows = _extra_info(data_dir / "data" / "eval" / "aime24.parquet")
    assert [r["split"] for r in aime_rows] == ["test", "test"]
    assert aime_rows[0]["source_id"] == "60"
    assert json.loads(aime_rows[0]["source_meta"]) == {"id": 60, "url": "https://x", "year": "2024"}
    gpqa_rows = _extra_info(data_dir / "data" / "eval" / "gpqa_diamond.parquet")
    assert [r["source_id"] for r in gpqa_rows] == ["rec000", "rec001"]
    assert {r["split"] for r in _extra_info(data_dir / "data" / "eval" / "math500.parquet")} == {"test"}


def test_a_contamination_reject_names_the_evaluation_problem(data_dir):
    math500 = datafix.math500(data_dir / "math500" / "test.parquet")
    train = datafix.write_jsonl(
        data_dir / "mine.jsonl",
        [
            {"question": "What is $\\frac{1}{2} + \\frac{1}{3}$?", "answer": "\\frac{5}{6}"},
            {"question": "Please compute 0 + 2, then add the number 0, and explain.", "answer": "2"},
            {"question": "How many sides has a hexagon?", "answer": "6"},
        ],
    )
    recipe = _recipe(
        data_dir,
        {"mine": {"source": "generic", "path": str(train)}, "math500": {"source": "math500", "path": str(math500)}},
        {"train": {"path": str(data_dir / "train.parquet"), "sources": ["mine"], "shuffle": False}},
        decontamination={"against": ["math500"], "ngram": 3, "threshold": 0.3},
    )  # fmt: skip
    (report,) = build_recipe(recipe).outputs
    assert report.kept == 1
    rejects = {r["index"]: r for r in _rejects(data_dir / "rejects.jsonl")}
    assert rejects[0]["reason"] == "contaminated_exact:math500"
    assert (
        rejects[0]["detail"] == "same text as math500 problem #0 'What is $\\\\frac{1}{2} + \\\\frac{1}{3}$?'"
    )
    assert rejects[1]["reason"] == "contaminated_ngram:math500"
    assert (
        rejects[1]["detail"]
        == "62% of its n-grams in math500 problem #1 'Compute 0 + 2, then add the number 0.'"
    )
