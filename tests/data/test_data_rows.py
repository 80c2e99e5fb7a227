"""The row format: footer checks on real (also foreign) parquet files, row checks, and the engine views."""

from __future__ import annotations

import pytest

from vlmrl.data.example import Example
from vlmrl.data.inspect import inspect_parquet
from vlmrl.data.rows import check_file, check_row, read_rows, row_from_example, row_schema
from vlmrl.data.writer import write_rows_parquet
from vlmrl.errors import UserError


def test_footer_accepts_contract_rows(data_dir, foreign_parquet):
    assert check_file(foreign_parquet(data_dir / "t.parquet", images=False)) == (1, False)
    assert check_file(foreign_parquet(data_dir / "m.parquet", images=True)) == (1, True)
    # A string ground truth, as other tools write it: one answer (here a Python-literal list string).
    text = foreign_parquet(data_dir / "s.parquet", images=False, ground_truth_as_list=False)
    assert check_file(text) == (1, False)
    assert [row.ground_truth for row in read_rows(text)] == [["2"]]


def test_footer_refuses_a_ground_truth_that_is_neither_string_nor_list(data_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = data_dir / "int.parquet"
    table = pa.table(
        {
            "data_source": ["x"],
            "prompt": [[{"role": "user", "content": "q"}]],
            "reward_model": [{"style": "rule", "ground_truth": 2}],
            "extra_info": [{"index": 0}],
        }
    )
    pq.write_table(table, path)
    for reader in (check_file, read_rows, inspect_parquet):
        with pytest.raises(
            UserError,
            match=r"int\.parquet: reward_model.ground_truth must be a list of strings .* or a string",
        ):
            list(reader(path)) if reader is read_rows else reader(path)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"drop": "reward_model"}, "missing column 'reward_model'"),
        ({"drop": "prompt"}, "missing column 'prompt'"),
    ],
)
def test_footer_errors_name_file_and_column(data_dir, foreign_parquet, kwargs, needle):
    path = foreign_parquet(data_dir / "bad.parquet", images=False, **kwargs)
    for reader in (check_file, read_rows, inspect_parquet):  # every reader checks the footer the same way
        with pytest.raises(UserError) as err:
            list(reader(path)) if reader is read_rows else reader(path)
        assert str(path) in str(err.value) and needle in str(err.value)


def test_not_parquet_and_missing_file(data_dir):
    junk = data_dir / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(UserError, match="not a readable parquet"):
        check_file(junk)
    with pytest.raises(UserError, match="no such parquet file"):
        check_file(data_dir / "absent.parquet")


def test_written_rows_read_back_as_the_same_row(data_dir):
    ex = Example("m", 3, "train", "<image>\nHow many?", ["2", "two"], images=[b"img"], answer_type="number")
    row = row_from_example(ex, instruction="Think.")
    path = data_dir / "r.parquet"
    write_rows_parquet([row.to_verl(with_images=True)], path, row_schema(True))
    (back,) = read_rows(path)
    assert back == row
    assert back.prompt == [{"role": "user", "content": "<image>\nHow many?\n\nThink."}]
    assert back.extra_info["choices"] == [] and back.extra_info["index"] == 3


def test_views_of_one_row():
    ex = Example("m", 0, "train", "Compare <image> and <image>.", ["A"], images=[b"a", b"b"])
    row = row_from_example(ex, instruction="")
    verl = row.to_verl()
    assert verl["images"] == [{"bytes": b"a"}, {"bytes": b"b"}] and verl["reward_model"]["ground_truth"] == [
        "A"
    ]
    assert "images" not in row_from_example(Example("t", 0, "train", "1+1?", ["2"])).to_verl()
    trl = row.to_trl()
    assert [p["type"] for p in trl["prompt"][0]["content"]] == ["text", "image", "text", "image", "text"]
    blank = row_from_example(Example("t", 0, "train", "1+1?", ["2"]), blank_image=b"blank")
    assert blank.images == [b"blank"] and blank.prompt[0]["content"].startswith("<image>\n")
    assert blank.extra_info["question"] == "1+1?"


def test_rows_are_checked_with_where_and_key_named():
    good = row_from_example(Example("t", 0, "train", "q", ["1"])).to_verl()
    assert check_row(good).ground_truth == ["1"]
    assert check_row({**good, "reward_model": {"ground_truth": "1"}}).ground_truth == ["1"]
    # a string ground truth is read as the build reads published ones (Skywork's literal-list strings)
    listed = {**good, "reward_model": {"ground_truth": "['2', '2.0']"}}
    assert check_row(listed).ground_truth == ["2", "2.0"]
    assert check_row({**good, "reward_model": {"ground_truth": "[0, 1)"}}).ground_truth == ["[0, 1)"]
    with pytest.raises(UserError, match=r"f row 1: `reward_model.ground_truth`"):
        check_row({**good, "reward_model": {"ground_truth": []}}, "f row 1")
    with pytest.raises(UserError, match=r"here: 1 <image> placeholder\(s\) but 0 image"):
        check_row({**good, "prompt": [{"role": "user", "content": "<image>q"}]}, "here")
    with pytest.raises(UserError, match=r"here: `prompt`"):
        check_row({**good, "prompt": "just text"}, "here")
    with pytest.raises(UserError, match=r"images\[0\]"):
        check_row({**good, "images": [{"bytes": "not bytes"}]}, "here")
