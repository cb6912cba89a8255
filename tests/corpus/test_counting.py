"""Row counts up front: the total a progress display shows, equal to what the loaders read."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autocode.corpus.counting import count_rows
from autocode.corpus.load import LoadOptions, load_notes
from autocode.corpus.synth import write_synthetic_archive


def rows_read(path: Path, options: LoadOptions) -> int:
    return load_notes(path, options).report.read


@pytest.mark.parametrize("file_format", ["parquet", "jsonl", "csv"])
def test_count_equals_rows_read_with_bad_rows(tmp_path: Path, file_format: str) -> None:
    write_synthetic_archive(
        tmp_path, 120, seed=3, fmt=file_format, bad_row_rate=0.1, rows_per_file=50
    )
    options = LoadOptions()
    counted = count_rows(tmp_path, options)
    assert counted == rows_read(tmp_path, options)
    assert counted is not None and counted > 120  # bad rows are rows too


def test_csv_count_ignores_newlines_inside_quoted_text(tmp_path: Path) -> None:
    (tmp_path / "notes.csv").write_text(
        'note_id,text,codes\n1,"line one\nline two\nline three",ICD10CM:E11.9\n2,short,\n',
        encoding="utf-8",
    )
    assert count_rows(tmp_path / "notes.csv", LoadOptions()) == 2


def test_jsonl_count_skips_blank_lines_as_the_loader_does(tmp_path: Path) -> None:
    rows = [json.dumps({"note_id": str(i), "text": "t", "codes": []}) for i in range(3)]
    (tmp_path / "notes.jsonl").write_text("\n\n".join(rows) + "\n\n", encoding="utf-8")
    options = LoadOptions()
    assert count_rows(tmp_path / "notes.jsonl", options) == 3
    assert rows_read(tmp_path / "notes.jsonl", options) == 3


def test_parquet_count_comes_from_the_footer(tmp_path: Path) -> None:
    table = pa.table({"note_id": ["a", "b"], "text": ["x", "y"], "codes": [[], []]})
    pq.write_table(table, tmp_path / "notes.parquet", row_group_size=1)
    assert count_rows(tmp_path / "notes.parquet", LoadOptions()) == 2


def test_codiesp_count_matches_the_loader(codiesp_root: Path) -> None:
    for splits in (None, ("dev",)):
        options = LoadOptions(splits=splits)
        assert count_rows(codiesp_root, options) == rows_read(codiesp_root, options)


def test_unparseable_source_has_an_unknown_count(tmp_path: Path) -> None:
    (tmp_path / "notes.parquet").write_bytes(b"not parquet at all")
    assert count_rows(tmp_path / "notes.parquet", LoadOptions()) is None


def test_compressed_tables_and_unread_files_are_counted_as_the_loader_reads_them(
    tmp_path: Path,
) -> None:
    import gzip
    import warnings

    rows = [json.dumps({"note_id": str(i), "text": "t"}) for i in range(4)]
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(rows) + "\n")
    with gzip.open(tmp_path / "b.tsv.gz", "wt", encoding="utf-8") as handle:
        handle.write("note_id\ttext\nx\tone\ny\ttwo\n")
    (tmp_path / "readme.txt").write_text("not a table", encoding="utf-8")
    options = LoadOptions()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = rows_read(tmp_path, options)
    assert count_rows(tmp_path, options) == read == 4 + 2 + 1
