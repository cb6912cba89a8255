"""The Coder as one directory (save, load, load_coder) and the routing rules."""

from __future__ import annotations

import dataclasses
import gc
import gzip
import json
import pickle
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import joblib
import numpy as np
import pytest

from autocode.codes import excludes1_conflicts, is_billable
from autocode.config import DataConfig, LabelConfig, ModelConfig, RoutingConfig, TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.decisions.coder import CODER_FILE, WARM_UP_NOTES, Coder, made_up_notes
from autocode.decisions.policy import ReviewPolicy
from autocode.decisions.records import AUTO, REVIEW, Prediction
from autocode.decisions.routing import decide, route_reasons
from autocode.decisions.thresholds import Thresholds
from autocode.infer.loading import ModelAddressError, load_coder
from autocode.infer.pyfunc import CODER_ARTIFACT
from autocode.labels import LabelSpace
from autocode.models import CodingModel
from autocode.models.base import KnowsWords
from autocode.models.tfidf import TfidfModel
from autocode.train.fitting import fit_coder

if TYPE_CHECKING:
    from conftest import TinyCorpus

E10_9, E11_9, E11, I10 = "ICD10CM:E10.9", "ICD10CM:E11.9", "ICD10CM:E11", "ICD10CM:I10"


@pytest.fixture(scope="module")
def coder(tiny_corpus: TinyCorpus, tiny_validation_corpus: TinyCorpus) -> Coder:
    """A Coder fitted on the tiny notes, tuned on a second, independent draw of them."""
    validation = tiny_validation_corpus
    config = TrainConfig(
        name="tiny",
        data=DataConfig(source="unused"),
        labels=LabelConfig(min_count=1),
        model=ModelConfig(name="tfidf", params={"min_df": 1, "epochs": 30, "batch_size": 8}),
        routing=RoutingConfig(target_precision=0.9, min_support=5),
    )
    train = NoteSet(tiny_corpus.texts, tiny_corpus.code_lists)
    return fit_coder(config, train, NoteSet(validation.texts, validation.code_lists)).coder


def texts_to_score(corpus: TinyCorpus) -> list[str]:
    return corpus.texts + corpus.heldout_texts + ["nothing this coder has seen"]


# ----------------------------------------------------------------------------- save / load


