"""Routing reasons grouped for reading: the case page's list and the queue's summary."""

from __future__ import annotations

from autocode.decisions.routing import route_reasons
from autocode.decisions.routing_facts import RoutingFacts
from autocode.review.app.reasons import grouped, summary

REASONS = [
    "uncertain: ICD10CM:I10",
    "uncertain: ICD10PCS:0T9B",
    "unseen code: ICD10CM:N21.0 (outside the label space)",
    "unseen code: ICD10CM:Z73.3 (outside the label space)",
    "review cap: 1322 more uncertain codes not listed, the likeliest at 0.091",
    "excludes1: ICD10CM:E10.9 and ICD10CM:E11.9 exclude each other",
    "no accepted code",
    "uncertain: ICD10CM:R05",
]


def test_reasons_are_grouped_by_kind_in_first_order_with_shared_notes_said_once():
    groups = grouped(REASONS)
    assert [(g.label, g.items, g.note) for g in groups] == [
        ("uncertain (3)", ["ICD10CM:I10", "ICD10PCS:0T9B", "ICD10CM:R05"], ""),
        (
            "code new to the model (2)",
            ["ICD10CM:N21.0", "ICD10CM:Z73.3"],
            "(in no training note; proposed from its name in this note)",
        ),
        ("not listed", ["1322 more uncertain codes not listed, the likeliest at 0.091"], ""),
        ("excludes1", ["ICD10CM:E10.9 and ICD10CM:E11.9 exclude each other"], ""),
        ("no accepted code", [], ""),
    ]


def test_the_reasons_routing_writes_are_grouped_with_their_notes():
    facts = RoutingFacts.for_codes(["ICD10CM:E11.9"])
    written = route_reasons(
        ["ICD10CM:E11.9"],
        ["ICD10CM:I10"],
        unseen=["ICD10CM:N21.0"],
        unaffirmed=["ICD10CM:R50.9", "ICD10CM:R05"],
        truncated=True,
        facts=facts,
    )
    groups = {g.kind: g for g in grouped(written)}
    held = groups["not affirmed"]
    assert held.items == ["ICD10CM:R50.9", "ICD10CM:R05"]
    assert held.note.startswith("(named only negated") and held.label == "not affirmed (2)"
    assert groups["truncated"].items == ["the model read only part of the note"]
    # The model's words are said as a coder reads them; the reasons stored are unchanged.
    assert "unseen code: ICD10CM:N21.0 (outside the label space)" in written
    assert summary(written) == (
        "uncertain: ICD10CM:I10 · code new to the model: ICD10CM:N21.0 (in no training note; "
        "proposed from its name in this note) · not affirmed 2 · "
        "truncated: the model read only part of the note"
    )


def test_a_kind_said_alone_stays_apart_from_the_same_kind_with_items():
    groups = grouped(["no accepted code", "no accepted code: x"])
    assert [(g.label, g.items) for g in groups] == [
        ("no accepted code", []),
        ("no accepted code", ["x"]),
    ]


def test_a_note_only_some_items_end_with_stays_on_them():
    groups = grouped(["not affirmed: A (negated)", "not affirmed: B (family)"])
    assert [(g.label, g.items, g.note) for g in groups] == [
        ("not affirmed (2)", ["A (negated)", "B (family)"], "")
    ]


def test_the_queue_summary_counts_kinds_and_says_single_reasons_whole():
    assert summary(REASONS) == (
        "uncertain 3 · code new to the model 2 · not listed: 1322 more uncertain codes not listed, "
        "the likeliest at 0.091 · excludes1: ICD10CM:E10.9 and ICD10CM:E11.9 exclude each other · "
        "no accepted code"
    )
    assert summary([]) == ""
