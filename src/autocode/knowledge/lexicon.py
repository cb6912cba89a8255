"""Code lexicon: how fully each code's own terms appear in one sentence of a note.

A term ("Plaque psoriasis", an inclusion term of L40.0) matches a sentence to the extent of
the idf-weighted share of its content words that the sentence contains: 1.0 when every word
is there, in any order. Words are lowercased, stop words and qualifiers such as
"unspecified" dropped and plurals folded, so the words a coder would look for are what count.

Words are runs of Unicode letters and digits, stripped of accents ("torácico" meets
"toracico"), and Spanish joining words ("de", "del") are stop words too: the Spanish terms
mined from CodiEsp-X (`knowledge.mined`) are matched and shown whole. Lexicons saved
before (`unicode_words=False`) keep the ASCII words they were fitted with: "tórax" was
the two words "t" and "rax" to them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import NamedTuple, Self, cast

import numpy as np
import scipy.sparse as sp

from autocode.errors import NotFittedError

# Words are matched in the original text and each lowercased on its own: lowercasing the
# whole text first could shift offsets ("İ" lowercases to two characters).
# A letter or digit, then letters, digits or combining accents: text in decomposed form
# (NFD, as some systems export it) writes "á" as "a" and a combining mark, which is not \w.
WORD = re.compile(r"[^\W_]+(?:[\u0300-\u036f]+[^\W_]*)*")  # runs of letters first: fast
WORD_SPLIT = re.compile(r"([^\W_]+(?:[\u0300-\u036f]+[^\W_]*)*)")  # `re.split` keeps words
ASCII_WORD = re.compile(r"[A-Za-z0-9]+")  # the words of lexicons saved before Unicode words
ASCII_WORD_SPLIT = re.compile(r"([A-Za-z0-9]+)")
# A sentence ends at a line break or after . ! ? ; followed by space. Every break starts
# with a blank: the leading look-ahead says so, and spares the other places the look-behind
# (a quarter of the split's time).
SENTENCE_BREAK = re.compile(r"(?=\s)(?:\n+|(?<=[.!?;])\s+)")
_SENTENCE_SPLIT = re.compile(f"({SENTENCE_BREAK.pattern})")  # keeps the breaks
# Words that join or qualify a term rather than name the condition.
STOP_WORDS = frozenset(
    "a an and as at by due for in is not of on or the to with without "  # noqa: SIM905
    "other unspecified specified nos site type elsewhere classified".split()
)
# Spanish joining words (CodiEsp's mined terms). A few English names hold one ("De Lange
# syndrome", "Sin nombre virus disease", "La Crosse encephalitis"): they lose that word,
# and keep the words that name the condition.
SPANISH_STOP_WORDS = frozenset(
    "al con de del el en la las los para por que se sin su sus un una y".split()  # noqa: SIM905
)
UNICODE_STOP_WORDS = STOP_WORDS | SPANISH_STOP_WORDS
# A letter "A" that types the word before it is no article: "vitamin A" (E50.9) is not
# the vitamin of "vitamin D deficiency" (E55.9), nor "hepatitis A" (B15.9) any hepatitis.
# It is read as "α", which no stop word list holds: one character for one, so every span
# stays put. Other letters are words already ("hepatitis C": "c").
# The head words are found by `str.find` in the lowercased text, then the pattern is
# tried there: scanning every place of a note for it took about 150 us a note, 5-7% of
# predicting with the lexicon.
# The words a letter after them types, in the lexicon and in the code names
# (`knowledge.candidates`): "vitamin D", "hepatitis C", "type A".
TYPING_HEADS = ("factor", "group", "hepatitis", "influenza", "protein", "type", "vitamin")
TYPED_A = re.compile(rf"(?i:\b(?:{'|'.join(TYPING_HEADS)})s?)[ \t\-]+[aA](?![^\W_])")
TYPED_A_WORD = "α"
# Letters the pattern's ignored case reads as another ("ı" as "i", "ſ" as "s") that
# `str.lower` keeps: a text holding one is scanned whole.
_CASE_FOLDED_APART = ("\u0131", "\u017f")
FULL_MATCH = 0.999  # float sums of idf weights may miss 1.0 by rounding
WORD_MEMO_SIZE = 500_000  # raw words remembered with their vocabulary id
STOP_WORD_ID = -2


def fold(word: str) -> str:
    """A crude plural fold, enough to meet "fractures" with "fracture" and "masses" with "mass"."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


