"""Parquet rows: a damaged row group costs its rows; a lost footer is one unreadable file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autocode.corpus.errors import SourceError
from autocode.corpus.load import LoadOptions, load_notes


def write_groups(path: Path, n_rows: int = 30, group: int = 10) -> None:
    rows = [{"note_id": f"n{i}", "text": f"note number {i} " * 5} for i in range(n_rows)]
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, path, row_group_size=group, compression="none", use_dictionary=False)


def test_a_damaged_row_group_quarantines_its_rows_by_number(tmp_path: Path) -> None:
    path = tmp_path / "notes.parquet"
    write_groups(path)
    data = bytearray(path.read_bytes())
    offset = pq.ParquetFile(path).metadata.row_group(1).column(1).data_page_offset
    data[offset : offset + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    loaded = load_notes(path, quarantine_path=tmp_path / "q.jsonl")
    ids = loaded.table.column("note_id").to_pylist()
    assert ids == [f"n{i}" for i in [*range(10), *range(20, 30)]]
    assert (loaded.report.read, loaded.report.kept) == (30, 20)
    assert loaded.report.quarantined == {"unreadable_rows": 10}
    records = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [r["row"] for r in records] == list(range(11, 21))
    assert "row group 1 (rows 11-20) cannot be decoded" in str(records[0]["detail"])


def test_a_truncated_file_says_its_footer_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "notes.parquet"
    write_groups(path)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(SourceError, match=r"footer missing or corrupt \(a truncated file\?\)"):
        load_notes(path)
    loaded = load_notes(path, LoadOptions(skip_unreadable_files=True))
    assert loaded.report.quarantined == {"unreadable_file": 1}


def test_a_column_name_damaged_into_control_characters_is_an_unreadable_file(
    tmp_path: Path,
) -> None:
    # Found by the loader fuzz test: noise in the footer turned "note_id" into "\x00ote_id".
    path = tmp_path / "notes.parquet"
    write_groups(path)
    data = bytearray(path.read_bytes())
    data[data.index(b"note_id")] = 0
    path.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="footer corrupt") as refused:
        load_notes(path)
    assert refused.value.unreadable
    loaded = load_notes(path, LoadOptions(skip_unreadable_files=True))
    assert loaded.report.quarantined == {"unreadable_file": 1}


def test_invalid_utf8_in_a_string_column_quarantines_one_row(tmp_path: Path) -> None:
    ids = pa.array([b"a", b"b\xff", b"c"], pa.binary()).cast(pa.string(), safe=False)
    texts = pa.array(["one", "two", "three"])
    codes = pa.array([["ICD10CM:I10"], [], []], pa.list_(pa.string()))
    path = tmp_path / "notes.parquet"
    pq.write_table(pa.table({"note_id": ids, "text": texts, "codes": codes}), path)
    loaded = load_notes(path)
    assert loaded.table.column("note_id").to_pylist() == ["a", "c"]
    assert loaded.table.column("codes").to_pylist() == [["ICD10CM:I10"], []]
    assert loaded.report.quarantined == {"undecodable_bytes": 1}
