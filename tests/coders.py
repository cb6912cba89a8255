"""Small real Coders for the inference and evaluation tests, trained on synthetic notes."""

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

from autocode.config import (
    DataConfig,
    LabelConfig,
    ModelConfig,
    OpenCodesConfig,
    RoutingConfig,
    TrainConfig,
)
from autocode.corpus.schema import NoteSet
from autocode.decisions.coder import Coder
from autocode.train.fitting import fit_coder
from autocode.train.tracking import log_coder

# Conditions a note names, each with the code it was coded with.
CONDITIONS = [
    ("essential hypertension", "ICD10CM:I10"),
    ("plaque psoriasis", "ICD10CM:L40.0"),
    ("acute appendicitis", "ICD10CM:K35.80"),
    ("gout", "ICD10CM:M10.9"),
    ("migraine", "ICD10CM:G43.909"),
    ("iron deficiency anemia", "ICD10CM:D50.9"),
    ("urinary tract infection", "ICD10CM:N39.0"),
    ("atrial fibrillation", "ICD10CM:I48.91"),
    ("hypothyroidism", "ICD10CM:E03.9"),
    ("pneumonia", "ICD10CM:J18.9"),
    ("obesity", "ICD10CM:E66.9"),
    ("asthma", "ICD10CM:J45.909"),
]

# Conditions one training note each names: codes the other folds never show.
RARE_CONDITIONS = [
    ("scabies", "ICD10CM:B86"),
    ("celiac disease", "ICD10CM:K90.0"),
    ("hypokalemia", "ICD10CM:E87.6"),
    ("epistaxis", "ICD10CM:R04.0"),
    ("constipation", "ICD10CM:K59.00"),
    ("insomnia", "ICD10CM:G47.00"),
    ("hyperlipidemia", "ICD10CM:E78.5"),
    ("cellulitis", "ICD10CM:L03.90"),
    ("anxiety disorder", "ICD10CM:F41.9"),
    ("dysphagia", "ICD10CM:R13.10"),
]
OUTSIDE_LABELS = "ICD10CM:J45.909"  # asthma: named in training notes, never their label

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


def train_coder_dir(archive: Path, directory: Path, seed: int = 0) -> Path:
    """The batch and serving tests' small Coder, trained on `archive`, saved to `directory`."""
    routing = {"min_support": 5, "target_recall": 0.8}
    train_small_coder(archive, "batch-test", epochs=2, seed=seed, routing=routing).save(directory)
    return directory


def training_notes() -> NoteSet:
    """Each note names two conditions and is coded with the first only; the second is a
    candidate that is not gold, as mentions a coder leaves uncoded are."""
    texts, codes = [], []
    for k in range(48):
        (first, code), (second, _) = CONDITIONS[k % 12], CONDITIONS[(k * 5 + 3) % 12]
        texts.append(f"Seen for {first}. Also mentions {second} in passing.")
        codes.append([code])
    for k, (rare, code) in enumerate(RARE_CONDITIONS):
        texts.append(f"Seen for {rare}. Also mentions {CONDITIONS[k][0]} in passing.")
        codes.append([code])
    return NoteSet(texts, codes)


def in_memory_config(
    name: str, *, folds: int, epochs: int, routing: RoutingConfig, **sections: Any
) -> TrainConfig:
    """A TF-IDF config for a few notes held in memory: every code and word counts."""
    return TrainConfig(
        name=name,
        crossfit_folds=folds,
        data=DataConfig(source="unused"),
        labels=LabelConfig(min_count=1),
        model=ModelConfig(name="tfidf", params={"min_df": 1, "epochs": epochs, "batch_size": 8}),
        routing=routing,
        **sections,
    )


def train_open_coder() -> Coder:
    """A TF-IDF Coder with an open part, trained on every condition but asthma: its code
    (`OUTSIDE_LABELS`) stays outside the label space, for the open part to propose."""
    notes = training_notes()
    config = in_memory_config(
        "open",
        folds=3,
        epochs=10,
        # More proposals than the training notes give: no cut has the support to auto-accept.
        routing=RoutingConfig(target_precision=0.95, min_support=1000),
        open_codes=OpenCodesConfig(),
    )
    kept = [i for i, codes in enumerate(notes.codes) if OUTSIDE_LABELS not in codes]
    train = NoteSet([notes.texts[i] for i in kept], [notes.codes[i] for i in kept])
    return fit_coder(config, train, None).coder


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
