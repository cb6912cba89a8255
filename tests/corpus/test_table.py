"""Generic CSV / JSONL / Parquet loading, quarantine accounting and file errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocode.corpus.errors import SourceError
from autocode.corpus.load import LoadOptions, load_notes
from autocode.corpus.table import ColumnMap

GOOD_ROWS = [
    {"note_id": "n1", "text": "Hypertension, on lisinopril.", "codes": ["ICD10CM:I10"]},
    {"note_id": "n2", "text": "Type 2 diabetes.", "codes": ["ICD10CM:E11.9", "CPT:99213"]},
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_parquet_jsonl_and_csv_give_the_same_notes(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(GOOD_ROWS), tmp_path / "notes.parquet")
    write_jsonl(tmp_path / "notes.jsonl", GOOD_ROWS)
    csv_lines = ["note_id,text,codes"] + [
        f'{r["note_id"]},"{r["text"]}","{";".join(r["codes"])}"'
        for r in GOOD_ROWS  # type: ignore[arg-type]
    ]
    (tmp_path / "notes.csv").write_text("\n".join(csv_lines) + "\n", encoding="utf-8")
    tables = [
        load_notes(tmp_path / name).table for name in ("notes.parquet", "notes.jsonl", "notes.csv")
    ]
    expected = [(r["note_id"], r["text"], r["codes"]) for r in GOOD_ROWS]
    for table in tables:
        rows = table.to_pylist()
        assert [(r["note_id"], r["text"], r["codes"]) for r in rows] == expected


def test_directory_and_glob_read_every_part(tmp_path: Path) -> None:
    for part in range(3):
        rows = [
            {"note_id": f"p{part}-{i}", "text": "Chest pain.", "codes": ["ICD10CM:R07.9"]}
            for i in range(4)
        ]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"part-{part}.parquet")
    assert load_notes(tmp_path).table.num_rows == 12
    assert load_notes(str(tmp_path / "part-[01].parquet")).table.num_rows == 8


def test_column_mapping_and_system_for_bare_codes(tmp_path: Path) -> None:
    rows = [{"id": 7, "body": "Heart failure.", "dx": "i509|e119"}]
    write_jsonl(tmp_path / "notes.jsonl", rows)
    options = LoadOptions(
        columns=ColumnMap(id_col="id", text_col="body", codes_col="dx"), system="ICD10CM"
    )
    (row,) = load_notes(tmp_path / "notes.jsonl", options).table.to_pylist()
    assert row["note_id"] == "7"
    assert row["codes"] == ["ICD10CM:I50.9", "ICD10CM:E11.9"]


def test_bad_rows_are_quarantined_with_reasons(tmp_path: Path) -> None:
    lines = [
        json.dumps(GOOD_ROWS[0]),
        json.dumps({"note_id": "n1", "text": "duplicate id", "codes": []}),
        json.dumps({"note_id": "n3", "text": "   ", "codes": []}),
        json.dumps({"note_id": None, "text": "no id", "codes": []}),
        json.dumps({"note_id": "n5", "text": "bad code", "codes": ["ICD10CM:??"]}),
        "{not json",
    ]
    path = tmp_path / "notes.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"note_id": "n6", "text": "caf\xe9"}\n')
    quarantine_file = tmp_path / "quarantine.jsonl"
    loaded = load_notes(path, quarantine_path=quarantine_file)
    assert loaded.table.column("note_id").to_pylist() == ["n1"]
    assert loaded.report.to_dict()["quarantined_by_reason"] == {
        "duplicate_id": 1,
        "empty_text": 1,
        "invalid_code": 1,
        "malformed_row": 1,
        "missing_id": 1,
        "undecodable_bytes": 1,
    }
    records = [json.loads(line) for line in quarantine_file.read_text().splitlines()]
    assert [r["row"] for r in records] == [2, 3, 4, 5, 6, 7]
    invalid = next(r for r in records if r["reason"] == "invalid_code")
    assert "'ICD10CM:??'" in invalid["detail"]
    # Quarantine records never carry note text.
    assert "duplicate id" not in quarantine_file.read_text()


def test_csv_with_invalid_utf8_quarantines_only_that_row(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(
        b"note_id,text,codes\na,fine text,ICD10CM:I10\nb,caf\xe9 au lait,ICD10CM:I10\n"
    )
    loaded = load_notes(path)
    assert loaded.table.column("note_id").to_pylist() == ["a"]
    assert loaded.report.quarantined == {"undecodable_bytes": 1}


def test_text_over_the_limit_is_quarantined(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "n.jsonl", [{"note_id": "x", "text": "a" * 50, "codes": []}])
    loaded = load_notes(tmp_path / "n.jsonl", LoadOptions(max_text_chars=10))
    assert loaded.report.quarantined == {"text_too_long": 1}


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist([{"note_id": "a", "body": "x"}]), tmp_path / "n.parquet")
    with pytest.raises(SourceError, match=r"n\.parquet: missing required column 'text'"):
        load_notes(tmp_path / "n.parquet")


def test_corrupt_parquet_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError, match=r"broken\.parquet: unreadable Parquet"):
        load_notes(tmp_path / "broken.parquet")


def test_split_filter_counts_skipped_rows(tmp_path: Path) -> None:
    rows = [dict(r, split=s) for r, s in zip(GOOD_ROWS, ["train", "test"], strict=True)]
    write_jsonl(tmp_path / "n.jsonl", rows)
    loaded = load_notes(tmp_path / "n.jsonl", LoadOptions(splits=("test",)))
    assert loaded.table.column("note_id").to_pylist() == ["n2"]
    assert (loaded.report.read, loaded.report.kept, sum(loaded.report.skipped.values())) == (
        2,
        1,
        1,
    )


row_strategy = st.fixed_dictionaries(
    {
        "note_id": st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"]), st.text(max_size=3)),
        "text": st.one_of(st.text(max_size=20), st.just("   "), st.none()),
        "codes": st.lists(
            st.one_of(
                st.sampled_from(["ICD10CM:I10", "CPT:99213", "HCPCS:E0601"]), st.text(max_size=6)
            ),
            max_size=3,
        ),
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(row_strategy, max_size=25))
def test_every_row_is_kept_or_quarantined(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    path = write_jsonl(tmp_path / "random.jsonl", rows)
    loaded = load_notes(path)
    report = loaded.report
    assert report.read == len(rows)
    assert report.kept + report.quarantined_total == len(rows)
    assert loaded.table.num_rows == report.kept
    ids = loaded.table.column("note_id").to_pylist()
    assert len(ids) == len(set(ids))


def test_jsonl_row_missing_a_required_key_is_quarantined_not_coded_empty(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [GOOD_ROWS[0], {"note_id": "n9", "text": "codes key is gone"}]
    loaded = load_notes(write_jsonl(tmp_path / "n.jsonl", rows))
    assert loaded.table.column("note_id").to_pylist() == ["n1"]
    assert loaded.report.quarantined == {"malformed_row": 1}


def test_jsonl_schema_comes_from_the_first_object_not_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    path.write_text("{broken\n" + json.dumps({"note_id": "a", "body": "x"}) + "\n")
    with pytest.raises(SourceError, match=r"missing required column 'text'"):
        load_notes(path)
