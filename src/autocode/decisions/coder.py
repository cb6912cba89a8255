"""The Coder: everything inference needs, saved and loaded as one directory.

model + LabelSpace + calibration + thresholds + review policy, the ICD-10-CM facts
routing needs about its codes (`RoutingFacts`) and their names (`label_names`, which
`unaffirmed` finds in a note), and optionally the open part: codes
beyond the label space that the code names in a note propose (`OpenCodes`). Loading it
needs no training data and reads no code table (an open part builds its index of code
names, saved with it, on first use); `predict_proba` returns calibrated probabilities.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from autocode.collector import collector_paused
from autocode.decisions.calibration import Calibrator, calibrator_from_dict
from autocode.decisions.name_files import read_names, write_names
from autocode.decisions.open_codes import OpenCodes, OpenProposal, part_for
from autocode.decisions.policy import ReviewPolicy
from autocode.decisions.routing_facts import RoutingFacts
from autocode.decisions.term_rules import Span, TermRules
from autocode.decisions.thresholds import Thresholds
from autocode.knowledge.candidates import CandidateIndex, Name, label_code_names
from autocode.knowledge.context import NOT_CODED
from autocode.labels import LABELS_FILE, LabelSpace
from autocode.models import CodingModel, model_class
from autocode.models.base import (
    CodesOnGpu,
    CopiesForBatchCoding,
    ExplainsPredictions,
    KnowsWords,
    ReadsLimitedInput,
    explain_notes,
    label_difference,
)
from autocode.models.evidence import EvidenceSpan
from autocode.models.saved import check_version

CODER_FILE = "coder.json"
CODER_ARTIFACT = "coder"  # the Coder directory's name inside a logged MLflow model
MODEL_DIR = "model"
# Of coder.json and labels.json; the model directory versions its own files.
# 2: models saved as JSON and arrays, no pickles.
FORMAT_VERSION = 2
SEMANTIC_DIR = "semantic"  # the open part's sentence encoder and code embeddings
HOLDING_NAMES_FILE = "label-holding-names.json.gz"  # `Coder.label_holding_names`
# Made-up notes `warm_up` codes (what they save a server's first request: `infer/pyfunc.py`).
WARM_UP_NOTES = 20


@dataclass
class Coder:
    model: CodingModel
    model_name: str
    labels: LabelSpace
    calibrator: Calibrator
    thresholds: Thresholds
    policy: ReviewPolicy
    info: dict[str, Any] = field(default_factory=dict)
    # Facts of the label space's codes, from training; None (a Coder saved before they
    # were stored) makes routing look each note's codes up in the tabular.
    routing_facts: RoutingFacts | None = None
    # ICD-10-CM codes beyond the label space, proposed from the names a note mentions;
    # None: none.
    open_codes: OpenCodes | None = None
    # Mined terms whose mention accepts their code without review, with the held-out
    # check that chose them (it may have chosen none); None: not asked for.
    term_rules: TermRules | None = None
    # ICD-10-PCS prefixes beyond the label space, named by operation and body part.
    open_procedures: OpenCodes | None = None
    # The names of the label space's ICD-10-CM codes, read from the whole code system at
    # training (`label_code_names`), for `unaffirmed`; None (a Coder saved before they
    # were stored) makes it index every code's names again, in each process.
    label_names: tuple[Name, ...] | None = None
    # Whether `unaffirmed` looks for codes named only negated (and, with
    # `hold_named_within`, within other codes' names); else it finds none.
    hold_unaffirmed: bool = True
    # The ICD-10-CM code names that can hold a mention of `label_names`
    # (`label_holding_names`): for `unaffirmed`, a mention inside a longer name of other
    # codes affirms nothing. None (a Coder saved before they were stored): it affirms.
    label_holding_names: tuple[Name, ...] | None = field(default=None, repr=False)
    # Whether `unaffirmed` also finds the codes whose every mention not negated lies
    # inside those longer names ("fever" in "Q fever"). False for a Coder saved before it
    # did, so that a saved Coder keeps deciding as it did.
    hold_named_within: bool = True
    # The calibrated probability from which a code that a backing term of `term_rules`
    # backs in a note is accepted there (`decisions.policy.backing_threshold`); None: no
    # backing term accepts.
    backing_threshold: float | None = None
    # `unaffirmed`'s indexes of `label_names` and `label_holding_names`, built on first use.
    _label_index: CandidateIndex | None = field(default=None, init=False, repr=False)
    _holding_index: CandidateIndex | None = field(default=None, init=False, repr=False)

    @property
    def open_parts(self) -> list[OpenCodes]:
        """The open parts it has, ICD-10-CM's first."""
        return [part for part in (self.open_codes, self.open_procedures) if part is not None]

    def open_part_of(self, code: str) -> OpenCodes | None:
        """The open part that proposes codes of `code`'s system; None if none does."""
        return part_for(code, self.open_parts)

    def raw_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict_proba(texts)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, one column per code of the label space."""
        return self.calibrator.transform(self.raw_proba(texts))

    def open_proposals(self, texts: Sequence[str]) -> list[list[OpenProposal]]:
        """Per note, the open parts' proposals (codes outside the label space at or above
        their part's threshold), most probable first; empty lists without an open part."""
        proposals: list[list[OpenProposal]] = [[] for _ in texts]
        counts = dict(zip(self.labels.codes_, self.labels.counts_.tolist(), strict=True))
        for part in self.open_parts:
            for note, proposed in zip(proposals, part.propose(texts, counts), strict=True):
                note.extend(proposed)
        return [sorted(note, key=lambda p: -p.probability) for note in proposals]

    @property
    def backs_on_terms(self) -> bool:
        """Whether backing terms can accept a code (there are some, and a threshold)."""
        rules = self.term_rules
        return rules is not None and bool(rules.backing) and self.backing_threshold is not None

    @property
    def accepts_on_terms(self) -> bool:
        """Whether a term of the note can accept a code: a rule, or a backing term."""
        return self.term_rules is not None and (bool(self.term_rules.rules) or self.backs_on_terms)

    def rule_accepts(
        self, texts: Sequence[str], probs: np.ndarray | None = None
    ) -> list[dict[str, Span]] | None:
        """Per note, the label-space codes its term rules accept, and those its backing
        terms back that its calibrated `probs` score at the backing threshold, each with
        the characters of the term's mention; None without rules or backing terms.
        `probs`: the notes' `predict_proba`, when the caller has them (else scored here,
        where backing terms need them)."""
        if self.term_rules is None or not self.accepts_on_terms:
            return None
        known = set(self.labels.codes_)
        backable = None
        if self.backs_on_terms:
            if probs is None:
                probs = self.predict_proba(texts)
            codes = self.labels.codes_
            backable = [
                {codes[j] for j in np.flatnonzero(row >= self.backing_threshold)} for row in probs
            ]
        return [
            {code: span for code, span in spans.items() if code in known}
            for spans in self.term_rules.accepted(texts, backable)
        ]

    def unaffirmed(self, texts: Sequence[str], probs: np.ndarray | None = None) -> list[set[str]]:
        """Per note, the label-space ICD-10-CM codes whose names (`knowledge.candidates`)
        it mentions only in contexts that do not code ("No fever." names R50.9 negated):
        the open part's blocking contexts, or `NOT_CODED` without one. The policy never
        accepts these without review (`decisions.routing`): the learned scores read the
        word, not its negation. A mention inside a longer name of other codes
        (`label_holding_names`: "fever" in "dengue fever") affirms nothing, so with
        `hold_named_within` a code named only so ("Q fever was diagnosed.") is among
        them too. Given the notes' calibrated `probs`, only the codes the review policy
        accepts are looked for, and a note it accepts none of is not read. None at all
        where the Coder was trained not to hold them (`hold_unaffirmed`)."""
        if not self.hold_unaffirmed:
            return [set() for _ in texts]
        index = self.label_name_index()
        if probs is None:
            return [self._unaffirmed_in(text, None) for text in texts]
        accepted = self.policy.accepts(probs)
        found = []
        for text, row in zip(texts, accepted, strict=True):
            codes = {self.labels.codes_[j] for j in np.flatnonzero(row)} & index.codes
            found.append(self._unaffirmed_in(text, codes) if codes else set())
        return found

    def _unaffirmed_in(self, text: str, codes: set[str] | None) -> set[str]:
        """`unaffirmed` for one note, of `codes` (else any label-space code)."""
        index, holding = self.label_name_index(), self.holding_name_index()
        if holding is not None and self.hold_named_within:
            return index.never_affirmed(text, codes, holding)
        return index.only_blocked(text, codes, holding)

    def label_name_index(self) -> CandidateIndex:
        """The index of the label space's ICD-10-CM code names, read with the open part's
        blocking contexts (else `NOT_CODED`): only these codes' mentions matter to
        `unaffirmed`, and a few thousand names are found far faster than every code's."""
        if self._label_index is None:
            blocking = self.open_codes.blocking if self.open_codes is not None else NOT_CODED
            names = self.label_names
            if names is None:
                names = label_code_names(self.labels.codes_)
            self._label_index = CandidateIndex.of_names(names, blocking)
        return self._label_index

    def holding_name_index(self) -> CandidateIndex | None:
        """The index of `label_holding_names` (None without them), built on first use."""
        if self._holding_index is None and self.label_holding_names is not None:
            self._holding_index = CandidateIndex.of_names(self.label_holding_names, ())
        return self._holding_index

    def predicted_codes(self, probs: np.ndarray) -> list[list[str]]:
        """Codes at or above their tuned decision threshold."""
        return self.labels.decode(self.thresholds.apply(probs))

    def evidence(
        self, text: str, codes: Sequence[str], top_n: int = 3
    ) -> dict[str, list[EvidenceSpan]]:
        """Note spans behind each code's score; empty when the model cannot explain itself."""
        return self.evidence_batch([text], [codes], top_n)[0]

    def evidence_batch(
        self, texts: Sequence[str], codes: Sequence[Sequence[str]], top_n: int = 3
    ) -> list[dict[str, list[EvidenceSpan]]]:
        """`evidence` of each note for its own codes, the model explaining all at once."""
        if not isinstance(self.model, ExplainsPredictions):
            return [{code: [] for code in note_codes} for note_codes in codes]
        indices = [[self.labels.index(code) for code in note_codes] for note_codes in codes]
        spans = explain_notes(self.model, texts, indices, top_n)
        return [
            dict(zip(note_codes, note_spans, strict=True))
            for note_codes, note_spans in zip(codes, spans, strict=True)
        ]

    def codes_on_gpu(self) -> bool:
        """Whether the model (or a base model of its stack) predicts on a GPU."""
        return isinstance(self.model, CodesOnGpu) and self.model.codes_on_gpu()

    @collector_paused()  # indexes and lookup tables that live as long as the Coder
    def warm_up(self) -> None:
        """Builds now what coding the first notes would build: the libraries' first-call
        checks, the model's lookup tables (evidence's too) and the open part's name index;
        and codes made-up notes of the model's own words, whose lookups real notes repeat.
        Before a fork the workers then share them; at a server's start no request pays."""
        made_up = made_up_notes(
            self.model.known_words() if isinstance(self.model, KnowsWords) else []
        )
        probs = self.predict_proba(made_up)
        top_codes = np.argsort(-probs, axis=1, kind="stable")[:, :3]
        self.evidence_batch(made_up, [[self.labels.codes_[k] for k in row] for row in top_codes])
        for part in self.open_parts:
            part.candidate_index()
        self.rule_accepts(made_up[:1], probs[:1])  # builds the rules' term index
        if self.hold_unaffirmed:
            self.label_name_index()
            self.holding_name_index()

    def for_batch_coding(self) -> Coder:
        """This Coder with its model's faster batch-coding copy (int8 on CPUs), where the
        model has one; the decisions (calibration, thresholds, policy) are the same."""
        if not isinstance(self.model, CopiesForBatchCoding):
            return self
        fast = self.model.for_batch_coding()
        return self if fast is self.model else replace(self, model=fast)

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Which notes the model could not read whole (always none for TF-IDF)."""
        if isinstance(self.model, ReadsLimitedInput):
            return self.model.truncated(texts)
        return [False] * len(texts)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_DIR)
        self.labels.save(directory)
        state = {
            "format_version": FORMAT_VERSION,
            "model_name": self.model_name,
            "calibrator": self.calibrator.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "policy": self.policy.to_dict(),
            "info": self.info,
            "routing_facts": None if self.routing_facts is None else self.routing_facts.to_dict(),
            "open_codes": None if self.open_codes is None else self.open_codes.to_dict(),
            "term_rules": None if self.term_rules is None else self.term_rules.to_dict(),
            "open_procedures": None
            if self.open_procedures is None
            else self.open_procedures.to_dict(),
            "label_names": None
            if self.label_names is None
            else [name.to_row() for name in self.label_names],
            "hold_unaffirmed": self.hold_unaffirmed,
            "label_holding_names": None if self.label_holding_names is None else HOLDING_NAMES_FILE,
            "hold_named_within": self.hold_named_within,
            "backing_threshold": self.backing_threshold,
        }
        if self.open_codes is not None:
            self.open_codes.save_semantic(directory / SEMANTIC_DIR)
        for part in self.open_parts:
            part.save_names(directory)
        if self.label_holding_names is not None:
            write_names(directory / HOLDING_NAMES_FILE, self.label_holding_names)
        (directory / CODER_FILE).write_text(json.dumps(state), encoding="utf-8")

    @classmethod
    @collector_paused()  # some 200,000 code names and their indexes, none freed
    def load(cls, directory: Path) -> Coder:
        state_file = directory / CODER_FILE
        if not state_file.is_file():
            raise FileNotFoundError(f"{directory} is not a Coder directory (no {CODER_FILE})")
        state = json.loads(state_file.read_text(encoding="utf-8"))
        check_version(state_file, state.get("format_version"), FORMAT_VERSION)
        model = model_class(state["model_name"]).load(directory / MODEL_DIR)
        labels = LabelSpace.load(directory)
        # Column j of the model's scores must be code j of labels.json, or every decision
        # would go to another code.
        difference = label_difference(getattr(model, "labels_", []), labels.codes_)
        if difference is not None:
            raise ValueError(f"{directory}: model and {LABELS_FILE} disagree: {difference}")
        return cls(
            model=model,
            model_name=state["model_name"],
            labels=labels,
            calibrator=calibrator_from_dict(state["calibrator"]),
            thresholds=Thresholds.from_dict(state["thresholds"]),
            policy=ReviewPolicy.from_dict(state["policy"]),
            info=state.get("info", {}),
            routing_facts=None
            if state.get("routing_facts") is None
            else RoutingFacts.from_dict(state["routing_facts"]),
            open_codes=None
            if state.get("open_codes") is None
            else OpenCodes.from_dict(
                state["open_codes"], directory / SEMANTIC_DIR, names_dir=directory
            ),
            term_rules=None
            if state.get("term_rules") is None
            else TermRules.from_dict(state["term_rules"]),
            open_procedures=None
            if state.get("open_procedures") is None
            else OpenCodes.from_dict(state["open_procedures"], names_dir=directory),
            label_names=None
            if state.get("label_names") is None
            else tuple(Name.from_row(row) for row in state["label_names"]),
            hold_unaffirmed=state.get("hold_unaffirmed", True),
            label_holding_names=None
            if (holding := state.get("label_holding_names")) is None
            else tuple(read_names(directory / holding)),
            hold_named_within=state.get("hold_named_within", False),
            backing_threshold=state.get("backing_threshold"),
        )


def made_up_notes(words: Sequence[str], n_notes: int = WARM_UP_NOTES) -> list[str]:
    """Notes of 15 sentences of 12 words drawn from `words` (seeded: the same each time),
    no patient's text; one short note when there are no words."""
    if not words:
        return ["Warm up."]
    draw = random.Random(0)
    per_sentence = min(12, len(words))
    return [
        ". ".join(" ".join(draw.sample(words, per_sentence)) for _ in range(15)) + "."
        for _ in range(n_notes)
    ]
