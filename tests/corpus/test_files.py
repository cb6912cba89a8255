"""Which files an input names: compressed tables are read, anything else is counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest

from autocode.corpus.files import UnreadFileWarning, expand_table_paths
from autocode.corpus.load import load_notes, source_digest


def jsonl(note_id: str) -> bytes:
    return (json.dumps({"note_id": note_id, "text": "t", "codes": ["ICD10CM:I10"]}) + "\n").encode()


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


def test_compressed_and_ndjson_tables_are_read(tmp_path: Path) -> None:
    csv = b"note_id,text,codes\n%s,t,ICD10CM:I10\n"
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(csv % b"a"))
    (tmp_path / "b.csv.zst").write_bytes(zstd(csv % b"b"))
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(jsonl("c")))
    (tmp_path / "d.jsonl.zst").write_bytes(zstd(jsonl("d")))
    (tmp_path / "e.ndjson").write_bytes(jsonl("e"))
    (tmp_path / "f.ndjson.gz").write_bytes(gzip.compress(jsonl("f")))
    (tmp_path / "g.tsv.gz").write_bytes(gzip.compress(b"note_id\ttext\ng\tt\n"))
    loaded = load_notes(tmp_path)
    assert loaded.table.column("note_id").to_pylist() == list("abcdefg")
    assert loaded.report.read == loaded.report.kept == 7


def test_other_files_are_counted_as_skipped_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl("a"))
    (tmp_path / "notes.txt").write_text("SECRET NOTE TEXT")
    (tmp_path / "b.parquet.gz").write_bytes(b"x")
    (tmp_path / "_SUCCESS").write_text("")  # metadata by convention: neither read nor counted
    with pytest.warns(UnreadFileWarning) as caught:
        loaded = load_notes(tmp_path)
    assert loaded.report.skipped == {"unread_file": 2}
    assert (loaded.report.read, loaded.report.kept) == (3, 1)
    messages = sorted(str(warning.message) for warning in caught)
    assert [m.split(":")[0] for m in messages] == [
        str(tmp_path / "b.parquet.gz"),
        str(tmp_path / "notes.txt"),
    ]
    assert not any("SECRET" in m for m in messages)


def test_a_broken_compressed_stream_keeps_the_rows_before_it(tmp_path: Path) -> None:
    rows = b"".join(b"n%d,text %d\n" % (i, i * 7919 % 100003) for i in range(100_000))
    data = gzip.compress(b"note_id,text\n" + rows)
    (tmp_path / "a.csv.gz").write_bytes(data[: len(data) // 2])
    loaded = load_notes(tmp_path / "a.csv.gz")
    assert 0 < loaded.report.kept < 100_000
    assert loaded.report.quarantined == {"unreadable_rows": 1}


def test_a_glob_digest_covers_the_files_it_reads_and_counts(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl("a"))
    (tmp_path / "a.txt").write_text("x")
    pattern = str(tmp_path / "a.*")
    assert expand_table_paths(pattern) == [tmp_path / "a.jsonl", tmp_path / "a.txt"]
    before = source_digest(Path(pattern))
    (tmp_path / "a.txt").write_text("y")
    assert source_digest(Path(pattern)) != before
