"""`autocode evaluate` on tiny saved Coders: unseen gold codes, the open part's figures
beside the label space's, and strict JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from autocode.cli import app
from autocode.config import TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.decisions.coder import Coder
from autocode.decisions.policy import ReviewPolicy
from autocode.decisions.widening import Widened
from autocode.train.evaluation import evaluate_coder, scored_report
from autocode.train.fitting import fit_coder
from coders import OUTSIDE_LABELS, train_open_coder
from conftest import TinyCorpus

UNSEEN_CODE = "ICD9CM:428.0"


def strict_json(text: str) -> dict[str, Any]:
    """Parse as a strict JSON parser would: NaN and Infinity are not JSON."""

    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    payload: dict[str, Any] = json.loads(text, parse_constant=reject)
    return payload


@pytest.fixture(scope="module")
def coder_dir(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_corpus: TinyCorpus,
    tiny_validation_corpus: TinyCorpus,
) -> Path:
    config = TrainConfig.model_validate(
        {
            "name": "tiny",
            "data": {"source": "unused"},
            "model": {"name": "tfidf", "params": {"min_df": 1, "epochs": 3}},
            "routing": {"min_support": 1},
        }
    )
    train = NoteSet(tiny_corpus.texts, tiny_corpus.code_lists)
    validation = NoteSet(tiny_validation_corpus.texts, tiny_validation_corpus.code_lists)
    path = tmp_path_factory.mktemp("coder") / "coder"
    fit_coder(config, train, validation).coder.save(path)
    return path


def evaluate_json(coder_dir: Path, notes: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["evaluate", "--model", str(coder_dir), "--data", str(notes), "--json"]
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return strict_json(result.stdout)


def write_notes(path: Path, texts: list[str], codes: list[list[str]]) -> Path:
    table = pa.table(
        {
            "note_id": [f"n{i}" for i in range(len(texts))],
            "text": texts,
            "codes": pa.array(codes, pa.list_(pa.string())),
        }
    )
    pq.write_table(table, path)
    return path


def test_a_code_system_the_model_never_saw_scores_zero(
    tmp_path: Path, coder_dir: Path, tiny_corpus: TinyCorpus
) -> None:
    # One unseen ICD9CM gold code per note, beside the note's own (known) code.
    codes = [[tiny_corpus.codes[j], UNSEEN_CODE] for j in tiny_corpus.heldout_labels]
    notes = write_notes(tmp_path / "notes.parquet", tiny_corpus.heldout_texts, codes)
    report = evaluate_json(coder_dir, notes)
    assert report["unseen_gold_codes"] == 1
    icd9 = report["per_system"]["ICD9CM"]
    assert icd9["micro_recall"] == 0.0
    # Before the fix: P@5 = R@5 = MAP = 1.0, the zero-score column ranking first.
    assert icd9["precision_at_k"]["5"] == 0.0
    assert icd9["recall_at_k"]["5"] == 0.0
    assert icd9["map"] == 0.0
    # Overall, each note's unseen half of its gold is missed: recall@5 is at most 1/2.
    assert 0.0 < report["recall_at_k"]["5"] <= 0.5
    assert 0.0 < report["map"] <= 0.5


def test_evaluate_json_writes_undefined_metrics_as_null(
    tmp_path: Path, coder_dir: Path, tiny_corpus: TinyCorpus
) -> None:
    texts = tiny_corpus.heldout_texts
    notes = write_notes(tmp_path / "uncoded.parquet", texts, [[] for _ in texts])
    report = evaluate_json(coder_dir, notes)  # before the fix: `NaN`, rejected here
    assert report["documents"] == len(texts)
    assert report["map"] is None
    assert report["recall_at_k"] == {"5": None, "8": None, "15": None}
    assert report["auc_micro"] is None
    assert report["precision_at_k"]["5"] == 0.0


def test_without_an_open_part_both_sets_of_figures_are_the_same(
    tmp_path: Path, coder_dir: Path, tiny_corpus: TinyCorpus
) -> None:
    codes = [[tiny_corpus.codes[j], UNSEEN_CODE] for j in tiny_corpus.heldout_labels]
    notes = write_notes(tmp_path / "notes.parquet", tiny_corpus.heldout_texts, codes)
    report = evaluate_json(coder_dir, notes)
    label_space = report.pop("label_space_only")
    open_part = report.pop("open_part")
    del report["unseen_gold_codes"]
    assert label_space == report
    assert 0.0 < report["micro_f1"] < 1.0  # a real score, not an empty one
    assert open_part["proposals"] == 0
    assert open_part["unseen_gold"] == len(codes)  # each note's ICD9CM code
    assert open_part["unseen_recall"] == 0.0


def test_evaluate_prints_one_table_when_nothing_was_proposed(
    tmp_path: Path, coder_dir: Path, tiny_corpus: TinyCorpus
) -> None:
    codes = [[tiny_corpus.codes[j], UNSEEN_CODE] for j in tiny_corpus.heldout_labels]
    notes = write_notes(tmp_path / "notes.parquet", tiny_corpus.heldout_texts, codes)
    result = CliRunner().invoke(app, ["evaluate", "--model", str(coder_dir), "--data", str(notes)])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    output = " ".join(result.stdout.split())
    assert "Label space only" not in output
    assert (
        f"open part: no proposals (none, or no open part); recall on the {len(codes)} gold"
        in output
    )


def test_evaluate_names_the_splits_it_scored_and_warns_when_train_is_among_them(
    tmp_path: Path, coder_dir: Path, tiny_corpus: TinyCorpus
) -> None:
    texts = tiny_corpus.texts[:6]
    notes = write_notes(tmp_path / "notes.parquet", texts, tiny_corpus.code_lists[:6])
    table = pq.read_table(notes).append_column("split", pa.array(["train"] * 4 + ["dev"] * 2))
    pq.write_table(table, notes)
    command = ["evaluate", "--model", str(coder_dir), "--data", str(notes)]

    every = CliRunner().invoke(app, command)
    assert every.exit_code == 0, (every.stdout, every.stderr, every.exception)
    assert _squeezed(every.stderr) == _squeezed(
        f"warning: {notes}: every split is scored, its train split (4 notes) too, where a "
        "Coder trained on it scores higher; pass --split dev"
    )
    assert _squeezed(f"Metrics on {notes} (train 4, dev 2 notes)") in _squeezed(every.stdout)

    dev = CliRunner().invoke(app, [*command, "--split", "dev"])
    assert dev.exit_code == 0, (dev.stdout, dev.stderr, dev.exception)
    assert "warning" not in dev.stderr
    assert _squeezed(f"Metrics on {notes} (dev 2 notes)") in _squeezed(dev.stdout)


def test_evaluate_on_a_source_without_splits_counts_its_notes_and_its_quarantine(
    tmp_path: Path, coder_dir: Path, tiny_corpus: TinyCorpus
) -> None:
    texts = [*tiny_corpus.texts[:3], "   "]  # the last row has no text: quarantined
    notes = write_notes(tmp_path / "notes.parquet", texts, tiny_corpus.code_lists[:4])
    command = ["evaluate", "--model", str(coder_dir), "--data", str(notes)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert _squeezed(f"Metrics on {notes} (3 notes)") in _squeezed(result.stdout)
    assert _squeezed(result.stderr) == _squeezed(
        f"note: {notes}: 1 of 4 rows quarantined, not scored (1 empty_text)"
    )
    # A split asked of a source that has none is said so, not as an empty split.
    split = CliRunner().invoke(app, [*command, "--split", "test"])
    assert split.exit_code == 2
    assert "a source without a split column has none" in split.stderr


def _squeezed(text: str) -> str:
    """Without white space: a table's title wraps to the terminal, even inside a path."""
    return "".join(text.split())


