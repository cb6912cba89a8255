"""Synthetic coded notes, so demos, tests and benchmarks run with no external data.

Notes are written from the templates in `templates/`: every assigned code is mentioned
through its real description or a synonym/abbreviation, and codes that are *not* assigned
are mentioned negated ("Denies chest pain.", "PE was ruled out.") so that bag-of-words
models meet realistic traps. Code frequencies are long-tailed (Zipf over a ranked
vocabulary), codes come in clinical clusters (a patient's chronic conditions plus an
acute episode per note), and patients have 1-3 notes, so grouped splits matter.

Everything is deterministic per seed: independent `random.Random` streams (seeded from
strings, which Python hashes stably) drive the vocabulary, the patients, the notes and the
bad rows, so turning bad rows on leaves the clean notes unchanged.

All text is synthetic; no real patient data is used.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import math
import random
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq

from autocode.corpus.schema import CODES, NOTE_ID, NOTE_SCHEMA, Note, notes_to_table

__all__ = [
    "BAD_ROW_KINDS",
    "CodeEntry",
    "SynthSummary",
    "build_vocabulary",
    "curated_codes",
    "generate_notes",
    "negation_templates",
    "write_synthetic_archive",
]

ArchiveFormat = Literal["parquet", "jsonl", "csv"]
_FORMATS = ("parquet", "jsonl", "csv")
_TEMPLATE_DIR = Path(__file__).with_name("templates")

BAD_ROW_KINDS = ("empty_text", "duplicate_note_id", "malformed_code", "missing_note_id")
# Each is invalid for its system (or has no system), so normalisation must reject it.
_MALFORMED_CODES = (
    "ICD10CM:??",
    "ICD10CM:",
    "ICD10CM:E11.9.9",
    "HCPCS:E06O1",
    "ICD10PCS:0DTJ4ZZZ",
    "CPT:9921",
    "UNKNOWN:123",
)
_BLANK_TEXTS = ("", " ", "\n", " \t\n ")

# Rank r gets weight 1 / (r + 1) ** s: a few codes on most notes, a long tail seen rarely.
_ZIPF_EXPONENT = 1.0
_CODES_PER_NOTE = tuple(range(3, 13))
_CODES_PER_NOTE_WEIGHTS = (8, 12, 14, 14, 13, 11, 9, 7, 6, 5)
_NOTES_PER_PATIENT = (1, 2, 3)
_NOTES_PER_PATIENT_WEIGHTS = (5, 3, 2)
_CHRONIC_CLUSTERS_PER_PATIENT = (0, 1, 2)
_CHRONIC_CLUSTERS_WEIGHTS = (1, 2, 1)
_NEGATIONS_PER_NOTE = (0, 1, 2, 3, 4)
_NEGATIONS_WEIGHTS = (2, 3, 3, 2, 1)
_EPISODE_RATE = 0.75  # share of notes built around an acute episode cluster
_EXTRA_MENTION_RATE = 0.6  # a code mentioned a second time (history, course)
_DISCHARGE_DIAGNOSES_RATE = 0.5
_EMPTY_SECTION_KEPT_RATE = 0.5  # otherwise an empty section is left out
_TYPO_RATE = 0.03  # per sentence
_ABBREVIATION_RATE = 0.08  # per sentence
_UPPER_CASE_NOTE_RATE = 0.02  # some legacy systems export upper case only
_MAX_FILL_ROUNDS = 20
# Median ~350 words, clipped to the lengths seen in discharge summaries and short visits.
_LENGTH_MEDIAN_WORDS = 350
_LENGTH_SIGMA = 0.6
_MIN_WORDS, _MAX_WORDS = 100, 1500
_AGE_RANGE = (18, 95)

_SECTIONS = (
    "chief_complaint",
    "hpi",
    "pmh",
    "hospital_course",
    "procedures",
    "medications",
    "assessment_plan",
    "discharge",
)
_LIST_SECTIONS = frozenset({"pmh", "procedures", "medications", "assessment_plan"})
# Where a code of each system is always mentioned; other template sections are extras.
_PRIMARY_SECTION = {
    "ICD10CM": "assessment_plan",
    "ICD10PCS": "procedures",
    "HCPCS": "medications",
    "CPT": "discharge",
}
# Random template fields: name -> (low, high, decimals) of a uniform integer draw.
_NUMBER_FIELDS: dict[str, tuple[int, int, int]] = {
    "days": (2, 14, 0),
    "day": (1, 7, 0),
    "count": (1, 6, 0),
    "minutes": (20, 45, 0),
    "sleep": (4, 9, 0),
    "sbp": (95, 175, 0),
    "dbp": (55, 100, 0),
    "hr": (55, 125, 0),
    "rr": (12, 24, 0),
    "spo2": (88, 100, 0),
    "temp": (361, 394, 1),
    "wbc": (35, 189, 1),
    "hgb": (70, 165, 1),
    "na": (128, 146, 0),
    "k": (30, 56, 1),
    "cr": (5, 39, 1),
    "glucose": (70, 320, 0),
    "weight": (45, 140, 0),
}
_GIVEN_FIELDS = frozenset({"p", "P", "n", "plan", "age", "sex"})
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class CodeEntry:
    """One code of the synthetic vocabulary and the ways a note may mention it."""

    code: str
    description: str
    phrases: tuple[str, ...]  # description first, then synonyms and abbreviations
    negatable: bool = False  # may appear negated in notes that do not carry it
    families: frozenset[str] = frozenset()  # codes sharing a family are never negated together
    sex: str | None = None

    @property
    def system(self) -> str:
        return self.code.partition(":")[0]


@dataclass(frozen=True)
class SynthSummary:
    """What `write_synthetic_archive` wrote. Bad rows are extra rows, not replacements."""

    files: tuple[Path, ...]
    notes: int  # clean notes, always the requested n_notes
    patients: int
    distinct_codes: int  # over the clean notes
    bad_rows: dict[str, int] = field(default_factory=dict)  # kind -> count

    @property
    def rows(self) -> int:
        return self.notes + sum(self.bad_rows.values())


# ----------------------------------------------------------------------------- vocabulary


@functools.cache
def _load_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_TEMPLATE_DIR / name).read_text(encoding="utf-8"))
    return data


def _families(code: str, extra: Iterable[str]) -> frozenset[str]:
    system, _, value = code.partition(":")
    # Sharing an ICD-10-CM category (E11.9, E11.22) is the default clash.
    category = {f"{system}:{value[:3]}"} if system == "ICD10CM" else set()
    return frozenset(category | set(extra))


@functools.cache
def _curated() -> tuple[CodeEntry, ...]:
    entries = tuple(
        CodeEntry(
            code=row["code"],
            description=row["description"],
            phrases=(row["description"], *row["synonyms"]),
            negatable=row.get("negatable", False),
            families=_families(row["code"], row.get("families", ())),
            sex=row.get("sex"),
        )
        for row in _load_json("codes.json")["codes"]
    )
    # Unique phrases make every mention attributable to exactly one code.
    seen: dict[str, str] = {}
    for entry in entries:
        for phrase in entry.phrases:
            other = seen.setdefault(phrase.lower(), entry.code)
            if other != entry.code:
                raise ValueError(f"phrase {phrase!r} is used by both {other} and {entry.code}")
    return entries


def curated_codes() -> list[CodeEntry]:
    """The embedded, hand-curated codes in rank order (most frequent first)."""
    return list(_curated())


@functools.cache
def _extension_pool() -> tuple[tuple[str, str], ...]:
    """Billable ICD-10-CM codes and descriptions not in the curated set, sorted by code."""
    import simple_icd_10_cm as cm  # slow import, needed only for large vocabularies

    curated = _curated()
    taken_codes = {entry.code for entry in curated}
    taken_phrases = {phrase.lower() for entry in curated for phrase in entry.phrases}
    pool = []
    for value in sorted(cm.get_all_codes(with_dots=True)):
        if not cm.is_leaf(value) or f"ICD10CM:{value}" in taken_codes:
            continue
        description = cm.get_description(value)
        if description.lower() not in taken_phrases:
            taken_phrases.add(description.lower())
            pool.append((f"ICD10CM:{value}", description))
    return tuple(pool)


def build_vocabulary(n_codes: int, seed: int = 0) -> list[CodeEntry]:
    """The `n_codes` codes notes draw from, in rank order.

    The curated codes come first; beyond them, billable ICD-10-CM codes are sampled with
    the seed from `simple_icd_10_cm`, and their official descriptions become the phrases.
    """
    curated = _curated()
    if n_codes <= len(curated):
        if n_codes < 1:
            raise ValueError(f"n_codes must be at least 1, got {n_codes}")
        return list(curated[:n_codes])
    pool = _extension_pool()
    if n_codes > len(curated) + len(pool):
        raise ValueError(f"n_codes must be at most {len(curated) + len(pool)}, got {n_codes}")
    rng = _stream(seed, "vocabulary")
    extension = rng.sample(pool, n_codes - len(curated))
    return [
        *curated,
        *(CodeEntry(code, text, (text,), families=_families(code, ())) for code, text in extension),
    ]


def negation_templates() -> list[str]:
    """Every template that mentions a code negated (`{p}` / `{P}`: the phrase)."""
    negations: dict[str, list[str]] = _load_json("text.json")["negations"]
    return [template for templates in negations.values() for template in templates]


# ----------------------------------------------------------------------------- templates

_Template = tuple[str, tuple[str, ...]]  # format string, the fields it uses


def _parse(texts: Iterable[str], known: frozenset[str]) -> tuple[_Template, ...]:
    parsed = []
    for text in texts:
        fields = tuple(sorted({name for _, name, _, _ in _FORMATTER.parse(text) if name}))
        unknown = set(fields) - known
        if unknown:
            raise ValueError(f"template {text!r} uses unknown fields {sorted(unknown)}")
        parsed.append((text, fields))
    return tuple(parsed)


def _phrase_values(phrase: str) -> dict[str, str]:
    return {"p": phrase, "P": phrase[:1].upper() + phrase[1:]}


@dataclass(frozen=True)
class _Cluster:
    name: str
    kind: str  # "chronic" (kept by a patient across notes) or "episode" (one note)
    weight: float
    members: tuple[tuple[int, float], ...]  # vocabulary index, inclusion probability
    sex: str | None
    ages: tuple[int, int]

    def fits(self, sex: str, age: int) -> bool:
        return self.sex in (None, sex) and self.ages[0] <= age <= self.ages[1]


@dataclass(frozen=True)
class _Patient:
    patient_id: str
    sex: str
    age: int
    chronic: tuple[_Cluster, ...]
    episodes: tuple[_Cluster, ...]
    episode_cum_weights: tuple[float, ...]


class _NoteFactory:
    """Pre-built tables and the per-note sampling; all randomness comes from the caller."""

    def __init__(self, vocabulary: list[CodeEntry]) -> None:
        text = _load_json("text.json")
        self.words: dict[str, list[str]] = text["words"]
        parse = functools.partial(
            _parse, known=_GIVEN_FIELDS | set(_NUMBER_FIELDS) | set(self.words)
        )

        self.vocabulary = vocabulary
        self.ranks = range(len(vocabulary))
        self.cum_weights = list(
            itertools.accumulate(1.0 / (rank + 1) ** _ZIPF_EXPONENT for rank in self.ranks)
        )
        index = {entry.code: i for i, entry in enumerate(vocabulary)}
        clusters = [_cluster(row, index) for row in _load_json("codes.json")["clusters"]]
        self.clusters = {
            kind: [c for c in clusters if c.kind == kind and c.members]
            for kind in ("chronic", "episode")
        }
        self.negatable = [entry for entry in _curated() if entry.negatable]
        self.headers: dict[str, list[str]] = text["headers"]
        self.sex_words: dict[str, list[str]] = text["sex_words"]
        self.plans: list[str] = text["plans"]
        self.empty_section = parse(text["empty_section"])
        self.chief_complaint = parse(text["chief_complaint"])
        self.chief_complaint_plain = parse(text["chief_complaint_without_diagnosis"])
        self.hpi_opening = parse(text["hpi_opening"])
        self.hpi_opening_plain = parse(text["hpi_opening_without_diagnosis"])
        self.discharge_diagnoses = parse(text["discharge_diagnoses"])
        self.dispositions = parse(text["dispositions"])
        self.mentions = {
            system: {section: parse(t) for section, t in sections.items()}
            for system, sections in text["mentions"].items()
        }
        self.negations = [
            (section, template)
            for section, templates in text["negations"].items()
            for template in parse(templates)
        ]
        self.distractors = [
            (section, template)
            for section, templates in text["distractors"].items()
            for template in parse(templates)
        ]
        distractor_words = [text.count(" ") + 1 for _, (text, _) in self.distractors]
        self.mean_distractor_words = sum(distractor_words) / len(distractor_words)
        self.abbreviations: dict[str, str] = text["abbreviations"]
        longest_first = sorted(self.abbreviations, key=len, reverse=True)
        self.abbreviation_pattern = re.compile(
            r"\b(" + "|".join(map(re.escape, longest_first)) + r")\b", re.IGNORECASE
        )

    def render(self, template: _Template, rng: random.Random, values: dict[str, str]) -> str:
        text, fields = template
        if not fields:
            return text
        for name in fields:
            if name in values:
                continue
            if name in self.words:
                values[name] = rng.choice(self.words[name])
            else:
                low, high, decimals = _NUMBER_FIELDS[name]
                number = rng.randint(low, high)
                values[name] = f"{number / 10**decimals:.{decimals}f}" if decimals else str(number)
        return text.format_map(values)

    # -- patients and codes

    def patient(self, rng: random.Random, patient_id: str) -> _Patient:
        sex = rng.choice(("F", "M"))
        age = rng.randint(*_AGE_RANGE)
        chronic = [c for c in self.clusters["chronic"] if c.fits(sex, age)]
        n_chronic = rng.choices(_CHRONIC_CLUSTERS_PER_PATIENT, _CHRONIC_CLUSTERS_WEIGHTS)[0]
        picked: dict[str, _Cluster] = {}
        if chronic:
            for cluster in rng.choices(chronic, [c.weight for c in chronic], k=n_chronic):
                picked[cluster.name] = cluster
        episodes = tuple(c for c in self.clusters["episode"] if c.fits(sex, age))
        cum = tuple(itertools.accumulate(c.weight for c in episodes))
        return _Patient(patient_id, sex, age, tuple(picked.values()), episodes, cum)

    def sample_codes(self, rng: random.Random, patient: _Patient) -> list[int]:
        """Vocabulary indices for one note, the principal (episode) codes first."""
        k = min(rng.choices(_CODES_PER_NOTE, _CODES_PER_NOTE_WEIGHTS)[0], len(self.vocabulary))
        clusters = list(patient.chronic)
        if patient.episodes and rng.random() < _EPISODE_RATE:
            episode = rng.choices(patient.episodes, cum_weights=patient.episode_cum_weights)[0]
            clusters.insert(0, episode)
        chosen = dict.fromkeys(
            index for cluster in clusters for index, p in cluster.members if rng.random() < p
        )
        if len(chosen) > k:
            chosen = dict.fromkeys(list(chosen)[:k])
        for _ in range(_MAX_FILL_ROUNDS):
            if len(chosen) >= k:
                break
            for index in rng.choices(self.ranks, cum_weights=self.cum_weights, k=k):
                if self.vocabulary[index].sex in (None, patient.sex):
                    chosen[index] = None
                    if len(chosen) == k:
                        break
        return list(chosen)

    # -- text

    def note(self, rng: random.Random, note_id: str, patient: _Patient, encounter_id: str) -> Note:
        codes = [self.vocabulary[i] for i in self.sample_codes(rng, patient)]
        return Note(
            note_id=note_id,
            text=self.write_text(rng, codes, patient),
            codes=[entry.code for entry in codes],
            patient_id=patient.patient_id,
            encounter_id=encounter_id,
        )

    def write_text(self, rng: random.Random, codes: list[CodeEntry], patient: _Patient) -> str:
        sections: dict[str, list[str]] = {name: [] for name in _SECTIONS}
        self._write_opening(rng, sections, codes, patient)
        self._write_mentions(rng, sections, codes)
        self._write_negations(rng, sections, codes)
        sections["discharge"].append(self.render(rng.choice(self.dispositions), rng, {}))
        self._write_distractors(rng, sections)
        return self._assemble(rng, sections)

    def _write_opening(
        self,
        rng: random.Random,
        sections: dict[str, list[str]],
        codes: list[CodeEntry],
        patient: _Patient,
    ) -> None:
        values = {"age": str(patient.age), "sex": rng.choice(self.sex_words[patient.sex])}
        principal = next((entry for entry in codes if entry.system == "ICD10CM"), None)
        if principal is None:
            sections["chief_complaint"].append(
                self.render(rng.choice(self.chief_complaint_plain), rng, {})
            )
            sections["hpi"].append(self.render(rng.choice(self.hpi_opening_plain), rng, values))
            return
        complaint = _phrase_values(rng.choice(principal.phrases))
        sections["chief_complaint"].append(
            self.render(rng.choice(self.chief_complaint), rng, complaint)
        )
        values |= _phrase_values(rng.choice(principal.phrases))
        sections["hpi"].append(self.render(rng.choice(self.hpi_opening), rng, values))

    def _write_mentions(
        self, rng: random.Random, sections: dict[str, list[str]], codes: list[CodeEntry]
    ) -> None:
        problem_number = 0
        for entry in codes:
            templates = self.mentions[entry.system]
            primary = _PRIMARY_SECTION[entry.system]
            values = _phrase_values(rng.choice(entry.phrases))
            if primary == "assessment_plan":
                problem_number += 1
                values |= {"n": str(problem_number), "plan": rng.choice(self.plans)}
            sections[primary].append(self.render(rng.choice(templates[primary]), rng, values))
            extras = [section for section in templates if section != primary]
            if extras and rng.random() < _EXTRA_MENTION_RATE:
                section = rng.choice(extras)
                values = _phrase_values(rng.choice(entry.phrases))
                sections[section].append(self.render(rng.choice(templates[section]), rng, values))
        diagnoses = [rng.choice(e.phrases) for e in codes if e.system == "ICD10CM"]
        if diagnoses and rng.random() < _DISCHARGE_DIAGNOSES_RATE:
            values = {"p": "; ".join(diagnoses)}
            sections["discharge"].append(
                self.render(rng.choice(self.discharge_diagnoses), rng, values)
            )

    def _write_negations(
        self, rng: random.Random, sections: dict[str, list[str]], codes: list[CodeEntry]
    ) -> None:
        # Never deny a code the note carries, nor one clashing with it (no "denies
        # diabetes" next to diabetic CKD).
        blocked: set[str] = set().union(*(entry.families for entry in codes))
        assigned = {entry.code for entry in codes}
        wanted = rng.choices(_NEGATIONS_PER_NOTE, _NEGATIONS_WEIGHTS)[0]
        for entry in rng.sample(self.negatable, min(2 * wanted, len(self.negatable))):
            if wanted == 0:
                break
            if entry.code in assigned or entry.families & blocked:
                continue
            section, template = rng.choice(self.negations)
            phrase = rng.choice(entry.phrases[1:] or entry.phrases)  # short forms read naturally
            sections[section].append(self.render(template, rng, _phrase_values(phrase)))
            blocked |= entry.families
            wanted -= 1

    def _write_distractors(self, rng: random.Random, sections: dict[str, list[str]]) -> None:
        target = math.exp(rng.gauss(math.log(_LENGTH_MEDIAN_WORDS), _LENGTH_SIGMA))
        target = min(max(target, _MIN_WORDS), _MAX_WORDS)
        words = sum(s.count(" ") + 1 for sentences in sections.values() for s in sentences)
        n = max(0, round((target - words) / self.mean_distractor_words))
        while n > 0:  # without replacement, so short notes do not repeat themselves
            for section, template in rng.sample(self.distractors, min(n, len(self.distractors))):
                sections[section].append(self.render(template, rng, {}))
            n -= len(self.distractors)

    def _assemble(self, rng: random.Random, sections: dict[str, list[str]]) -> str:
        blocks = []
        for name in _SECTIONS:
            sentences = [self._add_noise(rng, s) for s in sections[name]]
            if name == "hpi":
                rest = sentences[1:]  # the opening sentence stays first
                rng.shuffle(rest)
                sentences = sentences[:1] + rest
            elif name != "assessment_plan":  # problems keep their numbering
                rng.shuffle(sentences)
            if not sentences:
                if rng.random() >= _EMPTY_SECTION_KEPT_RATE:
                    continue
                sentences = [self.render(rng.choice(self.empty_section), rng, {})]
            joiner = "\n" if name in _LIST_SECTIONS else " "
            blocks.append(f"{rng.choice(self.headers[name])}\n{joiner.join(sentences)}")
        text = "\n\n".join(blocks)
        return text.upper() if rng.random() < _UPPER_CASE_NOTE_RATE else text

    def _add_noise(self, rng: random.Random, sentence: str) -> str:
        draw = rng.random()
        if draw < _TYPO_RATE:
            return _typo(rng, sentence)
        if draw < _TYPO_RATE + _ABBREVIATION_RATE:
            return self.abbreviation_pattern.sub(
                lambda m: self.abbreviations[m.group(0).lower()], sentence
            )
        return sentence


def _cluster(row: dict[str, Any], index: dict[str, int]) -> _Cluster:
    # Members outside a small vocabulary are dropped, so any n_codes works.
    members = tuple((index[c], p) for c, p in row["codes"].items() if c in index)
    ages = tuple(row.get("age", _AGE_RANGE))
    return _Cluster(
        row["name"], row["kind"], row["weight"], members, row.get("sex"), (ages[0], ages[1])
    )


def _typo(rng: random.Random, sentence: str) -> str:
    """Swap, drop or double one inner letter of a random word (if it is long enough)."""
    words = sentence.split(" ")
    i = rng.randrange(len(words))
    word = words[i]
    if len(word) < 4 or not word.isalpha():
        return sentence
    j = rng.randrange(1, len(word) - 1)
    edits = (
        word[:j] + word[j + 1] + word[j] + word[j + 2 :],
        word[:j] + word[j + 1 :],
        word[:j] + word[j] + word[j:],
    )
    words[i] = rng.choice(edits)
    return " ".join(words)


# ----------------------------------------------------------------------------- streams


def _stream(seed: int, purpose: str) -> random.Random:
    # String seeds are hashed with SHA-512, so streams are stable across runs and processes.
    return random.Random(f"autocode-synth:{seed}:{purpose}")


def _notes_per_patient(n_notes: int, n_patients: int | None, rng: random.Random) -> Iterator[int]:
    if n_patients is None:
        remaining = n_notes
        while remaining:
            count = min(rng.choices(_NOTES_PER_PATIENT, _NOTES_PER_PATIENT_WEIGHTS)[0], remaining)
            yield count
            remaining -= count
        return
    counts = [1] * n_patients  # every patient has a note; the rest land at random
    for _ in range(n_notes - n_patients):
        counts[rng.randrange(n_patients)] += 1
    yield from counts


def _rows(
    n_notes: int, seed: int, n_codes: int, n_patients: int | None, bad_row_rate: float
) -> Iterator[tuple[Note, str | None]]:
    """Clean notes, each possibly followed by one bad row, as (note, bad kind or None).

    Arguments are checked here, eagerly, so errors surface before any iteration.
    """
    _check_sizes(n_notes, n_patients, bad_row_rate)
    factory = _NoteFactory(build_vocabulary(n_codes, seed))
    return _iter_rows(factory, n_notes, seed, n_patients, bad_row_rate)


def _iter_rows(
    factory: _NoteFactory, n_notes: int, seed: int, n_patients: int | None, bad_row_rate: float
) -> Iterator[tuple[Note, str | None]]:
    notes_rng, patients_rng, bad_rng = (
        _stream(seed, name) for name in ("notes", "patients", "bad-rows")
    )
    note_number = bad_number = 0
    counts = _notes_per_patient(n_notes, n_patients, patients_rng)
    for patient_number, count in enumerate(counts):
        patient = factory.patient(notes_rng, f"P{patient_number:07d}")
        for _ in range(count):
            note_id = f"N{note_number:08d}"
            yield factory.note(notes_rng, note_id, patient, f"E{note_number:08d}"), None
            note_number += 1
            if bad_row_rate and bad_rng.random() < bad_row_rate:
                kind = bad_rng.choice(BAD_ROW_KINDS)
                bad_id = f"B{bad_number:08d}"
                yield _bad_row(factory, bad_rng, kind, patient, note_id, bad_id), kind
                bad_number += 1


def _bad_row(
    factory: _NoteFactory,
    rng: random.Random,
    kind: str,
    patient: _Patient,
    last_id: str,
    bad_id: str,
) -> Note:
    """A fresh note with exactly one defect of the given kind."""
    note = factory.note(rng, bad_id, patient, f"E{bad_id}")
    if kind == "empty_text":
        return replace(note, text=rng.choice(_BLANK_TEXTS))
    if kind == "duplicate_note_id":  # a different note reusing the previous note's id
        return replace(note, note_id=last_id)
    if kind == "missing_note_id":
        return replace(note, note_id="")
    codes = list(note.codes)
    codes[rng.randrange(len(codes))] = rng.choice(_MALFORMED_CODES)
    return replace(note, codes=codes)


def _check_sizes(n_notes: int, n_patients: int | None, bad_row_rate: float) -> None:
    if n_notes < 0:
        raise ValueError(f"n_notes must be >= 0, got {n_notes}")
    if n_patients is not None and not 1 <= n_patients <= n_notes:
        raise ValueError(f"n_patients must be between 1 and n_notes={n_notes}, got {n_patients}")
    if not 0.0 <= bad_row_rate <= 1.0:
        raise ValueError(f"bad_row_rate must be between 0 and 1, got {bad_row_rate}")


def generate_notes(
    n_notes: int,
    seed: int = 0,
    *,
    n_codes: int = 200,
    n_patients: int | None = None,
    bad_row_rate: float = 0.0,
) -> Iterator[Note]:
    """`n_notes` synthetic notes, generated lazily, plus bad rows when `bad_row_rate` > 0.

    Patients get 1-3 notes each, or, with `n_patients`, the notes are spread over exactly
    that many patients. Bad rows are described in `write_synthetic_archive`; here a
    missing note id is an empty string.
    """
    return (note for note, _ in _rows(n_notes, seed, n_codes, n_patients, bad_row_rate))


# ----------------------------------------------------------------------------- writing


def _write_part(path: Path, notes: list[Note], fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(notes_to_table(notes), path)
        return
    with path.open("w", encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            for note in notes:
                row = note.as_row()
                row[NOTE_ID] = note.note_id or None  # a missing id is null, not ""
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        writer = csv.writer(f)
        writer.writerow(NOTE_SCHEMA.names)
        for note in notes:
            row = note.as_row()
            row[CODES] = ";".join(note.codes)
            writer.writerow(["" if row[name] is None else row[name] for name in NOTE_SCHEMA.names])


def write_synthetic_archive(
    out_dir: Path,
    n_notes: int,
    seed: int = 0,
    *,
    n_codes: int = 200,
    n_patients: int | None = None,
    fmt: ArchiveFormat = "parquet",
    rows_per_file: int = 50_000,
    bad_row_rate: float = 0.0,
) -> SynthSummary:
    """Write a synthetic note archive as part files `notes-00000.<fmt>`, ... in `out_dir`.

    Notes are generated and written `rows_per_file` rows at a time, so archive size is not
    bounded by memory. Columns follow `NOTE_SCHEMA`; JSONL writes `codes` as a list, CSV as
    one `;`-joined string.

    With `bad_row_rate` > 0, each clean note is followed, with that probability, by one
    *additional* bad row (so the archive has `n_notes + sum(bad_rows)` rows): blank text,
    a duplicate of the previous note's id, a malformed code such as `ICD10CM:??`, or a
    missing note id (an empty string in Parquet, whose schema forbids nulls; null in JSONL;
    an empty cell in CSV). The clean notes are identical to those with `bad_row_rate=0`.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {list(_FORMATS)}, got {fmt!r}")
    if rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1, got {rows_per_file}")
    rows = _rows(n_notes, seed, n_codes, n_patients, bad_row_rate)  # checks the rest
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(out_dir.glob("notes-*"))
    if existing:
        raise FileExistsError(f"{out_dir} already holds an archive ({existing[0].name}, ...)")

    files: list[Path] = []
    bad_rows = dict.fromkeys(BAD_ROW_KINDS, 0)
    codes: set[str] = set()
    patients: set[str | None] = set()
    chunk: list[Note] = []

    def flush() -> None:
        path = out_dir / f"notes-{len(files):05d}.{fmt}"
        _write_part(path, chunk, fmt)
        files.append(path)
        chunk.clear()

    for note, kind in rows:
        if kind is None:
            codes.update(note.codes)
            patients.add(note.patient_id)
        else:
            bad_rows[kind] += 1
        chunk.append(note)
        if len(chunk) == rows_per_file:
            flush()
    if chunk:
        flush()
    return SynthSummary(tuple(files), n_notes, len(patients), len(codes), bad_rows)
