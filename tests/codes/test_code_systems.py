"""normalize_code and split_code: accepted spellings, rejections, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autocode.codes import SYSTEMS, CodeError, normalize_code, split_code


@pytest.mark.parametrize(
    ("raw", "system", "canonical"),
    [
        # ICD-10-CM: CodiEsp's lower case, missing dots, placeholders, prefixes.
        ("n44.8", "ICD10CM", "ICD10CM:N44.8"),
        ("N448", "ICD10CM", "ICD10CM:N44.8"),
        ("  icd10cm:n44.8 \n", None, "ICD10CM:N44.8"),
        ("ICD10CM : N448", None, "ICD10CM:N44.8"),
        ("icd10cm:n44.8", "icd10cm", "ICD10CM:N44.8"),
        ("s02.0xx", "ICD10CM", "ICD10CM:S02.0XX"),
        ("S020XXA", "ICD10CM", "ICD10CM:S02.0XXA"),
        ("r52", "ICD10CM", "ICD10CM:R52"),
        ("c7a.0", "ICD10CM", "ICD10CM:C7A.0"),
        # ICD-10-PCS: full codes and CodiEsp's prefixes.
        ("bw03zzz", "ICD10PCS", "ICD10PCS:BW03ZZZ"),
        ("bn20", "ICD10PCS", "ICD10PCS:BN20"),
        ("3E0", "ICD10PCS", "ICD10PCS:3E0"),
        # ICD-9-CM as MIMIC stores it: undotted strings, V and E codes, categories.
        ("4280", "ICD9CM", "ICD9CM:428.0"),
        ("42820", "ICD9CM", "ICD9CM:428.20"),
        ("428", "ICD9CM", "ICD9CM:428"),
        ("0010", "ICD9CM", "ICD9CM:001.0"),
        ("v4581", "ICD9CM", "ICD9CM:V45.81"),
        ("V45.81", "ICD9CM", "ICD9CM:V45.81"),
        ("E8790", "ICD9CM", "ICD9CM:E879.0"),
        ("E879", "ICD9CM", "ICD9CM:E879"),
        ("ICD9CM:428.0", None, "ICD9CM:428.0"),
        # ICD-9 procedures: the dot goes after 2 digits.
        ("3995", "ICD9PCS", "ICD9PCS:39.95"),
        ("0040", "ICD9PCS", "ICD9PCS:00.40"),
        ("016", "ICD9PCS", "ICD9PCS:01.6"),
        ("39", "ICD9PCS", "ICD9PCS:39"),
        ("39.95", "ICD9PCS", "ICD9PCS:39.95"),
        # CPT and HCPCS.
        ("99231", "CPT", "CPT:99231"),
        ("0001f", "CPT", "CPT:0001F"),
        ("cpt:0075T", None, "CPT:0075T"),
        ("a0428", "HCPCS", "HCPCS:A0428"),
        ("hcpcs:V5364", None, "HCPCS:V5364"),
    ],
)
def test_accepted_spellings_normalise_to_canonical(
    raw: str, system: str | None, canonical: str
) -> None:
    assert normalize_code(raw, system) == canonical


@pytest.mark.parametrize(
    ("raw", "system", "fragments"),
    [
        ("Q9!", "ICD10CM", ["ICD10CM", "'Q9!'", "expected a letter"]),
        ("N4.48", "ICD10CM", ["ICD10CM", "'N4.48'"]),
        ("N44.", "ICD10CM", ["ICD10CM", "'N44.'"]),
        ("N44.81234", "ICD10CM", ["ICD10CM", "'N44.81234'"]),
        ("", "ICD10CM", ["ICD10CM", "''", "empty"]),
        ("   ", "ICD9CM", ["ICD9CM", "'   '", "empty"]),
        ("icd10cm:", None, ["ICD10CM", "'icd10cm:'", "empty"]),
        ("BW03ZZO", "ICD10PCS", ["ICD10PCS", "'BW03ZZO'", "except I and O"]),
        ("BW03ZZZZ", "ICD10PCS", ["ICD10PCS", "'BW03ZZZZ'"]),
        ("BW", "ICD10PCS", ["ICD10PCS", "'BW'"]),
        ("BW.03", "ICD10PCS", ["ICD10PCS", "'BW.03'"]),
        ("42", "ICD9CM", ["ICD9CM", "'42'"]),
        ("428000", "ICD9CM", ["ICD9CM", "'428000'"]),
        ("42.80", "ICD9CM", ["ICD9CM", "'42.80'"]),
        ("E87901", "ICD9CM", ["ICD9CM", "'E87901'"]),
        ("3", "ICD9PCS", ["ICD9PCS", "'3'"]),
        ("39951", "ICD9PCS", ["ICD9PCS", "'39951'"]),
        ("9923", "CPT", ["CPT", "'9923'"]),
        ("9923X", "CPT", ["CPT", "'9923X'"]),
        ("W0428", "HCPCS", ["HCPCS", "'W0428'"]),
        ("N448", None, ["'N448'", "no system", "ICD10CM, ICD10PCS"]),
        ("ICD11:XX", None, ["'ICD11'", "'ICD11:XX'", "ICD10CM, ICD10PCS, ICD9CM"]),
        ("N448", "ICD11", ["'ICD11'", "ICD10CM, ICD10PCS"]),
        ("icd9cm:4280", "ICD10CM", ["ICD10CM", "'icd9cm:4280'", "written as ICD9CM"]),
        ("N٤4.8", "ICD10CM", ["ICD10CM", "ASCII"]),
    ],
)
def test_rejections_name_the_value_and_system(
    raw: str, system: str | None, fragments: list[str]
) -> None:
    with pytest.raises(CodeError) as caught:
        normalize_code(raw, system)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_numbers_are_rejected_rather_than_guessed() -> None:
    # 4280 read as an int might have been "04280"; only strings are accepted.
    with pytest.raises(CodeError, match="expected a string, got int"):
        normalize_code(4280, "ICD9CM")  # type: ignore[arg-type]


def test_code_error_is_a_value_error() -> None:
    assert issubclass(CodeError, ValueError)


def test_split_code_splits_canonical_codes_only() -> None:
    assert split_code("ICD10CM:N44.8") == ("ICD10CM", "N44.8")
    assert split_code("ICD9PCS:39.95") == ("ICD9PCS", "39.95")
    for not_canonical in ["icd10cm:n44.8", "ICD10CM:N448", "N44.8", "ICD10CM: N44.8", "FOO:1"]:
        with pytest.raises(CodeError, match="not a canonical code"):
            split_code(not_canonical)


_WELL_FORMED = {
    "ICD10CM": r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?",
    "ICD10PCS": r"[0-9A-HJ-NP-Z]{3,7}",
    "ICD9CM": r"([0-9]{3}|V[0-9]{2})(\.[0-9]{1,2})?|E[0-9]{3}(\.[0-9])?",
    "ICD9PCS": r"[0-9]{2}(\.[0-9]{1,2})?",
    "CPT": r"[0-9]{4}[0-9FTU]",
    "HCPCS": r"[A-V][0-9]{4}",
}


@st.composite
def _well_formed(draw: st.DrawFn) -> tuple[str, str]:
    system = draw(st.sampled_from(SYSTEMS))
    return system, draw(st.from_regex(_WELL_FORMED[system], fullmatch=True))


def test_every_system_has_a_generator() -> None:
    assert set(_WELL_FORMED) == set(SYSTEMS)


@given(_well_formed())
def test_normalising_is_idempotent(system_value: tuple[str, str]) -> None:
    system, value = system_value
    canonical = normalize_code(value, system)
    assert normalize_code(canonical) == canonical
    assert split_code(canonical) == (system, value)


@given(_well_formed())
def test_raw_spellings_of_a_code_agree(system_value: tuple[str, str]) -> None:
    system, value = system_value
    canonical = normalize_code(value, system)
    assert normalize_code(value.lower(), system) == canonical
    assert normalize_code(value.replace(".", ""), system) == canonical
    assert normalize_code(f" {system.lower()}:{value.lower()} ") == canonical


@given(st.text(max_size=12), st.sampled_from([*SYSTEMS, None]))
def test_junk_normalises_to_a_canonical_code_or_raises_code_error(
    raw: str, system: str | None
) -> None:
    try:
        canonical = normalize_code(raw, system)
    except CodeError:
        return
    assert normalize_code(canonical) == canonical
    split_code(canonical)


@given(st.sampled_from(SYSTEMS), st.text(alphabet="0123456789ABEFIOTUVXZ.:- ", max_size=9))
def test_near_miss_values_normalise_or_raise_code_error(system: str, value: str) -> None:
    try:
        canonical = normalize_code(f"{system}:{value}")
    except CodeError:
        return
    assert split_code(canonical)[0] == system
