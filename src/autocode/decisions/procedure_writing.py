"""How training writes ICD-10-PCS codes: four characters, or all seven.

Training data writes a procedure at the level its coders were asked for. US claims
(MIMIC-IV) write all seven characters. CodiEsp's files write what the note determines:
an ultrasound of the abdomen whole, BW40ZZZ (it has no contrast or qualifier to choose:
174 of CodiEsp train's 176 ultrasounds), a CT of the skull as BN20 (contrast is rarely
said: 227 of its 231 CTs); autocode's CodiEsp loader cuts them all to the prefix, the
level CodiEsp scores procedures at. What decides is the root operation or imaging type.

So an open-part PCS prefix is written as training writes codes of its operation (its
section and third character): as the prefix, or whole with the completion training
writes most for that operation, where the code list has it under this prefix (else it
is not proposed: training would never write it so). Training that writes only prefixes
(CodiEsp as loaded) gets prefixes; US claims, whole codes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from autocode.codes.icd_tables import code_table
from autocode.codes.systems import ICD10PCS
from autocode.knowledge.pcs_names import PREFIX_LENGTH

PCS_PREFIX = f"{ICD10PCS}:"
FULL_LENGTH = 7
MIN_CODES = 3  # distinct codes of an operation before it has a rule of its own
ANY_OPERATION = "*"  # the rule for operations with too few codes of their own
AS_PREFIX = ""  # the rule of an operation written as its 4-character prefix


def operation_key(value: str) -> str:
    """A PCS value's section and root operation (or imaging type): "B4" for BW40ZZZ."""
    return value[0] + value[2]


def procedure_tails(code_lists: Iterable[Iterable[str]]) -> dict[str, str]:
    """How training writes procedures: per operation (`operation_key`) with at least
    `MIN_CODES` distinct codes, and for any other (`ANY_OPERATION`, read off every code),
    `AS_PREFIX` where it writes prefixes at least as often as whole codes, else the last
    three characters it writes most ("ZZZ"; a tie goes to the first in sorted order)."""
    whole: defaultdict[str, Counter[str]] = defaultdict(Counter)
    prefixes: Counter[str] = Counter()
    for code in {c for codes in code_lists for c in codes if c.startswith(PCS_PREFIX)}:
        value = code[len(PCS_PREFIX) :]
        if len(value) == FULL_LENGTH:
            whole[operation_key(value)][value[PREFIX_LENGTH:]] += 1
        elif len(value) == PREFIX_LENGTH:
            prefixes[operation_key(value)] += 1
    rules = {
        key: _rule(whole[key], prefixes[key])
        for key in set(whole) | set(prefixes)
        if whole[key].total() + prefixes[key] >= MIN_CODES
    }
    rules[ANY_OPERATION] = _rule(sum(whole.values(), Counter()), prefixes.total())
    return rules


def _rule(tails: Counter[str], prefixes: int) -> str:
    if tails.total() <= prefixes:
        return AS_PREFIX
    return min(tails.items(), key=lambda item: (-item[1], item[0]))[0]


def written_procedure(code: str, tails: Mapping[str, str]) -> str | None:
    """A 4-character PCS prefix as training writes codes of its operation (`tails`): the
    prefix, or the whole code with the operation's tail. None where training writes the
    operation whole but the code list has no code of that tail under the prefix: a code
    training would never write, so never proposed. Other codes are returned as they are."""
    value = code[len(PCS_PREFIX) :]
    if len(value) != PREFIX_LENGTH:
        return code
    tail = tails.get(operation_key(value), tails.get(ANY_OPERATION, AS_PREFIX))
    if tail == AS_PREFIX:
        return code
    return code + tail if code_table(ICD10PCS).describe(value + tail) is not None else None
