"""The fold ensemble: a cross-fit's models kept, averaged, and the Coder tuned on them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest

from autocode.config import DataConfig, LabelConfig, ModelConfig, RoutingConfig, TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.decisions.coder import Coder
from autocode.models import FoldEnsemble, TfidfModel
from autocode.models import ensemble as ensemble_module
from autocode.models.crossfit import fold_splits, out_of_fold_scores
from autocode.train.fitting import fit_coder

if TYPE_CHECKING:
    from conftest import TinyCorpus

TINY_TFIDF = {"min_df": 1, "epochs": 30, "batch_size": 8}


def tiny_ensemble(folds: int = 3, seed: int = 0) -> FoldEnsemble:
    return FoldEnsemble(member={"name": "tfidf", "params": TINY_TFIDF}, folds=folds, seed=seed)


@pytest.fixture(scope="module")
def fitted(tiny_corpus: TinyCorpus) -> tuple[FoldEnsemble, np.ndarray]:
    """A fitted ensemble and its out-of-fold scores."""
    ensemble = tiny_ensemble()
    scores = ensemble.fit_out_of_fold(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    return ensemble, scores


@pytest.fixture(scope="module")
def ensemble(fitted: tuple[FoldEnsemble, np.ndarray]) -> FoldEnsemble:
    return fitted[0]


def test_it_predicts_its_members_mean(ensemble: FoldEnsemble, tiny_corpus: TinyCorpus) -> None:
    assert len(ensemble.members_) == 3
    each = [member.predict_proba(tiny_corpus.heldout_texts) for member in ensemble.members_]
    # The members differ (each missed another fold), so the mean is not any one of them.
    assert not np.allclose(each[0], each[1])
    probs = ensemble.predict_proba(tiny_corpus.heldout_texts)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, np.mean(each, axis=0), rtol=1e-6)


def test_its_out_of_fold_scores_are_the_cross_fits(
    fitted: tuple[FoldEnsemble, np.ndarray], tiny_corpus: TinyCorpus
) -> None:
    """Each note scored by the member that never saw it: the scores a refitted model's
    Coder would be tuned on, with the same folds."""
    ensemble, scores = fitted
    expected = out_of_fold_scores(
        lambda: TfidfModel(**TINY_TFIDF),
        tiny_corpus.texts,
        tiny_corpus.Y,
        labels=tiny_corpus.labels,
        folds=3,
        seed=0,
    )
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, expected)
    for member, (_, held_rows) in zip(
        ensemble.members_, fold_splits(len(tiny_corpus.texts), folds=3, seed=0), strict=True
    ):
        held = [tiny_corpus.texts[i] for i in held_rows]
        np.testing.assert_array_equal(member.predict_proba(held), expected[held_rows])


def test_the_seed_chooses_the_folds(tiny_corpus: TinyCorpus) -> None:
    def scores(seed: int) -> np.ndarray:
        return tiny_ensemble(seed=seed).fit_out_of_fold(
            tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
        )

    np.testing.assert_array_equal(scores(0), scores(0))
    assert not np.array_equal(scores(1), scores(0))


def test_it_explains_with_its_first_member(ensemble: FoldEnsemble, tiny_corpus: TinyCorpus) -> None:
    texts, labels = tiny_corpus.heldout_texts[:2], [[0, 1], [1]]
    spans = ensemble.evidence_batch(texts, labels, top_n=2)
    assert spans == ensemble.members_[0].evidence_batch(texts, labels, top_n=2)
    assert any(span for note in spans for span in note)
    assert ensemble.evidence(texts[0], [0, 1], top_n=2) == spans[0]


def test_it_saves_each_member_and_loads_them_back(
    ensemble: FoldEnsemble, tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    ensemble.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").glob("member_*")) == [
        "member_0",
        "member_1",
        "member_2",
    ]
    loaded = FoldEnsemble.load(tmp_path / "model")
    assert loaded.get_params() == ensemble.get_params()
    np.testing.assert_array_equal(
        loaded.predict_proba(tiny_corpus.heldout_texts),
        ensemble.predict_proba(tiny_corpus.heldout_texts),
    )


def test_fewer_notes_than_folds_is_a_clear_error(tiny_corpus: TinyCorpus) -> None:
    with pytest.raises(ValueError, match="with 5 folds needs at least 5 notes, got 4"):
        tiny_ensemble(folds=5).fit(
            tiny_corpus.texts[:4], tiny_corpus.Y[:4], labels=tiny_corpus.labels
        )


def test_an_unknown_member_is_refused_by_name(tiny_corpus: TinyCorpus) -> None:
    with pytest.raises(ValueError, match=r"member: .*unknown model 'nope'"):
        FoldEnsemble(member={"name": "nope"}).fit(
            tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
        )


def test_a_coder_is_tuned_on_its_out_of_fold_scores_and_refits_nothing(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    config = TrainConfig(
        name="ensemble",
        crossfit_folds=2,  # the ensemble's own folds (3) are the cross-fit
        data=DataConfig(source="unused"),
        labels=LabelConfig(min_count=1),
        model=ModelConfig(
            name="fold-ensemble",
            params={"member": {"name": "tfidf", "params": TINY_TFIDF}, "folds": 3},
        ),
        routing=RoutingConfig(min_support=2, target_precision=0.8),
    )
    train = NoteSet(tiny_corpus.texts, tiny_corpus.code_lists)
    fitted = fit_coder(config, train, None)
    model = fitted.coder.model
    assert isinstance(model, FoldEnsemble) and len(model.members_) == 3
    assert fitted.coder.model_name == "fold-ensemble"
    # Tuned on the members' own out-of-fold scores (3 folds), not a 2-fold cross-fit's.
    np.testing.assert_array_equal(
        fitted.validation_raw,
        tiny_ensemble().fit_out_of_fold(
            tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
        ),
    )

    fitted.coder.save(tmp_path / "coder")
    loaded = Coder.load(tmp_path / "coder")
    assert isinstance(loaded.model, FoldEnsemble)
    np.testing.assert_array_equal(
        loaded.predict_proba(tiny_corpus.heldout_texts),
        fitted.coder.predict_proba(tiny_corpus.heldout_texts),
    )


def test_with_a_validation_split_it_trains_as_any_model(
    tiny_corpus: TinyCorpus, tiny_validation_corpus: TinyCorpus
) -> None:
    config = TrainConfig(
        name="ensemble",
        data=DataConfig(source="unused"),
        labels=LabelConfig(min_count=1),
        model=ModelConfig(
            name="fold-ensemble",
            params={"member": {"name": "tfidf", "params": TINY_TFIDF}, "folds": 2},
        ),
    )
    train = NoteSet(tiny_corpus.texts, tiny_corpus.code_lists)
    validation = NoteSet(tiny_validation_corpus.texts, tiny_validation_corpus.code_lists)
    fitted = fit_coder(config, train, validation)
    model = fitted.coder.model
    assert isinstance(model, FoldEnsemble) and len(model.members_) == 2
    np.testing.assert_array_equal(
        fitted.validation_raw, model.predict_proba(tiny_validation_corpus.texts)
    )


class BatchCopying:
    """A member with a batch-coding copy of its own."""

    def for_batch_coding(self) -> str:
        return "batch copy"


def test_its_batch_copy_holds_its_members_batch_copies(ensemble: FoldEnsemble) -> None:
    _, *others = ensemble.members_
    copying = tiny_ensemble()
    copying.members_ = [BatchCopying(), *others]  # type: ignore[list-item]
    copying.labels_ = ensemble.labels_
    fast = copying.for_batch_coding()
    assert fast.members_ == ["batch copy", *others]
    assert isinstance(copying.members_[0], BatchCopying)  # the original is left as it was


def test_its_words_are_its_members_each_once(ensemble: FoldEnsemble) -> None:
    words = ensemble.known_words()
    assert len(words) == len(set(words))
    assert set(words) == {w for member in ensemble.members_ for w in member.known_words()}
    assert not ensemble.codes_on_gpu()
    assert ensemble.truncated(["a note", "another"]) == [False, False]


def test_its_batch_copy_is_itself_where_no_member_has_one(ensemble: FoldEnsemble) -> None:
    assert ensemble.for_batch_coding() is ensemble


class FakeMember:
    """A member on a GPU that reads at most 5 characters and explains nothing."""

    def codes_on_gpu(self) -> bool:
        return True

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        return [len(text) > 5 for text in texts]


def test_it_asks_its_members_what_they_are(ensemble: FoldEnsemble) -> None:
    faked = tiny_ensemble()
    faked.members_ = [FakeMember(), *ensemble.members_[1:]]  # type: ignore[list-item]
    faked.labels_ = ensemble.labels_
    assert faked.codes_on_gpu()
    assert faked.truncated(["short", "longer note"]) == [False, True]
    # Its first member explains nothing: no spans, one empty list per label asked for.
    assert faked.evidence_batch(["a note", "another"], [[0, 1], [2]]) == [[[], []], [[]]]


class RecordingMember(TfidfModel):
    """A TF-IDF member that remembers what its fit was given besides the notes."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def fit(self, texts: Sequence[str], Y: Any, **kwargs: Any) -> RecordingMember:  # type: ignore[override]
        RecordingMember.calls.append({"notes": len(texts), **kwargs})
        return super().fit(texts, Y, **kwargs)


def test_each_member_gets_its_notes_patients_and_the_validation_split(
    tiny_corpus: TinyCorpus, tiny_validation_corpus: TinyCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ensemble_module, "spec_model", lambda spec: RecordingMember(**spec.params))
    RecordingMember.calls.clear()
    patients = [f"patient-{i // 2}" for i in range(len(tiny_corpus.texts))]
    validation = (tiny_validation_corpus.texts, tiny_validation_corpus.Y)
    tiny_ensemble().fit(
        tiny_corpus.texts,
        tiny_corpus.Y,
        labels=tiny_corpus.labels,
        validation=validation,
        groups=patients,
    )
    splits = fold_splits(len(tiny_corpus.texts), folds=3, seed=0)
    assert len(RecordingMember.calls) == 3
    for call, (fit_rows, _) in zip(RecordingMember.calls, splits, strict=True):
        assert call["notes"] == len(fit_rows)
        assert call["groups"] == [patients[i] for i in fit_rows]
        assert call["validation"] is validation
