"""MIMIC-III and MIMIC-IV loaders against the real table layouts.

Code tables are the real MIMIC-III demo tables; notes are synthetic (the demo
has none) but written under the real NOTEEVENTS header, for real admissions.
"""

from __future__ import annotations

import csv
import gzip
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from autocode.corpus.canonical import Canonicalizer, RawRow
from autocode.corpus.errors import SourceError, error_summary
from autocode.corpus.load import LoadOptions, load_notes
from autocode.corpus.mimic import (
    MimicSummary,
    read_mimic3_rows,
    read_mimic4_rows,
    read_mimic_splits,
)
from autocode.corpus.quarantine import LoadReport, Quarantine, Reason

SPLIT_NAMES = (
    "mimiciii_50_splits",
    "mimiciii_clean_splits",
    "mimiciii_full_splits",
    "mimiciv_icd10_split",
    "mimiciv_icd9_split",
)

SEPSIS = "142345"  # subject 10006: diagnoses, procedures and CPT in the demo
PNEUMONIA = "105150"  # subject 10117
UNCODED = "199999"  # in no demo code table

# (ROW_ID, SUBJECT_ID, HADM_ID, CHARTDATE, CATEGORY, DESCRIPTION, ISERROR, TEXT), in file order.
NOTES = [
    (30, "10006", SEPSIS, "2164-11-05", "Discharge summary", "Addendum", "", "late addendum"),
    (40, "10006", SEPSIS, "2164-11-03", "Discharge summary", "Addendum", "", "early addendum"),
    (10, "10006", SEPSIS, "2164-11-01", "Discharge summary", "Report", "", 'Report,\n"quoted"'),
    (41, "10006", SEPSIS, "2164-11-04", "Discharge summary", "Addendum", "1", "retracted"),
    (42, "10006", SEPSIS, "2164-11-01", "Nursing", "Nursing Progress Note", "", "nursing"),
    (50, "10117", PNEUMONIA, "2150-01-02", "Discharge summary", "Report", "", "pneumonia"),
    (60, "99999", UNCODED, "2150-01-02", "Discharge summary", "Report", "", "uncoded"),
    (70, "99999", "", "2150-01-02", "Discharge summary", "Report", "", "no admission"),
]


@pytest.fixture
def demo(shared_data: Path) -> Path:
    return shared_data / "mimic" / "demo"


def _write_noteevents(
    demo: Path, path: Path, notes: Sequence[tuple[object, ...]], drop: str = ""
) -> None:
    header = (demo / "NOTEEVENTS.csv").read_text().strip().split(",")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow([name for name in header if name != drop])
        for row_id, subject, hadm, date, category, description, is_error, text in notes:
            values = {
                "ROW_ID": row_id,
                "SUBJECT_ID": subject,
                "HADM_ID": hadm,
                "CHARTDATE": date,
                "CATEGORY": category,
                "DESCRIPTION": description,
                "ISERROR": is_error,
                "TEXT": text,
            }
            writer.writerow([values.get(name, "") for name in header if name != drop])


@pytest.fixture
def mimic3_root(demo: Path, tmp_path: Path) -> Path:
    """Demo code tables in each accepted spelling: gzipped, lower case, plain."""
    diagnoses = gzip.compress((demo / "DIAGNOSES_ICD.csv").read_bytes())
    (tmp_path / "DIAGNOSES_ICD.csv.gz").write_bytes(diagnoses)
    shutil.copy(demo / "PROCEDURES_ICD.csv", tmp_path / "procedures_icd.csv")
    shutil.copy(demo / "CPTEVENTS.csv", tmp_path / "CPTEVENTS.csv")
    _write_noteevents(demo, tmp_path / "NOTEEVENTS.csv", NOTES)
    return tmp_path


def _demo_codes(demo: Path, table: str, column: str, hadm_id: str) -> set[str]:
    frame = pd.read_csv(demo / f"{table}.csv", dtype=str)
    return set(frame.loc[frame["HADM_ID"] == hadm_id, column])


def _by_id(rows: list[RawRow]) -> dict[object, RawRow]:
    return {row.note_id: row for row in rows}


