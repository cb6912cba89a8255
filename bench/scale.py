"""Scale: the TF-IDF model on a synthetic archive of 50k notes × 10k codes.

Reports training wall time, peak RSS and predict_proba throughput, each
variant in its own process so peak RSS belongs to it alone. Peer: the plain
OneVsRestClassifier(LogisticRegression(liblinear)) on identical features,
timed on a slice of labels and extrapolated per label (fitting all 10k
one after another would take hours, which is the point).

    python bench/scale.py [--notes 50000] [--codes 10000] [--model tfidf|tfidf-lexicon]
                          [--inner-folds 2] [--prune-tolerance 0.05] [--json]

The model is pruned (`prune_tolerance`, as `configs/tfidf.yaml`), saved and loaded again
before predicting, so the prediction's peak RSS (`predict_peak_rss_gib`, measured in a
fresh process after training) is that of the sparse weights, not of the dense matrix
training holds. `--prune-tolerance -1`: dense weights, as trained.

`--model tfidf-lexicon` trains the re-ranked model instead (stage 1 as above, with
`--inner-folds` out-of-fold stage-1 fits for stage 2 to learn from).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from load import peak_rss_mib

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
PREDICT_NOTES = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notes", type=int, default=50_000)
    parser.add_argument("--codes", type=int, default=10_000)
    parser.add_argument("--peer-labels", type=int, default=100)
    parser.add_argument("--max-features", type=int, default=50_000)
    parser.add_argument("--sampled-negatives", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", choices=["tfidf", "tfidf-lexicon"], default="tfidf")
    parser.add_argument("--inner-folds", type=int, default=2)
    parser.add_argument("--prune-tolerance", type=float, default=0.05)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", choices=["autocode", "peer", "predict"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--archive", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_work(args)))
        return
    archive = _archive(args.notes, args.codes)
    results = {name: _in_subprocess(name, archive, args) for name in ("autocode", "peer")}
    results["autocode"] |= _in_subprocess("predict", archive, args)
    peer = results["peer"]
    per_label = peer["fit_seconds"] / peer["labels_fitted"]
    peer_full = peer["vectorize_seconds"] + per_label * results["autocode"]["labels"]
    summary = {
        "model": args.model,
        "notes": args.notes,
        "codes": args.codes,
        **results,
        "peer_fit_seconds_extrapolated_to_all_labels": peer_full,
        "fit_time_ratio_autocode_over_peer": results["autocode"]["fit_seconds"] / peer_full,
    }
    print(json.dumps(summary, indent=2) if args.json else _table(summary))


def _archive(notes: int, codes: int) -> Path:
    from autocode.corpus.synth import write_synthetic_archive

    directory = OUT / f"scale-{notes}-{codes}"
    if not directory.is_dir():
        write_synthetic_archive(directory, notes, seed=11, n_codes=codes)
    return directory


def _in_subprocess(worker: str, archive: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        worker,
        "--archive",
        str(archive),
        "--peer-labels",
        str(args.peer_labels),
        "--max-features",
        str(args.max_features),
        "--sampled-negatives",
        str(args.sampled_negatives),
        "--epochs",
        str(args.epochs),
        "--model",
        args.model,
        "--inner-folds",
        str(args.inner_folds),
        "--prune-tolerance",
        str(args.prune_tolerance),
        "--model-dir",
        str(_model_dir(archive, args)),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def _model_dir(archive: Path, args: argparse.Namespace) -> Path:
    return OUT / f"{archive.name}-{args.model}-prune{args.prune_tolerance}"


def _work(args: argparse.Namespace) -> dict[str, Any]:
    from autocode.corpus.load import load_notes
    from autocode.labels import LabelSpace

    table = load_notes(args.archive).table
    texts = table.column("text").to_pylist()
    if args.worker == "predict":
        return _predict_saved(args.model_dir, args.model, texts[:PREDICT_NOTES])
    space = LabelSpace().fit(table.column("codes").to_pylist())
    Y = space.encode(table.column("codes").to_pylist())
    if args.worker == "peer":
        return _peer(args, texts, Y)
    from autocode.models import TfidfLexiconModel, TfidfModel

    stage1 = {
        "max_features": args.max_features,
        "epochs": args.epochs,
        "sampled_negatives": args.sampled_negatives,
        "prune_tolerance": None if args.prune_tolerance < 0 else args.prune_tolerance,
    }
    model: TfidfModel | TfidfLexiconModel = (
        TfidfModel(**stage1)
        if args.model == "tfidf"
        else TfidfLexiconModel(tfidf=stage1, inner_folds=args.inner_folds)
    )
    started = time.perf_counter()
    model.fit(texts, Y, labels=space)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model.predict_proba(texts[:PREDICT_NOTES])
    predict_seconds = time.perf_counter() - started
    model.save(args.model_dir)
    return {
        "labels": len(space),
        "fit_seconds": fit_seconds,
        "predict_notes_per_second": PREDICT_NOTES / predict_seconds,
        "peak_rss_gib": _peak_rss_gib(),
    }


def _predict_saved(model_dir: Path, name: str, texts: list[str]) -> dict[str, Any]:
    """Load the saved model in this fresh process and predict: its peak RSS is the
    loaded model's, which the dense training matrix never entered."""
    from autocode.models import model_class

    started = time.perf_counter()
    model = model_class(name).load(model_dir)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model.predict_proba(texts)
    return {
        "load_seconds": load_seconds,
        "saved_predict_notes_per_second": len(texts) / (time.perf_counter() - started),
        "predict_peak_rss_gib": _peak_rss_gib(),
        "saved_mib": sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()) / 2**20,
    }


