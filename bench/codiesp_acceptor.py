"""CodiEsp: would a learned acceptor over mined-term mentions automate more than term rules?

A measurement, not part of the Coder. Term rules (`decisions.term_rules`) accept a code
where one of its mined terms, held out, was coded at the routing target: a yes or no per
term. This asks whether one logistic regression over what is known of a (note, code)
pair whose mined terms the note mentions accepts more at the same held-out precision:
the terms' held-out counts (best and pooled), how many of them the note mentions, how
often affirmed and how often in a blocking context (the config's term-rule blocking),
outside a longer term or not, first and last place in the note, whether in a sentence
saying "diagnos…", the longest term's words, how many codes the note's terms name, the
code's training count, and (second feature set) the Coder's calibrated probability.

Held out as the rules' own check is: each training fold's pairs are scored by an
acceptor fitted on the other folds' pairs, whose term counts leave out both folds, and
the cut is the lowest score whose out-of-fold precision meets `routing.target_precision`
on `routing.min_support` pairs or more. Dev is scored by the acceptor fitted on every
fold, at that cut, beside the same Coder's term rules and review policy; "share" is of
dev's ICD-10-CM gold codes, unseen ones included.

    python bench/codiesp_acceptor.py [--data DIR] [--config FILE] [--language en|es] [--json]
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from autocode.config import TrainConfig, load_config
from autocode.corpus.schema import NoteSet
from autocode.decisions.policy import ACCEPTED
from autocode.decisions.term_rules import Key, held_out_counts, term_mentions
from autocode.knowledge import CodeKnowledge
from autocode.knowledge.candidates import CandidateIndex
from autocode.knowledge.lexicon import sentence_spans
from autocode.knowledge.mined import MinedTerms, fingerprints
from autocode.models.crossfit import fold_splits
from autocode.train.fitting import fit_coder
from codiesp_common import (  # bench/ is on the path
    codiesp_arguments,
    codiesp_notes,
    language_overrides,
)

SYSTEM = "ICD10CM:"
DIAGNOSIS = re.compile(r"diagn[oó]s", re.IGNORECASE)  # "diagnosed", "diagnóstico"
FEATURE_SETS = {"terms": False, "terms+probability": True}


@dataclass
class MentionFacts:
    """How one note mentions one code's mined terms."""

    affirmed: int = 0
    blocked: int = 0
    whole: int = 0  # affirmed and inside no longer term
    first: float = 1.0  # place of the first affirmed mention, 0 (start) to 1 (end)
    last: float = 0.0
    in_diagnosis: bool = False
    longest: int = 0  # words of the longest term mentioned affirmed


@dataclass
class Note:
    keys: set[Key]  # the (code, term words) it mentions, as term rules count them
    facts: dict[str, MentionFacts]
    probs: np.ndarray  # the Coder's calibrated probabilities (out of fold for training)
    gold: set[str]
    policy: set[str]  # the ICD-10-CM codes the review policy accepts at those probabilities