def typed_letters(text: str) -> str:
    """The text with each typing "A" read as `TYPED_A_WORD` (`TYPED_A`)."""
    lowered = text.lower()
    # A letter whose lowercase is longer ("İ") moves every place after it.
    if len(lowered) != len(text) or any(letter in text for letter in _CASE_FOLDED_APART):
        return TYPED_A.sub(lambda match: match.group()[:-1] + TYPED_A_WORD, text)
    letters = []
    for head in TYPING_HEADS:
        place = lowered.find(head)
        while place >= 0:
            found = TYPED_A.match(text, place)
            if found is not None:
                letters.append(found.end() - 1)
            place = lowered.find(head, place + len(head))
    if not letters:
        return text
    characters = list(text)
    for place in letters:
        characters[place] = TYPED_A_WORD
    return "".join(characters)


def content_words(text: str, unicode_words: bool = True) -> list[tuple[str, int, int]]:
    """The text's content words, folded, with their character spans."""
    pattern = WORD if unicode_words else ASCII_WORD
    return [
        (word, match.start(), match.end())
        for match in pattern.finditer(text)
        if (word := _content_word(match.group(), unicode_words))
    ]


def _content_word(raw: str, unicode_words: bool = True) -> str:
    """The folded, lowercased word (without accents); "" for a stop word."""
    if not unicode_words:
        word = raw.lower()
        return "" if word in STOP_WORDS else fold(word)
    word = strip_accents(raw.lower())
    return "" if word in UNICODE_STOP_WORDS else fold(word)


def strip_accents(word: str) -> str:
    """ "torácico" -> "toracico", "niño" -> "nino": the letters without combining marks."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the text's sentences (non-blank pieces between breaks). The
    text is split once, pieces and breaks (no match object per break)."""
    parts = _SENTENCE_SPLIT.split(text)  # piece, break, piece, ..., piece
    ends = list(accumulate(map(len, parts)))
    pieces = zip(parts[::2], ends[::2], strict=True)
    return [(end - len(piece), end) for piece, end in pieces if piece.strip()]


@dataclass
class TermMatches:
    """Per note and code: how well its terms matched the note's sentences."""

    best: np.ndarray  # (notes, codes) best coverage of any term in any one sentence
    full_sentences: np.ndarray  # (notes, codes) sentences fully matching some term
    best_description: np.ndarray  # (notes, codes) best coverage of the description alone
    # Per note, code -> where its best coverage was reached, for codes reaching the floor
    # `match` was asked for (None when it was not asked).
    places: Places | None = None


@dataclass(frozen=True)
class Places:
    """Where codes reached their best coverage in each note of a batch, for the codes
    reaching the floor `match` was asked for: arrays sorted by note, then code. A note's
    places are made Python objects only when its evidence is asked for (`find`)."""

    bounds: np.ndarray  # note i's entries are [bounds[i], bounds[i + 1])
    codes: np.ndarray
    coverage: np.ndarray
    term_rows: np.ndarray
    sentences: np.ndarray  # index among the note's `sentence_spans`

    def find(self, note: int, codes: Sequence[int]) -> list[Place | None]:
        """The note's place of each code (None where it has none)."""
        start, stop = int(self.bounds[note]), int(self.bounds[note + 1])
        wanted = np.asarray(codes, np.int64)
        at = start + np.searchsorted(self.codes[start:stop], wanted)
        found = at < stop
        found[found] = self.codes[at[found]] == wanted[found]
        hits = at[found]
        # The columns read once as Python lists, not one entry at a time.
        places = map(
            Place,
            self.coverage[hits].tolist(),
            self.term_rows[hits].tolist(),
            self.sentences[hits].tolist(),
        )
        return [next(places) if hit else None for hit in found.tolist()]

    def codes_below(self, limit: int) -> Places:
        """Only the places of codes numbered below `limit`."""
        kept = self.codes < limit
        notes = np.repeat(np.arange(len(self.bounds) - 1), np.diff(self.bounds))[kept]
        bounds = np.searchsorted(notes, np.arange(len(self.bounds)))
        return Places(
            bounds,
            self.codes[kept],
            self.coverage[kept],
            self.term_rows[kept],
            self.sentences[kept],
        )


