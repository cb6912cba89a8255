"""Saved models are JSON and plain arrays: versioned, loaded without pickle, any vocabulary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from sklearn.base import clone

from autocode.labels import LabelSpace
from autocode.models import TfidfLexiconModel, TfidfModel
from autocode.models.saved import read_arrays, read_json, write_arrays, write_json
from autocode.models.tfidf import VECTORIZERS_FILE

if TYPE_CHECKING:
    from conftest import TinyCorpus

TINY_TFIDF = {"min_df": 1, "epochs": 30, "batch_size": 8}


def test_arrays_keep_their_dtypes_and_object_arrays_are_refused(tmp_path: Path) -> None:
    arrays = {
        "idf": np.array([1.5, 2.25], np.float32),
        "group": np.array([0, 3], np.int64),
        "terms": np.array(["gout", "plaque psoriasis"]),
    }
    write_arrays(tmp_path / "a.npz", arrays, 3)
    loaded = read_arrays(tmp_path / "a.npz", 3)
    assert list(loaded) == list(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype
        assert np.array_equal(loaded[name], array)
    # An object array could only come back through pickle: it is not written at all.
    with pytest.raises(ValueError, match=r"array 'terms' holds Python objects"):
        write_arrays(tmp_path / "b.npz", {"terms": np.array(["a", None], dtype=object)}, 3)
    assert not (tmp_path / "b.npz").exists()


def test_another_version_is_one_line_naming_the_file_and_the_version(tmp_path: Path) -> None:
    write_json(tmp_path / "state.json", {"codes": ["ICD10CM:M10.9"]}, 2)
    assert read_json(tmp_path / "state.json", 2) == {"codes": ["ICD10CM:M10.9"]}
    write_arrays(tmp_path / "arrays.npz", {"idf": np.ones(2)}, 2)
    for file in ("state.json", "arrays.npz"):
        read = read_json if file.endswith(".json") else read_arrays
        with pytest.raises(ValueError) as error:
            read(tmp_path / file, 3)
        assert str(error.value) == (
            f"{tmp_path / file}: format_version 2, this autocode reads 3: train the model "
            "again with this autocode, or load it with the version that saved it"
        )
    # A file from before versions (no key at all) is refused the same way.
    (tmp_path / "old.json").write_text(json.dumps({"min_df": 2}))
    with pytest.raises(ValueError, match=r"old.json: format_version None, this autocode reads 2"):
        read_json(tmp_path / "old.json", 2)


def prune_vocabulary(model: TfidfModel, texts: list[str], keep_every: int) -> list[str]:
    """Refit the word vectorizer on every `keep_every`-th of its terms, in reverse column
    order, as a pruning fit (e.g. by distinct patients) may leave it; the linear rows
    follow their terms."""
    vectorizer = model.vectorizers_[0]
    old_terms = list(vectorizer.get_feature_names_out())
    columns = np.arange(len(old_terms))[::keep_every][::-1]
    terms = [str(old_terms[c]) for c in columns]
    model.vectorizers_[0] = clone(vectorizer).set_params(vocabulary=terms).fit(texts)
    rows = np.concatenate([columns, np.arange(len(old_terms), model.weights_.coef.shape[0])])
    model.weights_.coef = model.weights_.coef[rows]
    vars(model).pop("_word_feature_names", None)
    return terms


def test_tfidf_saves_any_fitted_vocabulary_in_its_column_order(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    model = TfidfModel(**TINY_TFIDF, char_ngram_range=(3, 4)).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    terms = prune_vocabulary(model, tiny_corpus.texts, keep_every=3)
    assert terms != sorted(terms)  # not the alphabetical order scikit-learn's fit leaves
    model.save(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / VECTORIZERS_FILE).read_text())
    assert saved["vectorizers"][0]["terms"] == terms

    loaded = TfidfModel.load(tmp_path / "model")
    texts = tiny_corpus.texts + tiny_corpus.heldout_texts + ["words never seen in training"]
    assert np.array_equal(loaded.transform(texts).toarray(), model.transform(texts).toarray())
    assert np.array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    labels = list(range(len(tiny_corpus.codes)))
    assert [loaded.evidence(t, labels) for t in texts] == [model.evidence(t, labels) for t in texts]
    # A loaded model saves again to the same files.
    loaded.save(tmp_path / "again")
    for name in ("params.json", VECTORIZERS_FILE):
        assert (tmp_path / "again" / name).read_text() == (tmp_path / "model" / name).read_text()


def test_tfidf_lexicon_restores_every_code_system_and_its_fallback(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    # An HCPCS label no note carries: its system keeps the stage-1-only re-ranker.
    Y = np.hstack([tiny_corpus.Y, np.zeros((len(tiny_corpus.texts), 1), np.int64)])
    codes = [*tiny_corpus.codes, "HCPCS:A0428"]
    model = TfidfLexiconModel(tfidf=TINY_TFIDF, inner_folds=3).fit(
        tiny_corpus.texts, Y, labels=LabelSpace.from_codes(codes)
    )
    model.save(tmp_path / "model")
    loaded = TfidfLexiconModel.load(tmp_path / "model")
    assert set(loaded.rerankers_) == {"ICD10CM", "HCPCS"}
    for system, reranker in model.rerankers_.items():
        restored = loaded.rerankers_[system]
        assert type(restored.intercept) is float and restored.intercept == reranker.intercept
        for name in ("mean", "scale", "coef"):
            assert getattr(restored, name).dtype == getattr(reranker, name).dtype
            assert np.array_equal(getattr(restored, name), getattr(reranker, name))
    assert loaded.bases_[1].terms_.lexicon.terms == model.bases_[1].terms_.lexicon.terms
    texts = tiny_corpus.texts + tiny_corpus.heldout_texts + ["Known gout, ambulance transport."]
    assert np.array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    labels = list(range(len(codes)))
    assert [loaded.evidence(t, labels) for t in texts] == [model.evidence(t, labels) for t in texts]
