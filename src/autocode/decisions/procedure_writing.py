"""How training writes ICD-10-PCS codes: four characters, or all seven.

Training data writes a procedure at the level its coders were asked for. US claims
(MIMIC-IV) write all seven characters. CodiEsp's files write what the note determines:
an ultrasound of the abdomen whole, BW40ZZZ (it has no contrast or qualifier to choose:
174 of CodiEsp train's 176 ultrasounds), a CT of the skull as BN20 (contrast is rarely
said: 227 of its 231 CTs); autocode's CodiEsp loader cuts them all to the prefix, the
level CodiEsp scores procedures at. What decides is the root operation or imaging type.

So an open-part PCS prefix is written as training writes codes of its operation (its
section and third character): with the completion training writes most for that
operation, where the code list has it under this prefix; else as the prefix. Training
that writes only prefixes (CodiEsp as loaded) gets prefixes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from autocode.codes.icd_tables import code_table
from autocode.codes.systems import ICD10PCS

PCS_PREFIX = f"{ICD10PCS}:"
FULL_LENGTH = 7
PREFIX_LENGTH = 4
MIN_WHOLE = 3  # whole codes of an operation before its tail is a rule, not one code


def operation_key(value: str) -> str:
    """A PCS value's section and root operation (or imaging type): "B4" for BW40ZZZ."""
    return value[0] + value[2]


def procedure_tails(code_lists: Iterable[Iterable[str]]) -> dict[str, str]:
    """Per operation (`operation_key`) that training writes whole (at least `MIN_WHOLE`
    distinct codes) more often than as a prefix, the last three characters it writes
    most ("ZZZ"); ties go to the tail first in sorted order, the same on every run."""
    whole: defaultdict[str, Counter[str]] = defaultdict(Counter)
    prefixes: Counter[str] = Counter()
    for code in {c for codes in code_lists for c in codes if c.startswith(PCS_PREFIX)}:
        value = code[len(PCS_PREFIX) :]
        if len(value) == FULL_LENGTH:
            whole[operation_key(value)][value[PREFIX_LENGTH:]] += 1
        elif len(value) == PREFIX_LENGTH:
            prefixes[operation_key(value)] += 1
    return {
        key: min(tails.items(), key=lambda item: (-item[1], item[0]))[0]
        for key, tails in whole.items()
        if tails.total() >= MIN_WHOLE and tails.total() > prefixes[key]
    }


def written_procedure(code: str, tails: Mapping[str, str]) -> str:
    """A 4-character PCS prefix as training writes codes of its operation (`tails`): the
    whole code where the code list has it, else the prefix."""
    value = code[len(PCS_PREFIX) :]
    tail = tails.get(operation_key(value)) if len(value) == PREFIX_LENGTH else None
    if tail is not None and code_table(ICD10PCS).describe(value + tail) is not None:
        return code + tail
    return code
