"""Annotation projection: where a mention marked in a Spanish note lies in its English
translation.

CodiEsp-X marks the Spanish words behind each gold code ("exposición a Brucella"); the
English notes are machine translations, one sentence per line, without marks. A mention
is found in the translation by its words' translations (`word_alignment`): the English
sentences near the mention's place in the note are searched, each Spanish content word
takes its best-scoring English word, and the English words between the first and last
of them are the projected mention ("exposure to Brucella"). A mention whose words the
translation does not carry (the translator dropped or rephrased them) is not projected:
a wrong term would code notes it does not describe.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from autocode.knowledge.lexicon import UNICODE_STOP_WORDS, WORD, strip_accents
from autocode.knowledge.word_alignment import WordAlignment

Span = tuple[int, int]
Word = tuple[str, int, int]  # lowercased word without accents, start, end

# Spanish sentences end after . ! ? followed by a blank and a capital, digit or opening
# mark; the English translations have one sentence per line.
_SOURCE_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÑ¿¡0-9(])|\n+")
_TARGET_SENTENCE_BREAK = re.compile(r"\n+")
NEARBY_SENTENCES = 3  # searched on either side of the mention's place in the translation
MIN_WORD_SCORE = 0.1  # a word pair's alignment score needed to count as a translation
MIN_ALIGNED_SHARE = 0.6  # of the mention's content words, found in one English sentence
# Rare words the translation table has not learned: spelled alike is translated alike
# ("miofibromatosis" / "myofibromatosis") from this similarity on.
MIN_COGNATE_SIMILARITY = 0.75
_SPELLING = (("cion", "tion"), ("ia", "y"), ("f", "ph"), ("qu", "c"))


def sentence_spans(text: str, breaks: re.Pattern[str]) -> list[Span]:
    spans, start = [], 0
    for found in breaks.finditer(text):
        spans.append((start, found.start()))
        start = found.end()
    spans.append((start, len(text)))
    return [(begin, end) for begin, end in spans if text[begin:end].strip()]


def source_sentences(text: str) -> list[Span]:
    return sentence_spans(text, _SOURCE_SENTENCE_BREAK)


def target_sentences(text: str) -> list[Span]:
    return sentence_spans(text, _TARGET_SENTENCE_BREAK)


def words(text: str, start: int = 0, end: int | None = None) -> list[Word]:
    """Lowercased words without accents, with their spans in `text`."""
    return [
        (strip_accents(found.group().lower()), found.start(), found.end())
        for found in WORD.finditer(text, start, len(text) if end is None else end)
    ]


def parallel_sentences(documents: Iterable[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """Word lists of the sentence pairs of (source, translation) documents whose sentence
    counts agree (about half of CodiEsp's: the others are skipped, not guessed at)."""
    pairs = []
    for source, target in documents:
        source_spans, target_spans = source_sentences(source), target_sentences(target)
        if len(source_spans) != len(target_spans):
            continue
        for (a, b), (c, d) in zip(source_spans, target_spans, strict=True):
            pairs.append(
                ([w for w, _, _ in words(source, a, b)], [w for w, _, _ in words(target, c, d)])
            )
    return pairs


@lru_cache(maxsize=200_000)
def cognate_similarity(source: str, target: str) -> float:
    """How alike two words of four letters or more are spelled, after the usual Spanish to
    English spelling changes; 0.0 below `MIN_COGNATE_SIMILARITY`."""
    if len(source) < 4 or len(target) < 4 or not 0.6 < len(source) / len(target) < 1.6:
        return 0.0
    respelled = source
    for spanish, english in _SPELLING:
        respelled = respelled.replace(spanish, english)
    similarity = max(
        SequenceMatcher(None, source, target).ratio(),
        SequenceMatcher(None, respelled, target).ratio(),
    )
    return similarity if similarity >= MIN_COGNATE_SIMILARITY else 0.0


@dataclass
class MentionProjector:
    """Projects the mentions of one note onto its translation (`project`)."""

    alignment: WordAlignment

    def project(
        self, source: str, target: str, mentions: Sequence[Sequence[Span]]
    ) -> list[Span | None]:
        """Per mention (its spans in `source`), its span in `target`, None where the
        translation does not carry enough of its words."""
        source_spans, target_spans = source_sentences(source), target_sentences(target)
        target_words = [words(target, start, end) for start, end in target_spans]
        return [
            self._project_one(source, spans, source_spans, target_words) if spans else None
            for spans in mentions
        ]

    def _project_one(
        self,
        source: str,
        spans: Sequence[Span],
        source_spans: list[Span],
        target_words: list[list[Word]],
    ) -> Span | None:
        mention = [w for start, end in spans for w, _, _ in words(source, start, end)]
        content = [w for w in mention if w not in UNICODE_STOP_WORDS] or mention
        if not content or not source_spans or not target_words:
            return None
        # The mention's place in the note, as a share of its sentences, is about its
        # translation's place: the sentences near there are searched.
        at = next((i for i, (_, end) in enumerate(source_spans) if spans[0][0] < end), 0)
        expected = (at + 0.5) * len(target_words) / len(source_spans)
        first = max(0, math.floor(expected) - NEARBY_SENTENCES)
        last = min(len(target_words), math.ceil(expected) + NEARBY_SENTENCES)
        best: tuple[float, list[Word], list[int]] | None = None
        for index in range(first, last):
            sentence = target_words[index]
            aligned, total = self._aligned(content, sentence)
            total -= 0.05 * abs(index + 0.5 - expected)  # nearer breaks a tie
            if aligned and (best is None or total > best[0]):
                best = (total, sentence, aligned)
        if best is None:
            return None
        _, sentence, aligned = best
        first_word, last_word = min(aligned), max(aligned)
        too_few = len(aligned) < math.ceil(MIN_ALIGNED_SHARE * len(content))
        too_wide = last_word - first_word + 1 > 2 * len(content) + 2
        if too_few or too_wide:
            return None
        return sentence[first_word][1], sentence[last_word][2]

    def _aligned(self, content: list[str], sentence: list[Word]) -> tuple[list[int], float]:
        """Per content word, its best English word's position where the score is enough;
        and the scores' sum."""
        positions: list[int] = []
        total = 0.0
        if not sentence:
            return positions, total
        for word in content:
            scores = [self._score(word, target) for target, _, _ in sentence]
            if max(scores) < MIN_WORD_SCORE:  # a word the table has not learned well
                scores = [cognate_similarity(word, target) for target, _, _ in sentence]
            best = max(range(len(scores)), key=scores.__getitem__)
            if scores[best] >= MIN_WORD_SCORE:
                positions.append(best)
                total += scores[best]
        return positions, total

    def _score(self, source: str, target: str) -> float:
        if source == target and len(source) > 3:  # names, drugs, abbreviations kept as written
            return 1.0
        return self.alignment.score(source, target)
