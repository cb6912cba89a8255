"""One long note, coded part by part: how each part's time grows with the note.

Archives hold notes far longer than a case report (a whole stay's notes joined, daily
progress notes that repeat the problem list). A part whose time grows with the square of
the note stalls a batch job on one such row. Two notes of each size, each part timed on
both in this run, after one warm-up:
- `joined`: CodiEsp dev notes (English) joined end to end: real names and mentions;
- `repeated`: one dev note's first 400 characters over and over, as copied-forward
  progress notes repeat themselves;
- `problem_list`: a problem list of six diagnoses, one line over and over: the same
  names mentioned tens of thousands of times, as densely as notes name them.

The parts:
- `model`: the Coder's calibrated model (the peer: its work grows with the words);
- `open_part`: the open part's proposals (names found, contexts, sides, calibration);
- `term_rules`: the term rules' and backing terms' accepts;
- `unaffirmed`: the codes named only negated or inside longer names.

    python bench/long_notes.py --model DIR_OR_URI [--tracking-uri URI] [--sizes 20,80,320]
        [--data DIR] [--json]

`growth` is each part's seconds per KB at the largest size over those at the smallest:
1 is linear, as the model is; the size ratio itself (16 by default) is quadratic.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autocode.config import shared_data_dir
from autocode.decisions.coder import Coder
from autocode.infer.loading import load_coder
from codiesp_common import codiesp_notes  # bench/ is on the path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_coder_arguments(parser)
    parser.add_argument("--sizes", default="20,80,320", help="note sizes in KB, comma-separated")
    args = parser.parse_args()
    coder = coder_of(args)
    dev = codiesp_notes(Path(args.data), "dev", "en").texts
    sizes = [int(size) for size in args.sizes.split(",")]
    time_parts(coder, dev[:1])  # indexes and caches built once, before any timing
    report = {}
    kinds = (("joined", joined_notes), ("repeated", repeated_note), ("problem_list", problems))
    for kind, make in kinds:
        results = {size: time_parts(coder, [make(dev, size * 1024)]) for size in sizes}
        report[kind] = {"seconds": results, "growth": growth(results, sizes)}
    print(json.dumps(report, indent=2) if args.json else table(report, sizes))


def add_coder_arguments(parser: argparse.ArgumentParser) -> None:
    """The Coder to time and the CodiEsp copy to time it on; `--json` output."""
    parser.add_argument("--model", required=True, help="Coder dir, runs:/… or models:/…")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI for runs:/ and models:/")
    parser.add_argument("--data", default=str(shared_data_dir() / "codiesp"))
    parser.add_argument("--json", action="store_true")


def coder_of(args: argparse.Namespace) -> Coder:
    if args.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri)
    return load_coder(args.model)


def joined_notes(notes: list[str], chars: int) -> str:
    """Notes joined end to end, from the first again as needed, cut at `chars`."""
    joined, k = [], 0
    while sum(map(len, joined)) < chars:
        joined.append(notes[k % len(notes)])
        k += 1
    return "\n\n".join(joined)[:chars]


def repeated_note(notes: list[str], chars: int) -> str:
    """The first note's first 400 characters, repeated to `chars`."""
    return _repeated(notes[0][:400] + "\n", chars)


PROBLEM_LIST = (
    "Problems: fever, cough, hypertension, type 2 diabetes mellitus, chronic kidney "
    "disease, atrial fibrillation.\n"
)


def problems(notes: list[str], chars: int) -> str:
    """`PROBLEM_LIST` repeated to `chars` (`notes` unused: the line is the same anywhere)."""
    return _repeated(PROBLEM_LIST, chars)


def _repeated(piece: str, chars: int) -> str:
    return (piece * (chars // len(piece) + 1))[:chars]


def time_parts(coder: Coder, texts: list[str]) -> dict[str, float]:
    """Seconds each part of coding takes over `texts`, in one call each."""
    probs = coder.predict_proba(texts)
    parts: dict[str, Callable[[], Any]] = {
        "model": lambda: coder.predict_proba(texts),
        "open_part": lambda: coder.open_proposals(texts),
        "term_rules": lambda: coder.rule_accepts(texts, probs),
        "unaffirmed": lambda: coder.unaffirmed(texts, probs),
    }
    seconds = {}
    for name, part in parts.items():
        started = time.perf_counter()
        part()
        seconds[name] = time.perf_counter() - started
    return seconds


def growth(results: dict[int, dict[str, float]], sizes: list[int]) -> dict[str, float]:
    small, large = min(sizes), max(sizes)
    return {
        part: (results[large][part] / large) / max(results[small][part] / small, 1e-9)
        for part in results[small]
    }


def table(report: dict[str, Any], sizes: list[int]) -> str:
    lines = []
    for kind, result in report.items():
        parts = list(result["growth"])
        lines.append(f"{kind:<13}" + "  ".join(f"{part:>11}" for part in parts))
        for size in sizes:
            seconds = result["seconds"][size]
            row = "  ".join(f"{seconds[part]:>10.2f}s" for part in parts)
            lines.append(f"{size:>10} KB {row}")
        grown = "  ".join(f"{result['growth'][part]:>11.1f}" for part in parts)
        lines.append(f"growth       {grown}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
