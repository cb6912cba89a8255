"""tfidf-lexicon specifics: it needs the label codes, explains with term words, and on real
CodiEsp it reaches the quality target the plain TF-IDF model misses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import scipy.sparse as sp

from autocode import metrics
from autocode.corpus.load import LoadOptions, load_notes
from autocode.labels import LabelSpace
from autocode.models import TfidfLexiconModel, TfidfModel
from autocode.models.crossfit import fold_splits
from autocode.models.rerank import Reranker

if TYPE_CHECKING:
    from conftest import TinyCorpus

STAGE1 = {"min_df": 1, "epochs": 30, "batch_size": 8}


def tiny_lexicon_model(tiny_corpus: TinyCorpus) -> TfidfLexiconModel:
    model = TfidfLexiconModel(tfidf=STAGE1, inner_folds=3)
    return model.fit(tiny_corpus.texts, tiny_corpus.Y, label_codes=tiny_corpus.codes)


def test_fitting_without_the_label_codes_is_a_clear_error(tiny_corpus: TinyCorpus) -> None:
    model = TfidfLexiconModel(tfidf=STAGE1)
    with pytest.raises(ValueError, match=r"needs the code of each of Y's 6 columns; got none"):
        model.fit(tiny_corpus.texts, tiny_corpus.Y)
    with pytest.raises(ValueError, match=r"6 columns; got 5"):
        model.fit(tiny_corpus.texts, tiny_corpus.Y, label_codes=tiny_corpus.codes[:5])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tfidf": {"epoch": 3}}, r"unknown tfidf setting\(s\) \['epoch'\]; valid: .*epochs"),
        ({"inner_folds": 1}, r"inner_folds must be an integer >= 2, got 1"),
        ({"hard_negatives": -1}, r"hard_negatives must be an integer >= 0, got -1"),
        ({"random_negatives": 2.5}, r"random_negatives must be an integer >= 0, got 2.5"),
        ({"regularization": 0.0}, r"regularization must be > 0, got 0.0"),
    ],
)
def test_bad_hyperparameters_are_named_with_their_value(
    params: dict[str, object], message: str, tiny_corpus: TinyCorpus
) -> None:
    model = TfidfLexiconModel(**params)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        model.fit(tiny_corpus.texts, tiny_corpus.Y, label_codes=tiny_corpus.codes)


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
    [(coverage, words)] = model.knowledge_.lexicon.spans(text, [femur])
    assert 0 < coverage < 0.5 and words  # a few words of the term are there...
    [spans] = model.evidence(text, [femur])
    assert all(span.weight != pytest.approx(coverage) for span in spans)  # ...but not shown


def test_stage2_learns_from_facts_of_the_other_folds_only(tiny_corpus: TinyCorpus) -> None:
    model = tiny_lexicon_model(tiny_corpus)
    knowledge = model.knowledge_
    gold = sp.csr_matrix(tiny_corpus.Y, dtype=bool)
    matched = knowledge.full_matches(tiny_corpus.texts)
    # The saved facts count every training note.
    assert np.array_equal(model.facts_.term_matches, np.asarray(matched.sum(axis=0)).ravel())
    assert model.facts_.log_train_count == pytest.approx(np.log1p(tiny_corpus.Y.sum(axis=0)))
    # Each fold's facts leave that fold's notes out: counts drop by exactly their share.
    for fit_rows, held_rows in fold_splits(len(tiny_corpus.texts), folds=3, seed=0):
        facts = knowledge.facts(gold[fit_rows], matched[fit_rows])
        held_counts = tiny_corpus.Y[held_rows].sum(axis=0)
        assert facts.log_train_count == pytest.approx(
            np.log1p(tiny_corpus.Y.sum(axis=0) - held_counts)
        )


def test_no_notes_give_an_empty_score_matrix(tiny_corpus: TinyCorpus) -> None:
    probs = tiny_lexicon_model(tiny_corpus).predict_proba([])
    assert probs.shape == (0, len(tiny_corpus.codes))
    assert probs.dtype == np.float32


def test_a_code_system_with_no_positive_pair_falls_back_to_stage1(
    tiny_corpus: TinyCorpus,
) -> None:
    Y = np.hstack([tiny_corpus.Y, np.zeros((len(tiny_corpus.texts), 1), np.int64)])
    codes = [*tiny_corpus.codes, "HCPCS:A0428"]
    model = TfidfLexiconModel(tfidf=STAGE1, inner_folds=3).fit(
        tiny_corpus.texts, Y, label_codes=codes
    )
    assert set(model.rerankers_) == {"ICD10CM", "HCPCS"}
    assert np.array_equal(model.rerankers_["HCPCS"].coef, Reranker.stage1_only().coef)
    probs = model.predict_proba(tiny_corpus.heldout_texts)
    stage1 = model.stage1_.predict_proba(tiny_corpus.heldout_texts)
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
    plain = TfidfModel(**stage1).fit(train.column("text").to_pylist(), space.encode(train_codes))
    reranked = TfidfLexiconModel(tfidf=stage1).fit(
        train.column("text").to_pylist(), space.encode(train_codes), label_codes=space.codes_
    )

    diagnoses = [c for c in space.codes_ if c.startswith("ICD10CM:")]
    unseen = sorted(
        {c for codes in dev_codes for c in codes if c.startswith("ICD10CM:")} - set(diagnoses)
    )
    gold = LabelSpace.from_codes(diagnoses + unseen).encode(dev_codes).toarray()
    columns = [space.codes_.index(c) for c in diagnoses]
    scores = {}
    for name, model in (("plain", plain), ("reranked", reranked)):
        probs = model.predict_proba(dev.column("text").to_pylist())[:, columns]
        probs = np.hstack([probs, np.zeros((len(probs), len(unseen)), np.float32)])
        scores[name] = (best_global_f1(gold, probs), metrics.mean_average_precision(gold, probs))

    assert len(unseen) > 400  # unseen dev codes count as misses for both
    f1, map_ = scores["reranked"]
    assert f1 >= 0.35 and map_ >= 0.35, scores
    assert f1 > scores["plain"][0] + 0.1 and map_ > scores["plain"][1] + 0.1, scores