def main() -> None:
    args = codiesp_arguments(__doc__).parse_args()

    config = load_config(args.config, language_overrides(args.language))
    if config.routing.term_rules is None:
        raise SystemExit(f"{config.name}: routing.term_rules is off; nothing to compare")
    train, dev = (codiesp_notes(args.data, split, args.language) for split in ("train", "dev"))
    knowledge = CodeKnowledge(config.codes.sources(language=args.language))
    if knowledge.mined is None:
        raise SystemExit(f"{config.name}: name the mined terms in codes.mentions")
    fitted = fit_coder(config, train, None, knowledge=knowledge)
    coder = fitted.coder
    codes = list(coder.labels.codes_)
    blocking = config.routing.term_rules.blocking
    folds = fold_splits(len(train), folds=config.crossfit_folds, seed=config.seed)
    per_fold = [
        held_out_counts(train.texts, train.codes, fit, held, knowledge.mined, blocking, codes)
        for fit, held in folds
    ]
    oof_probs = coder.calibrator.transform(fitted.validation_raw)
    oof_policy = _policy_accepts(coder.policy.classify(oof_probs), codes)
    fold_of = np.zeros(len(train), np.int64)
    train_notes: list[Note | None] = [None] * len(train)
    for k, (fit, held) in enumerate(folds):
        fold_of[held] = k
        index = _index(train, fit, knowledge.mined, blocking, codes)
        for position, i in enumerate(held):
            # A fold whose other folds mined no term mentions none.
            counted = per_fold[k].per_note
            keys, gold = counted[position] if counted else (set(), set(train.codes[i]))
            facts = mention_facts(index, train.texts[i])
            train_notes[i] = Note(keys, facts, oof_probs[i], gold, oof_policy[i])
    everyone = np.arange(len(train))
    index = _index(train, everyone, knowledge.mined, blocking, codes)
    dev_probs = coder.predict_proba(dev.texts)
    dev_policy = _policy_accepts(coder.policy.classify(dev_probs), codes)
    dev_notes = [
        Note(set(term_mentions(index, text)), mention_facts(index, text), probs, set(gold), policy)
        for text, probs, gold, policy in zip(
            dev.texts, dev_probs, dev.codes, dev_policy, strict=True
        )
    ]
    pairs = PairFeatures(codes, per_fold, train.codes, fold_of)
    rule_accepts = coder.rule_accepts(dev.texts, dev_probs) or [{} for _ in dev.texts]
    results: dict[str, Any] = {"language": args.language, "target": config.routing.target_precision}
    for name, with_probability in FEATURE_SETS.items():
        notes = [n for n in train_notes if n is not None]
        results[name] = _measure(config, pairs, notes, fold_of, dev_notes, with_probability)
    accepted = {
        "policy": dev_policy,
        "term rules": [_system(set(spans)) for spans in rule_accepts],
    }
    accepted["term rules + policy"] = [
        a | b for a, b in zip(accepted["policy"], accepted["term rules"], strict=True)
    ]
    for name in FEATURE_SETS:
        learned = results[name].pop("dev_accepted")
        accepted[f"acceptor ({name})"] = learned["alone"]
        accepted[f"acceptor ({name}) + policy"] = [
            a | b for a, b in zip(learned["alone"], dev_policy, strict=True)
        ]
        accepted[f"acceptor ({name}), cut with the policy, + policy"] = [
            a | b for a, b in zip(learned["with_policy"], dev_policy, strict=True)
        ]
    results["dev"] = {name: _share(found, dev.codes) for name, found in accepted.items()}
    print(json.dumps(results, indent=2) if args.json else _table(results))


def mention_facts(index: CandidateIndex, text: str) -> dict[str, MentionFacts]:
    """Per code, how the note mentions its terms (in order, as term rules read them)."""
    facts: defaultdict[str, MentionFacts] = defaultdict(MentionFacts)
    mentions = index.mentions(text, reordered=False)
    sentences = sentence_spans(text)
    length = max(len(text), 1)
    for mention in mentions:
        blocked = index.is_blocked(mention)
        name = index.names[mention.name]
        for code in name.codes:
            fact = facts[code]
            if blocked:
                fact.blocked += 1
                continue
            fact.affirmed += 1
            fact.whole += not index.inside_longer(mention, mentions)
            fact.first = min(fact.first, mention.start / length)
            fact.last = max(fact.last, mention.start / length)
            fact.longest = max(fact.longest, len(name.words))
            fact.in_diagnosis |= any(
                a <= mention.start < b and DIAGNOSIS.search(text[a:b]) for a, b in sentences
            )
    return dict(facts)


