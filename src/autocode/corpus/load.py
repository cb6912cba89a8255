"""One entry point for every source: detect the format, stream canonical notes.

`stream_notes` yields canonical notes batch by batch (constant memory);
`load_notes` collects them into one Arrow table for training-sized data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from autocode.codes import SYSTEMS
from autocode.corpus.canonical import Canonicalizer, RawRow
from autocode.corpus.codiesp import is_codiesp_root, read_codiesp_rows
from autocode.corpus.errors import SourceError
from autocode.corpus.quarantine import LoadReport, Quarantine
from autocode.corpus.schema import DEFAULT_MAX_TEXT_CHARS, NOTE_SCHEMA, Note, notes_to_table
from autocode.corpus.table import ColumnMap, expand_table_paths, read_table_rows
from autocode.digests import update_with_file

FORMATS: tuple[str, ...] = ("auto", "table", "codiesp", "mimic3", "mimic4")


@dataclass(frozen=True)
class LoadOptions:
    """How to read a source; the same options on every command that reads notes."""

    format: str = "auto"
    columns: ColumnMap = field(default_factory=ColumnMap)
    system: str | None = None
    splits: tuple[str, ...] | None = None
    language: str = "en"
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    split_file: Path | None = None
    include_cpt: bool = False
    skip_unreadable_files: bool = False  # batch jobs: quarantine a corrupt part, go on
    # The command that needs gold codes (evaluate, train): a table without a codes column
    # is then an error; for every other reader it holds notes waiting to be coded.
    needs_codes_for: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r} is not one of {', '.join(FORMATS)}")
        # Checked here, not at the first bare code: an archive without codes never meets one.
        if self.system is not None and self.system.strip().upper() not in SYSTEMS:
            raise ValueError(f"code system {self.system!r} is not one of {', '.join(SYSTEMS)}")


@dataclass
class LoadedNotes:
    """A whole source in memory, with the accounting of how it was read."""

    table: pa.Table
    report: LoadReport
    source_digest: str


def detect_format(path: Path) -> str:
    """Guess the layout: CodiEsp root, MIMIC-III or -IV tables, else generic tables."""
    if path.is_dir():
        if is_codiesp_root(path):
            return "codiesp"
        names = {p.name.lower() for p in path.iterdir()}
        if any(name.startswith("noteevents.csv") for name in names):
            return "mimic3"
        if "note" in names and "hosp" in names:
            return "mimic4"
    return "table"


def read_raw_rows(
    path: Path, options: LoadOptions, report: LoadReport | None = None
) -> Iterator[RawRow]:
    """Raw rows of any source. MIMIC note rows left out by design (other categories,
    entered-in-error, outside the split file) are added to `report` as read and skipped.
    """
    source_format = detect_format(path) if options.format == "auto" else options.format
    if source_format == "codiesp":
        splits = list(options.splits) if options.splits else None
        return read_codiesp_rows(path, splits, options.language)
    if source_format in ("mimic3", "mimic4"):
        return _mimic_rows(path, source_format, options, report)
    return read_table_rows(
        path,
        options.columns,
        skip_unreadable_files=options.skip_unreadable_files,
        needs_codes_for=options.needs_codes_for,
    )


def _mimic_rows(
    path: Path, source_format: str, options: LoadOptions, report: LoadReport | None
) -> Iterator[RawRow]:
    from autocode.corpus import mimic  # only MIMIC users pay for its import

    summary = mimic.MimicSummary()
    # Coding an archive needs its notes only: code tables are read where they exist.
    codes_required = options.needs_codes_for is not None
    if source_format == "mimic3":
        yield from mimic.read_mimic3_rows(
            path,
            split_file=options.split_file,
            include_cpt=options.include_cpt,
            summary=summary,
            codes_required=codes_required,
        )
    else:
        yield from mimic.read_mimic4_rows(
            path, split_file=options.split_file, summary=summary, codes_required=codes_required
        )
    summary.check_balanced()
    if report is not None:
        for reason, rows in (
            ("mimic_other_category_rows", summary.other_category_rows),
            ("mimic_entered_in_error_rows", summary.error_rows),
            ("mimic_outside_split_rows", summary.outside_split_rows),
        ):
            report.read += rows
            report.skipped[reason] += rows


def stream_notes(
    path: Path, options: LoadOptions, quarantine: Quarantine, report: LoadReport
) -> Iterator[Note]:
    """Canonical notes of the selected splits; every other row is counted in `report`."""
    canonicalizer = canonicalizer_for(options, quarantine, report)
    yield from canonicalizer.notes(read_raw_rows(path, options, report))


def canonicalizer_for(
    options: LoadOptions, quarantine: Quarantine, report: LoadReport
) -> Canonicalizer:
    """The rules every reader of these options applies to its raw rows."""
    return Canonicalizer(
        quarantine,
        report,
        system=options.system,
        max_text_chars=options.max_text_chars,
        splits=options.splits,
    )


def stream_note_tables(
    path: Path,
    options: LoadOptions,
    quarantine: Quarantine,
    report: LoadReport,
    batch_size: int = 10_000,
) -> Iterator[pa.Table]:
    """The same notes as `stream_notes`, grouped into canonical Arrow tables."""
    batch: list[Note] = []
    for note in stream_notes(path, options, quarantine, report):
        batch.append(note)
        if len(batch) >= batch_size:
            yield notes_to_table(batch)
            batch = []
    if batch:
        yield notes_to_table(batch)


def load_notes(
    path: str | Path, options: LoadOptions | None = None, quarantine_path: Path | None = None
) -> LoadedNotes:
    """Read a whole source into memory (training, evaluation, splitting)."""
    path = Path(path)
    options = options or LoadOptions()
    report = LoadReport()
    with Quarantine(quarantine_path) as quarantine:
        tables = list(stream_note_tables(path, options, quarantine, report))
    report.check_balanced()
    table = pa.concat_tables(tables) if tables else NOTE_SCHEMA.empty_table()
    return LoadedNotes(table=table, report=report, source_digest=source_digest(path))


def source_digest(path: Path) -> str:
    """SHA-256 over the relative names and bytes of every file in the source."""
    if not path.exists() and not any(char in str(path) for char in "*?["):
        raise SourceError(path, "no such file or directory")
    files = [path] if path.is_file() else _all_files(path)
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        update_with_file(digest, file)
    return digest.hexdigest()


def _all_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return expand_table_paths(path)
