"""MIMIC-III and MIMIC-IV: one note per admission, with its billed codes.

Both readers follow the benchmarks (Mullenbach et al. 2018, Edin et al. 2023):
an admission's discharge summaries become one note, `note_id` = HADM_ID, and
its codes are joined from the code tables on HADM_ID. Codes are emitted raw
with their system (`ICD9CM:4280`, `ICD10CM:I5033`); the canonicalizer
normalises them.

Nothing is dropped silently. Note rows that are not part of any emitted note
(other categories, ISERROR rows, admissions outside the split file) and
admissions with codes but no note are counted in a `MimicSummary`, which the
caller passes in and reads once the rows are consumed. A note row without an
admission id is emitted as a rejected row, so it is quarantined.

Each emitted row's `row` is the 1-based record number (header excluded) of
the admission's first note row in the note file. A note-file record with the
wrong number of fields is quarantined as `malformed_row` under its record
number, not a failure of the whole file; a malformed code-table record is
counted with the unusable code rows.
"""

from __future__ import annotations

import csv
import gzip
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.feather as feather

from autocode.corpus.canonical import RawRow
from autocode.corpus.errors import SourceError, error_summary
from autocode.corpus.quarantine import Reason

# Blank line between a report and its addenda; the benchmarks join with a
# space, which is the same text once whitespace is collapsed.
NOTE_SEPARATOR = b"\n\n"
DISCHARGE_SUMMARY = "Discharge summary"
REPORT = "Report"
SPLIT_ID = "_id"
SPLIT_COLUMN = "split"
# A block must hold the longest note (tens of kB); the reader keeps dozens of
# blocks in flight, so larger blocks cost memory without speeding it up.
CSV_BLOCK_BYTES = 4 << 20

# Column types for only the columns read. Ids and codes as strings: leading
# zeros matter (`0389`). Text as bytes, so one note with broken UTF-8 is
# quarantined instead of failing the file.
MIMIC3_NOTE_COLUMNS = {
    "ROW_ID": pa.int64(),
    "SUBJECT_ID": pa.string(),
    "HADM_ID": pa.string(),
    "CHARTDATE": pa.string(),
    "CATEGORY": pa.string(),
    "DESCRIPTION": pa.string(),
    "ISERROR": pa.string(),
    "TEXT": pa.binary(),
}
MIMIC4_NOTE_COLUMNS = {
    "subject_id": pa.string(),
    "hadm_id": pa.string(),
    "note_seq": pa.int64(),
    "text": pa.binary(),
}
# (table, code column, system) in the order codes are listed: diagnoses first.
MIMIC3_CODE_TABLES = (
    ("DIAGNOSES_ICD", "ICD9_CODE", "ICD9CM"),
    ("PROCEDURES_ICD", "ICD9_CODE", "ICD9PCS"),
)
MIMIC3_CPT_TABLE = ("CPTEVENTS", "CPT_CD", "CPT")
MIMIC4_CODE_TABLES = (
    ("hosp/diagnoses_icd", {"9": "ICD9CM", "10": "ICD10CM"}),
    ("hosp/procedures_icd", {"9": "ICD9PCS", "10": "ICD10PCS"}),
)


