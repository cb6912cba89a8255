"""`autocode evaluate` on a tiny saved Coder: unseen gold codes and strict JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from autocode.cli import app
from autocode.config import TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.train.fitting import fit_coder
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
