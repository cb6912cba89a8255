"""LabelSpace: fit with a minimum count, encode/decode, unknown codes, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autocode.labels import EncodeReport, LabelSpace

NOTES = [["ICD10CM:I10", "CPT:99213"], ["ICD10CM:I10"], ["HCPCS:E0601", "ICD10CM:I10"], []]


def test_fit_orders_codes_and_applies_min_count() -> None:
    space = LabelSpace(min_count=1).fit(NOTES)
    assert space.codes_ == ["CPT:99213", "HCPCS:E0601", "ICD10CM:I10"]
    assert space.counts_.tolist() == [1, 1, 3]
    frequent = LabelSpace(min_count=2).fit(NOTES)
    assert frequent.codes_ == ["ICD10CM:I10"]
    assert frequent.dropped_ == ["CPT:99213", "HCPCS:E0601"]


def test_encode_decode_round_trip_and_unknown_codes_are_counted() -> None:
    space = LabelSpace().fit(NOTES)
    report = EncodeReport()
    matrix = space.encode([["ICD10CM:I10", "CPT:99213"], ["ICD10CM:Z99.9", "ICD10CM:I10"]], report)
    assert matrix.toarray().tolist() == [[1, 0, 1], [0, 0, 1]]
    assert report.unknown == {"ICD10CM:Z99.9": 1}
    assert space.decode(matrix) == [["CPT:99213", "ICD10CM:I10"], ["ICD10CM:I10"]]
    columns = space.system_columns()
    assert {system: cols.tolist() for system, cols in columns.items()} == {
        "CPT": [0],
        "HCPCS": [1],
        "ICD10CM": [2],
    }


def test_save_load_keeps_order(tmp_path: Path) -> None:
    space = LabelSpace(min_count=1).fit(NOTES)
    space.save(tmp_path)
    loaded = LabelSpace.load(tmp_path)
    assert loaded.codes_ == space.codes_
    assert np.array_equal(loaded.encode(NOTES).toarray(), space.encode(NOTES).toarray())


def test_unfitted_and_bad_shapes_raise_clear_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        LabelSpace().encode(NOTES)
    with pytest.raises(ValueError, match="2 columns, label space has 3"):
        LabelSpace().fit(NOTES).decode(np.zeros((1, 2)))
