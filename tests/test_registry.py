"""Adding a data source or a benchmark is one file each (`vlmrl.utils.registry`).

The two files below are written to temporary folders that join the search path of
`vlmrl.data.sources` and `vlmrl.eval.benchmarks`: the same as dropping `dots.py` into
src/vlmrl/data/sources/ and src/vlmrl/eval/benchmarks/, with no other file of the project edited.
They are then used through the command line: listed, built into rows, evaluated against a server,
and reported in the table with their own column and footnote.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import vlmrl.data.sources as sources_package
import vlmrl.eval.benchmarks as benchmarks_package
from vlmrl.cli import app
from vlmrl.data.rows import read_rows
from vlmrl.eval.results import read_result
from vlmrl.testing.scripted_judge import ChatServer, chat_reply

SOURCE_FILE = '''
"""Dots: how many dots a picture shows (jsonl with `question`, `image` (a path), `answer`)."""

from vlmrl.data.sources import SourceInfo
from vlmrl.data.sources._common import check_options, make_example, read_images, read_options
from vlmrl.data.sources._common import row_problem, with_placeholders
from vlmrl.data.sources._io import base_dir_of, iter_records


def load(path=None, split="test", **options):
    check_options("dots", options, ())
    rows = iter_records(path, "", split, ("question", "image", "answer"), **read_options(options))
    for i, row in enumerate(rows):
        images = read_images([row["image"]], base_dir_of(path))
        question = with_placeholders(row["question"], len(images))
        yield make_example("dots", i, split, question, [row["answer"]], images, problem=row_problem(row))


SOURCE = SourceInfo("dots", "", "test", True, "dot counting pictures", load)
'''

BENCHMARK_FILE = '''
"""Dots: Pass@1 over n samples of counting the dots in a picture."""

from vlmrl.eval.benchmarks import TEXT, Benchmark

BENCHMARK = Benchmark("dots", "Dot counting", TEXT, 99, "Dots", notes="2 pictures")
'''


@pytest.fixture
def one_file_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`dots.py` in each registry package's search path; gone again after the test."""
    for package, text in ((sources_package, SOURCE_FILE), (benchmarks_package, BENCHMARK_FILE)):
        folder = tmp_path / "plugins" / package.__name__
        folder.mkdir(parents=True)
        (folder / "dots.py").write_text(text, encoding="utf-8")
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
    benchmarks_package.registry.cache_clear()
    yield
    benchmarks_package.registry.cache_clear()
    for package in (sources_package, benchmarks_package):
        sys.modules.pop(f"{package.__name__}.dots", None)
        if hasattr(package, "dots"):
            delattr(package, "dots")


def _dots_file(root: Path) -> Path:
    """Two pictures (3 and 5 dots) and their questions, as the source reads them."""
    root.mkdir()
    rows = []
    for i, n in enumerate((3, 5)):
        img = Image.new("RGB", (56, 56), "white")
        for k in range(n):
            img.putpixel((8 + 8 * k, 28), (0, 0, 0))
        img.save(root / f"p{i}.png")
        rows.append({"question": f"Picture {i}: how many dots?", "image": f"p{i}.png", "answer": str(n)})
    path = root / "dots.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_source_and_a_benchmark_are_one_file_each(one_file_each, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    runner = CliRunner()
    dots = _dots_file(tmp_path / "dots")

    listed = runner.invoke(app, ["data", "sources"])
    assert listed.exit_code == 0, listed.output
    assert "dots" in listed.output and "dot counting pictures" in listed.output

    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "data" / "dots.parquet"
    recipe.write_text(
        f"sources:\n  dots:\n    source: dots\n    path: {dots}\n"
        f"outputs:\n  dots:\n    path: {out}\n    sources: [dots]\n    shuffle: false\n"
        "    dedup: false\n    decontaminate: false\n",
        encoding="utf-8",
    )
    built = runner.invoke(app, ["data", "build", str(recipe)])
    assert built.exit_code == 0, built.output
    rows = list(read_rows(out))
    assert [r.ground_truth for r in rows] == [["3"], ["5"]]
    assert [len(r.images) for r in rows] == [1, 1]
    assert rows[0].prompt[0]["content"].startswith("<image>\nPicture 0: how many dots?")

    seen_images: list[bytes] = []

    def respond(body):  # counts the dark pixels of the picture it is sent
        parts = body["messages"][-1]["content"]
        url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        data = base64.b64decode(url.split(",", 1)[1])
        seen_images.append(data)
        with Image.open(io.BytesIO(data)) as im:
            n = sum(1 for px in im.convert("L").getdata() if px < 128)
        return chat_reply(f"<think>\ncounting\n</think>\n<answer>\n{n if n == 3 else n + 1}\n</answer>")

    server = ChatServer(respond)
    try:
        args = ["eval", "text", "--model", server.url, "--benchmarks", "dots", "--data", f"dots={dots}"]
        evaluated = runner.invoke(app, [*args, "--n", "2", "-o", str(tmp_path / "eval")])
    finally:
        server.close()
    assert evaluated.exit_code == 0, evaluated.output
    assert len(seen_images) == 4  # 2 pictures x 2 samples, each sent with its image
    result = read_result(tmp_path / "eval" / "results.json")
    assert result["scores"] == {"dots": 50.0}  # right on 3 dots, wrong on 5

    table = runner.invoke(app, ["report", "table", str(tmp_path / "eval" / "results.json")])
    assert table.exit_code == 0, table.output
    header = next(line for line in table.output.splitlines() if "Dots" in line and "|" in line)
    assert "50.0" in table.output.split(header, 1)[1]
    assert "Dots: Pass@1" in table.output
