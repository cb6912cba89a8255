"""tfidf-lexicon specifics: it needs the label codes, explains with term words, and on real
CodiEsp it reaches the quality target the plain TF-IDF model misses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from autocode import metrics
from autocode.corpus.load import LoadOptions, load_notes
from autocode.labels import LabelSpace, gold_with_unseen
from autocode.models import MatcherModel, TfidfLexiconModel, TfidfModel
from autocode.models.crossfit import fold_splits
from autocode.models.rerank import Reranker

if TYPE_CHECKING:
    from conftest import TinyCorpus

STAGE1 = {"min_df": 1, "epochs": 30, "batch_size": 8}


def tiny_lexicon_model(tiny_corpus: TinyCorpus) -> TfidfLexiconModel:
    model = TfidfLexiconModel(tfidf=STAGE1, inner_folds=3)
    return model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tfidf": {"epoch": 3}}, r"parameter tfidf\.epoch: Extra inputs are not permitted"),
        ({"inner_folds": 1}, r"parameter inner_folds: .*greater than or equal to 2 \(got 1\)"),
        ({"hard_negatives": -1}, r"parameter hard_negatives: .*equal to 0 \(got -1\)"),
        ({"random_negatives": 2.5}, r"parameter random_negatives: .*integer.* \(got 2\.5\)"),
        ({"regularization": 0.0}, r"parameter regularization: .*greater than 0 \(got 0\.0\)"),
    ],
)
def test_bad_hyperparameters_are_named_with_their_value(
    params: dict[str, object], message: str, tiny_corpus: TinyCorpus
) -> None:
    model = TfidfLexiconModel(**params)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)


def test_evidence_starts_with_the_words_of_the_codes_term(tiny_corpus: TinyCorpus) -> None:
    model = tiny_lexicon_model(tiny_corpus)
    gout = tiny_corpus.codes.index("ICD10CM:M10.9")  # "Gout, unspecified"
    migraine = tiny_corpus.codes.index("ICD10CM:G43.909")
    text = "Seen today. Known GOUT, flaring; migraine quiet."
    gout_spans, migraine_spans = model.evidence(text, [gout, migraine], top_n=2)
    assert text[gout_spans[0].start : gout_spans[0].end] == "GOUT"
    assert gout_spans[0].weight == pytest.approx(1.0)  # the term's coverage
    assert text[migraine_spans[0].start : migraine_spans[0].end] == "migraine"
    assert len(gout_spans) <= 2


def test_a_barely_matching_term_is_not_shown_as_evidence(tiny_corpus: TinyCorpus) -> None:
    model = tiny_lexicon_model(tiny_corpus)
    femur = tiny_corpus.codes.index("ICD10CM:S72.001A")  # "Fracture of ... right femur, initial"
    text = "Pain in right knee since the initial visit."
    [(coverage, words)] = model.bases_[1].terms_.lexicon.spans(text, [femur])
    assert 0 < coverage < 0.5 and words  # a few words of the term are there...
    [spans] = model.evidence(text, [femur])
    assert all(span.weight != pytest.approx(coverage) for span in spans)  # ...but not shown


def test_stack_learns_from_matcher_facts_of_the_other_folds_only(tiny_corpus: TinyCorpus) -> None:
    model = tiny_lexicon_model(tiny_corpus)
    matcher = model.bases_[1]
    assert isinstance(matcher, MatcherModel)
    matched = matcher.terms_.full_matches(tiny_corpus.texts)
    # The saved facts count every training note.
    assert np.array_equal(matcher.facts_.term_matches, np.asarray(matched.sum(axis=0)).ravel())
    assert matcher.facts_.log_train_count == pytest.approx(np.log1p(tiny_corpus.Y.sum(axis=0)))
    # Each fold's matcher leaves that fold's notes out: counts drop by exactly their share.
    folds = fold_splits(len(tiny_corpus.texts), folds=3, seed=0)
    fold_matchers = MatcherModel().fold_models(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels, folds=folds
    )
    for (_, held_rows), fold_matcher in zip(folds, fold_matchers, strict=True):
        held_counts = tiny_corpus.Y[held_rows].sum(axis=0)
        assert fold_matcher.facts_.log_train_count == pytest.approx(
            np.log1p(tiny_corpus.Y.sum(axis=0) - held_counts)
        )
        # Text statistics (idf) read no labels: every fold shares the full fit's.
        assert np.array_equal(fold_matcher.terms_.lexicon.idf_, matcher.terms_.lexicon.idf_)


def test_no_notes_give_an_empty_score_matrix(tiny_corpus: TinyCorpus) -> None:
    probs = tiny_lexicon_model(tiny_corpus).predict_proba([])
    assert probs.shape == (0, len(tiny_corpus.codes))
    assert probs.dtype == np.float32


def test_a_code_system_with_no_positive_pair_falls_back_to_the_tfidf_scores(
    tiny_corpus: TinyCorpus,
) -> None:
    Y = np.hstack([tiny_corpus.Y, np.zeros((len(tiny_corpus.texts), 1), np.int64)])
    codes = [*tiny_corpus.codes, "HCPCS:A0428"]
    model = TfidfLexiconModel(tfidf=STAGE1, inner_folds=3).fit(
        tiny_corpus.texts, Y, labels=LabelSpace.from_codes(codes)
    )
    assert set(model.rerankers_) == {"ICD10CM", "HCPCS"}
    n_features = len(model.feature_names_)
    assert model.feature_names_[0] == "base0.logit"
    assert np.array_equal(model.rerankers_["HCPCS"].coef, Reranker.passthrough(n_features, 0).coef)
    probs = model.predict_proba(tiny_corpus.heldout_texts)
    stage1 = model.bases_[0].predict_proba(tiny_corpus.heldout_texts)
    assert probs[:, -1] == pytest.approx(stage1[:, -1], abs=1e-5)


def test_held_out_notes_rank_their_named_code_first(tiny_corpus: TinyCorpus) -> None:
    probs = tiny_lexicon_model(tiny_corpus).predict_proba(tiny_corpus.heldout_texts)
    assert probs.argmax(axis=1).tolist() == tiny_corpus.heldout_labels


# ----------------------------------------------------------------------------- real CodiEsp


def best_global_f1(gold: np.ndarray, probs: np.ndarray) -> float:
    return max(metrics.micro_prf(gold, probs >= t).f1 for t in np.arange(0.05, 0.9, 0.025))


@pytest.mark.integration
@pytest.mark.slow
def test_codiesp_dev_diagnoses_reach_the_quality_target(codiesp_root: Path) -> None:
    """Train on CodiEsp train (English), score dev diagnoses with every gold code counted."""
    if not (codiesp_root / "dev").is_dir():
        pytest.skip(f"CodiEsp not found under {codiesp_root}")
    train, dev = (
        load_notes(codiesp_root, LoadOptions(format="codiesp", splits=(split,))).table
        for split in ("train", "dev")
    )
    train_codes, dev_codes = train.column("codes").to_pylist(), dev.column("codes").to_pylist()
    space = LabelSpace().fit(train_codes)
    stage1 = {"min_df": 2, "epochs": 4, "batch_size": 128, "pos_weight": 10.0}
    plain = TfidfModel(**stage1).fit(
        train.column("text").to_pylist(), space.encode(train_codes), labels=space
    )
    reranked = TfidfLexiconModel(tfidf=stage1).fit(
        train.column("text").to_pylist(), space.encode(train_codes), labels=space
    )

    diagnoses = [c for c in space.codes_ if c.startswith("ICD10CM:")]
    dev_diagnoses = [[c for c in codes if c.startswith("ICD10CM:")] for codes in dev_codes]
    scored = gold_with_unseen(LabelSpace.from_codes(diagnoses), dev_diagnoses)
    gold = scored.gold.toarray()
    columns = [space.codes_.index(c) for c in diagnoses]
    scores = {}
    for name, model in (("plain", plain), ("reranked", reranked)):
        probs = scored.pad(model.predict_proba(dev.column("text").to_pylist())[:, columns])
        scores[name] = (best_global_f1(gold, probs), metrics.mean_average_precision(gold, probs))

    assert scored.unseen > 400  # unseen dev codes count as misses for both
    f1, map_ = scores["reranked"]
    assert f1 >= 0.35 and map_ >= 0.35, scores
    assert f1 > scores["plain"][0] + 0.1 and map_ > scores["plain"][1] + 0.1, scores


def test_the_final_base_models_are_what_their_own_fit_gives(tiny_corpus: TinyCorpus) -> None:
    """The stack takes its final TF-IDF and matcher from one more fold of every row (their
    folds share the vectorizer and terms): the very models `fit` gives on those notes."""
    model = tiny_lexicon_model(tiny_corpus)
    tfidf, matcher = model.bases_
    texts, Y, labels = tiny_corpus.texts, tiny_corpus.Y, tiny_corpus.labels
    own_tfidf = TfidfModel(**STAGE1).fit(texts, Y, labels=labels)
    own_matcher = MatcherModel().fit(texts, Y, labels=labels)
    assert np.array_equal(tfidf.predict_proba(texts), own_tfidf.predict_proba(texts))
    assert np.array_equal(matcher.pair_features(texts), own_matcher.pair_features(texts))