@dataclass
class MimicSummary:
    """What a MIMIC read saw but did not emit as notes; complete once rows are consumed.

    Every note-file row is counted once:
    `note_rows == merged_rows + malformed_rows + missing_admission_rows
    + other_category_rows + error_rows + outside_split_rows`.
    """

    note_rows: int = 0
    # Rows merged into an emitted admission note.
    merged_rows: int = 0
    # Rows without HADM_ID; each is emitted as a rejected row and quarantined.
    missing_admission_rows: int = 0
    # MIMIC-III rows of a category not asked for (nursing, radiology, ...).
    other_category_rows: int = 0
    # MIMIC-III rows of the asked categories flagged ISERROR = 1 (entered in error).
    error_rows: int = 0
    # Rows of admissions absent from the split file.
    outside_split_rows: int = 0
    # Records with the wrong number of fields; each is emitted as a rejected row.
    malformed_rows: int = 0
    admissions: int = 0
    admissions_outside_split: int = 0
    split_admissions_without_note: int = 0
    coded_admissions_without_note: int = 0
    # Code-table rows with no admission id, no code, or the wrong number of fields.
    unusable_code_rows: int = 0

    def check_balanced(self) -> None:
        """Fail loudly if a note row was neither used nor counted as skipped."""
        accounted = (
            self.merged_rows
            + self.malformed_rows
            + self.missing_admission_rows
            + self.other_category_rows
            + self.error_rows
            + self.outside_split_rows
        )
        if accounted != self.note_rows:
            raise AssertionError(f"note rows: read {self.note_rows}, accounted {accounted}")


@dataclass
class _NotePart:
    """One kept note row, waiting to be joined with its admission's other notes."""

    row: int
    hadm_id: str | None
    subject_id: str | None
    order: tuple[int | str, ...]
    text: bytes | None
    # Set for a record pyarrow could not split into the header's fields: why, without content.
    malformed: str | None = None


@dataclass
class _MalformedRecords:
    """Records the CSV parser skipped, collected as it parses: (record number, why)."""

    records: list[tuple[int, str]]

    def __call__(self, row: pa_csv.InvalidRow) -> str:
        # `row.text` is the record itself: never kept, it may hold note text.
        # Without parser threads `number` is the record number, header included.
        number = (row.number or 1) - 1
        why = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        self.records.append((number, why))
        return "skip"

    def take(self) -> list[tuple[int, str]]:
        taken, self.records = self.records, []
        return taken


def read_mimic3_rows(
    root: Path,
    *,
    split_file: Path | None = None,
    include_cpt: bool = False,
    categories: Iterable[str] = (DISCHARGE_SUMMARY,),
    summary: MimicSummary | None = None,
    codes_required: bool = True,
) -> Iterator[RawRow]:
    """One row per admission from MIMIC-III `NOTEEVENTS` and the code tables under `root`.

    Notes of `categories` are joined per HADM_ID: reports first, then addenda,
    each group in CHARTDATE then ROW_ID order. Rows flagged ISERROR are left
    out. With `split_file`, only the admissions it lists are emitted. Missing
    files and columns raise `SourceError` here, before any row is read; without
    `codes_required` (an archive to code) a missing code table gives no codes.
    """
    summary = summary if summary is not None else MimicSummary()
    note_path = _require_table(root, "NOTEEVENTS")
    _require_columns(note_path, MIMIC3_NOTE_COLUMNS)
    splits = read_mimic_splits(split_file) if split_file is not None else None
    tables = MIMIC3_CODE_TABLES + ((MIMIC3_CPT_TABLE,) if include_cpt else ())
    codes: dict[str, list[str]] = {}
    for name, code_column, system in tables:
        path = _require_table(root, name) if codes_required else _find_table(root, name)
        if path is None:
            continue
        table = _read_csv(path, {"HADM_ID": pa.string(), code_column: pa.string()}, summary)
        systems = [system] * table.num_rows
        _add_codes(codes, table["HADM_ID"], table[code_column], systems, summary)
    parts = _mimic3_note_parts(note_path, frozenset(categories), summary)
    return _admission_rows(note_path, parts, codes, splits, summary)


