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
