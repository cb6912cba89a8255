"""User-supplied CPT catalogs."""

from __future__ import annotations

from pathlib import Path

import pytest

from autocode.codes import CodeError, CptCatalog


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpt.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_codes_in_any_accepted_spelling(tmp_path: Path) -> None:
    path = _csv(tmp_path, 'code,description\n99231,"Subsequent care, low"\ncpt:0001f,HF\n')
    catalog = CptCatalog.from_csv(path)
    assert catalog.descriptions == {"CPT:99231": "Subsequent care, low", "CPT:0001F": "HF"}
    assert catalog.describe("99231") == "Subsequent care, low"
    assert catalog.describe("CPT:99232") is None


def test_missing_header_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing column\(s\) \['description'\]"):
        CptCatalog.from_csv(_csv(tmp_path, "code,text\n99231,care\n"))


def test_a_bad_code_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(CodeError, match=r"line 3: invalid CPT code '9923'"):
        CptCatalog.from_csv(_csv(tmp_path, "code,description\n99231,a\n9923,b\n"))


def test_a_code_listed_twice_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 3: CPT:99231 is listed twice"):
        CptCatalog.from_csv(_csv(tmp_path, "code,description\n99231,a\n99231,b\n"))