# Three notes for the Coder with an open part (`coders.train_open_coder`): asthma is
# outside its label space. Note 0 names it (proposed, a hit); note 1 names it for the
# mother (family history: not proposed, a miss); note 2 is coded with gout only and
# names asthma too (proposed, a false positive), and its gout code is in the label space.
OPEN_TEXTS = ["Seen for asthma.", "Her mother has asthma.", "Seen for asthma and gout."]
OPEN_GOLD = [[OUTSIDE_LABELS], [OUTSIDE_LABELS], ["ICD10CM:M10.9"]]


@pytest.fixture(scope="module")
def open_coder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    coder = train_open_coder()
    # What the figures below are computed from: on these short notes the label space
    # predicts nothing, and the open part proposes asthma where it is affirmed.
    probs = coder.predict_proba(OPEN_TEXTS)
    assert not coder.thresholds.apply(probs).any()
    proposals = coder.open_proposals(OPEN_TEXTS)
    proposed = [[p.code for p in note] for note in proposals]
    assert proposed == [[OUTSIDE_LABELS], [], [OUTSIDE_LABELS]]
    # Ranks: in note 0 asthma scores above every label-space code; in note 2 gout is
    # second among the label space's codes, and the asthma proposal scores above it.
    gout = probs[2, coder.labels.index("ICD10CM:M10.9")]
    assert proposals[0][0].probability > probs[0].max()
    assert (probs[2] > gout).sum() == 1
    assert proposals[2][0].probability > gout
    path = tmp_path_factory.mktemp("open") / "coder"
    coder.save(path)
    return path


