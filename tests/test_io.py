"""Atomic writes: the final file appears whole or not at all."""

from __future__ import annotations

import pytest

from vlmrl.utils.io import atomic_path, read_jsonl, write_jsonl_atomic, write_text_atomic


def test_write_then_replace(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_crash_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.jsonl"
    write_jsonl_atomic(target, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_jsonl_atomic(target, rows())
    assert list(read_jsonl(target)) == [{"a": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_crash_before_first_write_leaves_nothing(tmp_path):
    target = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_read_jsonl_names_bad_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"a": 1}\n\n{broken\n')
    with pytest.raises(ValueError, match=r"x\.jsonl:3: not valid JSON"):
        list(read_jsonl(f))
    f.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="expected a JSON object"):
        list(read_jsonl(f))
