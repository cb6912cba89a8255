"""Reproducible train/validation/test splits.

Multi-label iterative stratification (Sechidis et al. 2011) over patient
groups: all notes of a patient land in one split, so no patient leaks from
training into evaluation. An existing `split` column is respected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from iterstrat.ml_stratifiers import IterativeStratification

from autocode.corpus.schema import CODES, NOTE_ID, PATIENT_ID, SPLIT

SPLIT_NAMES = ("train", "validation", "test")
# Stratifying on thousands of rare codes costs O(labels² × groups) and cannot
# balance a code seen once anyway; the most frequent codes carry the signal.
MAX_STRATIFY_LABELS = 100


@dataclass(frozen=True)
class SplitRatios:
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        values = (self.train, self.validation, self.test)
        if any(value < 0 for value in values) or not np.isclose(sum(values), 1.0):
            raise ValueError(f"split ratios must be >= 0 and sum to 1, got {values}")

    @classmethod
    def parse(cls, text: str) -> SplitRatios:
        """Parse `0.8,0.1,0.1` (train, validation, test)."""
        try:
            train, validation, test = (float(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"split ratios {text!r}: expected three numbers like 0.8,0.1,0.1")
        return cls(train, validation, test)

    def as_array(self) -> np.ndarray:
        return np.array([self.train, self.validation, self.test])


def assign_splits(table: pa.Table, ratios: SplitRatios, seed: int = 0) -> pa.Table:
    """Return the table with a `split` column; keeps existing split values when complete."""
    existing = table.column(SPLIT).to_pylist() if SPLIT in table.column_names else []
    if existing and all(existing):
        return table
    splits = stratified_group_split(
        table.column(CODES).to_pylist(), _groups(table), ratios, seed
    )
    column = pa.array(splits, pa.string())
    if SPLIT in table.column_names:
        return table.set_column(table.schema.get_field_index(SPLIT), SPLIT, column)
    return table.append_column(SPLIT, column)


def stratified_group_split(
    codes: list[list[str]], groups: list[str], ratios: SplitRatios, seed: int = 0
) -> list[str]:
    """Split names per note: iterative stratification over the groups' code sets."""
    group_names = sorted(set(groups))
    group_index = {name: i for i, name in enumerate(group_names)}
    labels = _top_labels(codes)
    label_index = {code: j for j, code in enumerate(labels)}
    group_labels = np.zeros((len(group_names), len(labels)), dtype=np.int32)
    for note_codes, group in zip(codes, groups, strict=True):
        for code in note_codes:
            if code in label_index:
                group_labels[group_index[group], label_index[code]] = 1
    # The library assigns fold i with probability r[i]; folds follow SPLIT_NAMES.
    folds = IterativeStratification(
        group_labels, ratios.as_array(), random_state=np.random.RandomState(seed)
    )
    return [SPLIT_NAMES[folds[group_index[group]]] for group in groups]


def _top_labels(codes: list[list[str]]) -> list[str]:
    counts = Counter(code for note_codes in codes for code in note_codes)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [code for code, _ in ranked[:MAX_STRATIFY_LABELS]]


def group_key(patient_id: str | None, note_id: str) -> str:
    """Patient id where known; a note without one is its own group."""
    return f"patient:{patient_id}" if patient_id else f"note:{note_id}"


def _groups(table: pa.Table) -> list[str]:
    note_ids = table.column(NOTE_ID).to_pylist()
    patients = (
        table.column(PATIENT_ID).to_pylist()
        if PATIENT_ID in table.column_names
        else [None] * len(note_ids)
    )
    return [group_key(p, n) for p, n in zip(patients, note_ids, strict=True)]