def read_mimic4_rows(
    root: Path,
    *,
    split_file: Path | None = None,
    note_file: str | Path = "note/discharge.csv.gz",
    summary: MimicSummary | None = None,
    codes_required: bool = True,
) -> Iterator[RawRow]:
    """One row per admission from MIMIC-IV (v2.2+) notes and `hosp/` code tables.

    `note_file` is relative to `root` or absolute (MIMIC-IV-Note ships
    separately); `.csv.gz` or `.csv` is accepted. Notes are joined per hadm_id
    in note_seq order. With `split_file`, only the admissions it lists are
    emitted. Without `codes_required`, a missing code table gives no codes.
    """
    summary = summary if summary is not None else MimicSummary()
    note_path = _require_table(root, str(note_file).removesuffix(".gz").removesuffix(".csv"))
    _require_columns(note_path, MIMIC4_NOTE_COLUMNS)
    splits = read_mimic_splits(split_file) if split_file is not None else None
    codes: dict[str, list[str]] = {}
    for name, systems in MIMIC4_CODE_TABLES:
        path = _require_table(root, name) if codes_required else _find_table(root, name)
        if path is None:
            continue
        table = _read_csv(
            path,
            {"hadm_id": pa.string(), "icd_code": pa.string(), "icd_version": pa.string()},
            summary,
        )
        code_systems = _icd_systems(path, table["icd_version"], systems)
        _add_codes(codes, table["hadm_id"], table["icd_code"], code_systems, summary)
    return _mimic4_admission_rows(note_path, codes, splits, summary)


def read_mimic_splits(path: Path) -> dict[str, str]:
    """HADM_ID (as a string) → split, from an Edin et al. 2023 `*.feather` split file."""
    try:
        table = feather.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(path, f"unreadable Feather file ({error_summary(error)})") from None
    for column in (SPLIT_ID, SPLIT_COLUMN):
        if column not in table.column_names:
            raise SourceError(path, f"missing required column {column!r}")
    ids = table[SPLIT_ID].cast(pa.string()).to_pylist()
    return dict(zip(ids, table[SPLIT_COLUMN].to_pylist(), strict=True))


def _mimic3_note_parts(
    path: Path, categories: frozenset[str], summary: MimicSummary
) -> Iterator[_NotePart]:
    wanted = pa.array(sorted(categories), pa.string())
    malformed = _MalformedRecords([])
    offset = 0
    for batch in _stream_csv(path, MIMIC3_NOTE_COLUMNS, malformed):
        summary.note_rows += batch.num_rows
        skipped = malformed.take()
        yield from _malformed_parts(skipped, summary)
        # Filter in Arrow: only the few discharge summaries become Python objects.
        in_category = pc.fill_null(pc.is_in(batch["CATEGORY"], value_set=wanted), False)
        indices = pc.indices_nonzero(in_category)
        summary.other_category_rows += batch.num_rows - len(indices)
        for index, record in zip(indices.to_pylist(), batch.take(indices).to_pylist(), strict=True):
            if _clean(record["ISERROR"]) == "1":
                summary.error_rows += 1
                continue
            row = _record_number(offset + index, skipped)
            addendum_rank = 0 if _clean(record["DESCRIPTION"]) == REPORT else 1
            order = (addendum_rank, record["CHARTDATE"] or "", _number_or(record["ROW_ID"], row))
            yield _NotePart(
                row, _clean(record["HADM_ID"]), _clean(record["SUBJECT_ID"]), order, record["TEXT"]
            )
        offset += batch.num_rows + len(skipped)
    yield from _malformed_parts(malformed.take(), summary)


def _mimic4_note_parts(path: Path, summary: MimicSummary) -> Iterator[_NotePart]:
    malformed = _MalformedRecords([])
    offset = 0
    for batch in _stream_csv(path, MIMIC4_NOTE_COLUMNS, malformed):
        summary.note_rows += batch.num_rows
        skipped = malformed.take()
        yield from _malformed_parts(skipped, summary)
        for index, record in enumerate(batch.to_pylist()):
            row = _record_number(offset + index, skipped)
            order = (_number_or(record["note_seq"], row), row)
            yield _NotePart(
                row, _clean(record["hadm_id"]), _clean(record["subject_id"]), order, record["text"]
            )
        offset += batch.num_rows + len(skipped)
    yield from _malformed_parts(malformed.take(), summary)


