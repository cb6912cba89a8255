"""Terms mined from annotated evidence: the words annotators marked behind each gold code.

CodiEsp-X gives, per gold code of a training note, the characters of the Spanish text
behind it ("exposición a Brucella" for Z20.818). Each code's distinct mentions, normalised,
are terms a matcher can look for in other notes. They are the gold of the notes they came
from, so a mined term may only help notes it was not mined from: every term keeps the
fingerprints (`note_fingerprint`, a SHA-256; never the text) of the notes it was mined
from, and a model asks only for the terms mined from the notes it is fitted on
(`MinedTerms.terms`). A cross-fitted model's fold thus sees its training folds' mentions
only, never those of the notes it scores out of fold.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocode.knowledge.lexicon import content_words
from autocode.knowledge.terms import code_group

if TYPE_CHECKING:
    from autocode.corpus.codiesp import Mention as CodiespMention

_SPACE = re.compile(r"\s+")
# A mention longer than this is not a term but a passage of the note, which a saved model
# would carry: dropped (9,175 of the 9,181 CodiEsp-X training mentions are within both).
MAX_TERM_WORDS = 8
MAX_TERM_CHARS = 80
# Punctuation around a mention ("edemas," or "(HTA)") is not part of the term.
_EDGE_PUNCTUATION = " \t\n.,;:()[]{}\"'¿?¡!-/"


def note_fingerprint(text: str) -> str:
    """The hex SHA-256 of the note's UTF-8 text: what a mined term remembers of its notes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprints(texts: Iterable[str]) -> frozenset[str]:
    return frozenset(map(note_fingerprint, texts))


def normalise_mention(mention: str) -> str:
    """Lowercased, runs of white space as one space, punctuation around it dropped."""
    return _SPACE.sub(" ", mention.lower()).strip(_EDGE_PUNCTUATION)


def term_key(term: str) -> tuple[str, ...]:
    """What the lexicon matches of a term: its content words, folded, in order. Mentions
    with the same key ("Edemas", "edema") are one term."""
    return tuple(word for word, _, _ in content_words(term))


@dataclass(frozen=True)
class Mention:
    """One annotated mention: the code, the marked text and the note's fingerprint."""

    code: str
    text: str
    note: str  # `note_fingerprint` of the note's text


@dataclass
class MinedTerms:
    """Per code, its distinct normalised mentions and the notes each was mined from.

    `min_notes`: a term is used only where at least this many distinct notes of a fit
    mention it (2 keeps the phrases more than one annotator or note used).
    """

    by_code: dict[str, dict[str, frozenset[str]]]
    min_notes: int = 1
    # How the mentions became terms, for the run's lineage (counts only, no text).
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.min_notes < 1:
            raise ValueError(f"min_notes must be >= 1, got {self.min_notes}")
        by_group: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for code, terms in self.by_code.items():
            for term, notes in terms.items():
                by_group[code_group(code)][term] |= notes
        self._by_group = {
            group: {term: frozenset(notes) for term, notes in terms.items()}
            for group, terms in by_group.items()
        }

    @classmethod
    def from_mentions(
        cls,
        mentions: Iterable[Mention],
        min_notes: int = 1,
        provenance: dict[str, Any] | None = None,
    ) -> MinedTerms:
        """Mentions with the same `term_key` merge under the first one's spelling; those
        without a content word, or longer than `MAX_TERM_WORDS` / `MAX_TERM_CHARS`, are
        dropped."""
        spelling: dict[tuple[str, tuple[str, ...]], str] = {}
        notes: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for mention in mentions:
            term = normalise_mention(mention.text)
            key = term_key(term)
            if not key or len(key) > MAX_TERM_WORDS or len(term) > MAX_TERM_CHARS:
                continue
            term = spelling.setdefault((mention.code, key), term)
            notes[mention.code][term].add(mention.note)
        by_code = {
            code: {term: frozenset(found) for term, found in terms.items()}
            for code, terms in notes.items()
        }
        return cls(by_code, min_notes, provenance or {})

    def __len__(self) -> int:
        return sum(map(len, self.by_code.values()))

    def terms(self, code: str, notes: frozenset[str]) -> list[str]:
        """The code's terms mined from at least `min_notes` of `notes` (fingerprints of
        the fit's texts), most mentioned first."""
        return self._supported(self.by_code.get(code, {}), notes)

    def supported_by(self, notes: frozenset[str]) -> int:
        """How many terms `min_notes` of `notes` (fingerprints) support."""
        return sum(len(self.terms(code, notes)) for code in self.by_code)

    def family_terms(self, group: str, notes: frozenset[str]) -> list[str]:
        """`terms` of a family (`code_group`, "ICD10CM:N44"): its codes' terms together."""
        return self._supported(self._by_group.get(group, {}), notes)

    def _supported(self, mined: dict[str, frozenset[str]], notes: frozenset[str]) -> list[str]:
        counted = [(len(sources & notes), term) for term, sources in mined.items()]
        return [term for count, term in sorted(counted, key=_most_first) if count >= self.min_notes]

    def lineage(self) -> dict[str, Any]:
        """How many terms there are and how they are filtered (no mention text; the
        file they came from is among the knowledge's source files)."""
        return {"min_notes": self.min_notes, "terms": len(self), **self.provenance}


