"""Batch coding (local engine and the pyfunc model Spark runs) codes with the Coder's
faster copy: a transformer's int8 encoder on the CPU, scores within 0.05 of eager."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.dataset as ds
import pytest

pytest.importorskip("torch")

from autocode.config import TrainConfig
from autocode.corpus.load import LoadOptions
from autocode.corpus.schema import NoteSet
from autocode.corpus.synth import write_synthetic_archive
from autocode.decisions.coder import CODER_ARTIFACT, Coder
from autocode.infer.batch import BatchSettings, predict_archive
from autocode.infer.pyfunc import CoderPyfunc
from autocode.models.transformer import TransformerModel
from autocode.train.fitting import fit_coder

pytestmark = pytest.mark.slow  # trains a tiny transformer Coder (3 fits)
INT8_TOLERANCE = 0.05  # largest |int8 - eager| calibrated probability accepted


@pytest.fixture(scope="module")
def coder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-transformer")
    write_synthetic_archive(root / "train", 100, seed=2, n_codes=20)
    config = TrainConfig.model_validate(
        {
            "name": "tiny-transformer-batch",
            "crossfit_folds": 2,
            "data": {"source": str(root / "train"), "validation_splits": []},
            "labels": {"min_count": 3},
            "model": {
                "name": "transformer",
                "params": {
                    "model_name_or_path": "autocode/tiny-bert",
                    "mode": "full",
                    "chunk_length": 32,
                    "chunk_stride": 24,
                    "epochs": 2,
                    "learning_rate": 0.01,
                    "encoder_learning_rate": 0.001,
                    "token_budget": 1024,
                    "device": "cpu",
                    "progress": False,
                },
            },
            "routing": {"min_support": 3, "target_precision": 0.7, "target_recall": 0.2},
        }
    )
    table = ds.dataset(root / "train", format="parquet").to_table()
    notes = NoteSet(table["text"].to_pylist(), table["codes"].to_pylist())
    fit_coder(config, notes, None).coder.save(root / "coder")
    return root / "coder"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("uncoded")
    write_synthetic_archive(directory / "notes", 40, seed=9, n_codes=20)
    return directory / "notes"


def is_int8(coder: Coder) -> bool:
    model = coder.model
    assert isinstance(model, TransformerModel)
    return any("quantized" in type(m).__module__ for m in model.network_.encoder.modules())


def test_the_batch_coding_copy_is_int8_and_close_to_eager(coder_dir: Path, archive: Path) -> None:
    eager = Coder.load(coder_dir)
    fast = eager.for_batch_coding()
    assert is_int8(fast) and not is_int8(eager)
    assert dataclasses.replace(fast, model=eager.model) == eager  # only the model differs
    texts = ds.dataset(archive, format="parquet").to_table()["text"].to_pylist()
    eager_probs, fast_probs = eager.predict_proba(texts), fast.predict_proba(texts)
    assert fast_probs.shape == eager_probs.shape
    assert np.abs(fast_probs - eager_probs).max() <= INT8_TOLERANCE
    assert not np.array_equal(fast_probs, eager_probs)  # a different path, not the same one
    assert fast.for_batch_coding() is fast


def test_predict_codes_with_the_int8_copy(coder_dir: Path, archive: Path, tmp_path: Path) -> None:
    summary = predict_archive(
        str(coder_dir), archive, tmp_path / "out", LoadOptions(), BatchSettings()
    )
    assert summary.coded == 40
    rows = ds.dataset(tmp_path / "out", format="parquet").to_table().to_pylist()
    notes = ds.dataset(archive, format="parquet").to_table().to_pylist()
    text_of = {row["note_id"]: row["text"] for row in notes}
    eager = Coder.load(coder_dir)
    fast = eager.for_batch_coding()
    texts = [text_of[row["note_id"]] for row in rows]
    fast_probs, eager_probs = fast.predict_proba(texts), eager.predict_proba(texts)
    written = [
        (k, eager.labels.index(p["code"]), p["probability"])
        for k, row in enumerate(rows)
        for p in row["predictions"]
    ]
    assert written
    got = np.array([probability for _, _, probability in written])
    at = tuple(np.array([[k, j] for k, j, _ in written]).T)
    np.testing.assert_allclose(got, fast_probs[at], atol=1e-6)  # the int8 copy's scores
    assert np.abs(got - eager_probs[at]).max() > 1e-6  # which are not eager's


def test_the_pyfunc_model_spark_runs_loads_the_int8_copy(coder_dir: Path) -> None:
    model = CoderPyfunc()
    model.load_context(SimpleNamespace(artifacts={CODER_ARTIFACT: str(coder_dir)}))
    assert is_int8(model.coder)
