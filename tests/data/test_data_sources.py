"""Each source read from small local files in its published column layout (no hub)."""

from __future__ import annotations

import datafix
import pytest

from vlmrl.data.normalize import infer_answer_type, normalize_answer, parse_answer_list, read_ground_truth
from vlmrl.data.sources import get_source, load_examples, source_names
from vlmrl.data.sources._io import SourceError
from vlmrl.errors import UserError


def test_registry_names():
    assert set(source_names()) >= {
        "skywork_or1_math",
        "mmk12",
        "geometry3k",
        "aime24",
        "math500",
        "gpqa_diamond",
        "generic",
    }
    assert all(get_source(name).name == name for name in source_names())  # one file per source
    with pytest.raises(UserError, match="unknown data source 'nope'"):
        load_examples("nope", path="x")


def test_skywork_keeps_every_acceptable_answer(data_dir):
    path = datafix.skywork(data_dir / "sky.parquet", n=3)
    examples = list(load_examples("skywork_or1_math", path=path))
    assert [e.index for e in examples] == [0, 1, 2]
    assert examples[1].answers == ["11", "11.0"]
    assert examples[1].source == "skywork/or1-math" and examples[1].split == "math"
    assert examples[1].question.startswith("Compute 1 + 3")
    assert examples[1].answer_type == "number" and examples[1].images == []
    assert examples[1].meta["original_index"] == 1001


def test_answer_list_is_parsed_as_literal_never_evaluated():
    assert parse_answer_list("['3', '\\\\frac{1}{2}']") == ["3", "\\frac{1}{2}"]
    assert parse_answer_list("[0, 1)") == ["[0, 1)"]  # an interval, not a list
    assert parse_answer_list("[1, 2]") == ["[1, 2]"]  # not a list of strings: one answer
    payload = "[__import__('os').system('echo pwned')]"
    assert parse_answer_list(payload) == [payload]


def test_a_published_ground_truth_is_read_then_normalised_in_one_rule():
    assert read_ground_truth("['$3$', '3', '\\\\boxed{4}']") == ["3", "4"]
    assert read_ground_truth(["5", "", " 5 "]) == ["5"]
    assert read_ground_truth("[0, 1)") == ["[0, 1)"]
    assert read_ground_truth(None) == []


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("$$\\frac{3}{4}$$", "\\frac{3}{4}"),
        ("$5$", "5"),
        ("\\boxed{x+1}", "x+1"),
        ("  7. ", "7"),
        ("\\(2\\)", "2"),
        ("$5$ and $6$", "$5$ and $6$"),  # two math spans: left whole, not half-unwrapped
        ("\\(a\\), \\(b\\)", "\\(a\\), \\(b\\)"),
        ("$$x^2$$", "x^2"),
    ],
)
def test_normalize_answer(raw, normalised):
    assert normalize_answer(raw) == normalised


def test_answer_types():
    assert infer_answer_type("42") == "number"
    assert infer_answer_type("-3.5") == "number"
    assert infer_answer_type("\\frac{1}{2}") == "expression"
    assert infer_answer_type("B", ["A", "B", "C", "D"]) == "choice"
    assert infer_answer_type("the triangle is isosceles") == "text"


def test_mmk12_single_image_and_dollar_answers(data_dir):
    path = datafix.mmk12(data_dir / "mmk12" / "train.parquet", n=3)
    examples = list(load_examples("mmk12", path=data_dir / "mmk12"))  # a directory works too
    assert len(examples) == 3
    ex = examples[0]
    assert ex.question.startswith("<image>\n") and len(ex.images) == 1
    assert ex.images[0].startswith(b"\x89PNG")
    assert ex.answers == ["6"] and ex.meta == {"id": "mmk12-0", "subject": "math"}
    assert path.is_file()


def test_mmk12_multiple_choice_becomes_letter(data_dir):
    datafix.write_parquet(
        data_dir / "test.parquet",
        [
            {
                "id": "t",
                "subject": "math",
                "question": "Which is largest?\nA. 1\nB. 2\nC. 3\nD. 4",
                "image": {"bytes": datafix.png(), "path": None},
                "answer": "D",
            }
        ],
    )
    (ex,) = load_examples("mmk12", path=data_dir / "test.parquet", split="test")
    assert ex.answer_type == "choice" and ex.choices == ["A", "B", "C", "D"] and ex.answers == ["D"]


