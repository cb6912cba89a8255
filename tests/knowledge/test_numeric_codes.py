"""Codes a stated number decides: weeks of gestation (Z3A) and adult BMI (Z68)."""

from __future__ import annotations

import pytest

from autocode.knowledge.numeric_codes import bmi_code, gestation_code, numeric_codes


@pytest.mark.parametrize(
    ("sentence", "codes"),
    [
        ("Born at 40 weeks of gestation by vaginal delivery.", ["Z3A.40"]),
        ("A preterm newborn of 32 weeks gestational age.", ["Z3A.32"]),
        ("A 33-year-old woman, 34 weeks pregnant (third pregnancy).", ["Z3A.34"]),
        ("Gestational age of 38 weeks.", ["Z3A.38"]),
        # Completed weeks: a decimal or "+days" part does not count ("22.4" is 22, not 4).
        (
            "On day 23 (22.4 weeks of gestation) and at 38+2 weeks of gestation.",
            ["Z3A.22", "Z3A.38"],
        ),
        ("38 semanas de gestación; embarazada de 18 semanas.", ["Z3A.38", "Z3A.18"]),
        ("BMI 46.62 and weight 120 kg.", ["Z68.42"]),
        ("Her body mass index of 36 was noted.", ["Z68.36"]),
        ("BMI: 17,7.", ["Z68.1"]),
        ("IMC de 74.", ["Z68.45"]),
        # Weeks that are no pregnancy's length, and numbers that are no BMI, code nothing.
        ("Fever for 3 weeks.", []),
        ("BMI 250 (a typing error).", []),
    ],
)
def test_a_stated_number_decides_its_code(sentence: str, codes: list[str]) -> None:
    assert [code.split(":")[1] for code, _ in numeric_codes(sentence)] == codes


def test_the_span_is_the_statement() -> None:
    text = "Seen today. Born at 40 weeks of gestation."
    [(code, (start, end))] = list(numeric_codes(text))
    assert (code, text[start:end]) == ("ICD10CM:Z3A.40", "40 weeks of gestation")


def test_gestation_and_bmi_codes_follow_the_tabular_bands() -> None:
    # Z3A: under 8 weeks, each week from 8 to 42, over 42.
    assert [gestation_code(w) for w in (5, 8, 42, 43)] == [
        "ICD10CM:Z3A.01",
        "ICD10CM:Z3A.08",
        "ICD10CM:Z3A.42",
        "ICD10CM:Z3A.49",
    ]
    assert gestation_code(0) is None and gestation_code(60) is None
    # Z68: under 20, each whole number to 39, then bands of five and ten, 70 and over.
    bands = [19.9, 20.0, 39.9, 40.0, 44.9, 45.0, 55.0, 65.0, 70.0]
    assert [bmi_code(b) for b in bands] == [
        "ICD10CM:Z68.1",
        "ICD10CM:Z68.20",
        "ICD10CM:Z68.39",
        "ICD10CM:Z68.41",
        "ICD10CM:Z68.41",
        "ICD10CM:Z68.42",
        "ICD10CM:Z68.43",
        "ICD10CM:Z68.44",
        "ICD10CM:Z68.45",
    ]
    assert bmi_code(9.0) is None
