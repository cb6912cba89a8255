"""Training tells what it is doing: stages and folds at INFO, epochs at DEBUG, no note text."""

from __future__ import annotations

import logging

import pytest

from autocode.config import TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.train.fitting import fit_coder
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
