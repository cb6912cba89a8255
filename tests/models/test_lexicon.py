"""The code lexicon, code terms and the re-ranker's pair features, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from autocode.codes.terms import code_description, code_group, code_terms
from autocode.models.lexicon import CodeLexicon, content_words, fold, sentence_spans
from autocode.models.rerank import FEATURES, CodeFacts, Reranker, _group_max, pair_features
from autocode.models.tfidf_lexicon import _columns

# ----------------------------------------------------------------------------- code terms


def test_code_terms_are_the_description_then_inclusion_terms() -> None:
    assert code_terms("ICD10CM:L40.0") == [
        "Psoriasis vulgaris",
        "Nummular psoriasis",
        "Plaque psoriasis",
    ]
    # Parenthesised qualifiers are dropped: "Essential (primary) hypertension".
    assert code_terms("ICD10CM:I10")[0] == "Essential hypertension"


def test_truncated_and_prefix_codes_borrow_the_nearest_meaning() -> None:
    # CodiEsp writes S02.0XX; the tabular lists S02.0.
    assert code_terms("ICD10CM:S02.0XX")[0] == "Fracture of vault of skull"
    # CodiEsp procedures are 4-character ICD-10-PCS prefixes: their codes' shared words.
    assert code_terms("ICD10PCS:0DT6") == ["Resection of Stomach"]
    assert code_terms("ICD10PCS:BN20") == ["Computerized Tomography of Skull"]


def test_codes_without_known_terms_have_none() -> None:
    assert code_terms("CPT:99231") == []  # CPT descriptions are not open
    assert code_terms("ICD10CM:U99.9") == []  # in no listed category


def test_code_description_falls_back_to_the_first_term() -> None:
    assert code_description("ICD10CM:L40.0") == "Psoriasis vulgaris"
    assert code_description("ICD10PCS:BN20") == "Computerized Tomography of Skull"
    assert code_description("ICD10CM:S02.0XX") == "Fracture of vault of skull"
    assert code_description("CPT:99231") == ""


def test_code_group_is_the_three_character_family() -> None:
    assert code_group("ICD10CM:L40.0") == "ICD10CM:L40"
    assert code_group("ICD10PCS:0DT6") == "ICD10PCS:0DT"
    assert code_group("ICD10CM:R42") == "ICD10CM:R42"


# ----------------------------------------------------------------------------- lexicon


def test_words_are_lowercased_folded_and_stripped_of_stop_words() -> None:
    assert [w for w, _, _ in content_words("Fractures of the Ribs, unspecified")] == [
        "fracture",
        "rib",
    ]
    assert [fold(w) for w in ("abscess", "abscesses", "injuries", "masses", "bronchitis")] == [
        "abscess",
        "abscess",
        "injury",
        "mass",
        "bronchitis",
    ]
    text = "Known gout.  Asthma; fine\n\nEnd"
    assert [text[a:b] for a, b in sentence_spans(text)] == ["Known gout.", "Asthma;", "fine", "End"]


@pytest.fixture
def lexicon() -> CodeLexicon:
    terms = [["Plaque psoriasis"], ["Dizziness and giddiness"], []]
    # Two sentences; "giddiness" never occurs, so it weighs more than the other words.
    return CodeLexicon(terms).fit(["Plaque psoriasis.\nDizziness."])


def test_coverage_is_the_idf_weighted_share_of_a_term_in_one_sentence(
    lexicon: CodeLexicon,
) -> None:
    common, unseen = math.log(3 / 2) + 1, math.log(3 / 1) + 1
    matches = lexicon.match(["Known psoriasis; dizziness.", "PLAQUES of psoriasis", "nothing"])
    assert matches.best[0] == pytest.approx([0.5, common / (common + unseen), 0.0], abs=1e-6)
    assert matches.best[1] == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)
    assert matches.full_sentences[1].tolist() == [1.0, 0.0, 0.0]
    assert matches.best[2].tolist() == [0.0, 0.0, 0.0]


def test_words_of_a_term_must_share_one_sentence(lexicon: CodeLexicon) -> None:
    split = lexicon.match(["Plaque here.\nPsoriasis there. Plaque psoriasis again.  Psoriasis."])
    assert split.best[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert split.full_sentences[0, 0] == 1.0  # only the one sentence naming both words
    apart = lexicon.match(["Plaque here.\nPsoriasis there."])
    assert apart.best[0, 0] == pytest.approx(0.5, abs=1e-6)


def test_description_coverage_ignores_the_other_terms() -> None:
    lexicon = CodeLexicon([["Psoriasis vulgaris", "Plaque psoriasis"]]).fit(["x"])
    matches = lexicon.match(["Plaque psoriasis."])
    assert matches.best[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert matches.best_description[0, 0] == pytest.approx(0.5, abs=1e-6)


def test_spans_point_at_the_best_terms_words(lexicon: CodeLexicon) -> None:
    text = "Psoriasis once. Then PLAQUE  psoriasis, and dizziness."
    common, unseen = math.log(3 / 2) + 1, math.log(3 / 1) + 1
    plaque, dizziness, nothing = lexicon.spans(text, [0, 1, 2])
    assert plaque[0] == pytest.approx(1.0)
    assert [text[a:b] for a, b in plaque[1]] == ["PLAQUE", "psoriasis"]
    assert dizziness[0] == pytest.approx(common / (common + unseen))
    assert [text[a:b] for a, b in dizziness[1]] == ["dizziness"]
    assert nothing == (0.0, [])


def test_offsets_survive_letters_that_lowercase_longer() -> None:
    lexicon = CodeLexicon([["Gout"]]).fit(["Gout."])
    text = "İİ gout today"  # "İ".lower() is two characters
    [(coverage, spans)] = lexicon.spans(text, [0])
    assert coverage == pytest.approx(1.0)
    assert [text[a:b] for a, b in spans] == ["gout"]


# ----------------------------------------------------------------------------- pair features


def test_group_max_takes_each_labels_family_maximum() -> None:
    # Interleaved families, and family 2 of one label.
    values = np.array([[0.2, 0.1, 0.7, 0.4, 0.5], [0.9, 0.3, 0.1, 0.0, 0.2]], np.float32)
    group = np.array([1, 0, 1, 0, 2])
    expected = np.array([[0.7, 0.4, 0.7, 0.4, 0.5], [0.9, 0.3, 0.9, 0.3, 0.2]], np.float32)
    assert np.array_equal(_group_max(values, group), expected)


def test_pair_features_hold_hand_computed_values() -> None:
    codes = ["ICD10CM:L40.0", "ICD10CM:L40.9", "ICD10CM:R42"]
    terms = [code_terms(c) for c in codes]
    # Four training notes: L40.0 gold in three, R42 in one; L40.0's term matched notes 0, 1
    # and 3 (two of them gold), L40.9's note 0 (not gold). All labels: 2 hits in 4 matches.
    gold = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 1], [1, 0, 0], [0, 0, 0]], bool))
    matched = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]], bool))
    facts = CodeFacts.build(codes, [code_group(c) for c in codes], terms, gold, matched)
    lexicon = CodeLexicon([*terms, code_terms("ICD10CM:L40"), code_terms("ICD10CM:R42")])
    matches = lexicon.fit(["Psoriasis.", "Dizziness."]).match(["Plaque psoriasis, dizzy."])
    own = _columns(matches, np.arange(3))
    group = _columns(matches, np.array([3, 3, 4]))
    scores = np.array([[0.5, 0.8, 0.2]], np.float32)

    features = pair_features(scores, own, group, facts)[0]
    column = {name: features[:, i] for i, name in enumerate(FEATURES)}
    assert column["stage1_logit"] == pytest.approx([0.0, math.log(4), math.log(0.25)], abs=1e-5)
    assert column["stage1_log_rank"] == pytest.approx([math.log(2), 0.0, math.log(3)])
    assert column["stage1_share_of_note_max"] == pytest.approx([0.625, 1.0, 0.25])
    assert column["stage1_gap_to_best_sibling"] == pytest.approx([-0.3, 0.0, 0.0])
    assert column["term_full_match"].tolist() == [1.0, 1.0, 0.0]  # plaque psoriasis / psoriasis
    assert column["group_full_match"].tolist() == [1.0, 1.0, 0.0]
    assert column["log_train_count"] == pytest.approx(np.log1p([3, 0, 1]))
    assert column["log_group_train_count"] == pytest.approx(np.log1p([3, 3, 1]))
    assert column["is_unspecified"].tolist() == [0.0, 1.0, 0.0]
    assert column["full_match_x_unspecified"].tolist() == [0.0, 1.0, 0.0]
    assert column["code_length"].tolist() == [4.0, 4.0, 3.0]
    # (hits + 2 * 0.5) / (matches + 2) where the term matched, else 0.
    assert column["term_match_precision"] == pytest.approx([0.6, 1 / 3, 0.0])
    assert column["full_match_x_log_train_count"] == pytest.approx([math.log(4), 0.0, 0.0])
    assert column["has_terms"].tolist() == [1.0, 1.0, 1.0]
    assert column["is_other"].tolist() == [0.0, 0.0, 0.0]
    # L40.9 ("Psoriasis") fully matches too: no sibling matches better than either.
    assert column["term_gap_to_best_sibling"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert column["group_coverage"][:2] == pytest.approx([1.0, 1.0], abs=1e-6)
    # L40.0's description "Psoriasis vulgaris" is half there; its inclusion term is whole.
    assert 0 < column["description_coverage"][0] < 1
    assert column["term_log_full_sentences"][:2] == pytest.approx([math.log(2), math.log(2)])


def test_the_stage1_only_reranker_passes_stage1_probabilities_through() -> None:
    scores = np.array([[0.3, 0.9, 0.02]], np.float32)
    features = np.zeros((1, 3, len(FEATURES)), np.float32)
    features[..., FEATURES.index("stage1_logit")] = np.log(scores / (1 - scores))
    assert Reranker.stage1_only().predict_proba(features) == pytest.approx(scores, abs=1e-6)