def test_save_then_load_gives_identical_probabilities_and_decisions(
    coder: Coder, tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    coder.save(tmp_path / "coder")
    loaded = Coder.load(tmp_path / "coder")

    texts = texts_to_score(tiny_corpus)
    probs = coder.predict_proba(texts)
    loaded_probs = loaded.predict_proba(texts)
    assert np.array_equal(loaded_probs, probs)
    assert np.array_equal(loaded.raw_proba(texts), coder.raw_proba(texts))
    assert loaded.predicted_codes(loaded_probs) == coder.predicted_codes(probs)
    assert decide(loaded, loaded_probs) == decide(coder, probs)

    assert loaded.model_name == "tfidf"
    assert loaded.labels.codes_ == coder.labels.codes_ == tiny_corpus.codes
    assert np.array_equal(loaded.labels.counts_, coder.labels.counts_)
    assert np.array_equal(loaded.thresholds.per_code, coder.thresholds.per_code)
    assert np.array_equal(loaded.policy.accept, coder.policy.accept)
    assert np.array_equal(loaded.policy.reject, coder.policy.reject)
    assert loaded.info == coder.info == {"config_name": "tiny"}


def test_loading_pauses_the_garbage_collector_and_restores_it(
    coder: Coder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its many long-lived objects would set off collector passes that free nothing.
    coder.save(tmp_path / "coder")
    seen: list[bool] = []
    reading = LabelSpace.load

    def load_labels(directory: Path) -> LabelSpace:
        seen.append(gc.isenabled())
        return reading(directory)

    monkeypatch.setattr(LabelSpace, "load", staticmethod(load_labels))
    assert gc.isenabled()
    Coder.load(tmp_path / "coder")
    assert seen == [False] and gc.isenabled()
    with pytest.raises(FileNotFoundError):
        Coder.load(tmp_path / "missing")
    assert gc.isenabled()  # a failed load restores it too


def test_loading_a_directory_without_coder_json_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(FileNotFoundError, match=CODER_FILE) as error:
        Coder.load(tmp_path)
    assert str(tmp_path) in str(error.value)
    with pytest.raises(ModelAddressError, match="not a Coder"):
        load_coder(str(tmp_path))
    with pytest.raises(ModelAddressError, match="no such directory"):
        load_coder(str(tmp_path / "missing"))


def test_loading_another_format_version_is_a_clear_error(coder: Coder, tmp_path: Path) -> None:
    coder.save(tmp_path)
    state = json.loads((tmp_path / CODER_FILE).read_text())
    state["format_version"] = 99
    (tmp_path / CODER_FILE).write_text(json.dumps(state))
    with pytest.raises(ValueError, match="format_version 99"):
        Coder.load(tmp_path)


# Small, fast hyperparameters per model: the Coder's files differ by model.
TINY_TFIDF = {"min_df": 1, "epochs": 30, "batch_size": 8}
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "tfidf": TINY_TFIDF,
    "tfidf-lexicon": {"tfidf": TINY_TFIDF, "inner_folds": 3},
    # A stack named by configuration only: its base models are registry names.
    "stack": {
        "base_models": [{"name": "matcher"}, {"name": "tfidf", "params": TINY_TFIDF}],
        "inner_folds": 3,
    },
}
# Each Coder's label-holding-names.json.gz among them.
SAVED_FILES = {"tfidf": 8, "tfidf-lexicon": 14, "stack": 14}


@pytest.fixture(scope="module", params=sorted(MODEL_PARAMS))
def model_coder(
    request: pytest.FixtureRequest, tiny_corpus: TinyCorpus, tiny_validation_corpus: TinyCorpus
) -> Coder:
    """A Coder of each model; the tiny codes are real ICD-10-CM codes, as tfidf-lexicon needs."""
    config = TrainConfig(
        name="tiny",
        data=DataConfig(source="unused"),
        labels=LabelConfig(min_count=1),
        model=ModelConfig(name=request.param, params=MODEL_PARAMS[request.param]),
        routing=RoutingConfig(target_precision=0.9, min_support=5),
    )
    train = NoteSet(tiny_corpus.texts, tiny_corpus.code_lists)
    validation = NoteSet(tiny_validation_corpus.texts, tiny_validation_corpus.code_lists)
    return fit_coder(config, train, validation).coder


def refuse_to_unpickle(*args: object, **kwargs: object) -> None:
    raise AssertionError("a Coder load unpickled something")


def test_a_saved_coder_loads_without_unpickling_anything(
    model_coder: Coder, tiny_corpus: TinyCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_coder.save(tmp_path / "coder")
    files = [p for p in (tmp_path / "coder").rglob("*") if p.is_file()]
    assert {"".join(p.suffixes[-2:]) if p.suffix == ".gz" else p.suffix for p in files} == {
        ".json",
        ".npz",
        ".json.gz",  # code names, gzipped JSON
    }, files
    for name in ("load", "loads", "Unpickler", "_Unpickler"):
        monkeypatch.setattr(pickle, name, refuse_to_unpickle)
    monkeypatch.setattr(joblib, "load", refuse_to_unpickle)
    for name in ("load", "loads"):  # bound from pickle at import: patched on their own
        monkeypatch.setattr(cloudpickle, name, refuse_to_unpickle)
    with pytest.raises(AssertionError, match="unpickled"):  # the patch bites
        joblib.load(tmp_path / "coder" / CODER_FILE)

    loaded = Coder.load(tmp_path / "coder")
    texts = texts_to_score(tiny_corpus)
    assert np.array_equal(loaded.raw_proba(texts), model_coder.raw_proba(texts))
    assert np.array_equal(loaded.predict_proba(texts), model_coder.predict_proba(texts))
    codes = loaded.labels.codes_
    evidence = [loaded.evidence(text, codes) for text in texts]
    assert evidence == [model_coder.evidence(text, codes) for text in texts]
    assert any(spans for note in evidence for spans in note.values())


def with_version(path: Path, version: int) -> None:
    """Rewrite a saved JSON (maybe gzipped) or .npz file with another format_version."""
    if path.suffix == ".json":
        state = json.loads(path.read_text())
        state["format_version"] = version
        path.write_text(json.dumps(state))
        return
    if path.name.endswith(".json.gz"):
        state = json.loads(gzip.decompress(path.read_bytes()))
        path.write_bytes(gzip.compress(json.dumps({**state, "format_version": version}).encode()))
        return
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    np.savez(path, **{**arrays, "format_version": np.int64(version)})


def reloaded(coder: Coder, directory: Path) -> Coder:
    """The Coder saved to `directory` and loaded again: fresh lookup tables and memos."""
    coder.save(directory)
    return Coder.load(directory)


def the_tfidf_model(coder: Coder) -> TfidfModel:
    """The Coder's model, or its stack's base model, that is a `TfidfModel`."""
    return next(
        model
        for model in [coder.model, *getattr(coder.model, "bases_", [])]
        if isinstance(model, TfidfModel)
    )


def test_warm_up_builds_the_evidence_tables_the_first_notes_would(
    model_coder: Coder, tmp_path: Path
) -> None:
    loaded = reloaded(model_coder, tmp_path / "coder")
    tfidf = the_tfidf_model(loaded)
    vars(tfidf).pop("_strongest")  # as a Coder saved before the ranking was saved
    assert getattr(tfidf, "_word_feature_names", None) is None
    loaded.warm_up()
    assert tfidf._strongest is not None and tfidf._word_feature_names
    # The ranking built on use is the one the Coder saved.
    saved_tfidf = the_tfidf_model(Coder.load(tmp_path / "coder"))
    assert np.array_equal(tfidf._strongest.features, saved_tfidf._strongest.features)
    assert np.array_equal(tfidf._strongest.weights, saved_tfidf._strongest.weights)


def test_an_unknown_format_version_in_any_file_is_a_one_line_error(
    model_coder: Coder, tmp_path: Path
) -> None:
    model_coder.save(tmp_path / "saved")
    files = sorted(p.relative_to(tmp_path / "saved") for p in (tmp_path / "saved").rglob("*.*"))
    # labels.json is covered by coder.json's version; every other file carries its own.
    versioned = [f for f in files if f.name != "labels.json"]
    assert len(versioned) == SAVED_FILES[model_coder.model_name], files
    for k, file in enumerate(versioned):
        shutil.copytree(tmp_path / "saved", tmp_path / f"case{k}")
        with_version(tmp_path / f"case{k}" / file, 99)
        with pytest.raises(ValueError) as error:
            Coder.load(tmp_path / f"case{k}")
        message = str(error.value)
        assert "\n" not in message
        assert str(file) in message and "format_version 99" in message, message


def test_a_model_whose_labels_disagree_with_the_coders_is_refused(
    coder: Coder, tmp_path: Path
) -> None:
    coder.save(tmp_path / "coder")
    labels_file = tmp_path / "coder" / "labels.json"
    saved = json.loads(labels_file.read_text())
    codes = saved["codes"]
    swapped = [codes[0], codes[2], codes[1], *codes[3:]]
    labels_file.write_text(json.dumps({**saved, "codes": swapped}))
    with pytest.raises(ValueError) as error:
        Coder.load(tmp_path / "coder")
    assert str(error.value) == (
        f"{tmp_path / 'coder'}: model and labels.json disagree: column 1 is {codes[1]} "
        f"in the model but {codes[2]} in the label space"
    )
    labels_file.write_text(
        json.dumps({**saved, "codes": codes[:-1], "counts": saved["counts"][:-1]})
    )
    with pytest.raises(
        ValueError, match=rf"the model has {len(codes)} labels, the label space {len(codes) - 1}$"
    ):
        Coder.load(tmp_path / "coder")


def test_load_coder_reads_a_local_coder_and_an_mlflow_model_layout(
    coder: Coder, tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    coder.save(tmp_path / "coder")
    texts = texts_to_score(tiny_corpus)
    expected = coder.predict_proba(texts)
    assert np.array_equal(load_coder(str(tmp_path / "coder")).predict_proba(texts), expected)
    # A downloaded pyfunc model keeps the Coder under artifacts/coder.
    shutil.copytree(tmp_path / "coder", tmp_path / "pyfunc" / "artifacts" / CODER_ARTIFACT)
    assert np.array_equal(load_coder(str(tmp_path / "pyfunc")).predict_proba(texts), expected)


# ----------------------------------------------------------------------------- evidence


def test_coder_evidence_points_at_the_word_behind_each_code(
    coder: Coder, tiny_corpus: TinyCorpus
) -> None:
    text = "Seen in clinic today. Known GOUT, new anemia noted."
    gout, anemia = "ICD10CM:M10.9", "ICD10CM:D64.9"
    evidence = coder.evidence(text, [gout, anemia])
    assert list(evidence) == [gout, anemia]
    assert "GOUT" in [text[s.start : s.end] for s in evidence[gout]]
    assert "anemia" in [text[s.start : s.end] for s in evidence[anemia]]


def test_decide_with_texts_attaches_offsets_but_no_text(
    coder: Coder, tiny_corpus: TinyCorpus
) -> None:
    texts = tiny_corpus.heldout_texts
    probs = coder.predict_proba(texts)
    without = decide(coder, probs)
    with_evidence = decide(coder, probs, texts)
    assert all(p.evidence == [] for d in without for p in d.predictions)
    spans_seen = 0
    for text, decision in zip(texts, with_evidence, strict=True):
        for prediction in decision.predictions:
            for span in prediction.evidence:
                # Offsets into the caller's note only: decisions never copy note text.
                assert set(span.to_json()) == {"start", "end", "weight"}
                assert 0 <= span.start < span.end <= len(text)
                spans_seen += 1
    assert spans_seen > 0
    # Evidence changes nothing about the decision itself.
    for plain, explained in zip(without, with_evidence, strict=True):
        assert (plain.codes, plain.route, plain.reasons) == (
            explained.codes,
            explained.route,
            explained.reasons,
        )


class OpaqueModel:
    """A CodingModel that cannot explain itself (no `evidence` method)."""

    def __init__(self, inner: CodingModel) -> None:
        self.inner = inner

    def fit(self, texts: Sequence[str], Y: Any, *, labels: Any, **kwargs: Any) -> OpaqueModel:
        self.inner.fit(texts, Y, labels=labels)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.predict_proba(texts)

    def save(self, path: Path) -> None:
        self.inner.save(path)

    @classmethod
    def load(cls, path: Path) -> OpaqueModel:
        raise NotImplementedError


def test_a_model_without_evidence_gives_empty_spans(coder: Coder) -> None:
    opaque = dataclasses.replace(coder, model=OpaqueModel(coder.model))
    assert opaque.evidence("Known gout.", ["ICD10CM:M10.9"]) == {"ICD10CM:M10.9": []}


# ----------------------------------------------------------------------------- routing rules


def test_the_excludes1_pair_used_here_is_real() -> None:
    assert (E10_9, E11_9) in excludes1_conflicts([E10_9, E11_9])
    assert excludes1_conflicts([I10, E11_9]) == []
    assert not is_billable(E11)
    assert is_billable(E11_9)
    assert is_billable(I10)


def test_uncertain_codes_are_named() -> None:
    reasons = route_reasons([I10], ["ICD10CM:E78.5", "CPT:99231"])
    assert reasons == ["uncertain: ICD10CM:E78.5", "uncertain: CPT:99231"]


def test_a_note_without_accepted_codes_needs_review() -> None:
    assert route_reasons([], []) == ["no accepted code"]


def test_an_excludes1_pair_both_accepted_needs_review() -> None:
    # The two diabetes types exclude each other: one reason for the pair, not two.
    assert route_reasons([E11_9, E10_9, I10], []) == [
        f"excludes1: {E10_9} and {E11_9} exclude each other"
    ]


def test_a_one_way_excludes1_pair_names_which_excludes_which() -> None:
    # I10 excludes hypertension complicating pregnancy (O10-O11); O10.02 names no I10.
    assert route_reasons([I10, "ICD10CM:O10.02"], []) == [
        f"excludes1: {I10} excludes ICD10CM:O10.02"
    ]


def test_a_non_billable_header_code_is_named() -> None:
    assert route_reasons([E11, I10], []) == [f"non-billable: {E11}"]


def test_a_clean_note_has_no_reasons() -> None:
    # Billable, no Excludes1 pair; procedure and CPT codes are never "non-billable".
    assert route_reasons([I10, E11_9, "ICD10PCS:BW03ZZZ", "CPT:99231"], []) == []


def test_decide_routes_each_note_by_its_bands(coder: Coder) -> None:
    # Three codes, accept at 0.9, reject below 0.1, predict at 0.5.
    codes = [E10_9, E11_9, I10]
    hand = dataclasses.replace(
        coder,
        labels=LabelSpace.from_codes(codes),
        thresholds=Thresholds(0.5, np.full(3, 0.5)),
        policy=ReviewPolicy(
            accept=np.full(3, 0.9),
            reject=np.full(3, 0.1),
            target_precision=0.9,
            target_recall=0.9,
            reachable=True,
        ),
    )
    probs = np.array(
        [
            [0.95, 0.05, 0.92],  # E10.9 and I10 accepted, E11.9 rejected: clean
            [0.95, 0.97, 0.01],  # both diabetes types accepted: Excludes1
            [0.60, 0.05, 0.05],  # E10.9 in the band, nothing accepted
        ]
    )
    clean, conflict, unsure = decide(hand, probs)

    assert (clean.route, clean.codes, clean.reasons) == (AUTO, [E10_9, I10], [])
    assert [p.code for p in clean.predictions] == [E10_9, I10]  # E11.9 confidently absent

    assert conflict.route == REVIEW
    assert conflict.codes == [E11_9, E10_9]  # by probability
    assert conflict.reasons == [f"excludes1: {E10_9} and {E11_9} exclude each other"]

    assert unsure.route == REVIEW
    assert unsure.codes == []
    assert unsure.reasons == [f"uncertain: {E10_9}", "no accepted code"]
    assert unsure.predictions == [Prediction(E10_9, 0.60, accepted=False, predicted=True)]


def test_the_review_cap_lists_the_most_probable_and_keeps_predicted_codes(coder: Coder) -> None:
    # Accept at 0.9, reject below 0.1, predict at 0.5 (I10 at 0.2), review list capped at 1.
    codes = [E10_9, E11_9, I10]
    hand = dataclasses.replace(
        coder,
        labels=LabelSpace.from_codes(codes),
        thresholds=Thresholds(0.5, np.array([0.5, 0.5, 0.2])),
        policy=ReviewPolicy(np.full(3, 0.9), np.full(3, 0.1), 0.9, 0.9, True, max_review_codes=1),
    )
    [note] = decide(hand, np.array([[0.60, 0.15, 0.30]]))
    # E10.9 is the one listed; I10 is past the cap but predicted, so still shown: E11.9
    # alone is left off.
    assert [p.code for p in note.predictions] == [E10_9, I10]
    assert [p.predicted for p in note.predictions] == [True, True]
    assert note.reasons == [
        f"uncertain: {E10_9}",
        "review cap: 1 more uncertain codes not listed, the likeliest at 0.150",
        "no accepted code",
    ]
    # Left off far below: the reason does not print a probability that rounds to zero.
    wide = ReviewPolicy(np.full(3, 0.9), np.full(3, 1e-4), 0.9, 0.9, True, max_review_codes=1)
    [faint] = decide(dataclasses.replace(hand, policy=wide), np.array([[0.60, 4e-4, 0.30]]))
    assert "review cap: 1 more uncertain codes not listed, the likeliest below 0.001" in (
        faint.reasons
    )


def test_equal_probabilities_are_listed_in_label_order(coder: Coder) -> None:
    codes = [E10_9, E11_9, I10]
    hand = dataclasses.replace(
        coder,
        labels=LabelSpace.from_codes(codes),
        thresholds=Thresholds(0.5, np.full(3, 0.5)),
        policy=ReviewPolicy(np.full(3, 0.9), np.full(3, 0.1), 0.9, 0.9, True),
    )
    first, second = decide(hand, np.array([[0.4, 0.7, 0.4], [0.05, 0.95, 0.95]]))
    assert [(p.code, p.probability) for p in first.predictions] == [
        (E11_9, 0.7),
        (E10_9, 0.4),
        (I10, 0.4),
    ]
    assert first.reasons[:3] == [f"uncertain: {c}" for c in (E11_9, E10_9, I10)]
    assert second.codes == [E11_9, I10]


def test_made_up_notes_are_the_models_words_only_and_the_same_each_time(
    model_coder: Coder,
) -> None:
    assert isinstance(model_coder.model, KnowsWords)
    words = model_coder.model.known_words()
    assert words and all(" " not in word for word in words)
    notes = made_up_notes(words)
    assert len(notes) == WARM_UP_NOTES
    drawn = {word for note in notes for word in note.replace(".", " ").split()}
    assert drawn <= set(words)
    assert made_up_notes(words) == notes
    assert made_up_notes([]) == ["Warm up."]


def test_warm_up_codes_the_made_up_notes_of_the_models_words(
    model_coder: Coder, tmp_path: Path
) -> None:
    loaded = reloaded(model_coder, tmp_path / "coder")
    tfidf = the_tfidf_model(loaded)
    assert tfidf._recent_word_rows().find(made_up_notes(loaded.model.known_words())) is None
    loaded.warm_up()
    # Prediction remembered the made-up notes' rows, and evidence read them.
    rows = tfidf._recent_word_rows().find(made_up_notes(loaded.model.known_words()))
    assert rows is not None and rows.shape[0] == WARM_UP_NOTES and rows.nnz > 0
