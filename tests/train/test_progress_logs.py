"""Training tells what it is doing: stages and folds at INFO, epochs at DEBUG, no note text,
and no progress bars of MLflow's own."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from autocode.config import TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.env_defaults import environment_defaults
from autocode.train.fitting import fit_coder
from coders import registered_coder, train_open_coder
from conftest import TinyCorpus


def test_cross_fitting_logs_each_fold_and_each_epoch(
    tiny_corpus: TinyCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    config = TrainConfig.model_validate(
        {
            "name": "progress",
            "crossfit_folds": 3,
            "data": {"source": "unused", "validation_splits": []},
            "model": {"name": "tfidf", "params": {"epochs": 2, "min_df": 1}},
        }
    )
    with caplog.at_level(logging.DEBUG, logger="autocode"):
        fit_coder(config, NoteSet(tiny_corpus.texts, tiny_corpus.code_lists), None)
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    folds = [m.split(":")[0] for m in info if "fold" in m]
    assert folds == [f"decision cross-fit fold {i}/3" for i in (1, 2, 3)]
    assert f"fitting the final model on all {len(tiny_corpus.texts)} training notes" in info
    # 3 fold models and the final one, each 2 epochs.
    assert debug.count("linear layer epoch 1/2") == 4
    assert debug.count("linear layer epoch 2/2") == 4
    logged_words = set(" ".join(info + debug).lower().split())
    assert not set(tiny_corpus.words) & logged_words  # no word of any note's text


def test_logging_a_coder_draws_no_artifact_progress_bar(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    # MLflow downloads the logged model back to validate its input example, and draws a
    # progress bar on stderr for it unless told not to.
    coder = train_open_coder()
    capfd.readouterr()
    with registered_coder(coder, tmp_path, "quiet") as (model_uri, _):
        assert model_uri == "models:/quiet/1"
    assert "Downloading artifacts" not in capfd.readouterr().err
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ  # restored after


def test_environment_defaults_keep_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    monkeypatch.delenv("AUTOCODE_TEST_UNSET", raising=False)
    settings = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "AUTOCODE_TEST_UNSET": "1"}
    with environment_defaults(settings):
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
        assert os.environ["AUTOCODE_TEST_UNSET"] == "1"
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
    assert "AUTOCODE_TEST_UNSET" not in os.environ
