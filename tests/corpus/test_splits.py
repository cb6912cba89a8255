"""Splits: reproducible, patient-grouped, label-balanced."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from autocode.corpus.splits import SplitRatios, assign_splits, stratified_group_split


def make_notes(n_patients: int = 300, seed: int = 1) -> tuple[list[list[str]], list[str]]:
    rng = np.random.default_rng(seed)
    codes, groups = [], []
    vocabulary = [f"ICD10CM:A{i:02d}" for i in range(20)]
    weights = 1.0 / np.arange(1, 21)
    weights /= weights.sum()
    for patient in range(n_patients):
        for _ in range(rng.integers(1, 4)):
            picked = rng.choice(20, size=rng.integers(1, 5), replace=False, p=weights)
            codes.append([vocabulary[j] for j in picked])
            groups.append(f"patient:{patient}")
    return codes, groups


def test_no_patient_in_two_splits() -> None:
    codes, groups = make_notes()
    splits = stratified_group_split(codes, groups, SplitRatios(), seed=3)
    split_of_group: dict[str, set[str]] = {}
    for group, split in zip(groups, splits, strict=True):
        split_of_group.setdefault(group, set()).add(split)
    assert all(len(s) == 1 for s in split_of_group.values())


def test_ratios_and_label_distribution_are_close() -> None:
    codes, groups = make_notes()
    splits = stratified_group_split(codes, groups, SplitRatios(0.6, 0.2, 0.2), seed=0)
    sizes = Counter(splits)
    n = len(splits)
    assert abs(sizes["train"] / n - 0.6) < 0.05
    assert abs(sizes["test"] / n - 0.2) < 0.05
    # Each frequent code's share of notes differs little between train and test.
    for code in ("ICD10CM:A00", "ICD10CM:A01", "ICD10CM:A02"):
        share = {
            s: np.mean([code in c for c, sp in zip(codes, splits, strict=True) if sp == s])
            for s in ("train", "test")
        }
        assert abs(share["train"] - share["test"]) < 0.08, (code, share)


def test_same_seed_same_splits_and_seed_matters() -> None:
    codes, groups = make_notes()
    first = stratified_group_split(codes, groups, SplitRatios(), seed=5)
    assert first == stratified_group_split(codes, groups, SplitRatios(), seed=5)
    assert first != stratified_group_split(codes, groups, SplitRatios(), seed=6)


def test_existing_split_column_is_respected() -> None:
    table = pa.table(
        {
            "note_id": ["a", "b"],
            "codes": [["ICD10CM:I10"], ["ICD10CM:I10"]],
            "split": ["test", "train"],
        }
    )
    assert assign_splits(table, SplitRatios()).column("split").to_pylist() == ["test", "train"]


def test_bad_ratios_are_named() -> None:
    with pytest.raises(ValueError, match=r"sum to 1"):
        SplitRatios(0.5, 0.1, 0.1)
    with pytest.raises(ValueError, match=r"'0\.8,x'"):
        SplitRatios.parse("0.8,x")
