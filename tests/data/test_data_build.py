"""The build pipeline: rejects and counts, atomic outputs, shuffle, mixing, decontamination, the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import datafix
import pyarrow.parquet as pq
import pytest

from vlmrl.data.build import build_from_examples, build_recipe
from vlmrl.data.example import Example
from vlmrl.data.prompt import DEFAULT_INSTRUCTION
from vlmrl.data.recipe import load_recipe
from vlmrl.errors import UserError


def _rejects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _recipe(root: Path, sources: dict, outputs: dict, **extra):
    data = {"workers": 1, "rejects": str(root / "rejects.jsonl"), "sources": sources, "outputs": outputs}
    data.update(extra)
    return load_recipe(data=data)


def test_bad_rows_end_in_rejects_and_counts_add_up(data_dir):
    good = datafix.png()
    rows = [
        {
            "id": "ok",
            "subject": "m",
            "question": "Find the area of the square.",
            "image": {"bytes": good, "path": None},
            "answer": "$$4$$",
        },
        {
            "id": "corrupt",
            "subject": "m",
            "question": "Find the side.",
            "image": {"bytes": b"\x89PNGbroken", "path": None},
            "answer": "2",
        },
        {
            "id": "two",
            "subject": "m",
            "question": "<image> and <image>: which is larger?",
            "image": {"bytes": good, "path": None},
            "answer": "A",
        },
        {
            "id": "empty",
            "subject": "m",
            "question": "What is the perimeter?",
            "image": {"bytes": good, "path": None},
            "answer": "$$ $$",
        },
        {
            "id": "dup",
            "subject": "m",
            "question": "Find the  AREA of the square.",
            "image": {"bytes": good, "path": None},
            "answer": "4",
        },
    ]
    datafix.write_parquet(data_dir / "mmk12.parquet", rows)
    recipe = _recipe(
        data_dir,
        {"mmk12": {"source": "mmk12", "path": str(data_dir / "mmk12.parquet")}},
        {"train": {"path": str(data_dir / "train.parquet"), "sources": ["mmk12"]}},
    )
    (report,) = build_recipe(recipe).outputs
    assert report.read == 5 and report.kept == 1
    assert dict(report.rejected) == {
        "undecodable_image": 1,
        "image_placeholder_mismatch": 1,
        "missing_ground_truth": 1,
        "duplicate": 1,
    }
    assert report.balanced()
    rejects = {r["index"]: r for r in _rejects(data_dir / "rejects.jsonl")}
    assert {i: r["reason"] for i, r in rejects.items()} == {
        1: "undecodable_image",
        2: "image_placeholder_mismatch",
        3: "missing_ground_truth",
        4: "duplicate",
    }
    assert all(r["source"] == "mmk12" for r in rejects.values())
    assert "2 <image> placeholder(s) but 1 image(s)" in rejects[2]["detail"]
    assert pq.read_table(data_dir / "train.parquet").num_rows == 1


def test_missing_column_is_a_clear_error_and_nothing_is_written(data_dir):
    datafix.write_parquet(data_dir / "mmk12.parquet", [{"id": 1, "question": "q", "answer": "1"}])
    recipe = _recipe(
        data_dir,
        {"mmk12": {"source": "mmk12", "path": str(data_dir / "mmk12.parquet")}},
        {"train": {"path": str(data_dir / "out" / "train.parquet"), "sources": ["mmk12"]}},
    )
    with pytest.raises(UserError, match=r"mmk12\.parquet: missing column\(s\) 'image'"):
        build_recipe(recipe)
    assert not (data_dir / "out" / "train.parquet").exists()
    assert list((data_dir / "out").glob("*")) == []  # no temp files or shuffle buckets left behind
    assert not (data_dir / "rejects.jsonl").exists()


def test_crash_mid_write_leaves_no_file(data_dir):
    def examples():
        for i in range(600):
            yield Example("s", i, "train", f"question {i}", [str(i)], answer_type="number")
        raise RuntimeError("source died")

    out = data_dir / "train.parquet"
    with pytest.raises(RuntimeError, match="source died"):
        build_from_examples(examples(), out, chunk_rows=64)
    assert list(data_dir.iterdir()) == []


def test_shuffle_is_seeded_and_complete(data_dir, monkeypatch):
    import vlmrl.data.build as build_mod

    monkeypatch.setattr(build_mod, "BUCKET_ROWS", 7)  # several shuffle buckets with a small file
    path = datafix.skywork(data_dir / "sky.parquet", n=40)

    def run(seed: int, name: str) -> list[int]:
        recipe = _recipe(
            data_dir,
            {"sky": {"source": "skywork_or1_math", "path": str(path)}},
            {"train": {"path": str(data_dir / name), "sources": ["sky"]}},
            seed=seed,
            chunk_rows=5,
        )
        build_recipe(recipe)
        return [r["index"] for r in pq.read_table(data_dir / name).column("extra_info").to_pylist()]

    a, b, c = run(0, "a.parquet"), run(0, "b.parquet"), run(1, "c.parquet")
    assert a == b and a != c
    assert sorted(a) == list(range(40)) and a != list(range(40))
    assert pq.ParquetFile(data_dir / "a.parquet").metadata.num_row_groups > 1


def test_decontamination_and_mix_ratio(data_dir):
    paths = datafix.all_sources(data_dir)
    # One skywork question paraphrases an AIME question (n-gram overlap), another equals a MATH-500 one.
    rows = pq.read_table(paths["skywork"]).to_pylist()
    rows[2]["prompt"] = [
        {
            "role": "user",
            "content": "Please find the number of ordered pairs of integers (x, y) with x^2 + y^2 = 25 exactly.",
        }
    ]
    datafix.write_parquet(paths["skywork"], rows)
    recipe = _recipe(
        data_dir,
        {
            "sky": {"source": "skywork_or1_math", "path": str(paths["skywork"])},
            "mmk12": {"source": "mmk12", "path": str(paths["mmk12"])},
            "aime24": {"source": "aime24", "path": str(paths["aime24"])},
            "math500": {"source": "math500", "path": str(paths["math500"])},
        },
        {
            "train": {
                "path": str(data_dir / "train.parquet"),
                "sources": ["sky", "mmk12"],
                "mix_ratio": {"sky": 1, "mmk12": 1},
            }
        },
        decontamination={"against": ["aime24", "math500"], "ngram": 5, "threshold": 0.5},
    )
    (report,) = build_recipe(recipe).outputs
    assert dict(report.contamination) == {
        ("skywork/or1-math", "math500"): 1,
        ("skywork/or1-math", "aime24"): 1,
    }
    assert (
        report.rejected["contaminated_exact:math500"] == 1
        and report.rejected["contaminated_ngram:aime24"] == 1
    )
    # 4 clean text rows, 5 image rows, 1:1 -> 4 + 4
    assert dict(report.kept_by_source) == {"skywork/or1-math": 4, "mmk12": 4}
    assert report.sampled_out == 1 and report.balanced()


def test_blank_and_native_policies(data_dir):
    text = Example("t", 0, "train", "What is 2+2?", ["4"], answer_type="number")
    image = Example("m", 0, "train", "<image>\nWhat is shown?", ["a cat"], images=[datafix.png()])
    blank_file, native_file = data_dir / "blank.parquet", data_dir / "native.parquet"
    build_from_examples([text, image], blank_file, with_images=True, mixed_policy="blank")
    build_from_examples([text, image], native_file, with_images=True, mixed_policy="native")
    blank_rows = pq.read_table(blank_file).to_pylist()
    native_rows = pq.read_table(native_file).to_pylist()
    assert len(blank_rows[0]["images"]) == 1 and blank_rows[0]["prompt"][0]["content"].startswith("<image>\n")
    assert blank_rows[0]["extra_info"]["question"] == "What is 2+2?"
    assert native_rows[0]["images"] == [] and "<image>" not in native_rows[0]["prompt"][0]["content"]
    assert native_rows[1]["prompt"][0]["content"] == f"<image>\nWhat is shown?\n\n{DEFAULT_INSTRUCTION}"
    assert native_rows[1]["reward_model"] == {"style": "rule", "ground_truth": ["a cat"]}
    assert native_rows[1]["extra_info"] == {
        "index": 0,
        "split": "train",
        "question": "<image>\nWhat is shown?",
        "answer": "a cat",
        "answer_type": "expression",
        "choices": [],
        "source_id": "",
        "source_meta": "{}",
    }
    text_only = data_dir / "text.parquet"
    build_from_examples([text], text_only, instruction="")
    table = pq.read_table(text_only)
    assert "images" not in table.column_names
    assert table.to_pylist()[0]["prompt"][0]["content"] == "What is 2+2?"
    # images after a text-first example are never dropped silently: without with_images=True it is an error
    mixed = data_dir / "mixed.parquet"
    with pytest.raises(UserError, match=r"m:0 has 1 image\(s\).*with_images=True"):
        build_from_examples([text, image], mixed)
    assert not mixed.exists()


def test_image_pool_processes_images(data_dir):
    examples = [
        Example("m", i, "train", f"<image>\nQuestion {i}?", [str(i)], images=[datafix.png((20 + i, 20))])
        for i in range(12)
    ]
    report = build_from_examples(examples, data_dir / "pool.parquet", workers=2, chunk_rows=4)
    assert report.kept == 12 and report.images_changed == 12  # all below min_pixels: scaled up
    for row in pq.read_table(data_dir / "pool.parquet").to_pylist():
        w, h = datafix.Image.open(io.BytesIO(row["images"][0]["bytes"])).size
        assert w * h >= 56 * 56


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vlmrl.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.mark.slow
def test_cli_build_with_source_paths_and_inspect(data_dir):
    paths = datafix.all_sources(data_dir / "src")
    preset = Path(__file__).resolve().parents[2] / "configs" / "data" / "mixed.yaml"
    proc = _cli(
        "data",
        "build",
        str(preset),
        "workers=1",
        "outputs.train.mix_ratio=null",
        "--data",
        f"skywork={paths['skywork']}",
        "--data",
        f"mmk12={paths['mmk12']}",
        "--data",
        f"aime24={paths['aime24']}",
        "--source-path",  # the old spelling still works, with a warning
        f"math500={paths['math500']}",
        cwd=data_dir,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--source-path is deprecated; use --data" in proc.stderr
    assert "ok" in proc.stdout and "contaminated_exact:math500" in proc.stdout
    train = data_dir / "data" / "mixed" / "train.parquet"
    assert pq.read_table(train).num_rows == 10
    assert (data_dir / "data" / "mixed" / "rejects.jsonl").is_file()

    proc = _cli("data", "inspect", str(train), "--rows", "1", cwd=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "blank images" in proc.stdout and "5; vision tokens each: min 4" in proc.stdout
    assert "row 0" in proc.stdout

    bad = _cli("data", "build", str(preset), "--data", "nosuch=/x", cwd=data_dir)
    assert bad.returncode == 2 and "no source 'nosuch'" in bad.stderr and "Traceback" not in bad.stderr


def test_recipe_errors_name_the_key(data_dir):
    with pytest.raises(UserError, match="outputs.train.shuffel"):
        load_recipe(
            data={
                "sources": {"a": {"source": "aime24"}},
                "outputs": {"train": {"path": "x", "sources": ["a"], "shuffel": True}},
            }
        )
    with pytest.raises(UserError, match="'b' is not under `sources`"):
        load_recipe(
            data={
                "sources": {"a": {"source": "aime24"}},
                "outputs": {"train": {"path": "x", "sources": ["b"]}},
            }
        )


def test_a_source_option_beside_source_says_to_move_it_under_options(data_dir):
    # The `generic` source's column keys are options; beside `source:` pydantic alone says only
    # "Extra inputs are not permitted".
    with pytest.raises(UserError) as caught:
        load_recipe(
            data={
                "sources": {"mine": {"source": "generic", "path": "q.jsonl", "question_key": "problem"}},
                "outputs": {"train": {"path": "x", "sources": ["mine"]}},
            }
        )
    message = str(caught.value)
    assert "sources.mine.question_key" in message and "Extra inputs" not in message
    assert "move it to sources.mine.options.question_key" in message
    # ... and where it belongs, it is read as such.
    spec = load_recipe(
        data={
            "sources": {
                "mine": {"source": "generic", "path": "q.jsonl", "options": {"question_key": "problem"}}
            },
            "outputs": {"train": {"path": "x", "sources": ["mine"]}},
        }
    )
    assert spec.sources["mine"].options == {"question_key": "problem"}


def test_prompt_length_filter_and_inspect_with_tokenizer(data_dir, tiny_vlm_path):
    from vlmrl.data.inspect import inspect_parquet

    short = Example("t", 0, "train", "What is 1+1?", ["2"])
    long = Example("t", 1, "train", "Add these numbers: " + " + ".join(str(i) for i in range(300)), ["44850"])
    paths = {
        "t": datafix.write_jsonl(
            data_dir / "t.jsonl", [{"question": e.question, "answer": e.answers[0]} for e in (short, long)]
        )
    }
    recipe = _recipe(
        data_dir,
        {"t": {"source": "generic", "path": str(paths["t"])}},
        {"train": {"path": str(data_dir / "train.parquet"), "sources": ["t"], "shuffle": False}},
        tokenizer=str(tiny_vlm_path),
        max_prompt_length=400,
    )
    (report,) = build_recipe(recipe).outputs
    assert report.kept == 1 and dict(report.rejected) == {"prompt_too_long": 1}
    (reject,) = _rejects(data_dir / "rejects.jsonl")
    assert reject["index"] == 1 and "> 400" in reject["detail"]

    info = inspect_parquet(data_dir / "train.parquet", tokenizer=str(tiny_vlm_path))
    assert info.rows == 1 and len(info.prompt_tokens) == 1 and 20 < info.prompt_tokens[0] <= 400