class PairFeatures:
    """Features of a note's (code, mentioned terms) pairs, with the term and code counts
    of the training folds not excluded."""

    def __init__(
        self,
        codes: Sequence[str],
        per_fold: Sequence[Any],
        train_codes: Sequence[Sequence[str]],
        fold_of: np.ndarray,
    ) -> None:
        self.column = {code: j for j, code in enumerate(codes)}
        self.per_fold = per_fold
        self.notes: Counter[Key] = sum((f.notes for f in per_fold), Counter())
        self.coded: Counter[Key] = sum((f.coded for f in per_fold), Counter())
        self.code_counts = [
            Counter(c for i in np.flatnonzero(fold_of == k) for c in set(train_codes[i]))
            for k in range(len(per_fold))
        ]

    def rows(
        self, note: Note, excluded: set[int], with_probability: bool
    ) -> tuple[list[str], list[list[float]]]:
        terms: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        for key in note.keys:
            if key[0] in self.column:
                n = self.notes[key] - sum(self.per_fold[k].notes[key] for k in excluded)
                k_ = self.coded[key] - sum(self.per_fold[k].coded[key] for k in excluded)
                terms[key[0]].append((n, k_))
        kept = [k for k in range(len(self.per_fold)) if k not in excluded]
        named, rows = [], []
        for code, counts in sorted(terms.items()):
            posterior = [(coded + 1) / (n + 2) for n, coded in counts]
            best = int(np.argmax(posterior))
            n_all, coded_all = sum(n for n, _ in counts), sum(c for _, c in counts)
            fact = note.facts.get(code, MentionFacts())
            row = [
                posterior[best],
                np.log1p(counts[best][0]),
                float(len(counts)),
                (coded_all + 1) / (n_all + 2),
                np.log1p(sum(self.code_counts[k][code] for k in kept)),
                np.log1p(fact.affirmed),
                np.log1p(fact.blocked),
                fact.first,
                float(fact.in_diagnosis),
                np.log1p(fact.whole),
                float(fact.longest),
                fact.last,
                np.log1p(len(note.facts)),
            ]
            if with_probability:
                p = float(np.clip(note.probs[self.column[code]], 1e-6, 1 - 1e-6))
                row.append(np.log(p / (1 - p)))
            named.append(code)
            rows.append(row)
        return named, rows


def _measure(
    config: TrainConfig,
    pairs: PairFeatures,
    train_notes: Sequence[Note],
    fold_of: np.ndarray,
    dev_notes: Sequence[Note],
    with_probability: bool,
) -> dict[str, Any]:
    folds = range(len(pairs.per_fold))
    scores, gold, in_policy = [], [], []
    for k in folds:
        X, y, _ = _table_of(pairs, train_notes, fold_of, {k}, with_probability, held=False)
        model = _Scaled(X).fit(X, y)
        Xk, yk, pk = _table_of(pairs, train_notes, fold_of, {k}, with_probability, held=True)
        scores.append(model.score(Xk))
        gold.append(yk)
        in_policy.append(pk)
    s, y, by_policy = np.concatenate(scores), np.concatenate(gold), np.concatenate(in_policy)
    target, support = config.routing.target_precision, config.routing.min_support
    cut, accepted, hits = _cut(s, y, target, support)
    # The cut at which the acceptor and the policy together reach the target held out:
    # the policy's own out-of-fold accepts count from the start.
    policy_accepted = sum(len(n.policy) for n in train_notes)
    policy_hits = sum(len(n.policy & n.gold) for n in train_notes)
    union_cut, union_accepted, union_hits = _cut(
        s, y, target, support, start=(policy_accepted, policy_hits), counted=~by_policy
    )
    X_all, y_all, _ = _table_of(pairs, train_notes, fold_of, set(), with_probability, held=False)
    model = _Scaled(X_all).fit(X_all, y_all)
    alone, with_policy = [], []
    for note in dev_notes:
        named, rows = pairs.rows(note, set(), with_probability)
        values = model.score(np.array(rows)) if rows else np.zeros(0)
        alone.append({c for c, v in zip(named, values, strict=True) if v >= cut})
        with_policy.append({c for c, v in zip(named, values, strict=True) if v >= union_cut})
    return {
        "out_of_fold": {"pairs": int(y.size), "cut": cut, "accepted": accepted, "hits": hits},
        "out_of_fold_with_policy": {
            "cut": union_cut,
            "accepted": union_accepted,
            "hits": union_hits,
            "policy_accepted": policy_accepted,
            "policy_hits": policy_hits,
        },
        "dev_accepted": {"alone": alone, "with_policy": with_policy},
    }


