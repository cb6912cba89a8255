"""CodiEsp dev: the open part alone (codes unseen in training), lexical candidates against
lexical + sibling, lexical + pair-feature, lexical + side and lexical + semantic ones, in
one run; and the ICD-10-PCS open part (`procedures`: prefixes named by operation and
body part).

Each variant is fitted as `configs/codiesp-best.yaml` fits it — on CodiEsp train, its
pooled calibration on codes held out of the training folds — and scored on dev's
ICD-10-CM (for `procedures`, ICD-10-PCS) codes that training never showed: recall of
those codes at the listing threshold, precision of the listed proposals, and the
proposals auto-accepted at the routing target with their precision (`procedures` in
English only: the PCS names are English). The semantic
matcher's settings come from the config's `open_codes.semantic` (defaults when it has none).

    python bench/codiesp_open.py [--data DIR] [--config FILE] [--language en|es] [--json]
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any

from autocode.codes import ICD10CM, ICD10PCS
from autocode.config import SemanticConfig, load_config
from autocode.decisions.open_codes import DEFAULT_BLOCKING, KnownCodes, OpenCodes, fit_open_codes
from autocode.models.crossfit import fold_splits
from autocode.train.fitting import semantic_matcher
from codiesp_common import codiesp_arguments, codiesp_notes  # bench/ is on the path


def main() -> None:
    parser = codiesp_arguments(__doc__)
    parser.add_argument("--top-k", type=int, help="overrides open_codes.semantic.top_k")
    parser.add_argument("--min-cosine", type=float, help="overrides semantic.min_cosine")
    parser.add_argument(
        "--variants",
        default="lexical+semantic,lexical,lexical+siblings,lexical+pairs,lexical+sides,procedures",
    )
    args = parser.parse_args()

    config = load_config(args.config)
    open_config = config.open_codes
    blocking = open_config.blocking if open_config else list(DEFAULT_BLOCKING)
    semantic_config = (open_config.semantic if open_config else None) or SemanticConfig()
    overrides = {"top_k": args.top_k, "min_cosine": args.min_cosine}
    semantic_config = semantic_config.model_copy(
        update={key: value for key, value in overrides.items() if value is not None}
    )
    train, dev = (codiesp_notes(args.data, split, args.language) for split in ("train", "dev"))
    train_texts, train_codes = train.texts, train.codes
    dev_texts, dev_codes = dev.texts, dev.codes
    folds = fold_splits(len(train_texts), folds=config.crossfit_folds, seed=config.seed)
    counts = Counter(code for codes in train_codes for code in set(codes))

    results: dict[str, Any] = {}
    started = time.perf_counter()
    matcher = semantic_matcher(semantic_config)
    results["semantic_setup_seconds"] = round(time.perf_counter() - started, 1)
    numbers = open_config is None or open_config.numbers
    variants = (  # name, semantic matcher, siblings, pairs, sides, system
        ("lexical+semantic", matcher, False, False, False, ICD10CM),
        ("lexical", None, False, False, False, ICD10CM),
        ("lexical+siblings", None, True, False, False, ICD10CM),
        ("lexical+pairs", None, False, True, False, ICD10CM),
        ("lexical+sides", None, False, False, True, ICD10CM),
        ("procedures", None, False, False, False, ICD10PCS),
    )
    wanted = set(args.variants.split(","))
    if args.language != "en":  # the PCS names are English: nothing to calibrate on
        wanted.discard("procedures")
    for name, semantic, siblings, pairs, sides, system in (v for v in variants if v[0] in wanted):
        started = time.perf_counter()
        part = fit_open_codes(
            train_texts,
            train_codes,
            folds,
            blocking=blocking,
            target_precision=config.routing.target_precision,
            min_support=config.routing.min_support,
            semantic=semantic,
            siblings=siblings,
            pairs=pairs,
            system=system,
            numbers=numbers and system == ICD10CM,
            sides=sides,
        )
        results[name] = {
            **score(part, dev_texts, dev_codes, counts),
            "fit_and_score_seconds": round(time.perf_counter() - started, 1),
            "out_of_fold": part.report,
        }
        print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2) if args.json else _table(results), flush=True)


def score(
    part: OpenCodes, texts: list[str], gold: list[list[str]], counts: Counter[str]
) -> dict[str, Any]:
    """Unseen-code recall and precision of the listed proposals, and of the auto-accepted."""
    scored = part.score(texts, counts)
    proposals = [[p for p in note if p.probability >= part.threshold] for note in scored]
    candidates = [{p.code for p in note} for note in scored]
    unseen = [{c for c in codes if part.proposes(c) and c not in counts} for codes in gold]
    listed = [{p.code for p in note} for note in proposals]
    auto = [{p.code for p in note if part.is_auto(p.probability)} for note in proposals]
    n_unseen = sum(map(len, unseen))
    hits = sum(len(a & b) for a, b in zip(listed, unseen, strict=True))
    auto_hits = sum(len(a & b) for a, b in zip(auto, unseen, strict=True))
    n_listed, n_auto = sum(map(len, listed)), sum(map(len, auto))
    reachable = sum(len(a & b) for a, b in zip(candidates, unseen, strict=True))
    paired = _paired_candidates(part, texts, gold, counts) if part.pairs else None
    return {
        "candidates": sum(map(len, candidates)),
        "candidate_recall": reachable / max(n_unseen, 1),  # the ceiling: any threshold
        "unseen_gold": n_unseen,
        "listed": n_listed,
        "unseen_recall": hits / max(n_unseen, 1),
        "precision": hits / max(n_listed, 1),
        "auto_accepted": n_auto,
        "auto_precision": auto_hits / max(n_auto, 1),
        "threshold": part.threshold,
        "accept_threshold": part.accept_threshold,
        "paired_candidates": paired,  # with pairs: how many have the feature set, how many gold
    }


def _paired_candidates(
    part: OpenCodes, texts: list[str], gold: list[list[str]], counts: Counter[str]
) -> dict[str, int]:
    index, known = part.candidate_index(), KnownCodes.of(counts, part.left_off, part.tails)
    flagged = flagged_gold = 0
    for text, codes in zip(texts, gold, strict=True):
        found, X, _ = part.candidates(index, text, known)  # a part fitted with pairs
        column = X[:, part.features.index("paired")]
        on = {code for code, paired in zip(found, column, strict=True) if paired}
        flagged += len(on)
        flagged_gold += len(on & set(codes))
    return {"flagged": flagged, "gold": flagged_gold}


def _table(results: dict[str, Any]) -> str:
    lines = ["variant            unseen recall  precision  listed  auto  auto precision  ceiling"]
    names = ("lexical", "lexical+siblings", "lexical+pairs", "lexical+sides", "lexical+semantic")
    for name in (*names, "procedures"):
        if name not in results:
            continue
        r = results[name]
        lines.append(
            f"{name:<18} {r['unseen_recall']:>13.3f}  {r['precision']:>9.3f}  "
            f"{r['listed']:>6}  {r['auto_accepted']:>4}  {r['auto_precision']:>14.3f}"
            f"  {r['candidate_recall']:>7.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
