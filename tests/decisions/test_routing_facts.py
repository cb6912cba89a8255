"""Routing facts: the tabular's answers for a Coder's codes, stored at training time, so a
loaded Coder routes without parsing the ICD-10-CM tabular."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import simple_icd_10_cm as cm

from autocode.codes import excludes1_conflicts, icd10cm, is_billable
from autocode.config import DataConfig, LabelConfig, ModelConfig, RoutingConfig, TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.decisions.coder import Coder
from autocode.decisions.routing import decide
from autocode.decisions.routing_facts import RoutingFacts
from autocode.train.fitting import fit_coder

if TYPE_CHECKING:
    from conftest import TinyCorpus

# Families with Excludes1 notes of every kind: mutual (E10/E11, K50/K51), ranges
# (I10 vs O10-O11, O13-O16), qualified (G54.5 vs "E08-E13 with .44", S01 vs "S02.- with
# 7th character B", R47.01 vs "I69. with final characters -20").
FAMILIES = ["E10", "E11", "G54", "I10", "I69", "K50", "K51", "O10", "O12", "R47", "S01", "S02"]
# Outside the tabular (CodiEsp's truncated spellings), and other systems.
UNLISTED = ["ICD10CM:K50.9X", "ICD10CM:S02.0XX", "ICD10PCS:BW03ZZZ", "CPT:99231"]


def family_codes() -> list[str]:
    values = [v for family in FAMILIES for v in [family, *cm.get_descendants(family)]]
    return sorted({f"ICD10CM:{value}" for value in values if "-" not in value}) + UNLISTED


def test_facts_give_the_tabulars_answers_for_every_subset() -> None:
    codes = family_codes()
    facts = RoutingFacts.for_codes(codes)

    assert set(facts.excludes1) == set(excludes1_conflicts(codes))
    assert len(facts.excludes1) > 100  # the families exclude each other a lot
    icd = [code for code in codes if code.startswith("ICD10CM:")]
    assert {code for code in icd if facts.is_billable(code)} == set(filter(is_billable, icd))
    assert facts.is_billable("ICD10CM:E11.9") and not facts.is_billable("ICD10CM:E11")
    rng = random.Random(0)
    for _ in range(200):
        note = (
            rng.sample(codes, rng.randint(0, 8))
            + ["ICD10CM:E10.9", "ICD10CM:E11.9"][: rng.randint(0, 2)]
        )
        assert facts.excludes1_conflicts(note) == excludes1_conflicts(note)


def test_facts_name_a_code_they_do_not_cover() -> None:
    facts = RoutingFacts.for_codes(["ICD10CM:I10"])
    assert facts.covers(["ICD10CM:I10", "CPT:99231"])
    assert not facts.covers(["ICD10CM:I10", "ICD10CM:E11.9"])
    with pytest.raises(KeyError, match=r"ICD10CM:E11\.9"):
        facts.is_billable("ICD10CM:E11.9")


def test_facts_survive_json() -> None:
    facts = RoutingFacts.for_codes(family_codes())
    assert RoutingFacts.from_dict(facts.to_dict()) == facts


# Tiny notes recoded so that the label space holds an Excludes1 pair (E10.9, E11.9) and a
# non-billable header (E11).
RECODE = {"ICD10CM:D64.9": "ICD10CM:E10.9", "ICD10CM:M10.9": "ICD10CM:E11"}


def recoded(corpus: TinyCorpus) -> NoteSet:
    return NoteSet(corpus.texts, [[RECODE.get(c, c) for c in codes] for codes in corpus.code_lists])


@pytest.fixture(scope="module")
def lexicon_coder(tiny_corpus: TinyCorpus, tiny_validation_corpus: TinyCorpus) -> Coder:
    config = TrainConfig(
        name="tiny-lexicon",
        data=DataConfig(source="unused"),
        labels=LabelConfig(min_count=1),
        model=ModelConfig(
            name="tfidf-lexicon",
            params={"tfidf": {"min_df": 1, "epochs": 30, "batch_size": 8}, "inner_folds": 3},
        ),
        routing=RoutingConfig(target_precision=0.9, min_support=5),
    )
    return fit_coder(config, recoded(tiny_corpus), recoded(tiny_validation_corpus)).coder


def test_a_saved_coder_loads_and_routes_without_parsing_the_tabular(
    lexicon_coder: Coder, tiny_corpus: TinyCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = lexicon_coder.labels.codes_
    e10, e11, e11_9 = (codes.index(c) for c in ("ICD10CM:E10.9", "ICD10CM:E11", "ICD10CM:E11.9"))
    probs = np.full((4, len(codes)), 0.001)
    probs[0, [e10, e11_9]] = 0.999  # an Excludes1 pair, both accepted
    probs[1, e11] = 0.999  # a header code accepted
    probs[2, e11_9] = 0.999  # clean
    texts = [*tiny_corpus.heldout_texts[:3], "Known gout."]
    # The reference: every note's codes looked up in the tabular, as before facts were saved.
    from_tabular = dataclasses.replace(lexicon_coder, routing_facts=None)
    expected = decide(from_tabular, probs, texts)
    expected_predicted = decide(from_tabular, lexicon_coder.predict_proba(texts), texts)
    assert any(r.startswith("excludes1: ") for r in expected[0].reasons)
    assert "non-billable: ICD10CM:E11" in expected[1].reasons
    lexicon_coder.save(tmp_path / "coder")

    def no_tabular() -> None:
        raise AssertionError("the ICD-10-CM tabular was read")

    monkeypatch.setattr(icd10cm, "_tabular", no_tabular)
    loaded = Coder.load(tmp_path / "coder")
    assert decide(loaded, probs, texts) == expected
    assert decide(loaded, loaded.predict_proba(texts), texts) == expected_predicted
