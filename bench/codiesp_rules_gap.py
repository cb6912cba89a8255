"""Where English term rules lose to Spanish ones on CodiEsp train, note by note.

CodiEsp's English notes are machine translations of the Spanish ones, so both languages
hold the same (note, code) pairs. Term rules (`decisions.term_rules`) are fitted as
`autocode train` fits them (`train.fitting.fit_rules`, the config's settings), but
nested: for each outer fold of the training notes, rules are fitted on the other folds
only (with their own inner folds) and accept codes in the outer fold's notes, in English
and in Spanish alike. Every acceptance is so out of fold, in both languages, on the same
notes. (The word translations behind
the English terms are learned from all training notes' parallel text, codes unseen.)

Reported: each language's accepted (note, code) pairs and precision; the English false
accepts by what the Spanish side did with the same pair; and the Spanish true accepts
English misses, by why: the English note mentions none of the code's mined terms, only in
a blocking context (the config's term-rule blocking), only inside a longer mined term, or
mentions a term that is no rule.

    python bench/codiesp_rules_gap.py [--data DIR] [--config FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from autocode.config import TermRulesConfig, TrainConfig, load_config, shared_data_dir
from autocode.corpus.schema import NoteSet
from autocode.knowledge import CodeKnowledge
from autocode.knowledge.candidates import CandidateIndex
from autocode.knowledge.mined import fingerprints
from autocode.labels import LabelSpace
from autocode.models.crossfit import fold_splits
from autocode.train.fitting import fit_rules
from codiesp_common import codiesp_notes  # bench/ is on the path

REPO = Path(__file__).resolve().parents[1]
SYSTEM = "ICD10CM:"
LANGUAGES = ("en", "es")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "codiesp")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "codiesp-best.yaml")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    config = load_config(args.config)
    notes = {language: codiesp_notes(args.data, "train", language) for language in LANGUAGES}
    if notes["en"].codes != notes["es"].codes:
        raise SystemExit("the English and Spanish training notes are not the same notes")
    knowledge = {
        language: _knowledge(config, language)
        for language in LANGUAGES  # the config's codes.mentions, mined per language
    }
    outer = fold_splits(len(notes["en"]), folds=config.crossfit_folds, seed=config.seed)
    accepted: dict[str, dict[tuple[int, str], bool]] = {language: {} for language in LANGUAGES}
    missed = Counter[str]()
    for fit_rows, held_rows in outer:
        for language in LANGUAGES:
            accepted[language] |= _accepted_out_of_fold(
                config, notes[language], knowledge[language], fit_rows, held_rows
            )
        missed += _why_english_misses(
            config, notes["en"], knowledge["en"], fit_rows, accepted, set(held_rows.tolist())
        )
    results = _summary(accepted, missed, notes["en"])
    print(json.dumps(results, indent=2) if args.json else _table(results))


def _knowledge(config: TrainConfig, language: str) -> CodeKnowledge:
    knowledge = CodeKnowledge(config.codes.sources(language=language))
    if knowledge.mined is None:
        raise SystemExit(f"{config.name}: name the mined terms in codes.mentions")
    return knowledge


def _with_rules(config: TrainConfig) -> TrainConfig:
    """The config, with term rules on (its own settings, or the defaults)."""
    routing = config.routing.model_copy(
        update={"term_rules": config.routing.term_rules or TermRulesConfig()}
    )
    return config.model_copy(update={"routing": routing})


def _accepted_out_of_fold(
    config: TrainConfig, notes: NoteSet, knowledge: CodeKnowledge, fit_rows: Any, held_rows: Any
) -> dict[tuple[int, str], bool]:
    """(note row, code) -> gold, for every ICD-10-CM code the rules fitted on `fit_rows`
    accept in the notes of `held_rows`."""
    fit = NoteSet([notes.texts[i] for i in fit_rows], [notes.codes[i] for i in fit_rows])
    rules = fit_rules(_with_rules(config), fit, knowledge, LabelSpace().fit(fit.codes))
    found = rules.accepted([notes.texts[i] for i in held_rows])
    return {
        (int(row), code): code in notes.codes[row]
        for row, spans in zip(held_rows, found, strict=True)
        for code in spans
        if code.startswith(SYSTEM)
    }


def _why_english_misses(
    config: TrainConfig,
    notes: NoteSet,
    knowledge: CodeKnowledge,
    fit_rows: Any,
    accepted: dict[str, dict[tuple[int, str], bool]],
    held: set[int],
) -> Counter[str]:
    """Of the outer fold's Spanish true accepts that English did not accept, why not: what
    the English note says of the code's terms mined from the fold's fitting notes."""
    fit_notes = fingerprints(notes.texts[i] for i in fit_rows)
    seen = {c for i in fit_rows for c in notes.codes[i] if c.startswith(SYSTEM)}
    assert knowledge.mined is not None  # `_knowledge` made sure
    mined = knowledge.mined
    names = {code: terms for code in sorted(seen) if (terms := mined.terms(code, fit_notes))}
    settings = _with_rules(config).routing.term_rules
    assert settings is not None
    index = CandidateIndex(names, settings.blocking)
    reasons = Counter[str]()
    for (row, code), gold in accepted["es"].items():
        if row not in held or not gold or (row, code) in accepted["en"]:
            continue
        mentions = index.mentions(notes.texts[row], reordered=False)
        affirmed = [m for m in mentions if not index.is_blocked(m)]
        of_code = [m for m in mentions if code in index.names[m.name].codes]
        if not of_code:
            reasons["no mined term of the code mentioned"] += 1
        elif all(index.is_blocked(m) for m in of_code):
            reasons["mentioned only in a blocking context"] += 1
        elif all(index.is_blocked(m) or index.inside_longer(m, affirmed) for m in of_code):
            reasons["mentioned only inside a longer mined term"] += 1
        else:
            reasons["mentioned, but the term is no rule"] += 1
    return reasons


def _summary(
    accepted: dict[str, dict[tuple[int, str], bool]], missed: Counter[str], notes: NoteSet
) -> dict[str, Any]:
    gold = sum(len({c for c in codes if c.startswith(SYSTEM)}) for codes in notes.codes)
    per_language = {
        language: {
            "accepted": len(pairs),
            "precision": sum(pairs.values()) / len(pairs) if pairs else 0.0,
            "share_of_gold": sum(pairs.values()) / gold,
        }
        for language, pairs in accepted.items()
    }
    english_false = Counter(
        "Spanish accepts it too" if pair in accepted["es"] else "Spanish does not accept it"
        for pair, is_gold in accepted["en"].items()
        if not is_gold
    )
    return {
        "gold_codes": gold,
        "accepted_out_of_fold": per_language,
        "english_false_accepts": dict(english_false),
        "spanish_true_accepts_english_misses": dict(missed),
    }


def _table(results: dict[str, Any]) -> str:
    lines = [f"ICD-10-CM gold codes of CodiEsp train: {results['gold_codes']}"]
    for language, figures in results["accepted_out_of_fold"].items():
        lines.append(
            f"{language}: {figures['accepted']} accepted out of fold, precision "
            f"{figures['precision']:.3f}, {figures['share_of_gold']:.1%} of gold"
        )
    lines.append("English false accepts:")
    lines += [f"  {why}: {n}" for why, n in results["english_false_accepts"].items()]
    lines.append("Spanish true accepts English misses:")
    lines += [f"  {why}: {n}" for why, n in results["spanish_true_accepts_english_misses"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
