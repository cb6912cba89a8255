"""The stack: base models named by configuration, no stacking code per model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from pydantic import ValidationError

from autocode.config import ModelConfig
from autocode.models import MatcherModel, StackModel, TfidfLexiconModel, TfidfModel

if TYPE_CHECKING:
    from conftest import TinyCorpus

TINY_TFIDF = {"min_df": 1, "epochs": 30, "batch_size": 8}


def test_the_tfidf_lexicon_preset_is_the_configured_stack(tiny_corpus: TinyCorpus) -> None:
    preset = TfidfLexiconModel(tfidf=TINY_TFIDF, inner_folds=3)
    configured = StackModel(
        base_models=[{"name": "tfidf", "params": TINY_TFIDF}, {"name": "matcher"}],
        inner_folds=3,
        evidence_order=[1, 0],
    )
    for model in (preset, configured):
        model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    texts = [*tiny_corpus.heldout_texts, "Known gout; asthma quiet."]
    assert np.array_equal(preset.predict_proba(texts), configured.predict_proba(texts))
    assert preset.evidence(texts[-1], [3, 4]) == configured.evidence(texts[-1], [3, 4])
    assert [type(base) for base in configured.bases_] == [TfidfModel, MatcherModel]


def test_a_third_base_model_joins_by_configuration(tiny_corpus: TinyCorpus, tmp_path: Path) -> None:
    bases = [
        {"name": "tfidf", "params": TINY_TFIDF},
        {"name": "tfidf", "params": {**TINY_TFIDF, "char_ngram_range": [3, 4]}},
        {"name": "matcher"},
    ]
    model = StackModel(base_models=bases, inner_folds=3)
    model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    # Four score features per scored base model, the matcher's own after them.
    assert model.feature_names_[:8] == [
        f"base{k}.{name}"
        for k in (0, 1)
        for name in ("logit", "log_rank", "share_of_note_max", "gap_to_best_sibling")
    ]
    assert model.feature_names_[8] == "base2.term_coverage"
    assert model.rerankers_["ICD10CM"].coef.shape == (len(model.feature_names_),)
    probs = model.predict_proba(tiny_corpus.heldout_texts)
    assert probs.argmax(axis=1).tolist() == tiny_corpus.heldout_labels
    model.save(tmp_path / "stack")
    loaded = StackModel.load(tmp_path / "stack")
    assert loaded.bases_[1].char_ngram_range == (3, 4)  # type: ignore[attr-defined]
    assert np.array_equal(loaded.predict_proba(tiny_corpus.heldout_texts), probs)


def test_base_model_params_are_checked_when_the_config_loads() -> None:
    typo = {"name": "tfidf", "params": {"epoch": 3}}
    stack = {"name": "stack", "params": {"base_models": [typo]}}
    with pytest.raises(ValidationError, match=r"tfidf params\.epoch: Extra inputs"):
        ModelConfig.model_validate(stack)
    unknown = {"name": "stack", "params": {"base_models": [{"name": "bert"}]}}
    with pytest.raises(
        ValidationError, match=r"unknown model 'bert'; valid: fold-ensemble, matcher, stack"
    ):
        ModelConfig.model_validate(unknown)


def test_evidence_order_must_name_base_models(tiny_corpus: TinyCorpus) -> None:
    model = StackModel(base_models=[{"name": "matcher"}], inner_folds=3, evidence_order=[1])
    with pytest.raises(ValueError, match=r"evidence_order \[1\] names no base model of 1"):
        model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
