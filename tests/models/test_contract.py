"""The CodingModel contract, run over every registered model, then TF-IDF specifics."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import scipy.sparse as sp

from autocode.labels import LabelSpace
from autocode.models import MODELS, CodingModel, NotFittedError, TfidfModel, model_class
from autocode.models.linear import LinearSettings, LinearWeights, train_linear
from autocode.models.tfidf import TOKEN_PATTERN

if TYPE_CHECKING:
    from conftest import TinyCorpus

# Small, fast hyperparameters per registered model; a model missing here runs on its defaults.
TINY_TFIDF = {"min_df": 1, "epochs": 30, "batch_size": 8}
TINY_PARAMS: dict[str, dict[str, Any]] = {
    "tfidf": TINY_TFIDF,
    "tfidf-lexicon": {"tfidf": TINY_TFIDF, "inner_folds": 3},
    "stack": {
        "base_models": [{"name": "tfidf", "params": TINY_TFIDF}, {"name": "matcher"}],
        "inner_folds": 3,
    },
    "transformer": {
        "model_name_or_path": "autocode/tiny-bert",
        "chunk_length": 16,
        "chunk_stride": 10,
        "epochs": 3,
        "token_budget": 256,
        "device": "cpu",
        "progress": False,
    },
    "fold-ensemble": {"member": {"name": "tfidf", "params": TINY_TFIDF}, "folds": 2},
}
# A value each model's params model refuses, set after construction (as a typo would be).
BAD_PARAM: dict[str, tuple[str, Any]] = {
    "tfidf": ("epochs", 0),
    "matcher": ("candidate_coverage", 1.5),
    "stack": ("inner_folds", 1),
    "tfidf-lexicon": ("regularization", 0.0),
    "transformer": ("epochs", 0),
    "fold-ensemble": ("folds", 1),
}


def tiny_model(name: str, **overrides: Any) -> CodingModel:
    return model_class(name)(**{**TINY_PARAMS.get(name, {}), **overrides})


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request: pytest.FixtureRequest, tiny_corpus: TinyCorpus) -> tuple[str, CodingModel]:
    """Each registered model, fitted once on the tiny corpus."""
    name: str = request.param
    return name, tiny_model(name).fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)


# ----------------------------------------------------------------------------- contract


def test_registry_names_map_to_coding_models() -> None:
    assert MODELS, "no model registered"
    for name, cls in MODELS.items():
        assert model_class(name) is cls
        assert isinstance(cls(**TINY_PARAMS.get(name, {})), CodingModel)


def test_unknown_model_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'") as error:
        model_class("nope")
    for name in MODELS:
        assert name in str(error.value)


def test_probabilities_have_one_float_column_per_label(
    fitted: tuple[str, CodingModel], tiny_corpus: TinyCorpus
) -> None:
    _, model = fitted
    for texts in (tiny_corpus.texts, tiny_corpus.heldout_texts, tiny_corpus.texts[:1], []):
        probs = model.predict_proba(texts)
        assert isinstance(probs, np.ndarray)
        assert probs.shape == (len(texts), tiny_corpus.Y.shape[1])
        assert np.issubdtype(probs.dtype, np.floating)
        assert np.isfinite(probs).all()
        assert ((probs >= 0.0) & (probs <= 1.0)).all()


def test_fit_returns_self_and_learned_state_ends_in_underscore(
    tiny_corpus: TinyCorpus,
) -> None:
    for name in sorted(MODELS):
        model = tiny_model(name)
        learned_before = {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
        assert learned_before == set(), f"{name}: learned state before fit: {learned_before}"
        assert model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels) is model
        learned_after = {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
        assert learned_after, f"{name}: fit stored no attr_ state"


def test_save_then_load_gives_identical_probabilities(
    fitted: tuple[str, CodingModel], tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    name, model = fitted
    model.save(tmp_path / "model")
    loaded = MODELS[name].load(tmp_path / "model")
    assert type(loaded) is MODELS[name]
    texts = tiny_corpus.texts + tiny_corpus.heldout_texts + ["words never seen in training"]
    expected = model.predict_proba(texts)
    actual = loaded.predict_proba(texts)
    assert actual.dtype == expected.dtype
    assert np.array_equal(actual, expected)


def test_fitting_is_deterministic_and_accepts_dense_or_sparse_labels(
    fitted: tuple[str, CodingModel], tiny_corpus: TinyCorpus
) -> None:
    name, model = fitted
    again = tiny_model(name).fit(
        tiny_corpus.texts, sp.csr_matrix(tiny_corpus.Y), labels=tiny_corpus.labels
    )
    texts = tiny_corpus.heldout_texts
    assert np.array_equal(again.predict_proba(texts), model.predict_proba(texts))


def renamed(texts: list[str], old: str, new: str) -> list[str]:
    return [t.replace(old, new).replace(old.capitalize(), new.capitalize()) for t in texts]


def test_refitting_forgets_the_previous_fit(
    fitted: tuple[str, CodingModel], tiny_corpus: TinyCorpus
) -> None:
    name, _ = fitted
    # Another vocabulary and another label order: nothing of the first fit may survive.
    texts = renamed(tiny_corpus.texts, "asthma", "wheezing")
    Y, codes = tiny_corpus.Y[:, ::-1].copy(), tiny_corpus.codes[::-1]
    first = tiny_model(name).fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    refitted = first.fit(texts, Y, labels=LabelSpace.from_codes(codes))
    fresh = tiny_model(name).fit(texts, Y, labels=LabelSpace.from_codes(codes))
    probe = renamed(tiny_corpus.heldout_texts, "asthma", "wheezing")
    assert np.array_equal(refitted.predict_proba(probe), fresh.predict_proba(probe))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predicting_or_saving_before_fit_is_a_clear_error(
    name: str, tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    model = tiny_model(name)
    with pytest.raises(NotFittedError, match=r"not fitted.*fit") as error:
        model.predict_proba(tiny_corpus.texts)
    assert type(model).__name__ in str(error.value)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_every_registered_model_has_a_refused_value_here() -> None:
    assert set(BAD_PARAM) == set(MODELS)


def test_the_model_keeps_and_saves_its_labels(
    fitted: tuple[str, CodingModel], tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    name, model = fitted
    assert model.labels_ == tiny_corpus.codes  # type: ignore[attr-defined]
    model.save(tmp_path / "model")
    assert MODELS[name].load(tmp_path / "model").labels_ == tiny_corpus.codes  # type: ignore[attr-defined]


def test_a_failed_refit_leaves_the_fitted_model_intact(
    fitted: tuple[str, CodingModel], tiny_corpus: TinyCorpus
) -> None:
    name, _ = fitted
    model = tiny_model(name).fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    before = model.predict_proba(tiny_corpus.heldout_texts)
    other = renamed(tiny_corpus.texts, "asthma", "wheezing")
    # Bad input: one text short.
    with pytest.raises(ValueError, match="texts but Y has"):
        model.fit(other[:-1], tiny_corpus.Y, labels=tiny_corpus.labels)
    # A bad hyperparameter, set after construction: refused at the start of fit, by name.
    param, value = BAD_PARAM[name]
    good = getattr(model, param)
    setattr(model, param, value)
    with pytest.raises(ValueError, match=rf"{type(model).__name__} parameter {param}: .*got"):
        model.fit(other, tiny_corpus.Y, labels=tiny_corpus.labels)
    setattr(model, param, good)
    assert np.array_equal(model.predict_proba(tiny_corpus.heldout_texts), before)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_needs_a_label_space_matching_y(name: str, tiny_corpus: TinyCorpus) -> None:
    with pytest.raises(TypeError, match="labels"):
        tiny_model(name).fit(tiny_corpus.texts, tiny_corpus.Y)  # type: ignore[call-arg]
    five = LabelSpace.from_codes(tiny_corpus.codes[:5])
    with pytest.raises(ValueError, match="Y has 6 columns but the label space has 5"):
        tiny_model(name).fit(tiny_corpus.texts, tiny_corpus.Y, labels=five)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_with_mismatched_rows_is_a_value_error(name: str, tiny_corpus: TinyCorpus) -> None:
    n = len(tiny_corpus.texts)
    with pytest.raises(ValueError, match=rf"{n - 1} texts.*{n} rows"):
        tiny_model(name).fit(tiny_corpus.texts[:-1], tiny_corpus.Y, labels=tiny_corpus.labels)


# ----------------------------------------------------------------------------- TF-IDF


def test_tfidf_a_refit_failing_after_its_vectorizers_leaves_the_old_fit(
    tiny_corpus: TinyCorpus,
) -> None:
    model = TfidfModel(**TINY_TFIDF).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    before = model.predict_proba(tiny_corpus.heldout_texts)
    vectorizers, weights = model.vectorizers_, model.weights_
    # Passes the parameter checks, fails once the vocabulary is counted: 40 notes, 40 patients.
    model.min_patients = 41
    with pytest.raises(ValueError, match="min_patients=41 leaves no n-gram"):
        model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    assert model.vectorizers_ is vectorizers and model.weights_ is weights
    assert np.array_equal(model.predict_proba(tiny_corpus.heldout_texts), before)


def test_tfidf_a_label_word_raises_its_own_label_most(tiny_corpus: TinyCorpus) -> None:
    model = tiny_model("tfidf").fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    rng = random.Random(99)
    for j, word in enumerate(tiny_corpus.words):
        # An unseen note, with and without the word: the filler's effect cancels out.
        plain = tiny_corpus.note(rng, [])
        with_word = f"{plain} {word.capitalize()} noted."
        delta = model.predict_proba([with_word])[0] - model.predict_proba([plain])[0]
        assert int(np.argmax(delta)) == j, (word, delta.round(3))
        assert delta[j] > 0.05, (word, delta.round(3))


def test_tfidf_held_out_notes_score_their_label_above_the_rest(tiny_corpus: TinyCorpus) -> None:
    model = tiny_model("tfidf").fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    probs = model.predict_proba(tiny_corpus.heldout_texts)
    named = np.zeros_like(probs, dtype=bool)
    named[np.arange(len(probs)), tiny_corpus.heldout_labels] = True
    # Micro average over held-out notes: the named label clearly outscores the others.
    assert probs[named].mean() > probs[~named].mean() + 0.2


def normalised(fragment: str) -> str:
    return " ".join(re.findall(TOKEN_PATTERN, fragment.lower()))


def test_tfidf_evidence_spans_point_at_the_driving_words(tiny_corpus: TinyCorpus) -> None:
    model = tiny_model("tfidf")
    assert isinstance(model, TfidfModel)
    model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    for text, j, word in zip(
        tiny_corpus.heldout_texts,
        tiny_corpus.heldout_labels,
        tiny_corpus.words,
        strict=True,
    ):
        [spans] = model.evidence(text, [j], top_n=3)
        assert 1 <= len(spans) <= 3
        assert word in normalised(text[spans[0].start : spans[0].end]).split(), (text, spans)
        assert [s.weight for s in spans] == sorted((s.weight for s in spans), reverse=True)
        vocabulary = model.vectorizers_[0].vocabulary_
        for span in spans:
            assert span.weight > 0
            # The span's words are an n-gram of the vocabulary, weighing what its weight says.
            feature = vocabulary[normalised(text[span.start : span.end])]
            coefficient = model.weights_.at(np.array([feature]), np.array([j]))[0]
            assert span.weight == pytest.approx(float(coefficient), rel=1e-6)


def test_tfidf_evidence_keeps_the_note_own_spelling_and_offsets(tiny_corpus: TinyCorpus) -> None:
    model = tiny_model("tfidf")
    assert isinstance(model, TfidfModel)
    model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    asthma = tiny_corpus.codes.index("ICD10CM:J45.909")
    gout = tiny_corpus.codes.index("ICD10CM:M10.9")
    text = "Seen today.  Known ASTHMA,   quiet; GOUT flare."
    asthma_spans, gout_spans = model.evidence(text, [asthma, gout])
    assert "ASTHMA" in [text[s.start : s.end] for s in asthma_spans]
    assert "GOUT" in [text[s.start : s.end] for s in gout_spans]
    assert asthma_spans[0].to_json()["start"] == asthma_spans[0].start
    # Nothing in the vocabulary: no evidence, not an error.
    assert model.evidence("zzz qqq", [asthma, gout]) == [[], []]


def test_tfidf_evidence_after_refit_uses_the_new_vocabulary(tiny_corpus: TinyCorpus) -> None:
    asthma = tiny_corpus.codes.index("ICD10CM:J45.909")
    texts = renamed(tiny_corpus.texts, "asthma", "wheezing")
    note = "Wheezing again since last week, patient tired."
    first = TfidfModel(**TINY_PARAMS["tfidf"]).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    first.evidence(note, [asthma])  # caches the first vocabulary's feature names
    refitted = first.fit(texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    fresh = TfidfModel(**TINY_PARAMS["tfidf"]).fit(texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    [spans] = refitted.evidence(note, [asthma])
    assert spans == fresh.evidence(note, [asthma])[0]
    assert "wheezing" in note[spans[0].start : spans[0].end].lower().split()


def test_tfidf_char_ngrams_add_features_and_round_trip(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    words_only = TfidfModel(**TINY_PARAMS["tfidf"]).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    with_chars = TfidfModel(**TINY_PARAMS["tfidf"], char_ngram_range=(3, 5))
    with_chars.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    assert len(with_chars.vectorizers_) == 2
    n_word = words_only.transform(["x"]).shape[1]
    assert with_chars.transform(["x"]).shape[1] > n_word
    assert with_chars.weights_.coef.shape[0] == with_chars.transform(["x"]).shape[1]

    with_chars.save(tmp_path / "chars")
    loaded = TfidfModel.load(tmp_path / "chars")
    assert loaded.char_ngram_range == (3, 5)
    assert loaded.get_params() == with_chars.get_params()
    texts = tiny_corpus.heldout_texts
    assert np.array_equal(loaded.predict_proba(texts), with_chars.predict_proba(texts))


# Word forms the tiny corpus never uses: out of vocabulary for words, not for characters.
VARIANTS = {
    "anemia": "anemic",
    "diabetes": "diabetic",
    "migraine": "migraines",
    "asthma": "asthmatic",
    "gout": "gouty",
    "fracture": "fractured",
}


def test_tfidf_char_ngrams_recognise_unseen_word_forms(tiny_corpus: TinyCorpus) -> None:
    words_only = TfidfModel(**TINY_PARAMS["tfidf"]).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    with_chars = TfidfModel(**TINY_PARAMS["tfidf"], char_ngram_range=(2, 4))
    with_chars.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    rng = random.Random(99)
    for j, word in enumerate(tiny_corpus.words):
        plain = tiny_corpus.note(rng, [])
        with_variant = f"{plain} {VARIANTS[word]} noted."
        char_delta = with_chars.predict_proba([with_variant])[0]
        char_delta -= with_chars.predict_proba([plain])[0]
        assert int(np.argmax(char_delta)) == j, (word, char_delta.round(3))
        assert char_delta[j] > 0.02
        word_delta = words_only.predict_proba([with_variant]) - words_only.predict_proba([plain])
        assert np.all(word_delta == 0), word


def test_tfidf_min_df_keeps_a_once_seen_word_out_of_the_saved_model(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    # A name in one note only (rare words are where identifiers hide) is not stored.
    texts = list(tiny_corpus.texts)
    texts[0] = texts[0] + " Quenzelbrook"
    model = TfidfModel(min_df=2, epochs=2).fit(texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    model.save(tmp_path / "model")
    for file in (tmp_path / "model").iterdir():
        assert b"quenzelbrook" not in file.read_bytes().lower(), file.name


# ----------------------------------------------------------------------------- train_linear


def linear_problem(
    n_labels: int = 5, positive_rate: float = 0.3, seed: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """200 notes, 40 features (the last never present), labels from a hidden linear rule."""
    rng = np.random.default_rng(seed)
    present = sp.random(200, 39, density=0.15, random_state=rng, dtype=np.float32)
    X = sp.hstack([present, sp.csr_matrix((200, 1), dtype=np.float32)], format="csr")
    hidden = rng.normal(size=(40, n_labels)) * 4
    scores = X @ hidden
    Y = sp.csr_matrix((scores > np.quantile(scores, 1 - positive_rate, axis=0)).astype(np.int8))
    return X, Y


def bce(Y: sp.csr_matrix, probs: np.ndarray) -> float:
    y = Y.toarray()
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_train_linear_reduces_loss_from_the_base_rate_start() -> None:
    X, Y = linear_problem()
    base_rate = np.asarray(Y.mean(axis=0)).ravel()
    initial_loss = bce(Y, np.broadcast_to(base_rate, Y.shape))
    weights = train_linear(X, Y, LinearSettings(epochs=30, batch_size=16, pos_weight=1.0))
    assert isinstance(weights, LinearWeights)
    assert weights.coef.shape == (40, 5)
    assert weights.coef.dtype == np.float32
    trained_loss = bce(Y, weights.predict_proba(X))
    assert trained_loss < 0.6 * initial_loss, (initial_loss, trained_loss)
    # Lazy updates: a feature no note has never moves from zero.
    assert np.all(weights.coef[39] == 0)


def test_train_linear_is_deterministic_per_seed() -> None:
    X, Y = linear_problem()
    settings = LinearSettings(epochs=3, batch_size=16, seed=5)
    first = train_linear(X, Y, settings)
    second = train_linear(X, Y, settings)
    assert np.array_equal(first.coef, second.coef)
    assert np.array_equal(first.intercept, second.intercept)
    other_seed = train_linear(X, Y, LinearSettings(epochs=3, batch_size=16, seed=6))
    assert not np.array_equal(first.coef, other_seed.coef)


def test_train_linear_pos_weight_raises_positive_scores() -> None:
    X, Y = linear_problem()
    plain = train_linear(X, Y, LinearSettings(epochs=10, batch_size=16, pos_weight=1.0))
    weighted = train_linear(X, Y, LinearSettings(epochs=10, batch_size=16, pos_weight=10.0))
    positives = Y.toarray().astype(bool)
    assert weighted.predict_proba(X)[positives].mean() > plain.predict_proba(X)[positives].mean()


def test_train_linear_with_sampled_negatives_still_learns() -> None:
    # 30 rare labels: a batch of 16 leaves most labels negative, so sampling kicks in.
    X, Y = linear_problem(n_labels=30, positive_rate=0.05)
    base_rate = np.asarray(Y.mean(axis=0)).ravel()
    initial_loss = bce(Y, np.broadcast_to(base_rate, Y.shape))
    settings = LinearSettings(epochs=30, batch_size=16, sampled_negatives=3, seed=1)
    sampled = train_linear(X, Y, settings)
    assert bce(Y, sampled.predict_proba(X)) < 0.7 * initial_loss
    again = train_linear(X, Y, settings)
    assert np.array_equal(sampled.coef, again.coef)
    full = train_linear(X, Y, LinearSettings(epochs=30, batch_size=16, seed=1))
    assert not np.array_equal(sampled.coef, full.coef)


def test_train_linear_samples_nothing_when_the_sample_covers_every_negative() -> None:
    X, Y = linear_problem()
    exact = train_linear(X, Y, LinearSettings(epochs=3, batch_size=16))
    covered = train_linear(X, Y, LinearSettings(epochs=3, batch_size=16, sampled_negatives=5))
    assert np.array_equal(exact.coef, covered.coef)
    assert np.array_equal(exact.intercept, covered.intercept)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("pos_weight", -1.0),
        ("l2", -0.1),
        ("sampled_negatives", 0),
    ],
)
def test_linear_settings_reject_bad_values_by_name(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        LinearSettings(**{field: value})