class Place(NamedTuple):
    """Where a code's best coverage in a note was reached: by which term, in which
    sentence (its index among the note's `sentence_spans`)."""

    coverage: float
    term_row: int
    sentence: int


class CodeLexicon:
    """Matches each code's terms against note sentences; `terms[k]` lists code k's terms.

    The first term of each code is its description; `fit` learns word weights (idf) from
    the training notes' sentences, so words common in notes ("patient") count for little.
    `unicode_words=False` reads words as lexicons saved before Unicode words did (ASCII
    letters and digits, no Spanish stop words); `typed_letters=False` as lexicons saved
    before a typing "A" was a word (`TYPED_A`).
    """

    def __init__(
        self,
        terms: Sequence[Sequence[str]],
        *,
        unicode_words: bool = True,
        typed_letters: bool = True,
    ) -> None:
        self.terms = [list(code_terms) for code_terms in terms]
        self.unicode_words = unicode_words
        self.typed_letters = typed_letters and unicode_words
        self._word = WORD if unicode_words else ASCII_WORD
        self._word_split = WORD_SPLIT if unicode_words else ASCII_WORD_SPLIT
        owners, is_description, term_words = [], [], []
        for code, code_terms in enumerate(self.terms):
            for position, term in enumerate(code_terms):
                read = self._read(term)
                words = sorted({word for word, _, _ in content_words(read, unicode_words)})
                if words:
                    owners.append(code)
                    is_description.append(position == 0)
                    term_words.append(words)
        self.vocabulary = {w: i for i, w in enumerate(sorted({w for ws in term_words for w in ws}))}
        self._owner = np.array(owners, dtype=np.int64)
        self._is_description = np.array(is_description, dtype=bool)
        rows = [i for i, words in enumerate(term_words) for _ in words]
        columns = [self.vocabulary[w] for words in term_words for w in words]
        self._term_words = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, columns)),
            shape=(len(term_words), len(self.vocabulary)),
        )

    def __len__(self) -> int:
        return len(self.terms)

    def fit(self, texts: Sequence[str]) -> Self:
        sentences = self._sentence_matrix(texts)[0]
        document_frequency = np.asarray((sentences > 0).sum(axis=0)).ravel()
        idf = np.log((1 + sentences.shape[0]) / (1 + document_frequency)) + 1
        return self.set_idf(idf.astype(np.float32))

    def set_idf(self, idf: np.ndarray) -> Self:
        """Takes the word weights `fit` learns (one per `vocabulary` word, in its order):
        a saved lexicon is restored from its terms and these."""
        if idf.shape != (len(self.vocabulary),):
            raise ValueError(
                f"idf has shape {idf.shape}; the vocabulary has {len(self.vocabulary)}"
            )
        self.idf_ = idf
        weighted = self._term_words.multiply(self.idf_).tocsr()
        totals = np.asarray(weighted.sum(axis=1)).ravel()
        # Each term's word weights sum to 1, so a sentence's dot product is its coverage.
        self._weighted_terms_ = sp.csr_matrix(sp.diags(1 / np.maximum(totals, 1e-12)) @ weighted)
        self._term_lookup_ = self._term_lookup(self._weighted_terms_)
        return self

    def _term_lookup(self, weighted: sp.csr_matrix) -> list[dict[int, float]]:
        """Each term's word weights by vocabulary id: what `spans_at` reads, built with the
        weights (slicing sparse rows per note cost more than finding the words)."""
        indices, data = weighted.indices.tolist(), weighted.data.tolist()
        bounds = weighted.indptr.tolist()
        return [dict(zip(indices[a:b], data[a:b], strict=True)) for a, b in pairwise(bounds)]

    def match(self, texts: Sequence[str], places_from: float | None = None) -> TermMatches:
        """How well each code's terms matched each note; with `places_from`, also where
        (`TermMatches.places`) for the codes whose best coverage reaches it."""
        weighted = self._fitted()
        sentences, note_of_sentence = self._sentence_matrix(texts)
        coverage = (sentences @ weighted.T).tocoo()  # (sentences, terms), only shared words
        notes = note_of_sentence[coverage.row]
        # Each code's maximum over its terms, taken over the (sentence, term) coverages
        # found: the (notes, terms) matrix they are a sliver of is never made dense.
        values = np.minimum(coverage.data, 1.0).astype(np.float32)
        codes = self._owner[coverage.col]
        described = self._is_description[coverage.col]
        is_full = coverage.data >= FULL_MATCH
        # Per note and term, the sentences it fully matched (summed as CSR sums repeated
        # entries); then each code's most.
        full_counts = sp.csr_matrix(
            (np.ones(int(is_full.sum()), np.float32), (notes[is_full], coverage.col[is_full])),
            shape=(len(texts), weighted.shape[0]),
        ).tocoo()
        places = None
        if places_from is not None:
            sentence_of_note = np.arange(note_of_sentence.size) - np.searchsorted(
                note_of_sentence, note_of_sentence
            )
            places = self._best_places(
                coverage, note_of_sentence, sentence_of_note, places_from, len(texts)
            )
        shape = (len(texts), len(self.terms))
        return TermMatches(
            best=_maxima(shape, notes, codes, values),
            full_sentences=_maxima(
                shape, full_counts.row, self._owner[full_counts.col], full_counts.data
            ),
            best_description=_maxima(shape, notes[described], codes[described], values[described]),
            places=places,
        )

    def spans(
        self, text: str, codes: Sequence[int], min_coverage: float = 0.0
    ) -> list[tuple[float, list[tuple[int, int]]]]:
        """Per code: the coverage of its best-matching term in its best sentence, and the
        character spans of that term's words there; (0.0, []) where the coverage does not
        reach `min_coverage` (or is 0). Ties go to the code's first term, then the first
        sentence."""
        places = self.match([text], places_from=min_coverage).places
        assert places is not None
        return self.spans_at(text, places.find(0, codes))

    def spans_at(
        self, text: str, places: Sequence[Place | None]
    ) -> list[tuple[float, list[tuple[int, int]]]]:
        """Per place `match` found in this text (None: none), its coverage and the
        character spans of its term's words in its sentence."""
        self._fitted()
        term_weights = self._term_lookup_
        bounds = sentence_spans(text) if any(places) else []
        placed: dict[int, tuple[list[int], list[int]]] = {}  # a sentence's words, where
        result: list[tuple[float, list[tuple[int, int]]]] = []
        for place in places:
            if place is None:
                result.append((0.0, []))
                continue
            if place.sentence not in placed:
                placed[place.sentence] = self._placed_words(text, bounds[place.sentence])
            weights = term_weights[place.term_row]
            ids, ends = placed[place.sentence]
            # Word k is part 2k + 1 of the split sentence: it starts where part 2k ends.
            hits = [(ends[2 * k], ends[2 * k + 1]) for k, word in enumerate(ids) if word in weights]
            result.append((place.coverage, hits))
        return result

    def _best_places(
        self,
        coverage: sp.coo_matrix,
        note_of_sentence: np.ndarray,
        sentence_of_note: np.ndarray,
        floor: float,
        n_notes: int,
    ) -> Places:
        """Per note, each code's best (coverage, term, sentence) among the (sentence, term)
        coverages reaching `floor`: the highest, then the first term, the first sentence."""
        strong = (coverage.data >= floor) & (coverage.data > 0)
        values = np.minimum(coverage.data[strong], 1.0)
        terms, sentences = coverage.col[strong], coverage.row[strong]
        notes, codes = note_of_sentence[sentences], self._owner[terms]
        order = np.lexsort((sentences, terms, -values, codes, notes))
        notes, codes = notes[order], codes[order]
        first = np.ones(order.size, bool)
        first[1:] = (notes[1:] != notes[:-1]) | (codes[1:] != codes[:-1])
        picked = order[first]
        return Places(
            bounds=np.searchsorted(notes[first], np.arange(n_notes + 1)),
            codes=codes[first],
            coverage=values[picked],
            term_rows=terms[picked],
            sentences=sentence_of_note[sentences[picked]],
        )

    def _placed_words(self, text: str, sentence: tuple[int, int]) -> tuple[list[int], list[int]]:
        """The sentence's words' vocabulary ids, and where each part of the sentence split
        into words and the text between them (between, word, between, ..., between) ends
        in the note. Split once (no match object per word), ids looked up at C speed."""
        start, end = sentence
        parts = self._word_split.split(self._read(text[start:end]))
        words = parts[1::2]
        word_id = self._word_id_of_raw()
        looked_up = list(map(word_id.get, words))
        if None in looked_up:
            for k, found in enumerate(looked_up):
                if found is None:  # a word never met: folded once, remembered
                    looked_up[k] = word_id[words[k]] = self._word_id(words[k])
        ends = list(accumulate(map(len, parts), initial=start))[1:]
        return cast(list[int], looked_up), ends

    def _sentence_matrix(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray]:
        """Binary (sentences, vocabulary) word presence, and the note each sentence is from."""
        rows: list[int] = []
        columns: list[int] = []
        notes: list[int] = []
        word_id = self._word_id_of_raw()
        for note, text in enumerate(texts):
            # The pieces between breaks are `sentence_spans`' (spans are not needed here),
            # and their words are looked up all at once (`map` runs the lookups in C).
            for sentence in SENTENCE_BREAK.split(self._read(text)):
                if not sentence.strip():
                    continue
                raws = self._word.findall(sentence)
                ids = set(map(word_id.get, raws))
                if None in ids:  # words never met: fold them once, remember them
                    for raw in raws:
                        if raw not in word_id:
                            word_id[raw] = self._word_id(raw)
                    ids = set(map(word_id.get, raws))
                known = [found for found in ids if found is not None and found >= 0]
                rows.extend([len(notes)] * len(known))
                columns.extend(known)
                notes.append(note)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, columns)),
            shape=(len(notes), len(self.vocabulary)),
        )
        return matrix, np.array(notes, dtype=np.int64)

    def _read(self, text: str) -> str:
        """The text as its words are read: with `typed_letters`, a typing "A" as "α"."""
        return typed_letters(text) if self.typed_letters else text

    def _word_id(self, raw: str) -> int:
        """The vocabulary id of a raw word; -1 for a content word not in the vocabulary,
        `STOP_WORD_ID` for a stop word."""
        word = _content_word(raw, self.unicode_words)
        return self.vocabulary.get(word, -1) if word else STOP_WORD_ID

    def _word_id_of_raw(self) -> dict[str, int]:
        """Each raw word met so far -> `_word_id(raw)`: a note's words are mostly words
        other notes had, and folding one costs more than a lookup."""
        memo: dict[str, int] = vars(self).setdefault("_word_ids", {})
        if len(memo) > WORD_MEMO_SIZE:  # a server reading notes for months stays bounded
            memo.clear()
        return memo

    def _fitted(self) -> sp.csr_matrix:
        if not hasattr(self, "_weighted_terms_"):
            raise NotFittedError("CodeLexicon is not fitted yet: call fit(texts) first")
        return self._weighted_terms_


def _maxima(
    shape: tuple[int, int], rows: np.ndarray, columns: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """A float32 matrix of `shape` holding at each (row, column) the largest of its values,
    0 where none is given."""
    maxima = np.zeros(shape, np.float32)
    np.maximum.at(maxima, (rows, columns), values)
    return maxima