def _code_list(row: RawRow) -> list[str]:
    assert isinstance(row.codes, list)
    return row.codes


def _codes(row: RawRow, system: str) -> set[str]:
    return {code.split(":", 1)[1] for code in _code_list(row) if code.startswith(f"{system}:")}


def _text(row: RawRow) -> str:
    assert isinstance(row.text, bytes)
    return row.text.decode()


@pytest.mark.integration
def test_mimic3_codes_are_the_demo_tables(demo: Path, mimic3_root: Path) -> None:
    admission = _by_id(list(read_mimic3_rows(mimic3_root)))[SEPSIS]
    assert _codes(admission, "ICD9CM") == _demo_codes(demo, "DIAGNOSES_ICD", "ICD9_CODE", SEPSIS)
    assert _codes(admission, "ICD9PCS") == _demo_codes(demo, "PROCEDURES_ICD", "ICD9_CODE", SEPSIS)
    # Leading zeros survive and codes are raw (undotted), diagnoses listed first.
    codes = _code_list(admission)
    assert {"ICD9CM:03819", "ICD9PCS:0014"} <= set(codes)
    assert codes[0] == "ICD9CM:99591"
    assert (admission.patient_id, admission.encounter_id) == ("10006", SEPSIS)


@pytest.mark.integration
def test_mimic3_addenda_follow_the_report_and_error_rows_are_left_out(mimic3_root: Path) -> None:
    admission = _by_id(list(read_mimic3_rows(mimic3_root)))[SEPSIS]
    assert _text(admission) == 'Report,\n"quoted"\n\nearly addendum\n\nlate addendum'
    assert admission.row == 1  # the admission's first note row in the file
    assert admission.source == str(mimic3_root / "NOTEEVENTS.csv")


@pytest.mark.integration
def test_mimic3_cpt_only_when_asked(demo: Path, mimic3_root: Path) -> None:
    without = _by_id(list(read_mimic3_rows(mimic3_root)))[SEPSIS]
    with_cpt = _by_id(list(read_mimic3_rows(mimic3_root, include_cpt=True)))[SEPSIS]
    assert not _codes(without, "CPT")
    assert _codes(with_cpt, "CPT") == _demo_codes(demo, "CPTEVENTS", "CPT_CD", SEPSIS)
    cpt = [code for code in _code_list(with_cpt) if code.startswith("CPT:")]
    assert len(cpt) == len(set(cpt))  # 99291 is billed twice in the demo


@pytest.mark.integration
def test_mimic3_summary_counts_every_row_not_emitted(demo: Path, mimic3_root: Path) -> None:
    summary = MimicSummary()
    rows = list(read_mimic3_rows(mimic3_root, summary=summary))
    noted = {SEPSIS, PNEUMONIA, UNCODED}
    coded = set(pd.read_csv(demo / "DIAGNOSES_ICD.csv", dtype=str)["HADM_ID"])
    coded |= set(pd.read_csv(demo / "PROCEDURES_ICD.csv", dtype=str)["HADM_ID"])
    assert {row.note_id for row in rows if row.rejected is None} == noted
    assert _by_id(rows)[UNCODED].codes == []
    assert summary.note_rows == len(NOTES)
    assert (summary.other_category_rows, summary.error_rows) == (1, 1)
    assert (summary.merged_rows, summary.missing_admission_rows) == (5, 1)
    assert summary.admissions == 3
    assert summary.coded_admissions_without_note == len(coded - noted)
    summary.check_balanced()


@pytest.mark.integration
def test_mimic3_rows_through_the_canonicalizer(mimic3_root: Path) -> None:
    report = LoadReport()
    quarantine = Quarantine()
    notes = list(Canonicalizer(quarantine, report).notes(read_mimic3_rows(mimic3_root)))
    sepsis = next(note for note in notes if note.note_id == SEPSIS)
    assert "ICD9CM:428.0" in sepsis.codes
    assert "ICD9CM:038.19" in sepsis.codes
    assert "ICD9PCS:00.14" in sepsis.codes
    assert sepsis.text.startswith("Report,")
    assert report.quarantined == {Reason.MISSING_ID: 1}
    assert report.kept == 3
    report.check_balanced()


