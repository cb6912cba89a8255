"""Hostile rows and random bytes: every row is accounted for, nothing escapes, no note text
reaches a message or a quarantine record."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocode.corpus.load import LoadOptions, load_notes
from autocode.corpus.validity import MAX_QUOTED_CHARS

MARKER = "ZZSECRETNOTEZZ"
QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
OPTIONS = LoadOptions(skip_unreadable_files=True)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

csv_cell = st.one_of(
    st.sampled_from(
        [
            "a",
            "00123",
            "ICD10CM:I10",
            f"{MARKER} text",
            f'"{MARKER}, quoted"',
            f'"{MARKER} never closed',
            '"x"y',
            "\x00",
            "x" * 300,
            "ICD10CM:" + MARKER * 3,
            "",
        ]
    ),
    st.text(max_size=8),
)
csv_line = st.one_of(
    st.lists(csv_cell, min_size=1, max_size=5).map(lambda cells: ",".join(cells).encode()),
    st.binary(max_size=30).map(lambda raw: MARKER.encode() + raw),
)
json_id = st.one_of(
    st.sampled_from(["a", "b", 7, 7.0, True, None, {"k": 1}, ["x"], "x" * 300, "d\x00"]),
    st.text(max_size=4),
)
json_line = st.one_of(
    st.builds(
        lambda note_id, codes, text: json.dumps({"note_id": note_id, "text": text, "codes": codes}),
        json_id,
        st.one_of(st.lists(st.sampled_from(["ICD10CM:I10", MARKER * 3, "??"])), st.just(7)),
        st.sampled_from([f"{MARKER} text", f"{MARKER} \ud83d", f"{MARKER}\x00", "", 5, None]),
    ),
    st.binary(max_size=30).map(lambda raw: MARKER + raw.decode("latin-1")),
    st.just('{"note_id": "z", "text": "' + MARKER),
)


def assert_accounted_and_private(path: Path, tmp_path: Path, messages: list[str]) -> None:
    quarantine = tmp_path / "q.jsonl"
    quarantine.unlink(missing_ok=True)
    loaded = load_notes(path, OPTIONS, quarantine_path=quarantine)
    report = loaded.report
    skipped = sum(report.skipped.values())
    assert report.read == report.kept + report.quarantined_total + skipped
    assert loaded.table.num_rows == report.kept
    lines = quarantine.read_text().splitlines() if quarantine.exists() else []
    assert len(lines) == report.quarantined_total
    for record in map(json.loads, lines):
        detail = record["detail"]
        if record["reason"] == "invalid_code":
            # A code cell is repeated, capped: the only cell content a record may carry.
            assert all(len(quoted) <= 3 + MAX_QUOTED_CHARS for quoted in QUOTED.findall(detail))
            detail = QUOTED.sub("", detail)
        assert MARKER not in json.dumps({**record, "detail": detail})
    assert not any(MARKER in message for message in messages)


@FUZZ
@given(lines=st.lists(csv_line, max_size=12), tail=st.binary(max_size=20))
def test_csv(tmp_path: Path, lines: list[bytes], tail: bytes) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(b"note_id,text,codes\n" + b"\n".join(lines) + b"\n" + tail)
    assert_accounted_and_private(path, tmp_path, [])


@FUZZ
@given(lines=st.lists(json_line, max_size=12), bom=st.booleans())
def test_jsonl(tmp_path: Path, lines: list[str], bom: bool) -> None:
    path = tmp_path / "notes.jsonl"
    first = json.dumps({"note_id": "first", "text": f"{MARKER} first", "codes": []})
    data = "\n".join([first, *lines]).encode("utf-8", "surrogatepass")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data + b"\n")
    assert_accounted_and_private(path, tmp_path, [])


@FUZZ
@given(
    n_rows=st.integers(0, 40),
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
    noise=st.tuples(st.floats(0.0, 1.0), st.binary(min_size=1, max_size=64)),
)
def test_parquet(
    tmp_path: Path, n_rows: int, cut: float | None, noise: tuple[float, bytes]
) -> None:
    rows = [
        {"note_id": f"n{i}", "text": f"{MARKER} {i}", "codes": ["ICD10CM:I10"]}
        for i in range(n_rows)
    ]
    path = tmp_path / "notes.parquet"
    schema = pa.schema(
        [("note_id", pa.string()), ("text", pa.string()), ("codes", pa.list_(pa.string()))]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema), path, row_group_size=8, use_dictionary=False)
    data = bytearray(path.read_bytes())
    where, garbage = noise
    start = int(where * len(data))
    data[start : start + len(garbage)] = garbage
    if cut is not None:
        data = data[: int(cut * len(data))]
    path.write_bytes(bytes(data))
    assert_accounted_and_private(path, tmp_path, [])
