"""fit_coder hands the model its label space, knowledge and validation split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from autocode.config import (
    CalibrationConfig,
    DataConfig,
    ModelConfig,
    RoutingConfig,
    TrainConfig,
)
from autocode.corpus.schema import NoteSet
from autocode.decisions.policy import ABOVE_ONE
from autocode.knowledge import CodeKnowledge
from autocode.knowledge.candidates import name_words
from autocode.labels import LabelSpace
from autocode.models import TfidfModel
from autocode.train import fitting
from autocode.train.fitting import fit_coder

if TYPE_CHECKING:
    from conftest import TinyCorpus


class RecordingTfidf(TfidfModel):
    """A TF-IDF model that remembers what `fit` was given."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def fit(self, texts: Sequence[str], Y: Any, **kwargs: Any) -> RecordingTfidf:  # type: ignore[override]
        RecordingTfidf.calls.append(kwargs)
        return super().fit(texts, Y, **kwargs)


def test_the_validation_split_and_the_knowledge_reach_the_model(
    tiny_corpus: TinyCorpus, tiny_validation_corpus: TinyCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TrainConfig(
        name="tiny",
        data=DataConfig(source="unused"),
        model=ModelConfig(name="tfidf", params={"min_df": 1, "epochs": 2}),
    )
    monkeypatch.setattr(fitting, "new_model", lambda _: RecordingTfidf(min_df=1, epochs=2))
    knowledge = CodeKnowledge()
    train = NoteSet(tiny_corpus.texts, tiny_corpus.code_lists)
    validation = NoteSet(tiny_validation_corpus.texts, tiny_validation_corpus.code_lists)
    RecordingTfidf.calls.clear()
    coder = fit_coder(config, train, validation, knowledge=knowledge).coder

    [call] = RecordingTfidf.calls
    labels = call["labels"]
    assert isinstance(labels, LabelSpace) and labels.knowledge is knowledge
    assert labels.codes_ == tiny_corpus.codes
    valid_texts, valid_Y = call["validation"]
    assert valid_texts == tiny_validation_corpus.texts
    assert np.array_equal(valid_Y.toarray(), tiny_validation_corpus.Y)
    assert coder.model.labels_ == coder.labels.codes_  # type: ignore[attr-defined]

    # Without a validation split, every fit (folds and final) gets the label space only.
    RecordingTfidf.calls.clear()
    fit_coder(config.model_copy(update={"crossfit_folds": 2}), train, None)
    assert len(RecordingTfidf.calls) == 3
    assert all(call.get("validation") is None for call in RecordingTfidf.calls)


def test_each_code_systems_decisions_are_tuned_on_its_own_codes() -> None:
    # Two diagnoses scored well, a procedure scored badly; "none" calibration keeps the
    # scores as they are, so that only the tuning is under test.
    config = TrainConfig(
        name="systems",
        data=DataConfig(source="unused"),
        model=ModelConfig(name="tfidf"),
        calibration=CalibrationConfig(method="none"),
        routing=RoutingConfig(target_precision=0.75, target_recall=1.0, min_support=10**6),
    )
    codes = ["ICD10CM:I10", "ICD10CM:E11.9", "ICD10PCS:0DTJ"]
    labels = LabelSpace().fit([codes])
    columns = [labels.index(code) for code in codes]
    gold = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    raw = np.array([[0.9, 0.8, 0.3], [0.7, 0.2, 0.9], [0.1, 0.6, 0.8], [0.2, 0.3, 0.85]])
    ordered_gold, ordered_raw = np.zeros_like(gold), np.zeros_like(raw)
    ordered_gold[:, columns], ordered_raw[:, columns] = gold, raw

    def decided(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        coder = fitting.tune_decisions(config, None, labels, scores, sp.csr_matrix(ordered_gold))  # type: ignore[arg-type]
        return coder.policy.accept[columns], coder.thresholds.per_code[columns]

    accept, per_code = decided(ordered_raw)
    # The diagnoses alone (0.9+ 0.8+ 0.7+ 0.6+ 0.3- 0.2- 0.2- 0.1-) are precise from 0.6;
    # pooled with the procedure's 0.9- 0.85- 0.8-, no cut would reach 0.75.
    np.testing.assert_array_equal(accept[:2], [0.6, 0.6])
    assert accept[2] == ABOVE_ONE  # the procedure's gold entry scores lowest: never
    # Another procedure model moves none of the diagnoses' decisions.
    worse = ordered_raw.copy()
    worse[:, columns[2]] = [0.05, 0.99, 0.97, 0.98]
    accept_after, per_code_after = decided(worse)
    np.testing.assert_array_equal(accept_after[:2], accept[:2])
    np.testing.assert_array_equal(per_code_after[:2], per_code[:2])


@pytest.mark.parametrize("hold", [True, False])
def test_the_coder_keeps_its_icd10cm_codes_names_and_whether_it_holds_unaffirmed_codes(
    hold: bool,
) -> None:
    config = TrainConfig(
        name="names",
        data=DataConfig(source="unused"),
        model=ModelConfig(name="tfidf"),
        calibration=CalibrationConfig(method="none"),
        routing=RoutingConfig(min_support=10**6, hold_unaffirmed=hold),
    )
    labels = LabelSpace().fit([["ICD10CM:I10", "ICD10CM:E11.9", "ICD10PCS:0DTJ"]])
    gold = sp.csr_matrix(np.eye(3, dtype=np.int8))
    coder = fitting.tune_decisions(config, None, labels, np.eye(3) * 0.9, gold)  # type: ignore[arg-type]
    assert coder.hold_unaffirmed is hold
    assert coder.label_names is not None
    named = {code for name in coder.label_names for code in name.codes}
    assert named == {"ICD10CM:I10", "ICD10CM:E11.9"}  # the procedure has no names here
    assert ("essential", "hypertension") in {name.words for name in coder.label_names}
    # And, where it holds them, the longer names of other codes that hold theirs.
    if hold:
        assert coder.label_holding_names is not None
        [pulmonary] = name_words("pulmonary hypertension")  # normalised: lung hypertension
        assert pulmonary in {name.words for name in coder.label_holding_names}
    else:
        assert coder.label_holding_names is None


@pytest.mark.parametrize(
    ("name", "params", "expected_seed"),
    [
        ("tfidf", {}, 3),  # no seed of its own: the run's
        ("tfidf", {"seed": 11}, 11),  # its own wins
        ("fold-ensemble", {"folds": 2}, 3),  # the ensemble's folds follow the run's seed
        ("fold-ensemble", {"member": {"name": "tfidf", "params": {"seed": 5}}}, 3),
    ],
)
def test_a_model_without_a_seed_of_its_own_takes_the_runs(
    name: str, params: dict[str, Any], expected_seed: int
) -> None:
    config = TrainConfig(
        name="tiny",
        seed=3,
        data=DataConfig(source="unused"),
        model=ModelConfig(name=name, params=params),
    )
    model = fitting.new_model(config)
    assert model.get_params()["seed"] == expected_seed  # type: ignore[attr-defined]
    if name == "fold-ensemble" and "member" in params:  # a nested model keeps its own
        assert model.get_params()["member"]["params"]["seed"] == 5  # type: ignore[attr-defined]


def test_a_model_that_takes_no_seed_is_built_as_configured() -> None:
    config = TrainConfig(
        name="tiny", seed=3, data=DataConfig(source="unused"), model=ModelConfig(name="matcher")
    )
    assert fitting.model_params(config) == config.model.params == {}
    assert fitting.new_model(config).get_params() == {  # type: ignore[attr-defined]
        "candidate_coverage": 0.5,
        "context_features": False,
    }
