"""Small real Coders for the inference tests, trained on synthetic notes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.tracking._tracking_service.utils as mlflow_tracking_utils
import pyarrow.dataset as ds
import pytest
from mlflow import MlflowClient

from autocode.config import TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.decisions.coder import Coder
from autocode.train.fitting import fit_coder
from autocode.train.tracking import log_coder

# Routing loose enough that a small model sends some notes to review and most to auto.
MIXED_ROUTING = {"min_support": 5, "target_precision": 0.7, "target_recall": 0.2}


def train_small_coder(
    archive: Path, name: str, *, epochs: int, seed: int = 0, routing: dict[str, Any]
) -> Coder:
    """A TF-IDF Coder fitted on the archive, decisions tuned by 2-fold cross-fitting."""
    config = TrainConfig.model_validate(
        {
            "name": name,
            "seed": seed,
            "crossfit_folds": 2,
            "data": {"source": str(archive), "validation_splits": []},
            "labels": {"min_count": 3},
            "model": {"name": "tfidf", "params": {"epochs": epochs, "seed": seed}},
            "routing": routing,
        }
    )
    table = ds.dataset(archive, format="parquet").to_table()
    notes = NoteSet(table["text"].to_pylist(), table["codes"].to_pylist())
    return fit_coder(config, notes, None).coder


@contextlib.contextmanager
def registered_coder(coder: Coder, root: Path, model_name: str) -> Iterator[tuple[str, str]]:
    """Log and register the Coder in a SQLite store under `root`: (model URI, tracking URI)."""
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    # MLflow keeps the tracking URI in a module global: point it here, restore it after.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlflow_tracking_utils, "_tracking_uri", None)
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        experiment = MlflowClient().create_experiment(model_name, (root / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            model_uri = log_coder(coder, model_name)
        yield model_uri, tracking_uri