def test_the_open_part_is_scored_as_the_coder_codes(tmp_path: Path, open_coder_dir: Path) -> None:
    notes = write_notes(tmp_path / "notes.parquet", OPEN_TEXTS, OPEN_GOLD)
    report = evaluate_json(open_coder_dir, notes)
    # As coded: 1 hit (note 0) of 2 predicted and 3 gold: P 1/2, R 1/3, F1 2/(2+3) = 2/5.
    assert report["micro_precision"] == pytest.approx(1 / 2)
    assert report["micro_recall"] == pytest.approx(1 / 3)
    assert report["micro_f1"] == pytest.approx(2 / 5)
    assert report["per_system"]["ICD10CM"]["micro_f1"] == pytest.approx(2 / 5)
    # The label space alone predicts nothing: every figure 0.
    alone = report["label_space_only"]
    assert (alone["micro_precision"], alone["micro_recall"], alone["micro_f1"]) == (0, 0, 0)
    # MAP as coded: note 0 finds asthma at rank 1 (AP 1); note 1 never (0); note 2 finds
    # gout at rank 3, behind one label-space code and the asthma proposal (1/3):
    # (1 + 0 + 1/3)/3 = 4/9. Alone: only gout, at rank 2: (0 + 0 + 1/2)/3 = 1/6.
    assert report["map"] == pytest.approx(4 / 9)
    assert alone["map"] == pytest.approx(1 / 6)
    # Open part: 2 proposals, 1 gold; asthma is gold twice outside the label space. Its
    # calibration: the two proposals are its only candidates, note 0's gold, note 2's not.
    first, third = (
        note[0].probability
        for note in Coder.load(open_coder_dir).open_proposals(OPEN_TEXTS)
        if note
    )
    if int(first * 10) == int(third * 10):  # one bin: its mean against its share, 1/2
        ece = abs((first + third) / 2 - 1 / 2)
    else:
        ece = (abs(first - 1) + abs(third - 0)) / 2
    calibration = report["open_part"].pop("ece_candidates")
    assert calibration == {"ece": pytest.approx(ece), "pairs": 2}
    assert report["open_part"] == {
        "proposals": 2,
        "proposals_gold": 1,
        "proposal_precision": 0.5,
        "unseen_gold": 2,
        "unseen_recall": 0.5,
        "per_system": {
            "ICD10CM": {
                "proposals": 2,
                "proposals_gold": 1,
                "proposal_precision": 0.5,
                "unseen_gold": 2,
                "unseen_recall": 0.5,
            }
        },
    }
    assert report["unseen_gold_codes"] == 1
    assert report["per_bucket"]["0"]["micro_recall"] == pytest.approx(1 / 2)