def test_geometry3k_image_list(data_dir):
    path = datafix.geometry3k(data_dir / "g.parquet", n=2)
    ex = list(load_examples("geometry3k", path=path))[1]
    assert ex.question.count("<image>") == 1 and len(ex.images) == 1
    assert ex.images[0][:2] == b"\xff\xd8"
    assert ex.answers == ["31"] and ex.meta["choices_text"][0] == "31"


def test_eval_sets(data_dir):
    aime = list(load_examples("aime24", path=datafix.aime24(data_dir / "a.jsonl")))
    assert [e.answers for e in aime] == [["12"], ["699"]] and aime[0].meta["id"] == 60
    math = list(load_examples("math500", path=datafix.math500(data_dir / "m.parquet")))
    assert math[0].answers == ["\\frac{5}{6}"] and math[0].answer_type == "expression"
    assert math[0].split == "test" and math[0].meta["unique_id"] == "test/algebra/1.json"


def test_gpqa_seeded_shuffle(data_dir):
    path = datafix.gpqa(data_dir / "gpqa.csv")
    a = list(load_examples("gpqa_diamond", path=path, seed=0))
    b = list(load_examples("gpqa_diamond", path=path, seed=0))
    assert [e.question for e in a] == [e.question for e in b]
    for ex in a:
        letter = ex.answers[0]
        # `choices` records the options' texts in A-D order, so the reward maps a text to its letter.
        assert ex.answer_type == "choice" and ex.choices == [ex.meta["options"][k] for k in "ABCD"]
        assert ex.choices["ABCD".index(letter)] == "electron"
        assert f"\n{letter}. electron" in ex.question and ex.meta["options"][letter] == "electron"
    letters = {
        tuple(e.answers[0] for e in load_examples("gpqa_diamond", path=path, seed=s)) for s in range(8)
    }
    assert len(letters) > 1  # the seed matters


def test_generic_column_mapping(data_dir):
    img = datafix.png()
    (data_dir / "pic.png").write_bytes(img)
    datafix.write_jsonl(
        data_dir / "mine.jsonl",
        [{"q": "How many sides? <image>", "gold": "['4', 'four']", "pic": "pic.png", "level": 2}],
    )
    (ex,) = load_examples(
        "generic",
        path=data_dir / "mine.jsonl",
        question_key="q",
        answer_key="gold",
        image_key="pic",
        data_source="my-set",
    )
    assert ex.source == "my-set" and ex.answers == ["4", "four"] and ex.images == [img]
    assert ex.meta == {"level": 2}
    with pytest.raises(UserError, match="unknown option"):
        list(load_examples("generic", path=data_dir / "mine.jsonl", questionkey="q"))


def test_missing_column_names_file_and_column(data_dir):
    path = datafix.write_parquet(data_dir / "bad.parquet", [{"problem": "x"}])
    with pytest.raises(SourceError, match=r"bad\.parquet.*'answer'"):
        list(load_examples("math500", path=path))
    with pytest.raises(SourceError, match="no such file"):
        list(load_examples("aime24", path=data_dir / "absent.jsonl"))


def test_hub_path_through_datasets_streaming(data_dir):
    """The `datasets.load_dataset` path (used for hub ids) run on a local directory: images stay bytes."""
    import datasets

    img = datafix.png((50, 40))
    features = datasets.Features(
        {
            "images": datasets.List(datasets.Image()),
            "problem": datasets.Value("string"),
            "answer": datasets.Value("string"),
        }
    )
    ds = datasets.Dataset.from_dict(
        {"images": [[{"bytes": img, "path": None}]], "problem": ["<image>Find x."], "answer": ["$$5$$"]},
        features=features,
    )
    (data_dir / "hub" / "data").mkdir(parents=True)
    ds.to_parquet(str(data_dir / "hub" / "data" / "train-00000-of-00001.parquet"))
    (ex,) = load_examples(
        "generic", hub_id=str(data_dir / "hub"), question_key="problem", image_key="images", data_source="geo"
    )
    assert ex.images == [img] and ex.answers == ["5"] and ex.question == "<image>Find x."
