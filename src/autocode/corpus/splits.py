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

from autocode.corpus.schema import CODES, NOTE_ID, PATIENT_ID, SPLIT

SPLIT_NAMES = ("train", "validation", "test")
# A code seen once cannot be balanced anyway; capping the labels keeps the
# split fast on MIMIC-size label spaces while frequent codes carry the signal.
MAX_STRATIFY_LABELS = 1000


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
            raise ValueError(
                f"split ratios {text!r}: expected three numbers like 0.8,0.1,0.1"
            ) from None
        return cls(train, validation, test)

    def as_array(self) -> np.ndarray:
        return np.array([self.train, self.validation, self.test])


def assign_splits(table: pa.Table, ratios: SplitRatios, seed: int = 0) -> pa.Table:
    """Return the table with a `split` column; keeps existing split values when complete."""
    given = table.column(SPLIT).to_pylist() if SPLIT in table.column_names else []
    splits = split_names(table.column(CODES).to_pylist(), note_groups(table), given, ratios, seed)
    column = pa.array(splits, pa.string())
    if SPLIT in table.column_names:
        return table.set_column(table.schema.get_field_index(SPLIT), SPLIT, column)
    return table.append_column(SPLIT, column)


def split_names(
    codes: list[list[str]],
    groups: list[str],
    given: list[str | None],
    ratios: SplitRatios,
    seed: int = 0,
) -> list[str]:
    """Each note's given split when every note has one; else a stratified, grouped split."""
    if given and all(given):
        return [str(split) for split in given]
    return stratified_group_split(codes, groups, ratios, seed)


def stratified_group_split(
    codes: list[list[str]], groups: list[str], ratios: SplitRatios, seed: int = 0
) -> list[str]:
    """Split names per note: iterative stratification over the groups' code sets."""
    group_names = sorted(set(groups))
    group_index = {name: i for i, name in enumerate(group_names)}
    label_index = {code: j for j, code in enumerate(_top_labels(codes))}
    group_sizes = np.zeros(len(group_names), dtype=np.int64)
    group_labels: list[Counter[int]] = [Counter() for _ in group_names]
    for note_codes, group in zip(codes, groups, strict=True):
        g = group_index[group]
        group_sizes[g] += 1
        group_labels[g].update(label_index[c] for c in set(note_codes) if c in label_index)
    folds = iterative_stratification(group_labels, group_sizes, ratios.as_array(), seed)
    return [SPLIT_NAMES[folds[group_index[group]]] for group in groups]


def iterative_stratification(
    group_labels: list[Counter[int]], group_sizes: np.ndarray, ratios: np.ndarray, seed: int
) -> np.ndarray:
    """Sechidis et al. (2011), weighted by notes per group; returns a fold per group.

    The rarest label is placed first, each of its groups going to the fold that
    still wants that label most (ties: the fold wanting most notes, then random).
    """
    rng = np.random.default_rng(seed)
    n_labels = 1 + max((max(c) for c in group_labels if c), default=-1)
    label_totals = np.zeros(n_labels)
    label_groups: list[list[int]] = [[] for _ in range(n_labels)]
    for g, counts in enumerate(group_labels):
        for label, count in counts.items():
            label_totals[label] += count
            label_groups[label].append(g)
    wanted_notes = ratios * group_sizes.sum()
    wanted_labels = np.outer(ratios, label_totals)
    folds = np.full(len(group_labels), -1)
    remaining = label_totals.copy()
    while np.any(remaining > 0):
        label = _rarest(remaining, rng)
        for g in rng.permutation(label_groups[label]):
            if folds[g] >= 0:
                continue
            fold = _best_fold(wanted_labels[:, label], wanted_notes, rng)
            folds[g] = fold
            wanted_notes[fold] -= group_sizes[g]
            for other, count in group_labels[g].items():
                wanted_labels[fold, other] -= count
                remaining[other] -= count
        remaining[label] = 0
    for g in rng.permutation(np.flatnonzero(folds < 0)):
        fold = _best_fold(wanted_notes, wanted_notes, rng)
        folds[g] = fold
        wanted_notes[fold] -= group_sizes[g]
    return folds


def _rarest(remaining: np.ndarray, rng: np.random.Generator) -> int:
    positive = np.flatnonzero(remaining > 0)
    fewest = positive[remaining[positive] == remaining[positive].min()]
    return int(rng.choice(fewest))


def _best_fold(primary: np.ndarray, secondary: np.ndarray, rng: np.random.Generator) -> int:
    candidates = np.flatnonzero(primary == primary.max())
    if len(candidates) > 1:
        candidates = candidates[secondary[candidates] == secondary[candidates].max()]
    return int(rng.choice(candidates))


def _top_labels(codes: list[list[str]]) -> list[str]:
    counts = Counter(code for note_codes in codes for code in note_codes)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [code for code, _ in ranked[:MAX_STRATIFY_LABELS]]


def group_key(patient_id: str | None, note_id: str) -> str:
    """Patient id where known; a note without one is its own group."""
    return f"patient:{patient_id}" if patient_id else f"note:{note_id}"


def note_groups(table: pa.Table) -> list[str]:
    """Each note's patient group (`group_key`): its patient, else the note itself."""
    note_ids = table.column(NOTE_ID).to_pylist()
    patients = (
        table.column(PATIENT_ID).to_pylist()
        if PATIENT_ID in table.column_names
        else [None] * len(note_ids)
    )
    return [group_key(p, n) for p, n in zip(patients, note_ids, strict=True)]
