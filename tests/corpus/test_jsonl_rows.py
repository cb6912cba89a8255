"""JSON Lines rows: a BOM is not a bad row; ids must be scalars; text must be storable."""

from __future__ import annotations

import json
from pathlib import Path

from autocode.corpus.load import load_notes


def test_a_byte_order_mark_does_not_quarantine_the_first_note(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    row = {"note_id": "a", "text": "t", "codes": ["ICD10CM:I10"]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    loaded = load_notes(path)
    assert loaded.table.column("note_id").to_pylist() == ["a"]
    assert loaded.report.quarantined_total == 0


def test_ids_that_are_objects_lists_or_booleans_are_quarantined(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"note_id": 7, "text": "integer ids are fine", "patient_id": 12},
        {"note_id": {"a": 1}, "text": "object"},
        {"note_id": ["x"], "text": "list"},
        {"note_id": True, "text": "boolean"},
        {"note_id": "p", "text": "patient object", "patient_id": {"mrn": 1}},
        {"note_id": "q", "text": "encounter bool", "encounter_id": False},
    ]
    path = tmp_path / "n.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    loaded = load_notes(path, quarantine_path=tmp_path / "q.jsonl")
    assert loaded.table.to_pylist()[0] | {"text": None} == {
        "note_id": "7",
        "text": None,
        "codes": [],
        "patient_id": "12",
        "encounter_id": None,
        "split": None,
    }
    details = [
        json.loads(line)["detail"] for line in (tmp_path / "q.jsonl").read_text().splitlines()
    ]
    assert details == [
        "note_id of type dict",
        "note_id of type list",
        "note_id of type bool",
        "patient_id of type dict",
        "encounter_id of type bool",
    ]
    assert loaded.report.quarantined == {"malformed_row": 5}


def test_lone_surrogates_and_nul_are_quarantined_not_fatal(tmp_path: Path) -> None:
    lines = [
        '{"note_id": "a", "text": "fine"}',
        '{"note_id": "b", "text": "emoji half \\ud83d here"}',
        '{"note_id": "c", "text": "nul \\u0000 here"}',
        '{"note_id": "d\\u0000", "text": "nul in id"}',
        '{"note_id": "e", "text": "fine too"}',
    ]
    path = tmp_path / "n.jsonl"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_notes(path, quarantine_path=tmp_path / "q.jsonl")
    assert loaded.table.column("note_id").to_pylist() == ["a", "e"]
    assert loaded.report.quarantined == {"invalid_characters": 3}
    details = [
        json.loads(line)["detail"] for line in (tmp_path / "q.jsonl").read_text().splitlines()
    ]
    assert details == [
        "text has a lone surrogate U+D83D at char 11",
        "text has a NUL character at char 4",
        "note_id has a NUL character at char 1",
    ]