@pytest.mark.integration
def test_mimic3_root_is_detected_and_loaded(mimic3_root: Path) -> None:
    loaded = load_notes(mimic3_root)
    assert sorted(loaded.table.column("note_id").to_pylist()) == sorted(
        [SEPSIS, PNEUMONIA, UNCODED]
    )
    assert loaded.report.quarantined == {Reason.MISSING_ID: 1}


@pytest.mark.integration
def test_mimic3_split_file_selects_admissions(mimic3_root: Path, tmp_path: Path) -> None:
    split_file = tmp_path / "splits.feather"
    # Real dtypes: `_id` int64, `split` string; 100001 has codes but no note.
    split_table = pa.table(
        {
            "_id": pa.array([int(SEPSIS), int(UNCODED), 100001], pa.int64()),
            "split": ["train", "test", "val"],
        }
    )
    feather.write_feather(split_table, split_file)
    summary = MimicSummary()
    rows = list(read_mimic3_rows(mimic3_root, split_file=split_file, summary=summary))
    admissions = {row.note_id: row.split for row in rows if row.rejected is None}
    assert admissions == {SEPSIS: "train", UNCODED: "test"}
    assert (summary.admissions_outside_split, summary.outside_split_rows) == (1, 1)
    assert summary.split_admissions_without_note == 1
    summary.check_balanced()


@pytest.mark.integration
def test_mimic3_missing_column_names_file_and_column(demo: Path, tmp_path: Path) -> None:
    _write_noteevents(demo, tmp_path / "NOTEEVENTS.csv", NOTES, drop="HADM_ID")
    with pytest.raises(
        SourceError, match=re.escape("NOTEEVENTS.csv: missing required column 'HADM_ID'")
    ):
        read_mimic3_rows(tmp_path)


@pytest.mark.integration
def test_mimic3_ragged_rows_are_quarantined_by_record_number(mimic3_root: Path) -> None:
    secret = "PATIENT JOHN SMITHSON MRN 998877"
    path = mimic3_root / "NOTEEVENTS.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    # Record 3 is the report whose quoted text spans two lines (file lines 4-5), so the
    # ragged record put on line 7 is record 5; one at the end is record 10.
    lines.insert(6, f"1,2,{secret}\n")
    lines.append(f'9,9,"{secret}",x,y,z,a,b,c,d,e,f,g\n')
    path.write_text("".join(lines), encoding="utf-8")
    report, quarantine, summary = LoadReport(), Quarantine(), MimicSummary()
    rows = list(read_mimic3_rows(mimic3_root, summary=summary))
    notes = list(Canonicalizer(quarantine, report).notes(rows))
    malformed = [row for row in rows if row.rejected and row.rejected[0] == Reason.MALFORMED_ROW]
    assert [row.row for row in malformed] == [5, 10]
    assert malformed[0].rejected == (Reason.MALFORMED_ROW, "expected 11 fields, found 3")
    assert {note.note_id for note in notes} == {SEPSIS, PNEUMONIA, UNCODED}
    # Rows after the ragged one keep their own record numbers.
    assert _by_id(rows)[PNEUMONIA].row == 7
    assert report.quarantined == {Reason.MISSING_ID: 1, Reason.MALFORMED_ROW: 2}
    assert (summary.note_rows, summary.malformed_rows) == (len(NOTES) + 2, 2)
    summary.check_balanced()
    report.check_balanced()
    assert secret not in repr(rows[-3:]) and "SMITHSON" not in repr(malformed)


def test_mimic4_ragged_note_and_code_rows_are_counted(mimic4_root: Path) -> None:
    notes_path = mimic4_root / "note" / "discharge.csv.gz"
    text = gzip.decompress(notes_path.read_bytes()).decode()
    notes_path.write_bytes(gzip.compress((text + "x,10000084,JOHN SMITHSON\n").encode()))
    codes_path = mimic4_root / "hosp" / "procedures_icd.csv"
    codes_path.write_text(codes_path.read_text() + "10000032,22595853\n")
    summary = MimicSummary()
    rows = list(read_mimic4_rows(mimic4_root, summary=summary))
    assert [(row.row, row.rejected) for row in rows if row.rejected] == [
        (4, (Reason.MALFORMED_ROW, "expected 8 fields, found 3"))
    ]
    assert _by_id(rows)["22595853"].codes == ["ICD10CM:I5033", "ICD10CM:E119", "ICD10PCS:0DTJ4ZZ"]
    assert (summary.note_rows, summary.malformed_rows, summary.unusable_code_rows) == (4, 1, 1)
    summary.check_balanced()