def _table_of(
    pairs: PairFeatures,
    notes: Sequence[Note],
    fold_of: np.ndarray,
    excluded: set[int],
    with_probability: bool,
    *,
    held: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of the excluded folds' notes (`held`), or of the other notes, each with
    the counts of its own fold and the excluded ones left out."""
    X: list[list[float]] = []
    y: list[bool] = []
    by_policy: list[bool] = []
    for note, k in zip(notes, fold_of.tolist(), strict=True):
        if (k in excluded) != held:
            continue
        named, rows = pairs.rows(note, excluded | {k}, with_probability)
        X += rows
        y += [code in note.gold for code in named]
        by_policy += [code in note.policy for code in named]
    return np.array(X), np.array(y, dtype=bool), np.array(by_policy, dtype=bool)


class _Scaled:
    """A logistic regression on standardised features."""

    def __init__(self, X: np.ndarray) -> None:
        self.mean, self.scale = X.mean(axis=0), X.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        self.model = LogisticRegression(C=1.0, max_iter=3000)

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Scaled:
        self.model.fit((X - self.mean) / self.scale, y)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba((X - self.mean) / self.scale)[:, 1]


def _cut(
    s: np.ndarray,
    y: np.ndarray,
    target: float,
    support: int,
    *,
    start: tuple[int, int] = (0, 0),
    counted: np.ndarray | None = None,
) -> tuple[float, int, int]:
    """The lowest score whose pairs at or above it reach `target` precision, with at least
    `support` of them; and how many pairs it accepts, how many of them gold. `start`:
    (accepted, gold) already accepted otherwise; `counted`: the pairs that add to them
    (the others are among those already accepted)."""
    order = np.argsort(-s, kind="stable")
    adds = np.ones(s.size, bool) if counted is None else counted[order]
    hits = start[1] + np.cumsum(y[order] & adds)
    taken = start[0] + np.cumsum(adds)
    precision = hits / np.maximum(taken, 1)
    last_of_tie = np.r_[s[order][1:] != s[order][:-1], True]
    reaching = np.flatnonzero((precision >= target) & (taken >= support) & last_of_tie)
    if not reaching.size:
        return float("inf"), 0, 0
    last = int(reaching[-1])
    return float(s[order][last]), int(taken[last]), int(hits[last])


def _index(
    notes: NoteSet, rows: np.ndarray, mined: MinedTerms, blocking: Sequence[str], codes: Any
) -> CandidateIndex:
    """The mined terms of `rows`' notes for their label-space ICD-10-CM codes, as term
    rules index them (`held_out_counts`)."""
    fit_notes = fingerprints(notes.texts[i] for i in rows)
    seen = {c for i in rows for c in notes.codes[i] if c.startswith(SYSTEM)} & set(codes)
    names = {code: terms for code in sorted(seen) if (terms := mined.terms(code, fit_notes))}
    return CandidateIndex(names, blocking)


def _policy_accepts(status: np.ndarray, codes: Sequence[str]) -> list[set[str]]:
    return [_system({codes[j] for j in np.flatnonzero(row == ACCEPTED)}) for row in status]


def _system(codes: set[str]) -> set[str]:
    return {c for c in codes if c.startswith(SYSTEM)}


def _share(accepted: Sequence[set[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    golds = [_system(set(codes)) for codes in gold]
    n_accepted = sum(map(len, accepted))
    hits = sum(len(a & g) for a, g in zip(accepted, golds, strict=True))
    return {
        "accepted": n_accepted,
        "precision": hits / n_accepted if n_accepted else 0.0,
        "share_of_gold": hits / max(sum(map(len, golds)), 1),
    }


def _table(results: dict[str, Any]) -> str:
    lines = [f"CodiEsp dev ({results['language']}), ICD10CM, target {results['target']}"]
    for name in FEATURE_SETS:
        for key, label in (("out_of_fold", ""), ("out_of_fold_with_policy", " with the policy")):
            oof = results[name][key]
            lines.append(
                f"held out, acceptor ({name}){label}: {oof['accepted']} pairs accepted,"
                f" {oof['hits']} gold, cut {oof['cut']:.3f}"
            )
    lines.append("dev: accepted / precision / share of ICD10CM gold")
    for name, values in results["dev"].items():
        lines.append(
            f"  {name:<36} {values['accepted']:>5} / {values['precision']:.3f} /"
            f" {values['share_of_gold']:.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
