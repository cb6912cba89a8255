"""CSV/TSV rows: one ragged row, an unterminated quote or a bad byte costs that row only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autocode.corpus.errors import SourceError
from autocode.corpus.load import LoadOptions, load_notes

SECRET = "PATIENT JOHN SMITHSON MRN 998877"
HEADER = b"note_id,text,codes\n"


def quarantine_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ragged_row_is_quarantined_with_its_row_number(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(
        HEADER + b"a,fine,ICD10CM:I10\nb," + SECRET.encode() + b",ICD10CM:I10,extra\nc,ok,\n"
    )
    loaded = load_notes(path, quarantine_path=tmp_path / "q.jsonl")
    assert loaded.table.column("note_id").to_pylist() == ["a", "c"]
    assert (loaded.report.read, loaded.report.kept) == (3, 2)
    (record,) = quarantine_records(tmp_path / "q.jsonl")
    assert record["row"] == 2
    assert record["reason"] == "malformed_row"
    assert record["detail"] == "expected 3 fields, got 4 (line 3)"
    assert SECRET not in (tmp_path / "q.jsonl").read_text()


def test_unterminated_quote_keeps_earlier_rows_and_quarantines_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    body = f'a,fine,ICD10CM:I10\nb,ok,ICD10CM:I10\nc,"{SECRET}\nd,never,ICD10CM:I10\ne,x,\n'
    path.write_bytes(HEADER + body.encode())
    loaded = load_notes(path, quarantine_path=tmp_path / "q.jsonl")
    assert loaded.table.column("note_id").to_pylist() == ["a", "b"]
    assert loaded.report.quarantined == {"unterminated_quote": 1}
    (record,) = quarantine_records(tmp_path / "q.jsonl")
    assert record["row"] == 3
    assert record["detail"] == "a quote opened in row 3 is never closed: lines 4-6 not read"
    assert SECRET not in (tmp_path / "q.jsonl").read_text()


@pytest.mark.parametrize("column", ["note_id", "codes"])
def test_invalid_utf8_in_an_id_or_codes_cell_quarantines_one_row(
    tmp_path: Path, column: str
) -> None:
    bad_id, bad_codes = (b"b\xff", b"ICD10CM:I10") if column == "note_id" else (b"b", b"I1\xff0")
    path = tmp_path / "notes.csv"
    path.write_bytes(HEADER + b"a,t,ICD10CM:I10\n" + bad_id + b",t," + bad_codes + b"\nc,t,\n")
    loaded = load_notes(path, quarantine_path=tmp_path / "q.jsonl")
    assert loaded.table.column("note_id").to_pylist() == ["a", "c"]
    (record,) = quarantine_records(tmp_path / "q.jsonl")
    assert (record["row"], record["reason"]) == (2, "undecodable_bytes")
    assert (
        record["detail"] == f"invalid UTF-8 in {column} at byte {1 if column == 'note_id' else 2}"
    )


def test_ids_stay_strings_and_multiline_text_survives(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(HEADER + b'00123,"line one\nline two",ICD10CM:I10\n')
    (row,) = load_notes(path).table.to_pylist()
    assert (row["note_id"], row["text"]) == ("00123", "line one\nline two")


def test_bom_and_tsv(tmp_path: Path) -> None:
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + HEADER + b"a,t,ICD10CM:I10\n")
    (tmp_path / "tabs.tsv").write_bytes(b"note_id\ttext\tcodes\nb\thas, a comma\tCPT:99213\n")
    rows = load_notes(tmp_path).table.to_pylist()
    assert [(r["note_id"], r["text"], r["codes"]) for r in rows] == [
        ("a", "t", ["ICD10CM:I10"]),
        ("b", "has, a comma", ["CPT:99213"]),
    ]


def test_a_headerless_csv_does_not_quote_its_first_row(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text(f"r2,{SECRET},ICD10CM:I10\n")
    with pytest.raises(SourceError) as caught:
        load_notes(path)
    assert "missing required column 'note_id'" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert "r2" not in str(caught.value).replace(str(path), "")


def test_empty_csv_is_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(SourceError, match="no header row") as caught:
        load_notes(tmp_path / "empty.csv")
    assert caught.value.unreadable
    loaded = load_notes(tmp_path / "empty.csv", LoadOptions(skip_unreadable_files=True))
    assert loaded.report.quarantined == {"unreadable_file": 1}