def test_error_summary_cuts_the_row_pyarrow_quotes() -> None:
    quoted = ValueError("CSV parse error: Expected 3 columns, got 2: n1,JOHN SMITHSON: MRN 9")
    assert error_summary(quoted) == "CSV parse error: Expected 3 columns, got 2"
    assert error_summary(OSError("Parquet magic bytes not found\nmore")) == (
        "Parquet magic bytes not found"
    )
    assert error_summary(OSError("")) == "OSError"


@pytest.mark.integration
def test_mimic3_missing_tables(mimic3_root: Path) -> None:
    (mimic3_root / "CPTEVENTS.csv").unlink()
    list(read_mimic3_rows(mimic3_root))  # CPT is optional unless asked for
    with pytest.raises(SourceError, match="missing required file CPTEVENTS"):
        read_mimic3_rows(mimic3_root, include_cpt=True)
    (mimic3_root / "procedures_icd.csv").unlink()
    with pytest.raises(SourceError, match="missing required file PROCEDURES_ICD"):
        read_mimic3_rows(mimic3_root)


@pytest.mark.integration
def test_mimic3_notes_without_code_tables_load_for_coding_only(mimic3_root: Path) -> None:
    for table in ("DIAGNOSES_ICD.csv.gz", "procedures_icd.csv"):
        (mimic3_root / table).unlink()
    rows = [row for row in read_mimic3_rows(mimic3_root, codes_required=False) if not row.rejected]
    assert rows and all(row.codes == [] for row in rows)
    # Detected by its NOTEEVENTS as before; training or evaluating needs the codes.
    assert load_notes(mimic3_root).table.num_rows == len(rows)
    with pytest.raises(SourceError, match="missing required file DIAGNOSES_ICD"):
        load_notes(mimic3_root, LoadOptions(needs_codes_for="train"))


def test_mimic4_notes_without_code_tables_load_for_coding_only(mimic4_root: Path) -> None:
    shutil.rmtree(mimic4_root / "hosp")
    rows = _by_id(list(read_mimic4_rows(mimic4_root, codes_required=False)))
    assert {hadm_id: row.codes for hadm_id, row in rows.items()} == {
        "22595853": [],
        "23052089": [],
    }
    with pytest.raises(SourceError, match="missing required file hosp/diagnoses_icd"):
        read_mimic4_rows(mimic4_root)
    coding = load_notes(mimic4_root, LoadOptions(format="mimic4"))
    assert sorted(coding.table.column("note_id").to_pylist()) == ["22595853", "23052089"]


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, compression="gzip" if path.suffix == ".gz" else None)


@pytest.fixture
def mimic4_root(tmp_path: Path) -> Path:
    notes = pd.DataFrame(
        {
            "note_id": ["10000032-DS-22", "10000032-DS-21", "10000084-DS-17"],
            "subject_id": ["10000032", "10000032", "10000084"],
            "hadm_id": ["22595853", "22595853", "23052089"],
            "note_type": ["DS", "DS", "DS"],
            "note_seq": [22, 21, 17],
            "charttime": ["2180-05-08 00:00:00"] * 3,
            "storetime": ["2180-05-08 15:00:00"] * 3,
            "text": ["second note", "first note\nline two", "icd9 era note"],
        }
    )
    _write_csv(tmp_path / "note" / "discharge.csv.gz", notes)
    diagnoses = pd.DataFrame(
        {
            "subject_id": ["10000032"] * 3 + ["10000084"] * 2 + ["10000099"],
            "hadm_id": ["22595853"] * 3 + ["23052089"] * 2 + ["29999999"],
            "seq_num": [1, 2, 3, 1, 2, 1],
            "icd_code": ["I5033", "E119", "I5033", "4280", "0389", "Z66"],
            "icd_version": [10, 10, 10, 9, 9, 10],
        }
    )
    _write_csv(tmp_path / "hosp" / "diagnoses_icd.csv.gz", diagnoses)
    procedures = pd.DataFrame(
        {
            "subject_id": ["10000032", "10000084"],
            "hadm_id": ["22595853", "23052089"],
            "seq_num": [1, 1],
            "chartdate": ["2180-05-07", "2160-11-21"],
            "icd_code": ["0DTJ4ZZ", "3995"],
            "icd_version": [10, 9],
        }
    )
    _write_csv(tmp_path / "hosp" / "procedures_icd.csv", procedures)
    return tmp_path


