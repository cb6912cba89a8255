"""Synthetic archive generator: determinism, schema, code structure, traps, bad rows."""

from __future__ import annotations

import csv
import json
import re
import statistics
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autocode.corpus.schema import NOTE_SCHEMA, Note
from autocode.corpus.synth import (
    BAD_ROW_KINDS,
    build_vocabulary,
    curated_codes,
    generate_notes,
    negation_templates,
    write_synthetic_archive,
)

CODE_PATTERNS = {
    "ICD10CM": re.compile(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?"),
    "ICD10PCS": re.compile(r"[0-9A-HJ-NP-Z]{7}"),
    "HCPCS": re.compile(r"[A-V][0-9]{4}"),
    "CPT": re.compile(r"[0-9]{4}[0-9FTU]"),
}
CURATED_ONLY = 100  # fewer codes than the curated set: no simple_icd_10_cm needed


def well_formed(code: str) -> bool:
    system, _, value = code.partition(":")
    pattern = CODE_PATTERNS.get(system)
    return pattern is not None and pattern.fullmatch(value) is not None


def read_parquet_dir(path: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(f) for f in sorted(path.glob("*.parquet")))


@pytest.fixture(scope="module")
def notes() -> list[Note]:
    return list(generate_notes(300, seed=3, n_codes=CURATED_ONLY))


def test_same_seed_gives_identical_archive_and_other_seeds_differ(tmp_path: Path) -> None:
    first = write_synthetic_archive(tmp_path / "a", 60, seed=7, n_codes=CURATED_ONLY)
    again = write_synthetic_archive(tmp_path / "b", 60, seed=7, n_codes=CURATED_ONLY)
    other = write_synthetic_archive(tmp_path / "c", 60, seed=8, n_codes=CURATED_ONLY)

    assert read_parquet_dir(tmp_path / "a").equals(read_parquet_dir(tmp_path / "b"))
    assert [f.read_bytes() for f in first.files] == [f.read_bytes() for f in again.files]
    assert not read_parquet_dir(tmp_path / "a").equals(read_parquet_dir(tmp_path / "c"))
    assert other.notes == first.notes == 60


def test_parquet_schema_is_the_canonical_schema(tmp_path: Path) -> None:
    write_synthetic_archive(tmp_path, 20, n_codes=CURATED_ONLY)
    assert read_parquet_dir(tmp_path).schema.equals(NOTE_SCHEMA)


def test_codes_are_well_formed_and_three_to_twelve_per_note(notes: list[Note]) -> None:
    for note in notes:
        assert 3 <= len(note.codes) <= 12, note.codes
        assert len(set(note.codes)) == len(note.codes)
        assert all(well_formed(code) for code in note.codes), note.codes
    systems = {code.partition(":")[0] for note in notes for code in note.codes}
    assert systems == set(CODE_PATTERNS)


def test_notes_vary_in_length(notes: list[Note]) -> None:
    words = [len(note.text.split()) for note in notes]
    assert min(words) >= 90
    assert max(words) <= 2000
    assert max(words) > 3 * min(words)


def test_assigned_codes_are_mentioned(notes: list[Note]) -> None:
    phrases = {entry.code: entry.phrases for entry in curated_codes()}
    pairs = [(note, code) for note in notes for code in note.codes]
    mentioned = sum(
        any(phrase.lower() in note.text.lower() for phrase in phrases[code]) for note, code in pairs
    )
    # Typos and abbreviation noise may hide a few mentions, never most of them.
    assert mentioned / len(pairs) > 0.9


def test_negated_mentions_are_never_coded(notes: list[Note]) -> None:
    negated = []
    for entry in curated_codes():
        for phrase in entry.phrases if entry.negatable else ():
            capitalised = phrase[:1].upper() + phrase[1:]
            for template in negation_templates():
                negated.append((template.format(p=phrase, P=capitalised), entry.code))

    found = [(text, code, note) for note in notes for text, code in negated if text in note.text]
    assert len(found) > len(notes) // 2
    assert any(text.startswith(("Denies", "No evidence of")) for text, _, _ in found)
    for text, code, note in found:
        assert code not in note.codes, (text, note.codes)


def test_patients_have_one_to_three_notes(notes: list[Note]) -> None:
    per_patient = Counter(note.patient_id for note in notes)
    assert set(per_patient.values()) == {1, 2, 3}
    exact = list(generate_notes(30, seed=1, n_codes=CURATED_ONLY, n_patients=10))
    assert len({note.patient_id for note in exact}) == 10


def test_clusters_make_codes_co_occur(notes: list[Note]) -> None:
    with_nstemi = [note for note in notes if "ICD10CM:I21.4" in note.codes]
    with_cath = [note for note in with_nstemi if "ICD10PCS:4A023N7" in note.codes]
    assert with_nstemi
    assert len(with_cath) / len(with_nstemi) > 0.4


def test_bad_rows_are_extra_rows_counted_exactly_per_kind(tmp_path: Path) -> None:
    summary = write_synthetic_archive(
        tmp_path, 200, seed=2, n_codes=CURATED_ONLY, fmt="jsonl", bad_row_rate=0.2
    )
    rows = [json.loads(line) for f in summary.files for line in f.read_text().splitlines()]
    ids = Counter(row["note_id"] for row in rows if row["note_id"] is not None)
    observed = {
        "empty_text": sum(not row["text"].strip() for row in rows),
        "duplicate_note_id": sum(count - 1 for count in ids.values()),
        "malformed_code": sum(not all(map(well_formed, row["codes"])) for row in rows),
        "missing_note_id": sum(row["note_id"] is None for row in rows),
    }
    assert observed == summary.bad_rows
    assert set(summary.bad_rows) == set(BAD_ROW_KINDS)
    assert all(count > 0 for count in summary.bad_rows.values())
    assert len(rows) == summary.rows == 200 + sum(summary.bad_rows.values())

    # Bad rows leave the clean notes untouched; a clean note precedes its duplicate.
    clean: dict[str, Note] = {}
    for row in rows:
        if row["note_id"] and row["note_id"].startswith("N"):
            clean.setdefault(row["note_id"], Note(**row))
    assert list(clean.values()) == list(generate_notes(200, seed=2, n_codes=CURATED_ONLY))


def test_chunked_writing_splits_rows_over_part_files(tmp_path: Path) -> None:
    summary = write_synthetic_archive(tmp_path / "pq", 120, n_codes=CURATED_ONLY, rows_per_file=50)
    assert [f.name for f in summary.files] == [f"notes-0000{i}.parquet" for i in range(3)]
    assert [pq.read_metadata(f).num_rows for f in summary.files] == [50, 50, 20]

    as_csv = write_synthetic_archive(
        tmp_path / "csv", 120, n_codes=CURATED_ONLY, fmt="csv", rows_per_file=50
    )
    with_codes = []
    for path in as_csv.files:
        with path.open(newline="", encoding="utf-8") as f:
            with_codes += [(row["note_id"], row["codes"].split(";")) for row in csv.DictReader(f)]
    table = read_parquet_dir(tmp_path / "pq")
    assert with_codes == list(
        zip(table["note_id"].to_pylist(), table["codes"].to_pylist(), strict=True)
    )


def test_large_vocabulary_is_long_tailed_real_icd10cm() -> None:
    import simple_icd_10_cm as cm

    vocabulary = build_vocabulary(2000, seed=0)
    assert len({entry.code for entry in vocabulary}) == 2000
    for entry in vocabulary[len(curated_codes()) :][:50]:
        value = entry.code.removeprefix("ICD10CM:")
        assert cm.is_leaf(value) and entry.description == cm.get_description(value)

    counts = Counter(c for note in generate_notes(500, seed=0, n_codes=2000) for c in note.codes)
    assert len(curated_codes()) < len(counts) <= 2000
    top = counts.most_common(1)[0][1]
    assert top > 10 * statistics.median(counts.values())


def test_curated_icd10cm_descriptions_are_the_official_ones() -> None:
    import simple_icd_10_cm as cm

    for entry in curated_codes():
        system, _, value = entry.code.partition(":")
        assert well_formed(entry.code)
        if system == "ICD10CM":
            assert cm.is_leaf(value) and entry.description == cm.get_description(value)


def test_invalid_arguments_are_rejected_with_the_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="10000000"):
        build_vocabulary(10_000_000)
    with pytest.raises(ValueError, match="xml"):
        write_synthetic_archive(tmp_path, 5, fmt="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"1\.5"):
        generate_notes(5, bad_row_rate=1.5)
    write_synthetic_archive(tmp_path, 5, n_codes=CURATED_ONLY)
    with pytest.raises(FileExistsError, match="notes-00000"):
        write_synthetic_archive(tmp_path, 5, n_codes=CURATED_ONLY)
