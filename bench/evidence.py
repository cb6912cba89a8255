"""Evidence quality: do a Coder's evidence spans point at the words a coder marked?

The Coder is `configs/tfidf.yaml`'s tfidf-lexicon trained on the Spanish CodiEsp notes
(`data.language=es`: CodiEsp-X gives its character offsets in the Spanish originals;
`bench/codiesp_coder.py es`, cached under `bench/out/`). Over CodiEsp dev it predicts
codes at its tuned thresholds and explains them; for every code predicted correctly
(a gold code of the note) it asks whether the code's evidence overlaps a gold CodiEsp-X
mention of that code in that note:

- `first`: the share whose first evidence span overlaps one (what a reviewer sees first);
- `top3`: the share where one of the first three does;
- `none`: the share with no evidence span at all (a miss in both);

per code system. Peers in the same run: the evidence of each base model alone (the
TF-IDF n-grams, the matcher's term words), scored over the same codes.

    .venv/bin/python bench/evidence.py [--data DIR] [--json] [--coder-dir DIR --set KEY=VALUE ...]

`--set` changes `configs/tfidf.yaml` for a Coder trained into (or read from) `--coder-dir`,
e.g. terms mined from the training notes' CodiEsp-X mentions:
`--set 'codes.mentions={file: .../codiesp/train/trainX.tsv}' --coder-dir bench/out/es-mined`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autocode.config import shared_data_dir
from autocode.corpus.codiesp import read_codiesp_mentions
from autocode.corpus.load import LoadOptions, load_notes
from autocode.decisions.coder import Coder
from autocode.metrics import CharSpan, evidence_hit_rates
from autocode.models import FoldEnsemble
from autocode.models.base import ExplainsPredictions, explain_notes
from autocode.models.evidence import EvidenceSpan
from codiesp_coder import codiesp_coder_dir

SPLIT = "dev"
TOP_N = 3  # spans per code, as the batch output and the pyfunc show them
SYSTEMS = ("ICD10CM", "ICD10PCS")
Explainer = Callable[[list[str], list[list[str]]], list[list[list[EvidenceSpan]]]]


@dataclass(frozen=True)
class Case:
    """One code predicted correctly for one note: its evidence and the gold characters."""

    system: str
    evidence: list[CharSpan]
    gold: list[CharSpan]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "codiesp")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--coder-dir", type=Path, help="cache of a Coder trained with --set")
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    args = parser.parse_args()

    coder = Coder.load(codiesp_coder_dir("es", args.set, args.coder_dir))
    loaded = load_notes(args.data, LoadOptions(splits=(SPLIT,), language="es")).table
    note_ids = loaded.column("note_id").to_pylist()
    texts = loaded.column("text").to_pylist()
    gold = gold_spans(args.data, SPLIT)
    predicted = coder.predicted_codes(coder.predict_proba(texts))
    correct = [
        [code for code in codes if (note_id, code) in gold]
        for note_id, codes in zip(note_ids, predicted, strict=True)
    ]
    print(
        f"{sum(map(len, correct))} codes predicted correctly in {len(texts)} notes", file=sys.stderr
    )
    results = {
        name: scores(cases(note_ids, correct, explain(texts, correct), gold))
        for name, explain in explainers(coder).items()
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


def gold_spans(root: Path, split: str) -> dict[tuple[str, str], list[CharSpan]]:
    """(note, code) -> the characters of every CodiEsp-X mention of the code in the note."""
    gold: dict[tuple[str, str], list[CharSpan]] = defaultdict(list)
    for mention in read_codiesp_mentions(root, split):
        gold[mention.note_id, mention.code].extend(mention.spans)
    return dict(gold)


def explainers(coder: Coder) -> dict[str, Explainer]:
    """The Coder's evidence, then each explaining base model's alone (the peers)."""

    def of_coder(texts: list[str], codes: list[list[str]]) -> list[list[list[EvidenceSpan]]]:
        explained = coder.evidence_batch(texts, codes, TOP_N)
        return [
            [note[code] for code in note_codes]
            for note, note_codes in zip(explained, codes, strict=True)
        ]

    found: dict[str, Explainer] = {"coder": of_coder}
    # A fold ensemble explains with its first member, so its peers are that member's bases.
    model = coder.model.members_[0] if isinstance(coder.model, FoldEnsemble) else coder.model
    for k, base in enumerate(getattr(model, "bases_", [])):
        if isinstance(base, ExplainsPredictions):
            found[f"base{k}-{type(base).__name__}"] = _base_explainer(coder, base)
    return found


def _base_explainer(coder: Coder, base: ExplainsPredictions) -> Explainer:
    def explain(texts: list[str], codes: list[list[str]]) -> list[list[list[EvidenceSpan]]]:
        indices = [[coder.labels.index(code) for code in note_codes] for note_codes in codes]
        return [
            [spans[:TOP_N] for spans in note] for note in explain_notes(base, texts, indices, TOP_N)
        ]

    return explain


def cases(
    note_ids: Sequence[str],
    codes: Sequence[Sequence[str]],
    evidence: Sequence[Sequence[Sequence[EvidenceSpan]]],
    gold: dict[tuple[str, str], list[CharSpan]],
) -> list[Case]:
    return [
        Case(
            code.split(":", 1)[0],
            [(span.start, span.end) for span in spans],
            gold[note_id, code],
        )
        for note_id, note_codes, note_spans in zip(note_ids, codes, evidence, strict=True)
        for code, spans in zip(note_codes, note_spans, strict=True)
    ]


def scores(all_cases: list[Case]) -> dict[str, dict[str, float]]:
    """Per system (and all together): cases, first, top3, none."""
    scored = {}
    for system in (*SYSTEMS, "all"):
        chosen = [c for c in all_cases if system in ("all", c.system)]
        rates = evidence_hit_rates([c.evidence for c in chosen], [c.gold for c in chosen], (1, 3))
        scored[system] = {
            "cases": len(chosen),
            "first": rates[1],
            "top3": rates[3],
            "none": sum(not c.evidence for c in chosen) / len(chosen) if chosen else float("nan"),
        }
    return scored


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"{'evidence of':<28} {'system':<9} {'cases':>6} {'first':>6} {'top3':>6} {'none':>6}")
    for name, per_system in results.items():
        for system, row in per_system.items():
            print(
                f"{name:<28} {system:<9} {row['cases']:>6} {row['first']:>6.3f} "
                f"{row['top3']:>6.3f} {row['none']:>6.3f}"
            )


if __name__ == "__main__":
    main()