def test_mimic4_joins_notes_and_versioned_codes(mimic4_root: Path) -> None:
    summary = MimicSummary()
    rows = _by_id(list(read_mimic4_rows(mimic4_root, summary=summary)))
    icd10 = rows["22595853"]
    assert icd10.codes == ["ICD10CM:I5033", "ICD10CM:E119", "ICD10PCS:0DTJ4ZZ"]
    assert _text(icd10) == "first note\nline two\n\nsecond note"
    assert (icd10.row, icd10.patient_id, icd10.encounter_id) == (1, "10000032", "22595853")
    assert rows["23052089"].codes == ["ICD9CM:4280", "ICD9CM:0389", "ICD9PCS:3995"]
    assert summary.coded_admissions_without_note == 1
    assert (summary.note_rows, summary.merged_rows, summary.admissions) == (3, 3, 2)
    summary.check_balanced()


def test_mimic4_through_the_canonicalizer_with_splits(mimic4_root: Path, tmp_path: Path) -> None:
    split_file = tmp_path / "split.feather"
    feather.write_feather(pd.DataFrame({"_id": [22595853], "split": ["val"]}), split_file)
    report = LoadReport()
    rows = read_mimic4_rows(mimic4_root, split_file=split_file)
    notes = list(Canonicalizer(Quarantine(), report).notes(rows))
    assert [(note.note_id, note.split) for note in notes] == [("22595853", "val")]
    assert notes[0].codes == ["ICD10CM:I50.33", "ICD10CM:E11.9", "ICD10PCS:0DTJ4ZZ"]
    report.check_balanced()


def test_mimic4_note_file_may_be_plain_csv_outside_root(mimic4_root: Path, tmp_path: Path) -> None:
    # MIMIC-IV-Note is a separate download: its file can live anywhere, compressed or not.
    note_file = tmp_path / "mimic-iv-note" / "discharge.csv"
    note_file.parent.mkdir()
    note_file.write_bytes(gzip.decompress((mimic4_root / "note" / "discharge.csv.gz").read_bytes()))
    (mimic4_root / "note" / "discharge.csv.gz").unlink()
    rows = list(read_mimic4_rows(mimic4_root, note_file=note_file))
    assert [row.note_id for row in rows] == ["22595853", "23052089"]
    assert {row.source for row in rows} == {str(note_file)}
    with pytest.raises(SourceError, match="missing required file note/discharge"):
        read_mimic4_rows(mimic4_root)


def test_mimic4_unknown_icd_version_fails_the_file(mimic4_root: Path) -> None:
    path = mimic4_root / "hosp" / "procedures_icd.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.loc[0, "icd_version"] = "11"
    frame.to_csv(path, index=False)
    with pytest.raises(SourceError, match="row 1: icd_version '11' is not 9 or 10"):
        read_mimic4_rows(mimic4_root)


@pytest.mark.integration
@pytest.mark.parametrize("name", SPLIT_NAMES)
def test_real_split_files(shared_data: Path, name: str) -> None:
    path = shared_data / "mimic" / "splits" / f"{name}.feather"
    schema = feather.read_table(path).schema
    assert (schema.field("_id").type, schema.field("split").type) == (pa.int64(), pa.string())
    splits = read_mimic_splits(path)
    assert set(splits.values()) == {"train", "val", "test"}
    assert all(hadm_id.isdigit() for hadm_id in splits)
