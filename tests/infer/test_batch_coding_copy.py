"""Batch coding (local engine and the pyfunc model Spark runs) codes with the Coder's
faster copy: a transformer's encoder in ONNX Runtime on the CPU, eager's scores to 1e-5."""

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
from autocode.models.transformer.onnx_encoder import OnnxEncoder
from autocode.train.fitting import fit_coder

pytestmark = pytest.mark.slow  # trains a tiny transformer Coder (3 fits)
ONNX_TOLERANCE = 1e-5  # largest |onnx - eager| calibrated probability accepted


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


def is_onnx(coder: Coder) -> bool:
    model = coder.model
    assert isinstance(model, TransformerModel)
    return isinstance(model.network_.encoder, OnnxEncoder)


def test_the_batch_coding_copy_is_onnx_and_scores_as_eager(coder_dir: Path, archive: Path) -> None:
    eager = Coder.load(coder_dir)
    fast = eager.for_batch_coding()
    assert is_onnx(fast) and not is_onnx(eager)
    assert dataclasses.replace(fast, model=eager.model) == eager  # only the model differs
    texts = ds.dataset(archive, format="parquet").to_table()["text"].to_pylist()
    eager_probs, fast_probs = eager.predict_proba(texts), fast.predict_proba(texts)
    assert fast_probs.shape == eager_probs.shape
    assert np.abs(fast_probs - eager_probs).max() <= ONNX_TOLERANCE
    assert fast.for_batch_coding() is fast


def test_predict_codes_with_the_onnx_copy(
    coder_dir: Path, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_notes = []
    forward = OnnxEncoder.forward

    def counted(self: OnnxEncoder, *args: object, **kwargs: object) -> object:
        onnx_notes.append(1)
        return forward(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(OnnxEncoder, "forward", counted)
    summary = predict_archive(
        str(coder_dir), archive, tmp_path / "out", LoadOptions(), BatchSettings()
    )
    assert summary.coded == 40
    assert onnx_notes  # the job's encoder ran in ONNX Runtime
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
    np.testing.assert_allclose(got, fast_probs[at], atol=1e-6)  # the ONNX copy's scores
    np.testing.assert_allclose(got, eager_probs[at], atol=ONNX_TOLERANCE)  # eager's to 1e-5


def test_the_pyfunc_model_spark_runs_loads_the_onnx_copy(coder_dir: Path) -> None:
    model = CoderPyfunc()
    model.load_context(SimpleNamespace(artifacts={CODER_ARTIFACT: str(coder_dir)}))
    assert is_onnx(model.coder)


def test_two_forked_workers_code_with_the_onnx_copy(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    """Workers forked after the job built its ONNX Runtime session code all parts (no hang
    in a session's inherited thread pool) with the scores of one process."""
    one = predict_archive(
        str(coder_dir), archive, tmp_path / "one", LoadOptions(), BatchSettings(batch_size=10)
    )
    two = predict_archive(
        str(coder_dir),
        archive,
        tmp_path / "two",
        LoadOptions(),
        BatchSettings(batch_size=10, workers=2),
    )
    assert one.coded == two.coded == 40

    def scores(directory: Path) -> dict[tuple[str, str], float]:
        rows = ds.dataset(directory, format="parquet").to_table().to_pylist()
        return {
            (row["note_id"], p["code"]): p["probability"]
            for row in rows
            for p in row["predictions"]
        }

    # One thread per worker sums in another order: equal to float32 rounding.
    assert scores(tmp_path / "two") == pytest.approx(scores(tmp_path / "one"), abs=1e-6)


def test_forked_workers_are_refused_when_the_model_codes_on_a_gpu(
    coder_dir: Path, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA cannot be used in a process forked from one that has used it: with a GPU the
    job refuses `--workers 2` before anything runs on the device, and names the way out."""
    import torch

    on_any_device = Coder.load(coder_dir)
    model = on_any_device.model
    assert isinstance(model, TransformerModel)
    model.device = "auto"  # the GPU where there is one
    on_any_device.save(tmp_path / "coder")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert Coder.load(tmp_path / "coder").codes_on_gpu()
    with pytest.raises(ValueError, match=r"--workers 2: the model codes on a GPU.*--workers 1"):
        predict_archive(
            str(tmp_path / "coder"), archive, tmp_path / "out", LoadOptions(), BatchSettings(10, 2)
        )
    monkeypatch.undo()
    assert not Coder.load(tmp_path / "coder").codes_on_gpu()  # this machine has no GPU