def _malformed_parts(records: list[tuple[int, str]], summary: MimicSummary) -> Iterator[_NotePart]:
    summary.note_rows += len(records)
    for row, why in records:
        yield _NotePart(row, None, None, (), None, malformed=why)


def _record_number(position: int, skipped: list[tuple[int, str]]) -> int:
    """The 1-based record number of a batch's row at `position` among the valid records.

    `position` counts valid records before it in the file; the skipped ones before it
    (file-wide numbers, sorted) shift it.
    """
    row = position + 1
    for number, _ in skipped:
        if number <= row:
            row += 1
    return row


def _mimic4_admission_rows(
    path: Path,
    codes: Mapping[str, list[str]],
    splits: Mapping[str, str] | None,
    summary: MimicSummary,
) -> Iterator[RawRow]:
    # ~330k discharge notes are too many to hold at once: count each
    # admission's notes first, then emit it as soon as its last note is read.
    note_counts = _count_admission_notes(path)
    parts = _mimic4_note_parts(path, summary)
    yield from _admission_rows(path, parts, codes, splits, summary, note_counts)


def _count_admission_notes(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    # Malformed records are skipped here as in the note pass, which reports them.
    for batch in _stream_csv(path, {"hadm_id": pa.string()}, _MalformedRecords([])):
        counts.update(hadm_id for hadm_id in map(_clean, batch["hadm_id"].to_pylist()) if hadm_id)
    return counts


def _admission_rows(
    source: Path,
    parts: Iterable[_NotePart],
    codes: Mapping[str, list[str]],
    splits: Mapping[str, str] | None,
    summary: MimicSummary,
    note_counts: Mapping[str, int] | None = None,
) -> Iterator[RawRow]:
    """Join note parts per admission; without `note_counts`, all are held until the end."""
    pending: dict[str, list[_NotePart]] = {}
    noted: set[str] = set()
    outside_split: set[str] = set()
    for part in parts:
        if part.malformed is not None:
            summary.malformed_rows += 1
            yield RawRow(
                str(source),
                part.row,
                None,
                None,
                None,
                rejected=(Reason.MALFORMED_ROW, part.malformed),
            )
            continue
        if part.hadm_id is None:
            summary.missing_admission_rows += 1
            detail = "note row without an admission id (HADM_ID)"
            yield RawRow(
                str(source), part.row, None, None, None, rejected=(Reason.MISSING_ID, detail)
            )
            continue
        noted.add(part.hadm_id)
        if splits is not None and part.hadm_id not in splits:
            summary.outside_split_rows += 1
            outside_split.add(part.hadm_id)
            continue
        group = pending.setdefault(part.hadm_id, [])
        group.append(part)
        if note_counts is not None and len(group) == note_counts.get(part.hadm_id):
            del pending[part.hadm_id]
            yield _admission_row(source, part.hadm_id, group, codes, splits, summary)
    for hadm_id, group in pending.items():
        yield _admission_row(source, hadm_id, group, codes, splits, summary)
    summary.admissions_outside_split = len(outside_split)
    summary.coded_admissions_without_note = len(codes.keys() - noted)
    if splits is not None:
        summary.split_admissions_without_note = len(splits.keys() - noted)


def _admission_row(
    source: Path,
    hadm_id: str,
    group: list[_NotePart],
    codes: Mapping[str, list[str]],
    splits: Mapping[str, str] | None,
    summary: MimicSummary,
) -> RawRow:
    group.sort(key=lambda part: part.order)
    summary.admissions += 1
    summary.merged_rows += len(group)
    return RawRow(
        source=str(source),
        row=min(part.row for part in group),
        note_id=hadm_id,
        text=NOTE_SEPARATOR.join(part.text or b"" for part in group),
        codes=list(codes.get(hadm_id, ())),
        patient_id=group[0].subject_id,
        encounter_id=hadm_id,
        split=splits[hadm_id] if splits is not None else None,
    )


def _add_codes(
    codes: dict[str, list[str]],
    hadm_ids: pa.ChunkedArray,
    values: pa.ChunkedArray,
    systems: list[str],
    summary: MimicSummary,
) -> None:
    """Append `SYSTEM:value` to each admission's codes, in table order, without repeats."""
    for hadm_id, value, system in zip(
        map(_clean, hadm_ids.to_pylist()), map(_clean, values.to_pylist()), systems, strict=True
    ):
        if hadm_id is None or value is None:
            summary.unusable_code_rows += 1
            continue
        # Interned: a few thousand distinct codes repeat across millions of rows.
        code = sys.intern(f"{system}:{value}")
        admission_codes = codes.setdefault(hadm_id, [])
        if code not in admission_codes:
            admission_codes.append(code)


def _icd_systems(path: Path, versions: pa.ChunkedArray, systems: Mapping[str, str]) -> list[str]:
    """The code system of each row from its `icd_version`; any other version fails the file."""
    result: list[str] = []
    for row, version in enumerate(map(_clean, versions.to_pylist()), start=1):
        system = systems.get(version or "")
        if system is None:
            raise SourceError(path, f"row {row}: icd_version {version!r} is not 9 or 10")
        result.append(system)
    return result


def _require_table(root: Path, name: str) -> Path:
    """`_find_table`'s file, or a SourceError naming the one missing."""
    path = _find_table(root, name)
    if path is None:
        raise SourceError(root, f"missing required file {name}.csv or {name}.csv.gz")
    return path


def _find_table(root: Path, name: str) -> Path | None:
    """`NAME.csv.gz` or `NAME.csv`, with the name as given or in lower case."""
    for stem in dict.fromkeys((name, name.lower())):
        for suffix in (".csv.gz", ".csv"):
            path = root / f"{stem}{suffix}"
            if path.is_file():
                return path
    return None


def _require_columns(path: Path, columns: Iterable[str]) -> None:
    header = _csv_header(path)
    for column in columns:
        if column not in header:
            raise SourceError(path, f"missing required column {column!r}")


def _csv_header(path: Path) -> list[str]:
    """Column names from the first line alone: the file may be gigabytes."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:
                return next(csv.reader(handle), [])
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SourceError(path, f"unreadable CSV header ({error_summary(error)})") from None


def _csv_options(
    columns: Mapping[str, pa.DataType], malformed: _MalformedRecords
) -> tuple[pa_csv.ReadOptions, pa_csv.ParseOptions, pa_csv.ConvertOptions]:
    return (
        # One parser thread: only then does pyarrow give a malformed record its number.
        pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
        pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=malformed),
        # Only empty fields are null: "NA" is a string, not a missing value.
        pa_csv.ConvertOptions(
            include_columns=list(columns),
            column_types=dict(columns),
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def _read_csv(path: Path, columns: Mapping[str, pa.DataType], summary: MimicSummary) -> pa.Table:
    _require_columns(path, columns)
    malformed = _MalformedRecords([])
    read, parse, convert = _csv_options(columns, malformed)
    try:
        table = pa_csv.read_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(path, f"unreadable CSV ({error_summary(error)})") from None
    summary.unusable_code_rows += len(malformed.take())
    return table


def _stream_csv(
    path: Path, columns: Mapping[str, pa.DataType], malformed: _MalformedRecords
) -> Iterator[pa.RecordBatch]:
    read, parse, convert = _csv_options(columns, malformed)
    try:
        reader = pa_csv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
        yield from reader
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(path, f"unreadable CSV ({error_summary(error)})") from None


def _clean(value: object) -> str | None:
    """A stripped string, or None for a missing or blank field."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number_or(value: int | None, fallback: int) -> int:
    """A sort number from the file, or the fallback (the row number) where it is blank."""
    return fallback if value is None else value
