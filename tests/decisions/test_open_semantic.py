"""The open part with a semantic matcher: sentence-nearest codes join the lexical
candidates (not from a negated sentence), add their cosine as a feature, and are saved
with the fitted part. The encoder is the tests' tiny BERT: this is about the plumbing,
not about what a real encoder finds (tests/models/test_semantic.py has that)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the transformer extra

from autocode.decisions.open_codes import (  # noqa: E402
    CAUSE_FEATURES,
    DEFAULT_BLOCKING,
    OPEN_FEATURES,
    SEMANTIC_FEATURES,
    KnownCodes,
    OpenCodes,
    fit_open_codes,
    open_candidates,
)
from autocode.knowledge.candidates import icd10cm_index  # noqa: E402
from autocode.models.crossfit import fold_splits  # noqa: E402
from autocode.models.semantic import CodeEmbeddings, SemanticMatcher, SentenceEncoder  # noqa: E402
from autocode.models.transformer.encoder import build_tiny_bert  # noqa: E402

FEVER = "ICD10CM:R50.9"
NAMES = {FEVER: ["Fever, unspecified"]}


@pytest.fixture(scope="module")
def matcher() -> SemanticMatcher:
    encoder, tokenizer = build_tiny_bert(["fever unspecified", "no temperature spikes"], seed=0)
    sentences = SentenceEncoder(encoder, tokenizer, quantize=False)
    # One code, any cosine: each sentence's nearest code is the fever code.
    return SemanticMatcher(
        sentences, CodeEmbeddings.build(sentences, NAMES), top_k=1, min_cosine=-1.0
    )


def test_a_sentence_near_a_code_proposes_it_unless_the_sentence_is_negated(
    matcher: SemanticMatcher,
) -> None:
    index = icd10cm_index(DEFAULT_BLOCKING)
    known = KnownCodes.of({})
    text = "Temperature spikes overnight."
    [matches] = matcher.matches([text])
    codes, X, spans = open_candidates(index, text, known, matcher, matches, DEFAULT_BLOCKING)
    assert FEVER in codes
    row = X[codes.index(FEVER)]
    assert X.shape[1] == len(OPEN_FEATURES) + len(SEMANTIC_FEATURES)
    assert row[-1] == 1.0  # via the semantic matcher only
    assert row[-3] == pytest.approx(float(matches.cosines[0]))
    assert row[-2] == 0.0  # the only code is its sentence's best: no margin below it
    assert spans[codes.index(FEVER)] == ((0, len(text)),)

    negated = "No temperature spikes overnight."
    [matches] = matcher.matches([negated])
    codes, _, _ = open_candidates(index, negated, known, matcher, matches, DEFAULT_BLOCKING)
    assert FEVER not in codes
    codes, _, _ = open_candidates(index, negated, known, matcher, matches, ())
    assert FEVER in codes


def test_the_fitted_part_keeps_its_matcher_through_saving(
    matcher: SemanticMatcher, tmp_path: Path
) -> None:
    # One note is coded with the fever code: in its fold, every note's sentences propose
    # it (the matcher's only code), once gold and otherwise not.
    texts = [f"Seen for temperature spikes, day {k}." for k in range(12)]
    codes = [[FEVER]] + [["ICD10CM:Z00.00"]] * 11
    part = fit_open_codes(
        texts, codes, fold_splits(len(texts), folds=3, seed=0), min_support=1, semantic=matcher
    )
    assert part.features == OPEN_FEATURES + SEMANTIC_FEATURES + CAUSE_FEATURES
    state = part.to_dict()
    assert state["semantic"]["top_k"] == 1
    part.save_semantic(tmp_path)
    loaded = OpenCodes.from_dict(state, tmp_path)
    assert loaded.semantic is not None
    note = ["Temperature spikes again."]
    before, after = part.score(note, {}), loaded.score(note, {})
    assert [p.code for p in before[0]] == [p.code for p in after[0]]
    np.testing.assert_allclose(
        [p.probability for p in before[0]], [p.probability for p in after[0]], atol=1e-3
    )
    with pytest.raises(ValueError, match="need its directory"):
        OpenCodes.from_dict(state)