def test_evaluate_prints_the_open_part_beside_the_label_space_figures(
    tmp_path: Path, open_coder_dir: Path
) -> None:
    notes = write_notes(tmp_path / "notes.parquet", OPEN_TEXTS, OPEN_GOLD)
    result = CliRunner().invoke(
        app, ["evaluate", "--model", str(open_coder_dir), "--data", str(notes)]
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    output = " ".join(result.stdout.split())  # the table wraps to the terminal's width
    coded, alone = output.split("Label space only (no open part), on")
    assert "│ overall │ 0.400 │" in coded
    assert "│ overall │ 0.000 │" in alone
    # Codes accepted without review, over every note: none at this routing.
    assert "codes accepted without review: none ICD10CM: no code accepted without review" in coded
    assert "ICD10CM: no code accepted without review" in coded  # and per system
    assert (
        "open part: 2 proposals, precision 0.500; recall on the 2 gold codes outside "
        "the label space 0.500" in output
    )


def test_the_open_part_line_says_undefined_figures_in_words() -> None:
    from autocode.cli import _open_part_line

    nothing = {"proposals": 0, "proposal_precision": None, "unseen_gold": 0, "unseen_recall": None}
    assert _open_part_line(nothing) == (
        "open part: no proposals (none, or no open part); no gold codes outside the label space"
    )
    some = {"proposals": 4, "proposal_precision": 0.25, "unseen_gold": 0, "unseen_recall": None}
    assert _open_part_line(some) == (
        "open part: 4 proposals, precision 0.250; no gold codes outside the label space"
    )


def test_given_raw_scores_are_read_as_the_model_would_give_them(open_coder_dir: Path) -> None:
    coder = Coder.load(open_coder_dir)
    raw = coder.raw_proba(OPEN_TEXTS)
    predicted = evaluate_coder(coder, OPEN_TEXTS, OPEN_GOLD).report
    assert evaluate_coder(coder, OPEN_TEXTS, OPEN_GOLD, raw).report == predicted
    # Scores of other notes would be another note's figures: refused, naming the shapes.
    with pytest.raises(ValueError, match=r"raw scores have shape \(2, \d+\); 3 notes"):
        evaluate_coder(coder, OPEN_TEXTS, OPEN_GOLD, raw[:2])


def test_code_automation_is_reported_per_system_as_the_coder_routes() -> None:
    policy = ReviewPolicy(np.full(3, 0.8), np.full(3, 0.2), 0.95, 0.95, True)
    probs = np.array([[0.9, 0.9, 0.9], [0.9, 0.5, 0.1]])
    scored = Widened(
        codes=["ICD10CM:I10", "ICD10CM:E11.9", "ICD10PCS:0T9B"],
        known=3,
        gold=sp.csr_matrix(np.array([[1, 0, 1], [1, 1, 0]])),
        probs=probs,
        predicted=probs >= 0.5,
        train_counts=np.ones(3, dtype=np.int64),
        policy=policy,
        # Note 1 names I10 only negated: its accept goes to review.
        unaffirmed=np.array([[False, False, False], [True, False, False]]),
    )
    report = scored_report(scored)
    # ICD10CM: gold (0, I10), (1, I10), (1, E11.9); accepted (0, I10), (0, E11.9).
    cm = report["per_system"]["ICD10CM"]
    assert cm["code_accepted"] == 2
    assert cm["code_automation_rate"] == pytest.approx(1 / 3)
    assert cm["code_auto_precision"] == pytest.approx(1 / 2)
    pcs = report["per_system"]["ICD10PCS"]
    assert (pcs["code_automation_rate"], pcs["code_auto_precision"]) == (1.0, 1.0)
    # Pooled: 2 of 4 gold codes accepted, 2 of 3 accepts gold.
    assert report["code_automation_rate"] == pytest.approx(2 / 4)
    assert report["code_auto_precision"] == pytest.approx(2 / 3)
