"""What a coder types into the code search, beside what the code tables write for it.

Coders type British spellings ("anaemia", "oesophagus", "tumour"), abbreviations ("BPH",
"htn") and the words of notes ("renal", "carcinoma"); the tables write "anemia",
"benign prostatic hyperplasia" and "kidney", "malignant neoplasm". Each query word
becomes its options: the word itself first, then those. A code matches a word when any
option is in its names; the word typed is always one, so nothing it found before is lost.
"""

from __future__ import annotations

import re

from autocode.knowledge.abbreviations import CLINICAL_ABBREVIATIONS
from autocode.knowledge.word_forms import tabular_words

# British -> American spellings, as (pattern, replacement), tried on words of 5 letters or
# more (shorter words such as "toe" and "four" have no British spelling to undo).
_SPELLINGS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"ae"), "e"),  # anaemia, haemorrhage, caecum, paediatric, leukaemia
    (re.compile(r"oe(?!s?$)"), "e"),  # oedema, oesophagus, diarrhoea, foetal, not "canoes"
    (re.compile(r"our(s|ed)?$"), r"or\1"),  # tumour, labour, behaviour
    (re.compile(r"is(ation|ations|ed|ing)$"), r"iz\1"),  # catheterisation, immunised
    (re.compile(r"tre(s)?$"), r"ter\1"),  # centre, litre
)
_SHORTEST_BRITISH_WORD = 5


def word_options(word: str) -> tuple[str, ...]:
    """`word` (lower case) and the other writings of it the code tables may hold: its
    American spelling, what the tabular calls it, what it abbreviates; the word first."""
    options = [word]
    if len(word) >= _SHORTEST_BRITISH_WORD:
        american = word
        for pattern, replacement in _SPELLINGS:
            american = pattern.sub(replacement, american)
        options.append(american)
    for spelling in tuple(options):
        options.append(tabular_words(spelling) or spelling)
    # In a search box any case is meant: "bph" is BPH (notes' short abbreviations are
    # read only in capitals, `expand_abbreviation`, as "mi" is also a word there).
    abbreviated = CLINICAL_ABBREVIATIONS.get(word.upper())
    if abbreviated is not None:
        options.append(abbreviated.lower())
    return tuple(dict.fromkeys(options))