def _peer(args: argparse.Namespace, texts: list[str], Y: Any) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    # Timed from the vectorizer on, like autocode's fit, which includes its features.
    started = time.perf_counter()
    X = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, max_features=args.max_features, sublinear_tf=True
    ).fit_transform(texts)
    vectorize_seconds = time.perf_counter() - started
    # The most frequent labels: each has positives, like the bulk of the work.
    labels = np.argsort(-np.asarray(Y.sum(axis=0)).ravel())[: args.peer_labels]
    started = time.perf_counter()
    targets = Y[:, labels].toarray().astype(np.int64)  # int8 targets break this pipeline
    OneVsRestClassifier(LogisticRegression(solver="liblinear")).fit(X, targets)
    return {
        "labels_fitted": len(labels),
        "vectorize_seconds": vectorize_seconds,
        "fit_seconds": time.perf_counter() - started,
        "peak_rss_gib": _peak_rss_gib(),
    }


def _peak_rss_gib() -> float:
    return peak_rss_mib() / 1024


def _table(summary: dict[str, Any]) -> str:
    ours, peer = summary["autocode"], summary["peer"]
    return "\n".join(
        [
            f"{summary['notes']} notes × {ours['labels']} labels",
            f"autocode {summary['model']} fit {ours['fit_seconds']:.0f} s, "
            f"peak RSS {ours['peak_rss_gib']:.2f} GiB, "
            f"predict_proba {ours['predict_notes_per_second']:.0f} notes/s",
            f"saved {ours['saved_mib']:.0f} MiB; loaded in a fresh process: "
            f"{ours['load_seconds']:.1f} s, predict_proba "
            f"{ours['saved_predict_notes_per_second']:.0f} notes/s, "
            f"peak RSS {ours['predict_peak_rss_gib']:.2f} GiB",
            f"peer OvR liblinear: {peer['fit_seconds']:.1f} s for {peer['labels_fitted']} labels "
            f"→ {summary['peer_fit_seconds_extrapolated_to_all_labels']:.0f} s for all",
            f"fit time ratio autocode/peer: {summary['fit_time_ratio_autocode_over_peer']:.3f}",
        ]
    )


if __name__ == "__main__":
    main()
