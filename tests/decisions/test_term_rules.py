"""Term rules: mined terms measured on held-out training notes, accepting their code."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autocode.config import (
    DataConfig,
    ModelConfig,
    RoutingConfig,
    TermRulesConfig,
    TrainConfig,
)
from autocode.corpus.schema import NoteSet
from autocode.decisions.coder import Coder
from autocode.decisions.policy import ABOVE_ONE, ReviewPolicy
from autocode.decisions.records import AUTO, REVIEW
from autocode.decisions.routing import decide
from autocode.decisions.term_rules import (
    TermRule,
    TermRules,
    fit_term_rules,
    holding_code_names,
    term_mentions,
)
from autocode.decisions.thresholds import Thresholds
from autocode.decisions.widening import coder_widened
from autocode.knowledge import CodeKnowledge
from autocode.knowledge.candidates import icd10cm_index
from autocode.knowledge.mined import Mention, MinedTerms, note_fingerprint
from autocode.models.crossfit import fold_splits
from coders import in_memory_config

DIABETES, PAIN, ZEBRA = "ICD10CM:E11.9", "ICD10CM:R52", "ICD10CM:A00.0"
BLOCKING = ("negated", "hypothetical", "family")


def _notes(coded_pain: str = "pain") -> tuple[NoteSet, MinedTerms]:
    """40 notes: "type 2 diabetes" is coded wherever it is written (20 notes); "pain" is
    written in 20 notes and coded in half (where it is written `coded_pain`); "zebra
    fever" is coded in one note only, and written uncoded in another. Each coded mention
    is mined from its note."""
    texts, codes, mentions = [], [], []
    for k in range(40):
        words = [f"Visit {k} for review of chart number {k * 7}."]
        gold = []
        if k % 2 == 0:
            words.append("Known type 2 diabetes on metformin.")
            gold.append(DIABETES)
        if k % 4 == 1:
            words.append(f"Reports {coded_pain} in the left knee.")
            gold.append(PAIN)
        if k % 4 == 2:
            words.append("Reports pain in the left knee.")
        if k in (3, 5):
            words.append("Seen for zebra fever.")
            if k == 3:
                gold.append(ZEBRA)
        text = " ".join(words)
        texts.append(text)
        codes.append(gold)
        terms = {DIABETES: "type 2 diabetes", PAIN: "pain", ZEBRA: "zebra fever"}
        mentions += [Mention(code, terms[code], note_fingerprint(text)) for code in gold]
    return NoteSet(texts, codes), MinedTerms.from_mentions(mentions)


def _fit(
    target_precision: float = 0.95, min_support: int = 5, backing_cut: float | None = None
) -> TermRules:
    notes, mined = _notes()
    return fit_term_rules(
        notes.texts,
        notes.codes,
        fold_splits(len(notes), folds=5, seed=0),
        mined,
        blocking=BLOCKING,
        target_precision=target_precision,
        min_support=min_support,
        backing_cut=backing_cut,
    )


def test_a_term_becomes_a_rule_only_where_held_out_notes_coded_it_at_the_target() -> None:
    rules = _fit()
    assert {(r.code, r.term) for r in rules.rules} == {(DIABETES, "type 2 diabetes")}
    (diabetes,) = rules.rules
    # Every one of the 20 notes that write it is held out once, and coded it.
    assert (diabetes.notes, diabetes.coded) == (20, 20)
    # Held out, every choice of (notes, cut) accepts the 20 diabetes pairs and no pain
    # (coded in half its notes): the strictest of the equals is kept.
    report = rules.report
    assert (report["cut"], report["min_notes"]) == (1.0, 8)
    assert report["checked"]["2 notes, 0.8"] == {"pairs": 20, "precision": 1.0}
    assert report["checked"]["8 notes, 1.0"] == {"pairs": 20, "precision": 1.0}
    # The zebra term is mined from note 3 only: when note 3 is held out, no other note
    # mined it, so its own mention is never counted; note 5 wrote it uncoded.
    assert report["held_out_terms"] == 3  # diabetes, pain, zebra (from note 5 only)
    assert (ZEBRA, "zebra fever") not in {(r.code, r.term) for r in rules.rules}


def test_the_fit_says_what_its_rules_accept_in_each_training_note_held_out() -> None:
    # What the review policy is tuned beside: each note's codes accepted by the rules the
    # other folds' counts make at the chosen cut. Diabetes in every note writing it.
    rules = _fit()
    assert rules.held_out_accepts == [{DIABETES} if k % 2 == 0 else set() for k in range(40)]
    assert _fit(min_support=21).held_out_accepts == [set()] * 40  # no rules, none accepted
    # Not saved: a loaded Coder has no training notes.
    assert "held_out_accepts" not in rules.to_dict()


def test_no_rules_where_no_cut_reaches_the_target_on_enough_pairs() -> None:
    assert _fit(min_support=21).rules == []  # 20 held-out diabetes pairs only
    # A term coded in half its notes is no rule at any target: the least strict cut asks
    # for 0.8.
    assert [r.code for r in _fit(target_precision=0.5).rules] == [DIABETES]


def test_a_rule_accepts_affirmed_mentions_of_its_term_only() -> None:
    rules = _fit()
    accepted = rules.accepted(
        [
            "Type 2 diabetes, well controlled.",
            "No type 2 diabetes. Pain in the knee.",  # negated; pain is no rule
            "Her mother has type 2 diabetes.",  # family history
            "Diabetes type 2 noted.",  # words out of order: not the measured term
            "Type 2 diabetes insipidus workup.",  # longer words, but no longer mined term
        ]
    )
    # Each accepted code with the characters of its rule term's mention.
    assert accepted == [{DIABETES: (0, 15)}, {}, {}, {}, {DIABETES: (0, 15)}]


def test_a_mention_inside_a_longer_mined_term_does_not_count() -> None:
    rules = TermRules(
        [TermRule(PAIN, "pain", ("pain",), 10, 10)],
        {PAIN: ["pain"], "ICD10CM:R10.9": ["abdominal pain"]},
        BLOCKING,
    )
    assert rules.accepted(["Pain at rest.", "Abdominal pain since noon."]) == [{PAIN: (0, 4)}, {}]


def test_a_mention_inside_a_longer_code_name_of_other_codes_does_not_count() -> None:
    # ICD-10-CM names: "Dengue fever [classical dengue]" (A90), "Abdominal pain" under
    # R10.9's names, "Essential (primary) hypertension" (I10). The rule terms are bare.
    fever, hypertension = "ICD10CM:R50.9", "ICD10CM:I10"
    rules = [
        TermRule(fever, "fever", ("fever",), 10, 10),
        TermRule(PAIN, "pain", ("pain",), 10, 10),
        TermRule(hypertension, "hypertension", ("hypertension",), 10, 10),
    ]
    texts = [
        "Dengue fever since Monday.",  # A90's name holds "fever"
        "Abdominal pain and fever.",  # R10.9's holds "pain"; this "fever" is bare
        "Essential hypertension, treated.",  # a longer name of the rule's own code
        "Pain and fever.",
    ]
    every_name = icd10cm_index(frozenset())
    holding = holding_code_names(rules, every_name)
    assert len(holding) < len(every_name.names) / 50  # what a saved Coder indexes
    named = TermRules(rules, {}, BLOCKING, code_names=holding)
    expected = [{}, {fever: (19, 24)}, {hypertension: (10, 22)}, {PAIN: (0, 4), fever: (9, 14)}]
    assert named.accepted(texts) == expected
    # The names kept are all that matter: every code's names find the same.
    for text in texts:
        assert term_mentions(named.index, text, every_name) == term_mentions(
            named.index, text, named.code_name_index
        )
    # Without code names (rules saved before them), every bare mention counts.
    unnamed = TermRules(rules, {}, BLOCKING)
    assert unnamed.accepted(texts[:2]) == [{fever: (7, 12)}, {PAIN: (10, 14), fever: (19, 24)}]
    # Saved and read back, the rules keep their code names; format 3 had none.
    saved = json.loads(json.dumps(named.to_dict()))
    assert TermRules.from_dict(saved).accepted(texts) == expected
    del saved["code_names"]
    assert TermRules.from_dict({**saved, "format": 3}).accepted(texts[:1]) == [{fever: (7, 12)}]


def test_a_rule_fires_on_the_words_it_was_measured_on_only() -> None:
    # "nausea without vomiting" has a head, "nausea", that other notes write alone: the
    # rule measured on the whole term does not fire on the head.
    rule = TermRule(
        "ICD10CM:R11.0", "nausea without vomiting", ("nausea", "without", "vomiting"), 9, 9
    )
    rules = TermRules([rule], {}, BLOCKING)
    accepted = rules.accepted(["Nausea without vomiting today.", "Nausea and vomiting today."])
    assert accepted == [{"ICD10CM:R11.0": (0, 23)}, {}]


def test_a_rule_saved_before_a_new_word_form_still_fires() -> None:
    # Saved when "transplantation" was its own word; today notes and names read it as
    # "transplant", and the rule meets its mentions all the same.
    kidney = "ICD10CM:Z94.0"
    rule = TermRule(kidney, "kidney transplantation", ("kidney", "transplantation"), 9, 9)
    rules = TermRules.from_dict(json.loads(json.dumps(TermRules([rule], {}, BLOCKING).to_dict())))
    accepted = rules.accepted(["Kidney transplantation in 2010.", "No kidney transplantation."])
    assert accepted == [{kidney: (0, 22)}, {}]
    # Words whose second reading goes further still meet their mentions: "metástasis"
    # keeps its accent from the word table, and so its own word.
    liver = "ICD10CM:C78.7"
    rule = TermRule(liver, "metástasis hepáticas", ("metastasis", "hepatica"), 9, 9)
    rules = TermRules([rule], {}, BLOCKING)
    assert rules.accepted(["Presenta metástasis hepáticas."]) == [{liver: (9, 29)}]


def test_a_note_with_two_rule_terms_of_one_code_is_one_held_out_pair() -> None:
    texts = [f"Note {k}: type 2 diabetes, the sugar disease." for k in range(20)]
    mentions = [
        Mention(DIABETES, term, note_fingerprint(text))
        for text in texts
        for term in ("type 2 diabetes", "sugar disease")
    ]

    def fit(min_support: int) -> TermRules:
        return fit_term_rules(
            texts,
            [[DIABETES]] * 20,
            fold_splits(20, folds=5, seed=0),
            MinedTerms.from_mentions(mentions),
            blocking=BLOCKING,
            target_precision=0.95,
            min_support=min_support,
        )

    rules = fit(min_support=5)
    assert rules.report["checked"]["2 notes, 0.8"] == {"pairs": 20, "precision": 1.0}
    assert {r.term for r in rules.rules} == {"type 2 diabetes", "sugar disease"}
    # Asking for more pairs than there are notes: no rules.
    none = fit(min_support=21)
    assert none.rules == [] and none.report["cut"] is None


def test_the_longer_mined_terms_that_hold_a_rule_are_kept_and_hold_it() -> None:
    notes, mined = _notes()
    # One more note codes "type 2 diabetes with neuropathy": too few notes for a rule of
    # its own, but a mention of it is no mention of "type 2 diabetes" alone.
    longer = "Seen for type 2 diabetes with neuropathy."
    texts, codes = [*notes.texts, longer], [*notes.codes, ["ICD10CM:E11.40"]]
    with_longer = MinedTerms.from_mentions(
        [
            Mention(code, term, note)
            for code, terms in mined.by_code.items()
            for term, found in terms.items()
            for note in found
        ]
        + [Mention("ICD10CM:E11.40", "type 2 diabetes with neuropathy", note_fingerprint(longer))]
    )
    rules = fit_term_rules(
        texts,
        codes,
        fold_splits(len(texts), folds=5, seed=0),
        with_longer,
        blocking=BLOCKING,
        target_precision=0.95,
        min_support=5,
    )
    assert [r.code for r in rules.rules] == [DIABETES]
    # Saved with the rules: the longer term (and the rule's own), not "pain" or "zebra".
    assert rules.terms == {
        DIABETES: ["type 2 diabetes"],
        "ICD10CM:E11.40": ["type 2 diabetes with neuropathy"],
    }
    restored = TermRules.from_dict(json.loads(json.dumps(rules.to_dict())))
    texts = ["Type 2 diabetes with neuropathy.", "Type 2 diabetes."]
    assert restored.accepted(texts) == [{}, {DIABETES: (0, 15)}]
    # Rules only for the codes the Coder may accept.
    assert (
        fit_term_rules(
            texts=notes.texts,
            code_lists=notes.codes,
            folds=fold_splits(len(notes), folds=5, seed=0),
            mined=mined,
            blocking=BLOCKING,
            target_precision=0.95,
            min_support=5,
            codes={PAIN},
        ).rules
        == []
    )


def test_rules_round_trip_through_their_dict() -> None:
    rules = _fit()
    restored = TermRules.from_dict(json.loads(json.dumps(rules.to_dict())))
    assert restored.rules == rules.rules and restored.terms == rules.terms
    texts = ["Type 2 diabetes.", "no type 2 diabetes"]
    assert restored.accepted(texts) == rules.accepted(texts)
    with pytest.raises(ValueError, match=r"term rules format 9, expected one of \(2, 3, 4, 5\)"):
        TermRules.from_dict({**rules.to_dict(), "format": 9})
    # Format 2's "hypothetical" blocked "suspected …" too, and still does.
    old = TermRules.from_dict({**rules.to_dict(), "format": 2})
    assert old.blocking == (*BLOCKING, "uncertain")
    assert old.accepted(["Suspected type 2 diabetes."]) == [{}]
    assert rules.accepted(["Suspected type 2 diabetes."]) != [{}]


def test_a_term_coded_often_but_below_the_rules_cut_backs_its_code() -> None:
    # "pain" is coded in half of the 20 notes writing it: no rule, but at a backing cut
    # of 0.3 a backing term (each fold's held-out notes by the other folds' counts too).
    rules = _fit(backing_cut=0.3)
    assert [r.code for r in rules.rules] == [DIABETES]
    assert [(r.code, r.term, r.notes, r.coded) for r in rules.backing] == [(PAIN, "pain", 20, 10)]
    assert rules.held_out_backed == [{PAIN} if k % 4 in (1, 2) else set() for k in range(40)]
    assert (rules.report["backing_terms"], rules.report["backing_cut"]) == (1, 0.3)
    assert "held_out_backed" not in rules.to_dict()
    # Without a cut, or with one pain does not reach, nothing backs.
    assert _fit().backing == [] and _fit().held_out_backed == [set()] * 40
    assert _fit(backing_cut=0.8).backing == []
    texts = ["Reports pain.", "No pain today.", "Type 2 diabetes and pain."]
    # An affirmed mention backs its code, whatever the model says...
    assert rules.backed(texts) == [{PAIN}, set(), {PAIN}]
    # ...and accepts it only where the caller (the Coder, from its probabilities) lets it.
    assert rules.accepted(texts) == [{}, {}, {DIABETES: (0, 15)}]
    assert rules.accepted(texts, [{PAIN}, {PAIN}, set()]) == [
        {PAIN: (8, 12)},
        {},
        {DIABETES: (0, 15)},
    ]
    # Saved with the rules; rules saved before backing terms (format 4) have none.
    restored = TermRules.from_dict(json.loads(json.dumps(rules.to_dict())))
    assert restored.backing == rules.backing and restored.backed(texts) == rules.backed(texts)
    old = {k: v for k, v in rules.to_dict().items() if k != "backing"} | {"format": 4}
    assert TermRules.from_dict(old).backing == []


def test_a_code_its_rule_accepts_is_not_also_backed() -> None:
    # Diabetes: "type 2 diabetes" (coded in all 20 notes writing it) is a rule; "sugar
    # disease" (20 notes, 10 coded: those that also write the rule's term) backs it.
    texts, codes, mentions = [], [], []
    for k in range(40):
        words = [f"Visit {k} for review of chart number {k * 7}."]
        if k % 2 == 0:
            words.append("Known type 2 diabetes.")
        if k % 4 in (0, 1):
            words.append("Sugar disease noted.")
        text = " ".join(words)
        gold = [DIABETES] if k % 2 == 0 else []
        texts.append(text)
        codes.append(gold)
        mentions += [Mention(DIABETES, "type 2 diabetes", note_fingerprint(text)) for _ in gold]
        if k % 4 == 0:
            mentions.append(Mention(DIABETES, "sugar disease", note_fingerprint(text)))
    rules = fit_term_rules(
        texts,
        codes,
        fold_splits(len(texts), folds=5, seed=0),
        MinedTerms.from_mentions(mentions),
        blocking=BLOCKING,
        target_precision=0.95,
        min_support=5,
        backing_cut=0.3,
    )
    assert [r.term for r in rules.rules] == ["type 2 diabetes"]
    assert [r.term for r in rules.backing] == ["sugar disease"]
    # Where the rule accepts diabetes, it is the rule's; backed only where the backing
    # term stands alone (and was never coded).
    assert rules.held_out_backed == [{DIABETES} if k % 4 == 1 else set() for k in range(40)]
    assert rules.held_out_accepts == [{DIABETES} if k % 2 == 0 else set() for k in range(40)]


def _coder_with_rules(term_rules: TermRulesConfig | None = None, coded_pain: str = "pain") -> Coder:
    from autocode.train.fitting import fit_coder

    notes, mined = _notes(coded_pain)
    knowledge = CodeKnowledge()
    knowledge.mined = mined
    config = in_memory_config(
        "rules",
        folds=5,
        epochs=5,
        routing=RoutingConfig(min_support=5, term_rules=term_rules or TermRulesConfig()),
    )
    coder = fit_coder(config, notes, None, knowledge=knowledge).coder
    # A policy that accepts nothing: whatever is accepted, a rule accepted.
    never = np.full(len(coder.labels), ABOVE_ONE)
    policy = ReviewPolicy(never, np.zeros(len(coder.labels)), 0.95, 0.95, True)
    return replace(coder, policy=policy)


def test_the_review_policy_is_tuned_beside_what_the_rules_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autocode.train import fitting

    tuned_with: list[np.ndarray | None] = []
    tune = fitting.tune_review_bands

    def spy(*args: object, settled: np.ndarray | None = None, **kwargs: object) -> ReviewPolicy:
        tuned_with.append(settled)
        return tune(*args, settled=settled, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fitting, "tune_review_bands", spy)
    coder = _coder_with_rules()
    assert coder.term_rules is not None
    (settled,) = tuned_with
    assert settled is not None
    # Out of fold, the diabetes rule accepted every note writing it, and nothing else.
    column = coder.labels.index(DIABETES)
    assert settled[:, column].tolist() == [k % 2 == 0 for k in range(40)]
    assert settled.sum() == 20


def test_a_coder_accepts_and_lists_what_its_rules_accept(tmp_path: Path) -> None:
    coder = _coder_with_rules()
    assert coder.term_rules is not None
    texts = ["Known type 2 diabetes.", "No type 2 diabetes, no pain."]
    probs = coder.predict_proba(texts)
    first, second = decide(coder, probs, texts)
    accepted = [p for p in first.predictions if p.accepted]
    assert [p.code for p in accepted] == [DIABETES] and accepted[0].predicted
    assert accepted[0].probability == pytest.approx(probs[0, coder.labels.index(DIABETES)])
    assert f"uncertain: {DIABETES}" not in first.reasons
    assert not any(p.accepted for p in second.predictions)
    # Without rules, the same policy accepts nothing.
    assert not any(
        p.accepted for p in decide(replace(coder, term_rules=None), probs, texts)[0].predictions
    )
    # Saved and loaded, the rules decide the same.
    coder.save(tmp_path / "coder")
    loaded = Coder.load(tmp_path / "coder")
    assert loaded.term_rules is not None and loaded.term_rules.rules == coder.term_rules.rules
    again = decide(loaded, loaded.predict_proba(texts), texts)
    assert [d.codes for d in again] == [first.codes, second.codes]
    # Evaluation counts them as accepted (code-level automation) and listed.
    scored = coder_widened(coder, texts, [[DIABETES], []]).as_coded
    column = scored.codes.index(DIABETES)
    assert scored.accepted[:, column].tolist() == [True, False]
    assert scored.predicted[0, column]


def test_a_backing_term_accepts_its_code_where_the_model_scores_it_at_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autocode.train import fitting
    from autocode.train.run import term_figures

    tuned_with: list[tuple[np.ndarray, np.ndarray | None]] = []
    tune = fitting.tune_review_bands

    def spy(
        gold: object, probs: np.ndarray, *args: object, settled: np.ndarray | None, **kwargs: object
    ) -> ReviewPolicy:
        tuned_with.append((probs, settled))
        return tune(gold, probs, *args, settled=settled, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fitting, "tune_review_bands", spy)
    # Coded pain is "graded severe": the model learns "severe", the backing term "pain"
    # is mentioned in coded and uncoded notes alike. Held out, the backed pairs the model
    # scores high are gold, so a threshold is found...
    # (Not code names: "pain in the left knee" is one, M25.562, and would hold "pain".)
    backing = TermRulesConfig(backing_cut=0.3, code_names=False)
    coder = _coder_with_rules(backing, coded_pain="pain, graded severe,")
    assert coder.term_rules is not None and coder.term_rules.rules
    assert [r.term for r in coder.term_rules.backing] == ["pain"]
    assert coder.backing_threshold is not None
    # The run logs them (MLflow metrics); a Coder without term rules logs none.
    assert term_figures(coder) == {
        "term_rules": len(coder.term_rules.rules),
        "backing_terms": 1,
        "backing_threshold": coder.backing_threshold,
    }
    assert term_figures(replace(coder, term_rules=None)) == {}
    # The review policy was tuned beside what backing accepted held out, as beside the
    # rules: the training notes backing pain whose out-of-fold probability reached it.
    ((oof, settled),) = tuned_with
    assert settled is not None
    column = coder.labels.index(PAIN)
    backed = np.array([PAIN in codes for codes in coder.term_rules.held_out_backed])
    by_backing = backed & (oof[:, column] >= coder.backing_threshold)
    assert by_backing.any() and settled[:, column].tolist() == by_backing.tolist()
    texts = [
        "Visit 41 for review of chart number 287. Reports pain, graded severe, in the left knee.",
        "Visit 42 for review of chart number 294. Reports pain in the left knee.",
    ]
    probs = coder.predict_proba(texts)
    column = coder.labels.index(PAIN)
    assert probs[0, column] >= coder.backing_threshold > probs[1, column]
    # A caller without the scores gets the same accepts: the Coder scores the notes.
    assert coder.rule_accepts(texts) == coder.rule_accepts(texts, probs)
    assert PAIN in coder.rule_accepts(texts)[0]  # type: ignore[index]
    # ...and pain is accepted where the model scores it there, with the term's words; the
    # policy (which accepts nothing here) has no part in it.
    severe, plain = decide(coder, probs, texts)
    assert [(p.code, p.rule_span) for p in severe.predictions if p.accepted] == [(PAIN, (49, 53))]
    assert not any(p.accepted for p in plain.predictions)
    # Not negated, and not without backing terms.
    negated = ["Visit 43 for review of chart number 301. No pain, graded severe, in the left knee."]
    assert not any(
        p.accepted for p in decide(coder, coder.predict_proba(negated), negated)[0].predictions
    )
    no_backing = _coder_with_rules(
        backing.model_copy(update={"backing_cut": None}), coded_pain="pain, graded severe,"
    )
    assert no_backing.backing_threshold is None and no_backing.term_rules is not None
    assert no_backing.term_rules.backing == []
    assert not any(p.accepted for p in decide(no_backing, probs, texts)[0].predictions)
    # Deciding without the notes is refused while a term can accept (here, backing
    # terms with a threshold, and no rule); not where none can.
    backing_only = replace(coder, term_rules=replace(coder.term_rules, rules=[]))
    with pytest.raises(ValueError, match="term rules: give texts or rule_accepted"):
        decide(backing_only, probs)
    assert decide(replace(backing_only, backing_threshold=None), probs)[0].codes == []
    # Saved and loaded, the Coder decides the same.
    coder.save(tmp_path / "coder")
    loaded = Coder.load(tmp_path / "coder")
    assert loaded.backing_threshold == coder.backing_threshold
    assert [d.codes for d in decide(loaded, loaded.predict_proba(texts), texts)] == [
        severe.codes,
        plain.codes,
    ]


def test_with_a_validation_split_the_backed_pairs_are_read_off_its_notes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autocode.train import fitting

    tuned_with: list[tuple[np.ndarray | None, np.ndarray | None]] = []
    tune = fitting.tune_decisions

    def spy(*args: object, settled: np.ndarray | None, backed: np.ndarray | None) -> Coder:
        tuned_with.append((settled, backed))
        return tune(*args, settled=settled, backed=backed)  # type: ignore[arg-type]

    monkeypatch.setattr(fitting, "tune_decisions", spy)
    notes, mined = _notes()
    knowledge = CodeKnowledge()
    knowledge.mined = mined
    backing = TermRulesConfig(backing_cut=0.3, code_names=False)
    config = in_memory_config(
        "rules", folds=5, epochs=5, routing=RoutingConfig(min_support=5, term_rules=backing)
    )
    train = NoteSet(notes.texts[:32], notes.codes[:32])
    validation = NoteSet(notes.texts[32:], notes.codes[32:])
    coder = fitting.fit_coder(config, train, validation, knowledge=knowledge).coder
    assert coder.term_rules is not None and [r.term for r in coder.term_rules.backing] == ["pain"]
    ((settled, backed),) = tuned_with
    assert settled is not None and backed is not None
    # Notes 32-39: diabetes (a rule) in the even ones, pain (backing) in 33, 34, 37, 38.
    labels = coder.labels
    assert settled[:, labels.index(DIABETES)].tolist() == [k % 2 == 0 for k in range(32, 40)]
    assert backed[:, labels.index(PAIN)].tolist() == [k % 4 in (1, 2) for k in range(32, 40)]
    assert backed.sum() == 4 and not (backed & settled).any()


def test_a_rule_lists_a_code_nothing_else_listed_and_the_note_is_auto_coded() -> None:
    coder = _coder_with_rules()
    n = len(coder.labels)
    # Every code below its threshold and confidently absent: nothing listed but by rule.
    silent = replace(
        coder,
        thresholds=Thresholds(1.0, np.ones(n)),
        policy=ReviewPolicy(np.full(n, ABOVE_ONE), np.full(n, ABOVE_ONE), 0.95, 0.95, True),
    )
    texts = ["Known type 2 diabetes.", "Visit for review."]
    probs = silent.predict_proba(texts)
    ruled, plain = decide(silent, probs, texts)
    assert [(p.code, p.accepted, p.predicted) for p in ruled.predictions] == [
        (DIABETES, True, True)
    ]
    # The decision says which words accepted it: "type 2 diabetes".
    assert ruled.predictions[0].rule_span == (6, 21)
    assert ruled.predictions[0].probability == pytest.approx(
        probs[0, silent.labels.index(DIABETES)]
    )
    assert (ruled.route, ruled.reasons) == (AUTO, [])
    assert (plain.route, plain.reasons) == (REVIEW, ["no accepted code"])
    # Without evidence (texts not given), the caller's rule_accepted decide the same...
    bare = decide(silent, probs, None, rule_accepted=silent.rule_accepts(texts, probs))
    assert [(d.codes, d.route) for d in bare] == [(ruled.codes, AUTO), ([], REVIEW)]
    # ...and leaving both out is refused rather than skipping every rule.
    with pytest.raises(ValueError, match="term rules: give texts or rule_accepted"):
        decide(silent, probs)


def test_term_rules_need_mined_terms() -> None:
    from autocode.train.fitting import fit_coder

    notes, _ = _notes()
    config = TrainConfig(
        name="rules",
        crossfit_folds=2,
        data=DataConfig(source="unused"),
        model=ModelConfig(name="tfidf", params={"min_df": 1, "epochs": 1}),
        routing=RoutingConfig(term_rules=TermRulesConfig()),
    )
    with pytest.raises(ValueError, match=r"routing\.term_rules needs mined terms"):
        fit_coder(config, notes, None, knowledge=CodeKnowledge())
    # Terms mined from other notes (another language's, say) support no rule: refused.
    elsewhere = CodeKnowledge()
    elsewhere.mined = MinedTerms.from_mentions([Mention(DIABETES, "diabetes", "other-note")])
    with pytest.raises(ValueError, match=r"none of the mined terms .*\(data\.language=en\)"):
        fit_coder(config, notes, None, knowledge=elsewhere)


def test_a_code_the_review_cap_left_off_and_a_rule_accepted_is_not_counted_beyond_it() -> None:
    coder = _coder_with_rules()
    n = len(coder.labels)
    other = next(code for code in coder.labels.codes_ if code != DIABETES)
    probs = np.zeros((1, n))
    probs[0, coder.labels.index(DIABETES)] = 0.3
    probs[0, coder.labels.index(other)] = 0.6
    # Both in every code's review band; the cap lists the more probable one only.
    capped = replace(
        coder,
        thresholds=Thresholds(0.5, np.full(n, 0.5)),
        policy=ReviewPolicy(np.full(n, 0.9), np.full(n, 0.1), 0.95, 0.95, True, 1),
    )
    texts = ["Known type 2 diabetes."]
    [ruled] = decide(capped, probs, texts)
    assert ruled.reasons == [f"uncertain: {other}"]
    assert [(p.code, p.accepted) for p in ruled.predictions] == [(other, False), (DIABETES, True)]
    [plain] = decide(replace(capped, term_rules=None), probs, texts)
    assert plain.reasons == [
        f"uncertain: {other}",
        "review cap: 1 more uncertain codes not listed, the likeliest at 0.300",
        "no accepted code",
    ]
    # Predicted (at or above its threshold), the code the cap cut stays listed and is not
    # counted as left off, with or without its rule.
    predicting = replace(capped, thresholds=Thresholds(0.2, np.full(n, 0.2)))
    [ruled] = decide(predicting, probs, texts)
    assert ruled.reasons == [f"uncertain: {other}"]
    [plain] = decide(replace(predicting, term_rules=None), probs, texts)
    assert plain.reasons == [f"uncertain: {other}", "no accepted code"]
    assert DIABETES in [p.code for p in plain.predictions]
