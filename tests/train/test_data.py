"""Experiment data roles: a validation split with no notes means cross-fitting."""

from __future__ import annotations

from pathlib import Path

from autocode.config import DataConfig
from autocode.corpus.synth import write_synthetic_archive
from autocode.train.data import load_experiment_data


def test_missing_validation_split_falls_back_to_cross_fitting(tmp_path: Path) -> None:
    write_synthetic_archive(tmp_path / "archive", 60, seed=4, n_codes=30)
    config = DataConfig(
        source=str(tmp_path / "archive"),
        train_splits=["train", "validation"],
        validation_splits=["dev"],  # no such split in this source
        test_splits=["test"],
    )
    data = load_experiment_data(config, seed=0)
    assert data.validation is None
    assert data.lineage()["roles"]["validation"] == "cross-fit"
    assert len(data.train) + len(data.test) == 60
    assert data.test.texts and data.train.texts


def test_notes_carry_their_patient_or_their_own_id_as_group(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {
        "note_id": ["n1", "n2", "n3"],
        "text": ["Chest pain.", "Chest pain again.", "Cough."],
        "codes": [["ICD10CM:R07.9"], ["ICD10CM:R07.9"], ["ICD10CM:R05.9"]],
        "patient_id": ["p1", "p1", None],
    }
    pq.write_table(pa.table(rows), tmp_path / "notes.parquet")
    config = DataConfig(
        source=str(tmp_path / "notes.parquet"),
        split_ratios=(1.0, 0.0, 0.0),
        validation_splits=[],
    )
    data = load_experiment_data(config, seed=0)
    assert sorted(zip(data.train.texts, data.train.groups or [], strict=True)) == [
        ("Chest pain again.", "patient:p1"),
        ("Chest pain.", "patient:p1"),
        ("Cough.", "note:n3"),
    ]


def test_reviewed_notes_join_training_and_held_out_notes_stay_out(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = {
        "note_id": ["t1", "t2", "h1"],
        "text": ["Chest pain.", "Cough.", "Fever."],
        "codes": [["ICD10CM:R07.9"], ["ICD10CM:R05.9"], ["ICD10CM:R50.9"]],
        "split": ["train", "train", "test"],
    }
    pq.write_table(pa.table(source), tmp_path / "notes.parquet")
    # What `autocode review export` writes: note_id, text and the reviewers' final codes.
    reviewed = {
        "note_id": ["t2", "h1", "new"],
        "text": ["Cough.", "Fever.", "Gout flare."],
        "codes": [["ICD10CM:R05.1"], ["ICD10CM:R50.81"], ["ICD10CM:M10.9"]],
    }
    pq.write_table(pa.table(reviewed), tmp_path / "reviewed.parquet")
    config = DataConfig(
        source=str(tmp_path / "notes.parquet"),
        validation_splits=[],
        reviewed=[str(tmp_path / "reviewed.parquet")],
    )
    data = load_experiment_data(config, seed=0)
    assert dict(zip(data.train.note_ids, data.train.codes, strict=True)) == {
        "t1": ["ICD10CM:R07.9"],
        "t2": ["ICD10CM:R05.1"],  # the reviewer's code replaced the source's
        "new": ["ICD10CM:M10.9"],
    }
    assert data.train.groups == ["note:t1", "note:t2", "note:new"]
    assert data.test.codes == [["ICD10CM:R50.9"]]  # the held-out note is untouched
    [lineage] = data.lineage()["reviewed"]
    assert (lineage["added"], lineage["replaced"], lineage["held_out"]) == (1, 1, 1)
    assert lineage["source"] == str(tmp_path / "reviewed.parquet")
    assert len(lineage["digest"]) == 64
    assert data.reviewed[0].described() == (
        f"reviewed notes from {tmp_path / 'reviewed.parquet'}: 1 replaced training notes' "
        "codes, 1 added, 1 kept out (notes of splits not trained on); quarantined 0"
    )
