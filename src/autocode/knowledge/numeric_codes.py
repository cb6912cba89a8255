"""ICD-10-CM codes a number in the note decides: weeks of gestation and adult BMI.

No code name spells "38 weeks of gestation" as Z3A.38 ("38 weeks gestation of
pregnancy") or "BMI 46.6" as Z68.42 ("Body mass index [BMI] 45.0-49.9, adult"): the
number picks the code. Notes say it many ways ("34 weeks pregnant", "gestational age of
38 weeks", "body mass index of 36", "BMI: 17.7"); these patterns read the common ones in
English and Spanish.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from autocode.codes import ICD10CM, icd10cm

_NUMBER = r"(\d{1,3}(?:[.,]\d+)?)"
_WEEKS = r"(?:weeks?|wks?|semanas?)"
_PREGNANCY = r"(?:gestation\w*|pregnan\w*|amenorrh\w*|gestaci\w*|embarazada|de\s+amenorrea)"
# "38 weeks of gestation", "34 weeks pregnant", "38 semanas de gestación".
_AGE = r"(?<![\d.,])(\d{1,2})(?:[.,]\d+|\+\d)?"  # whole weeks: "22.4", "38+2" are 22, 38
_WEEKS_OF_PREGNANCY = re.compile(
    rf"{_AGE}\s*-?\s*{_WEEKS}['’]?\s+(?:of\s+|de\s+)?{_PREGNANCY}", re.I
)
# "gestational age of 38 weeks", "pregnancy of 32 weeks", "embarazada de 18 semanas".
_PREGNANCY_OF_WEEKS = re.compile(
    rf"\b{_PREGNANCY}\s+(?:age\s+)?(?:of\s+|de\s+)?{_AGE}\s*{_WEEKS}\b", re.I
)
_BMI = re.compile(
    rf"\b(?:BMI|body\s+mass\s+index|IMC|[íi]ndice\s+de\s+masa\s+corporal)\b\W{{0,3}}"
    rf"(?:(?:of|de|was|is|was\s+of)\s+)?{_NUMBER}",
    re.I,
)
MIN_BMI, MAX_BMI = 10.0, 100.0  # beyond these the number is something else


def numeric_codes(text: str) -> Iterator[tuple[str, tuple[int, int]]]:
    """Each code a stated gestational age or adult BMI decides, with the characters of
    the statement, in order of the text."""
    found = []
    for pattern in (_WEEKS_OF_PREGNANCY, _PREGNANCY_OF_WEEKS):
        for match in pattern.finditer(text):
            code = gestation_code(int(match.group(1)))
            if code is not None:
                found.append((match.start(), code, match.end()))
    for match in _BMI.finditer(text):
        code = bmi_code(float(match.group(1).replace(",", ".")))
        if code is not None:
            found.append((match.start(), code, match.end()))
    for start, code, end in sorted(found):
        yield code, (start, end)


def gestation_code(weeks: int) -> str | None:
    """Z3A: weeks of gestation (under 8 weeks, 8 to 42 each, over 42); None for no
    pregnancy length."""
    if weeks < 1 or weeks > 45:
        return None
    value = "Z3A.01" if weeks < 8 else "Z3A.49" if weeks > 42 else f"Z3A.{weeks:02d}"
    return _listed(value)


def bmi_code(bmi: float) -> str | None:
    """Z68 for an adult BMI: under 20, each whole number from 20 to 39, then the bands
    40-44.9, 45-49.9, 50-59.9, 60-69.9 and 70 or more."""
    if not MIN_BMI <= bmi <= MAX_BMI:
        return None
    if bmi < 20:
        value = "Z68.1"
    elif bmi < 40:
        value = f"Z68.{int(bmi)}"
    else:
        bands = ((45, "Z68.41"), (50, "Z68.42"), (60, "Z68.43"), (70, "Z68.44"))
        value = next((code for upper, code in bands if bmi < upper), "Z68.45")
    return _listed(value)


def _listed(value: str) -> str | None:
    return f"{ICD10CM}:{value}" if icd10cm.in_tabular(value) else None
