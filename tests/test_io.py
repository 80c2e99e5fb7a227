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
    with pytest.raises(ValueError, match="expected one JSON object per line"):
        list(read_jsonl(f))


def test_torn_last_line_is_noted_only_when_asked(tmp_path):
    from vlmrl.utils.io import iter_jsonl

    f = tmp_path / "journal.jsonl"
    f.write_text('{"step": 1}\n{"step": 2}\n{"st')
    notes: list[str] = []
    assert [obj["step"] for _, obj in iter_jsonl(f, torn_tail_notes=notes)] == [1, 2]
    assert len(notes) == 1 and "journal.jsonl:3" in notes[0]
    with pytest.raises(ValueError, match=r"journal\.jsonl:3: not valid JSON"):
        list(iter_jsonl(f))
    # a broken line in the middle is an error even when a torn tail is tolerated
    f.write_text('{"step": 1}\n{broken\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"journal\.jsonl:2"):
        list(iter_jsonl(f, torn_tail_notes=[]))
