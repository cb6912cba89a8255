"""`data prepare`: a canonical Parquet dataset with splits, a quarantine and a manifest.

Two streaming passes keep memory bounded: the first reads ids, codes and
patients to assign splits; the second writes the notes with their split.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from autocode import __version__
from autocode.corpus.counting import ProgressSink, count_rows
from autocode.corpus.load import LoadOptions, source_digest, stream_note_tables, stream_notes
from autocode.corpus.quarantine import LoadReport, Quarantine
from autocode.corpus.schema import NOTE_SCHEMA, Note
from autocode.corpus.splits import SplitRatios, group_key, split_names
from autocode.private_files import create_private_file, make_private_dir, open_private_binary

NOTES_FILE = "notes.parquet"
PROGRESS_EVERY = 1000  # rows between progress updates
QUARANTINE_FILE = "quarantine.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass
class PreparedDataset:
    directory: Path
    report: LoadReport
    split_counts: dict[str, int]


def prepare_dataset(
    path: Path,
    options: LoadOptions,
    out_dir: Path,
    ratios: SplitRatios,
    seed: int = 0,
    progress: ProgressSink | None = None,
) -> PreparedDataset:
    """`progress` sees every row twice: once when splits are assigned, once when written."""
    make_private_dir(out_dir)
    # Owner-only, and never a stale one: the quarantine names source rows and note ids.
    os.close(create_private_file(out_dir / QUARANTINE_FILE))
    if progress is not None:
        rows = count_rows(path, options)
        progress.start(None if rows is None else 2 * rows)
    report = LoadReport()
    with Quarantine(out_dir / QUARANTINE_FILE) as quarantine:
        notes = stream_notes(path, options, quarantine, report)
        note_ids, splits = _assign(_reporting(notes, report, progress), ratios, seed)
    report.check_balanced()
    split_of = dict(zip(note_ids, splits, strict=True))
    _write_notes(path, options, out_dir / NOTES_FILE, split_of, progress)
    split_counts = dict(sorted(Counter(splits).items()))
    manifest = _manifest(path, options, report, split_counts, ratios, seed)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return PreparedDataset(out_dir, report, split_counts)


def _reporting(
    notes: Iterator[Note], report: LoadReport, progress: ProgressSink | None
) -> Iterator[Note]:
    """The notes, telling `progress` how many rows (kept or not) were read meanwhile."""
    reported = 0
    for note in notes:
        yield note
        if report.read - reported >= PROGRESS_EVERY:
            reported = _report_rows(progress, report, reported)
    _report_rows(progress, report, reported)


def _report_rows(progress: ProgressSink | None, report: LoadReport, reported: int) -> int:
    """Advance `progress` by the rows read since `reported`; the new reported count."""
    if progress is not None:
        progress.advance(report.read - reported)
    return report.read


def _assign(notes: Iterator[Note], ratios: SplitRatios, seed: int) -> tuple[list[str], list[str]]:
    note_ids: list[str] = []
    codes: list[list[str]] = []
    groups: list[str] = []
    given: list[str | None] = []
    for note in notes:
        note_ids.append(note.note_id)
        codes.append(note.codes)
        groups.append(group_key(note.patient_id, note.note_id))
        given.append(note.split)
    return note_ids, split_names(codes, groups, given, ratios, seed)


def _write_notes(
    path: Path,
    options: LoadOptions,
    target: Path,
    split_of: dict[str, str],
    progress: ProgressSink | None,
) -> None:
    # Second pass: same source, same rules, so the same notes come out; no quarantine re-write.
    report = LoadReport()
    reported = 0
    # The notes are PHI: the file is created owner-only.
    with open_private_binary(target) as file, pq.ParquetWriter(file, NOTE_SCHEMA) as writer:
        for table in stream_note_tables(path, options, Quarantine(None), report):
            splits = pa.array([split_of[i] for i in table.column("note_id").to_pylist()])
            table = table.set_column(table.schema.get_field_index("split"), "split", splits)
            writer.write_table(table)
            reported = _report_rows(progress, report, reported)
    _report_rows(progress, report, reported)


def _manifest(
    path: Path,
    options: LoadOptions,
    report: LoadReport,
    split_counts: dict[str, int],
    ratios: SplitRatios,
    seed: int,
) -> dict[str, Any]:
    return {
        "source": str(path),
        "source_digest": source_digest(path),
        "format": options.format,
        "counts": report.to_dict(),
        "splits": split_counts,
        "split_ratios": [ratios.train, ratios.validation, ratios.test],
        "seed": seed,
        "autocode_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