def _most_first(counted: tuple[int, str]) -> tuple[int, str]:
    count, term = counted
    return -count, term


def mine_codiesp_x(mentions_file: Path, min_notes: int = 1, language: str = "es") -> MinedTerms:
    """The terms of a CodiEsp-X file (`<root>/<split>/<split>X.tsv`) for notes in
    `language`, fingerprinted as the loader's text of that language.

    Spanish ("es"): each mention's text read at its spans in the Spanish note (pieces of a
    split mention joined by a space). English ("en"): each mention projected onto the
    note's English translation (`knowledge.projection`), through word translations
    learned from the split's and the `background/` folder's parallel notes; mentions the
    translation does not carry are left out (`lineage` counts them).
    """
    from autocode.corpus.codiesp import read_codiesp_mentions

    split_dir = mentions_file.parent
    if mentions_file.name != f"{split_dir.name}X.tsv":
        raise ValueError(
            f"{mentions_file}: expected a CodiEsp-X file named <split>X.tsv in its split folder"
        )
    if language not in MENTION_LANGUAGES:
        raise ValueError(f"mined terms: language {language!r} not one of {MENTION_LANGUAGES}")
    root, split = split_dir.parent, split_dir.name
    spanish = _split_texts(root, split, "es")
    mentions = read_codiesp_mentions(root, split)
    if language == "es":
        fingerprint_of = {note_id: note_fingerprint(text) for note_id, text in spanish.items()}
        mined = (
            Mention(mention.code, _marked_text(spanish[mention.note_id], mention.spans), found)
            for mention in mentions
            if (found := fingerprint_of.get(mention.note_id)) is not None
        )
        return MinedTerms.from_mentions(mined, min_notes, {"language": "es"})
    english = _split_texts(root, split, "en")
    return _projected_terms(root, split, spanish, english, mentions, min_notes)


MENTION_LANGUAGES = ("es", "en")


def _split_texts(root: Path, split: str, language: str) -> dict[str, str]:
    from autocode.corpus.load import LoadOptions, load_notes

    options = LoadOptions(format="codiesp", splits=(split,), language=language)
    table = load_notes(root, options).table
    return dict(
        zip(table.column("note_id").to_pylist(), table.column("text").to_pylist(), strict=True)
    )


def _projected_terms(
    root: Path,
    split: str,
    spanish: dict[str, str],
    english: dict[str, str],
    mentions: Sequence[CodiespMention],
    min_notes: int,
) -> MinedTerms:
    from autocode.knowledge.projection import MentionProjector, parallel_sentences
    from autocode.knowledge.word_alignment import WordAlignment

    both = sorted(set(spanish) & set(english))
    documents = [(spanish[note], english[note]) for note in both]
    documents += _background_documents(root, split)
    projector = MentionProjector(WordAlignment.fit(parallel_sentences(documents)))
    by_note: dict[str, list[CodiespMention]] = defaultdict(list)
    for mention in mentions:
        by_note[mention.note_id].append(mention)
    projected: list[Mention] = []
    for note in both:
        source, target = spanish[note], english[note]
        fingerprint = note_fingerprint(target)
        spans = projector.project(source, target, [m.spans for m in by_note.get(note, [])])
        projected.extend(
            Mention(mention.code, target[span[0] : span[1]], fingerprint)
            for mention, span in zip(by_note.get(note, []), spans, strict=True)
            if span is not None
        )
    provenance = {"language": "en", "mentions": len(mentions), "projected": len(projected)}
    return MinedTerms.from_mentions(projected, min_notes, provenance)


def _background_documents(root: Path, split: str) -> list[tuple[str, str]]:
    """(Spanish, English) texts of the unlabelled `background/` notes, where present: more
    sentence pairs for the word translations, no codes. CodiEsp hid its test notes among
    them: a background note whose name or text is a note of another split (dev, test)
    is left out, so the word translations never learn from notes a model is scored on."""
    background = root / "background"
    spanish_dir, english_dir = background / "text_files", background / "text_files_en"
    if not (spanish_dir.is_dir() and english_dir.is_dir()):
        return []
    scored = [
        path
        for folder in root.iterdir()
        if folder.is_dir() and folder.name not in {split, background.name}
        for path in (folder / "text_files").glob("*.txt")
    ]
    scored_names = {path.name for path in scored}
    scored_texts = fingerprints(path.read_text("utf-8") for path in scored)
    documents = []
    for path in sorted(spanish_dir.glob("*.txt")):
        english = english_dir / path.name
        if path.name in scored_names or not english.is_file():
            continue
        spanish = path.read_text("utf-8")
        if note_fingerprint(spanish) not in scored_texts:
            documents.append((spanish, english.read_text("utf-8")))
    return documents


def _marked_text(text: str, spans: Sequence[tuple[int, int]]) -> str:
    return " ".join(text[start:end] for start, end in spans)
