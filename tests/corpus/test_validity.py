"""One rule for ids and text, shared by the loader and the review queue; capped messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autocode.corpus.load import LoadOptions, load_notes
from autocode.corpus.validity import MAX_ID_CHARS, cap_quoted, capped
from autocode.review.store import CaseRow, NewCase


def test_the_queue_uses_the_loaders_id_limit() -> None:
    assert CaseRow.__table__.c.note_id.type.length == MAX_ID_CHARS == 255
    with pytest.raises(ValueError, match="NUL"):
        NewCase("n1", "m", "1", "a\x00b", [], [])


def test_an_id_over_the_queue_limit_is_quarantined(tmp_path: Path) -> None:
    rows = [{"note_id": "x" * 256, "text": "t"}, {"note_id": "y" * 255, "text": "t"}]
    path = tmp_path / "n.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_notes(path, quarantine_path=tmp_path / "q.jsonl")
    assert loaded.table.column("note_id").to_pylist() == ["y" * 255]
    (record,) = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert (record["reason"], record["detail"]) == (
        "id_too_long",
        "note_id of 256 chars > limit 255",
    )


def test_invalid_code_detail_is_capped(tmp_path: Path) -> None:
    pasted = "PATIENT JOHN SMITHSON presented with chest pain and was admitted " * 5
    path = tmp_path / "n.jsonl"
    path.write_text(json.dumps({"note_id": "a", "text": "t", "codes": [pasted]}) + "\n")
    loaded = load_notes(path, quarantine_path=tmp_path / "q.jsonl")
    assert loaded.report.quarantined == {"invalid_code": 1}
    (record,) = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert "presented with chest pain" not in record["detail"]
    assert f"'{pasted[:32]}…'" in record["detail"]


def test_cap_quoted_caps_every_quoted_value() -> None:
    message = "unknown code system '" + "a" * 40 + "' for code '" + "b" * 40 + ":1'"
    assert cap_quoted(message) == (
        "unknown code system '" + "a" * 32 + "…' for code '" + "b" * 32 + "…'"
    )
    assert capped("short") == "short"


def test_an_unknown_system_is_refused_when_options_are_built() -> None:
    with pytest.raises(ValueError, match="code system 'ICD11' is not one of ICD10CM"):
        LoadOptions(system="ICD11")
    assert LoadOptions(system="icd10cm").system == "icd10cm"
