"""`data prepare`: canonical notes with splits, a quarantine file and a manifest."""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from autocode.cli import app
from autocode.corpus.load import LoadOptions
from autocode.corpus.prepare import (
    MANIFEST_FILE,
    NOTES_FILE,
    QUARANTINE_FILE,
    PreparedDataset,
    prepare_dataset,
)
from autocode.corpus.schema import NOTE_SCHEMA
from autocode.corpus.splits import SplitRatios
from autocode.corpus.synth import SynthSummary, write_synthetic_archive
from conftest import RecordingProgress

N_NOTES = 300
BAD_ROW_RATE = 0.1


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    """A synthetic archive of 300 notes plus bad rows of every kind, in two part files."""
    out = tmp_path_factory.mktemp("archive")
    summary = write_synthetic_archive(
        out, N_NOTES, seed=7, bad_row_rate=BAD_ROW_RATE, rows_per_file=200
    )
    assert len(summary.files) == 2
    assert all(summary.bad_rows.values())
    return out, summary


def prepare(source: Path, out: Path, seed: int = 0, **options: Any) -> PreparedDataset:
    return prepare_dataset(source, LoadOptions(**options), out, SplitRatios(), seed)


def read_manifest(out: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    return manifest


def quarantine_records(out: Path) -> list[dict[str, Any]]:
    lines = (out / QUARANTINE_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def split_of(out: Path) -> dict[str, str]:
    table = pq.read_table(out / NOTES_FILE, columns=["note_id", "split"])
    note_ids, splits = table.column("note_id").to_pylist(), table.column("split").to_pylist()
    return dict(zip(note_ids, splits, strict=True))


# ----------------------------------------------------------------------------- outputs


def test_notes_have_the_canonical_schema_and_three_splits(
    archive: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    source, summary = archive
    prepared = prepare(source, tmp_path)
    notes = pq.read_table(tmp_path / NOTES_FILE)
    assert notes.schema.equals(NOTE_SCHEMA)
    assert notes.num_rows == summary.notes == N_NOTES
    splits = Counter(notes.column("split").to_pylist())
    assert set(splits) == {"train", "validation", "test"}
    assert dict(splits) == prepared.split_counts == read_manifest(tmp_path)["splits"]
    assert abs(splits["train"] / N_NOTES - 0.8) < 0.05


def test_quarantine_file_and_manifest_account_for_every_row(
    archive: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    source, summary = archive
    prepared = prepare(source, tmp_path, seed=11)
    counts = read_manifest(tmp_path)["counts"]
    records = quarantine_records(tmp_path)

    assert (
        counts["read"] == summary.rows == counts["kept"] + counts["quarantined"] + counts["skipped"]
    )
    assert counts["kept"] == N_NOTES
    assert counts["quarantined"] == sum(summary.bad_rows.values()) == len(records)
    assert counts["quarantined_by_reason"] == dict(Counter(r["reason"] for r in records))
    assert counts == prepared.report.to_dict()
    # Each record points at a real row of a real source file.
    rows_per_file = {str(f): pq.read_metadata(f).num_rows for f in summary.files}
    assert all(1 <= r["row"] <= rows_per_file[r["source"]] for r in records)


def test_manifest_records_seed_ratios_and_source_digest(
    archive: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    source, _ = archive
    prepare_dataset(source, LoadOptions(), tmp_path, SplitRatios(0.7, 0.2, 0.1), seed=5)
    manifest = read_manifest(tmp_path)
    assert manifest["seed"] == 5
    assert manifest["split_ratios"] == [0.7, 0.2, 0.1]
    assert manifest["source"] == str(source)
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["source_digest"])


def test_source_digest_changes_when_a_source_file_changes(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    rows = [
        {"note_id": f"n{i}", "text": f"Visit {i}: essential hypertension.", "codes": ["I10"]}
        for i in range(10)
    ]
    pq.write_table(pa.Table.from_pylist(rows), source / "a.parquet")
    prepare(source, tmp_path / "first", system="ICD10CM")
    prepare(source, tmp_path / "again", system="ICD10CM")
    rows[3]["text"] = "Visit 3: essential hypertension, well controlled."
    pq.write_table(pa.Table.from_pylist(rows), source / "a.parquet")
    prepare(source, tmp_path / "edited", system="ICD10CM")

    digests = {
        name: read_manifest(tmp_path / name)["source_digest"]
        for name in ("first", "again", "edited")
    }
    assert digests["first"] == digests["again"]
    assert digests["edited"] != digests["first"]


# ----------------------------------------------------------------------------- splits


def test_no_patient_is_in_two_splits(archive: tuple[Path, SynthSummary], tmp_path: Path) -> None:
    source, _ = archive
    prepare(source, tmp_path, seed=2)
    table = pq.read_table(tmp_path / NOTES_FILE, columns=["patient_id", "split"])
    splits_of_patient: dict[str, set[str]] = {}
    for patient, split in zip(
        table.column("patient_id").to_pylist(), table.column("split").to_pylist(), strict=True
    ):
        splits_of_patient.setdefault(patient, set()).add(split)
    assert len(splits_of_patient) > 100  # patients with several notes are the point
    assert max(Counter(table.column("patient_id").to_pylist()).values()) > 1
    assert all(len(splits) == 1 for splits in splits_of_patient.values())


def test_same_seed_same_splits_other_seed_other_splits(
    archive: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    source, _ = archive
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        prepare(source, tmp_path / name, seed=seed)
    assert split_of(tmp_path / "a") == split_of(tmp_path / "b")
    assert split_of(tmp_path / "a") != split_of(tmp_path / "c")


def test_existing_split_column_is_respected(tmp_path: Path) -> None:
    given = ["train", "test", "dev", "train", "holdout", "test"]
    rows = [
        {"note_id": f"n{i}", "text": "Chest pain.", "codes": ["ICD10CM:R07.9"], "split": split}
        for i, split in enumerate(given)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "notes.parquet")
    prepared = prepare(tmp_path / "notes.parquet", tmp_path / "out")
    assert split_of(tmp_path / "out") == {f"n{i}": split for i, split in enumerate(given)}
    assert prepared.split_counts == {"dev": 1, "holdout": 1, "test": 2, "train": 2}


def test_split_filter_is_counted_as_skipped(tmp_path: Path) -> None:
    rows = [
        {"note_id": f"n{i}", "text": "Chest pain.", "codes": [], "split": split}
        for i, split in enumerate(["train", "test", "train", "validation"])
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "notes.parquet")
    prepared = prepare(tmp_path / "notes.parquet", tmp_path / "out", splits=("train",))
    assert set(split_of(tmp_path / "out")) == {"n0", "n2"}
    counts = read_manifest(tmp_path / "out")["counts"]
    assert (counts["read"], counts["kept"], counts["skipped"]) == (4, 2, 2)
    assert prepared.report.skipped == {"split_not_selected": 2}


@pytest.mark.integration
def test_codiesp_keeps_its_own_splits(codiesp_root: Path, tmp_path: Path) -> None:
    prepared = prepare(codiesp_root, tmp_path, splits=("train", "dev"))
    assert prepared.split_counts == {"dev": 250, "train": 500}
    assert pq.read_metadata(tmp_path / NOTES_FILE).num_rows == 750


# ----------------------------------------------------------------------------- privacy


def test_quarantine_holds_no_note_text(tmp_path: Path) -> None:
    sentence = "Crushing substernal chest pain radiating to the left jaw since dawn."
    rows = [
        {"note_id": "n1", "text": f"Admitted. {sentence}", "codes": ["ICD10CM:I21.9"]},
        {"note_id": "n1", "text": f"Duplicate. {sentence}", "codes": ["ICD10CM:I21.9"]},
        {"note_id": "n2", "text": f"Bad code. {sentence}", "codes": ["ICD10CM:??"]},
        {"note_id": "", "text": f"No id. {sentence}", "codes": []},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "notes.parquet")
    prepare(tmp_path / "notes.parquet", tmp_path / "out")
    quarantine = (tmp_path / "out" / QUARANTINE_FILE).read_text(encoding="utf-8")
    assert len(quarantine.splitlines()) == 3
    assert "substernal" not in quarantine
    assert "Duplicate." not in quarantine


def test_synthetic_bad_rows_leave_no_text_in_quarantine(
    archive: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    source, summary = archive
    prepare(source, tmp_path)
    quarantine = (tmp_path / QUARANTINE_FILE).read_text(encoding="utf-8")
    # The first sentence of every quarantined row that has text.
    texts = {
        (str(path), row): text
        for path in summary.files
        for row, text in enumerate(pq.read_table(path).column("text").to_pylist(), start=1)
    }
    sentences = [
        texts[(r["source"], r["row"])].split(".")[0]
        for r in quarantine_records(tmp_path)
        if texts[(r["source"], r["row"])].strip()
    ]
    assert len(sentences) > 10
    assert not [s for s in sentences if s in quarantine]


def test_rerun_with_a_clean_source_leaves_no_stale_quarantine(
    archive: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    source, _ = archive
    prepare(source, tmp_path / "out")
    assert quarantine_records(tmp_path / "out")
    clean = tmp_path / "clean"
    write_synthetic_archive(clean, 20, seed=1)
    prepared = prepare(clean, tmp_path / "out")
    assert prepared.report.quarantined_total == 0
    assert quarantine_records(tmp_path / "out") == []


# ----------------------------------------------------------------------------- CLI


def test_cli_prepare_writes_the_dataset(archive: tuple[Path, SynthSummary], tmp_path: Path) -> None:
    source, summary = archive
    out = tmp_path / "prepared"
    args = ["data", "prepare", str(source), "--out", str(out), "--seed", "9", "--json"]
    result = CliRunner().invoke(app, [*args, "--split-ratios", "0.6,0.2,0.2"])
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    manifest = read_manifest(out)
    assert printed["read"] == summary.rows
    assert printed["kept"] == N_NOTES
    assert printed["quarantined"] == len(quarantine_records(out))
    assert printed["splits"] == manifest["splits"] == dict(Counter(split_of(out).values()))
    assert manifest["seed"] == 9
    assert manifest["split_ratios"] == [0.6, 0.2, 0.2]


def test_cli_prepare_rejects_bad_ratios(archive: tuple[Path, SynthSummary], tmp_path: Path) -> None:
    source, _ = archive
    args = ["data", "prepare", str(source), "--out", str(tmp_path), "--split-ratios", "0.8,0.1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "0.8,0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_counts_every_row_of_both_passes(
    archive: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    source, _ = archive
    progress = RecordingProgress()
    prepared = prepare_dataset(source, LoadOptions(), tmp_path, SplitRatios(), 0, progress)
    read = prepared.report.read
    assert (progress.total, progress.done) == (2 * read, 0)
    assert sum(progress.advanced) == 2 * read  # quarantined rows included
    assert all(step >= 0 for step in progress.advanced)


def test_prepared_notes_and_quarantine_are_owner_only(
    archive: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    previous = os.umask(0o022)  # the usual umask, under which files are world-readable
    try:
        prepare_dataset(archive[0], LoadOptions(), tmp_path / "out", SplitRatios())
    finally:
        os.umask(previous)
    for name in (NOTES_FILE, QUARANTINE_FILE):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
