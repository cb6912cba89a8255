"""What a coder types into the code search, beside what the code tables write for it.

Coders type British spellings ("anaemia", "oesophagus", "tumour"), abbreviations ("BPH",
"htn") and the words of notes ("renal", "carcinoma"); the tables write "anemia",
"benign prostatic hyperplasia" and "kidney", "malignant neoplasm". Each query word
becomes its options: the word itself first, then those. A code matches a word when any
option is in its names (the others only at a word's start, `codesearch`); the word typed
is always one, so nothing it found before is lost.
"""

from __future__ import annotations

import re

from autocode.knowledge.abbreviations import CLINICAL_ABBREVIATIONS
from autocode.knowledge.word_forms import tabular_words

# British -> American spellings, as (pattern, replacement): only the clusters that mark a
# British spelling, so that "aerial", "algae", "hours" and "thromboembolism" keep theirs.
# Tried on words of 4 letters or more, so that "haem" and "paed" help while one types.
_SPELLINGS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"ae(?=[mdcst])"), "e"),  # anaemia, haem-, paediatric, caecum, aetiology
    (re.compile(r"^oe"), "e"),  # oedema, oesophagus, oestrogen
    (re.compile(r"oea"), "ea"),  # diarrhoea, dyspnoea, apnoea
    (re.compile(r"(?<=[fc])oe(?=[tl])"), "e"),  # foetal, coeliac
    (re.compile(r"(?<=\w{3})our(s|ed)?$"), r"or\1"),  # tumour, labour (not "hours")
    (re.compile(r"is(ation|ations|ed|ing)$"), r"iz\1"),  # catheterisation, immunised
    (re.compile(r"ys(e|ed|ing)$"), r"yz\1"),  # paralysed, analyse
    (re.compile(r"sulph"), "sulf"),  # sulphonamide
    (re.compile(r"([tb])re(s)?$"), r"\1er\2"),  # centre, litre, fibre
)
_SHORTEST_BRITISH_WORD = 4


def word_options(word: str) -> tuple[str, ...]:
    """`word` (lower case) and the other writings of it the code tables may hold: its
    American spelling, what the tabular calls it, what it abbreviates; the word first."""
    options = [word]
    if len(word) >= _SHORTEST_BRITISH_WORD:
        american = word
        for pattern, replacement in _SPELLINGS:
            american = pattern.sub(replacement, american)
        options.append(american)
    options += [named for spelling in tuple(options) if (named := tabular_words(spelling))]
    # In a search box any case is meant: "bph" is BPH (notes' short abbreviations are
    # read only in capitals, `expand_abbreviation`, as "mi" is also a word there).
    abbreviated = CLINICAL_ABBREVIATIONS.get(word.upper())
    if abbreviated is not None:
        options.append(abbreviated.lower())
    return tuple(dict.fromkeys(options))
