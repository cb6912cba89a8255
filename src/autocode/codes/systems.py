"""Code systems and the canonical `SYSTEM:VALUE` spelling of a code.

`normalize_code` is the one way raw spellings (lower case, missing dots, MIMIC's undotted
ICD-9) become canonical codes; everything else in `autocode.codes` starts from its output.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

ICD10CM = "ICD10CM"
ICD10PCS = "ICD10PCS"
ICD9CM = "ICD9CM"
ICD9PCS = "ICD9PCS"
CPT = "CPT"
HCPCS = "HCPCS"
SYSTEMS: tuple[str, ...] = (ICD10CM, ICD10PCS, ICD9CM, ICD9PCS, CPT, HCPCS)


class CodeError(ValueError):
    """A code that is empty, malformed for its system, or of an unknown system."""


@dataclass(frozen=True)
class _Format:
    pattern: re.Pattern[str]
    expected: str
    # Where an undotted value gets its dot; None for systems written without one.
    dot_after: Callable[[str], int] | None = None


_FORMATS: dict[str, _Format] = {
    ICD10CM: _Format(
        re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"),
        "expected a letter, a digit, a letter or digit, then optionally a dot and 1 to 4 "
        "letters or digits (e.g. N44.8, N448, S02.0XXA)",
        lambda value: 3,
    ),
    # CodiEsp scores procedures at 4-character prefixes, so prefixes of 3 to 6 are codes too.
    ICD10PCS: _Format(
        re.compile(r"[0-9A-HJ-NP-Z]{3,7}"),
        "expected 7 characters, or a 3 to 6 character prefix, from 0-9 and A-Z except I and O "
        "(e.g. BW03ZZZ, BN20)",
    ),
    ICD9CM: _Format(
        re.compile(r"(?:[0-9]{3}|V[0-9]{2})(?:\.[0-9]{1,2})?|E[0-9]{3}(?:\.[0-9])?"),
        "expected 3 digits, V and 2 digits, or E and 3 digits, optionally followed by the "
        "subdivision with or without its dot (e.g. 428.0, 4280, V45.81, E879.0)",
        lambda value: 4 if value.startswith("E") else 3,
    ),
    ICD9PCS: _Format(
        re.compile(r"[0-9]{2}(?:\.[0-9]{1,2})?"),
        "expected 2 digits, optionally followed by 1 or 2 more with or without a dot "
        "(e.g. 39.95, 3995, 39)",
        lambda value: 2,
    ),
    CPT: _Format(
        re.compile(r"[0-9]{4}[0-9FTU]"),
        "expected 4 digits then a digit, F, T or U (e.g. 99231, 0001F)",
    ),
    HCPCS: _Format(
        re.compile(r"[A-V][0-9]{4}"),
        "expected a letter from A to V then 4 digits (e.g. A0428)",
    ),
}


def normalize_code(raw: str, system: str | None = None) -> str:
    """Return the canonical `SYSTEM:VALUE` spelling of `raw`.

    `raw` is either prefixed (`icd10cm:n44.8`) or a bare value read in `system`. Surrounding
    whitespace, lower case and a missing dot are accepted; values are never guessed at
    (`428` stays the ICD-9-CM category 428, it is not padded into another code).

    Raises CodeError, naming the value and the system, for anything else.
    """
    _require_str(raw)
    text = raw.strip()
    # Checked before upper-casing: str.upper maps some non-ASCII letters to ASCII ones.
    if not text.isascii():
        label = f"{system.strip().upper()} code" if system else "code"
        raise CodeError(f"invalid {label} {raw!r}: expected ASCII characters only")
    named, value = _split_prefix(raw, text, system)
    if not value:
        raise CodeError(f"invalid {named} code {raw!r}: the value is empty")
    fmt = _FORMATS[named]
    value = value.upper()
    if fmt.dot_after is not None and "." not in value:
        cut = fmt.dot_after(value)
        if len(value) > cut:
            value = f"{value[:cut]}.{value[cut:]}"
    if not fmt.pattern.fullmatch(value):
        raise CodeError(f"invalid {named} code {raw!r}: {fmt.expected}")
    return f"{named}:{value}"


def split_code(code: str) -> tuple[str, str]:
    """Split a canonical code into (system, value); CodeError if it is not canonical."""
    system, sep, value = code.partition(":")
    fmt = _FORMATS.get(system)
    if not sep or fmt is None or not fmt.pattern.fullmatch(value):
        raise CodeError(
            f"not a canonical code: {code!r} (expected SYSTEM:VALUE as normalize_code writes it, "
            f"with SYSTEM one of {', '.join(SYSTEMS)})"
        )
    return system, value


def system_of(raw: str) -> str:
    """The system named by the prefix of `raw`; CodeError if it has none or an unknown one."""
    _require_str(raw)
    named, _ = _split_prefix(raw, raw.strip(), None)
    return named


def _require_str(raw: object) -> None:
    if not isinstance(raw, str):
        raise CodeError(
            f"invalid code {raw!r}: expected a string, got {type(raw).__name__} "
            "(read code columns as strings so that leading zeros survive)"
        )


def _split_prefix(raw: str, text: str, system: str | None) -> tuple[str, str]:
    """(system, bare value) of `text`, checking a prefix against the `system` asked for."""
    prefix, sep, value = text.partition(":")
    if not sep:
        if system is None:
            raise CodeError(
                f"invalid code {raw!r}: no system; write SYSTEM:VALUE or pass system= "
                f"(one of {', '.join(SYSTEMS)})"
            )
        return _known_system(system, raw), text
    named = _known_system(prefix, raw)
    if system is not None and _known_system(system, raw) != named:
        raise CodeError(f"invalid {system.strip().upper()} code {raw!r}: it is written as {named}")
    return named, value.strip()


def _known_system(name: str, raw: str) -> str:
    upper = name.strip().upper()
    if upper not in _FORMATS:
        raise CodeError(
            f"unknown code system {name!r} for code {raw!r}: expected one of {', '.join(SYSTEMS)}"
        )
    return upper
