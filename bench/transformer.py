"""The transformer coder on CodiEsp (English): training speed per mode, CPU inference
eager vs ONNX Runtime vs dynamic int8, peak memory, and dev quality against the TF-IDF
baselines.

Peers, trained and scored in the same run: `tfidf` (configs/tfidf.yaml's stage-1
settings) and `tfidf-lexicon` (configs/tfidf.yaml's model); with `--stack`, also the stack
of configs/stack-transformer.yaml (tfidf + matcher + transformer): what it gains over
`tfidf-lexicon` is what the transformer adds. All train on CodiEsp train; `transformer`
early-stops on a 10% slice of train; all are scored on dev with every dev gold code
counted (codes never seen in training are misses). micro-F1 is at the best global
threshold for each model (the same oracle for all); macro-F1 per training-frequency
bucket (codes by training notes: unseen, 1, 2-5, 6-50, >50) is at that same threshold,
over the bucket's codes that are gold or predicted on dev. `recall_at_precision_95`: the
most of dev's gold codes one global threshold finds at 0.95 precision or more (the same
oracle again): how large a model's confident head is. A transformer is also scored
through its ONNX Runtime copy (what `autocode predict` codes with by default) and its
int8 copy; a stack through its batch-coding copy.

    python bench/transformer.py [--data DIR] [--modes frozen] [--speed-modes frozen,top_k_layers]
        [--encoder NAME_OR_PATH] [--epochs N] [--fine-tune-epochs N] [--cache-dir DIR]
        [--stack] [--stack-mode MODE] [--patience N] [--no-copies] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from autocode import metrics
from autocode.config import load_config
from autocode.corpus.load import LoadOptions, load_notes
from autocode.labels import GoldWithUnseen, LabelSpace, gold_with_unseen
from autocode.models import StackModel, TfidfLexiconModel, TfidfModel, TransformerModel
from autocode.models.transformer.training import F1_THRESHOLDS
from autocode.train.fitting import model_params

REPO = Path(__file__).resolve().parents[1]
SPEED_NOTES = 16  # notes per speed measurement: a few steps, not an epoch
AUTOMATION_PRECISION = 0.95  # the review policy's default target
# Training notes per code (upper bounds, inclusive) naming each frequency bucket.
FREQUENCY_BUCKETS = {"unseen": 0, "1": 1, "2-5": 5, "6-50": 50, ">50": np.inf}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_data = Path(os.environ.get("AUTOCODE_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data / "codiesp")
    parser.add_argument("--modes", default="frozen", help="modes scored on dev (comma list)")
    parser.add_argument("--speed-modes", default="frozen,top_k_layers", help="comma list")
    parser.add_argument("--encoder", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--fine-tune-epochs", type=int, help="of top_k_layers and full (default: --epochs)"
    )
    parser.add_argument("--cache-dir", default=None, help="frozen token states on disk")
    parser.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    parser.add_argument("--token-budget", type=int, default=8192, help="tokens per step")
    parser.add_argument("--patience", type=int, default=3, help="epochs without a better MAP")
    parser.add_argument("--no-copies", action="store_true", help="skip the ONNX and int8 copies")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the results so far here, per step")
    parser.add_argument("--limit", type=int, help="first N notes of each split (smoke tests)")
    parser.add_argument("--stack", action="store_true", help="also configs/stack-transformer.yaml")
    parser.add_argument("--stack-epochs", type=int, help="its transformer's (default: config's)")
    parser.add_argument("--stack-mode", help="its transformer's mode (default: config's)")
    parser.add_argument("--stack-inner-folds", type=int, help="its inner folds (default: config's)")
    args = parser.parse_args()

    train_texts, train_codes = _notes(args.data, "train", args.limit)
    dev_texts, dev_codes = _notes(args.data, "dev", args.limit)
    space = LabelSpace().fit(train_codes)
    Y = space.encode(train_codes)
    results: dict[str, Any] = {"notes": {"train": len(train_texts), "dev": len(dev_texts)}}
    results["labels"] = len(space)
    common = {
        "model_name_or_path": args.encoder,
        "mixed_precision": args.mixed_precision,
        "token_budget": args.token_budget,
        "patience": args.patience,
        "progress": False,
    }
    results["training_speed"] = {
        mode: _training_speed(mode, train_texts, Y, space, common)
        for mode in args.speed_modes.split(",")
        if mode
    }
    _save(results, args.out)
    scored = gold_with_unseen(space, dev_codes)
    counts = np.concatenate([space.counts_, np.zeros(scored.unseen, dtype=np.int64)])
    results["dev"] = {}
    peers: dict[str, Any] = {
        "tfidf": lambda: TfidfModel(**_tfidf_params()),
        "tfidf-lexicon": lambda: TfidfLexiconModel(**_config_params("tfidf.yaml")),
    }
    for name, make in peers.items():
        started = time.perf_counter()
        peer = make().fit(train_texts, Y, labels=space)
        results["dev"][name] = {
            **_scores(scored, peer.predict_proba(dev_texts), counts),
            "fit_seconds": time.perf_counter() - started,
        }
        _save(results, args.out)
    for mode in (m for m in args.modes.split(",") if m):
        model, seconds = _fit_for_dev(mode, train_texts, Y, space, common, args)
        entry = {
            **_inference(model, dev_texts, scored, counts, copies=not args.no_copies),
            "fit_seconds": seconds,
            "best_epoch": model.best_epoch_,
            "epochs_run": len(model.history_),
            # Over the epochs of the whole fit: the 16-note speed runs above include warm-up.
            "train_tokens_per_second_median": float(
                np.median([epoch["tokens_per_second"] for epoch in model.history_])
            ),
        }
        results["dev"][f"transformer-{mode}"] = entry
        _save(results, args.out)
    if args.stack:
        started = time.perf_counter()
        stack = _stack_transformer(args, common).fit(train_texts, Y, labels=space)
        results["dev"]["stack-transformer"] = {
            **_inference(stack, dev_texts, scored, counts, copies=not args.no_copies),
            "fit_seconds": time.perf_counter() - started,
            "inner_folds": stack.inner_folds,
            "transformer_epochs": next(
                spec["params"]["epochs"]
                for spec in stack.base_models
                if spec["name"] == "transformer"
            ),
        }
        _save(results, args.out)
    results["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    results["gpu"] = _gpu_memory()
    _save(results, args.out)
    print(json.dumps(results, indent=2) if args.json else _table(results))


def _save(results: dict[str, Any], path: Path | None) -> None:
    """The results so far: a run cut short by its time limit still leaves its figures."""
    if path is not None:
        path.write_text(json.dumps(results, indent=2), encoding="utf-8")


def _notes(root: Path, split: str, limit: int | None) -> tuple[list[str], list[list[str]]]:
    table = load_notes(root, LoadOptions(format="codiesp", splits=(split,))).table
    table = table if limit is None else table.slice(0, limit)
    return table.column("text").to_pylist(), table.column("codes").to_pylist()


def _tfidf_params() -> dict[str, Any]:
    params = _config_params("tfidf.yaml")
    return dict(params["tfidf"]) if "tfidf" in params else params


def _config_params(name: str) -> dict[str, Any]:
    """The config's model params as a run builds the model (the run's seed filled in)."""
    return model_params(load_config(REPO / "configs" / name))


def _stack_transformer(args: argparse.Namespace, common: dict[str, Any]) -> StackModel:
    """configs/stack-transformer.yaml's stack, its transformer with this run's encoder,
    token budget, precision and state cache; fewer epochs or inner folds on request (a
    reduced setting where the configured one costs too long)."""
    params = _config_params("stack-transformer.yaml")
    bases = []
    for spec in params["base_models"]:
        if spec["name"] == "transformer":
            settings = {**spec["params"], **common, "cache_dir": args.cache_dir}
            if args.stack_epochs is not None:
                settings["epochs"] = args.stack_epochs
            if args.stack_mode is not None:
                settings["mode"] = args.stack_mode
            spec = {**spec, "params": settings}
        bases.append(spec)
    if args.stack_inner_folds is not None:
        params["inner_folds"] = args.stack_inner_folds
    return StackModel(**{**params, "base_models": bases})


def _inference(
    model: Any,
    texts: list[str],
    scored: GoldWithUnseen,
    counts: np.ndarray,
    copies: bool = True,
) -> dict[str, Any]:
    """Dev scores and notes/s of the model, and of each faster CPU copy: a transformer's
    ONNX Runtime copy (what batch coding uses by default) and int8 copy, or a stack's
    batch-coding copy (unless `copies` is False); each one's speed-up and what it costs in
    MAP and micro-F1."""
    eager_s, eager = _timed(lambda: model.predict_proba(texts))
    entry = {
        **_scores(scored, eager, counts),
        "inference_notes_per_second_eager": len(texts) / eager_s,
        "copies": {},
    }
    faster: dict[str, Any] = {}
    if copies and isinstance(model, TransformerModel):
        faster = {"onnx": model.onnx_copy(), "int8": model.quantized()}
    elif copies and model.for_batch_coding() is not model:
        faster = {"batch": model.for_batch_coding()}
    for name, copy in faster.items():
        copy_s, probs = _timed(lambda copy=copy: copy.predict_proba(texts))
        copy_scores = _scores(scored, probs, counts)
        entry["copies"][name] = {
            "notes_per_second": len(texts) / copy_s,
            "speedup": eager_s / copy_s,
            "map": copy_scores["map"],
            "micro_f1": copy_scores["micro_f1"],
            "max_abs_difference": float(np.abs(probs - eager).max()),
        }
    return entry


def _training_speed(
    mode: str, texts: list[str], Y: sp.csr_matrix, space: LabelSpace, common: dict[str, Any]
) -> dict[str, float]:
    """One epoch over a few notes: encoder + head tokens per second of training steps."""
    model = TransformerModel(mode=mode, epochs=1, **common)
    started = time.perf_counter()
    model.fit(texts[:SPEED_NOTES], Y[:SPEED_NOTES], labels=space)
    return {
        "train_tokens_per_second": model.history_[0]["tokens_per_second"],
        "fit_seconds_for_16_notes": time.perf_counter() - started,
    }


def _fit_for_dev(
    mode: str,
    texts: list[str],
    Y: sp.csr_matrix,
    space: LabelSpace,
    common: dict[str, Any],
    args: argparse.Namespace,
) -> tuple[TransformerModel, float]:
    held = np.random.default_rng(0).permutation(len(texts))[: len(texts) // 10]
    is_held = np.zeros(len(texts), bool)
    is_held[held] = True
    fit_texts = [t for t, h in zip(texts, is_held, strict=True) if not h]
    validation = ([t for t, h in zip(texts, is_held, strict=True) if h], Y[is_held])
    fine_tune = args.fine_tune_epochs if args.fine_tune_epochs is not None else args.epochs
    epochs = args.epochs if mode == "frozen" else fine_tune
    model = TransformerModel(mode=mode, epochs=epochs, cache_dir=args.cache_dir, **common)
    started = time.perf_counter()
    # Fewer than 10 notes (--limit) hold none back: no early stopping then.
    model.fit(fit_texts, Y[~is_held], labels=space, validation=validation if held.size else None)
    return model, time.perf_counter() - started


def _scores(scored: GoldWithUnseen, known_probs: np.ndarray, counts: np.ndarray) -> dict[str, Any]:
    """Every dev gold code counts: codes unseen in training are never retrieved."""
    gold, probs = scored.gold, scored.pad(known_probs)
    f1 = [metrics.micro_prf(gold, probs >= t).f1 for t in F1_THRESHOLDS]
    threshold = float(F1_THRESHOLDS[int(np.argmax(f1))])
    return {
        "map": metrics.mean_average_precision(gold, probs),
        "micro_f1": max(f1),
        "threshold": threshold,
        "macro_f1_by_bucket": _macro_f1_by_bucket(gold, probs >= threshold, counts),
        "recall_at_precision_95": _recall_at_precision(gold, probs, AUTOMATION_PRECISION),
    }


def _recall_at_precision(gold: sp.csr_matrix, probs: np.ndarray, precision: float) -> float:
    """The most of the gold codes that one global threshold finds at `precision` or more:
    how much a model's confident head could code unreviewed (an oracle threshold chosen on
    dev, the same for every model; `autocode`'s policy tunes its own out of fold)."""
    order = np.argsort(-probs, axis=None, kind="stable")
    hits = np.cumsum(gold.toarray().ravel()[order])
    found = np.arange(1, order.size + 1)
    # Cut only between distinct scores: tied pairs are accepted together or not at all.
    last_of_tie = np.append(np.diff(probs.ravel()[order]) != 0, True)
    meets = (hits >= precision * found) & last_of_tie
    return float(hits[meets].max() / gold.nnz) if meets.any() and gold.nnz else 0.0


def _macro_f1_by_bucket(
    gold: sp.csr_matrix, predicted: np.ndarray, counts: np.ndarray
) -> dict[str, dict[str, float]]:
    """Macro-F1 over each bucket's codes (`counts`: training notes per column)."""
    report = {}
    lower = -1.0
    for name, upper in FREQUENCY_BUCKETS.items():
        columns = np.flatnonzero((counts > lower) & (counts <= upper))
        lower = upper
        if columns.size:
            bucket_f1 = metrics.macro_prf(gold[:, columns], predicted[:, columns]).f1
            report[name] = {"macro_f1": bucket_f1, "codes": int(columns.size)}
    return report


def _gpu_memory() -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return {
        "name": torch.cuda.get_device_name(),
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
    }


def _timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def _table(results: dict[str, Any]) -> str:
    lines = [f"CodiEsp en: {results['notes']}, {results['labels']} labels"]
    for mode, speed in results["training_speed"].items():
        lines.append(f"train {mode:14s} {speed['train_tokens_per_second']:8.0f} tokens/s")
    peer = results["dev"]["tfidf"]
    for name, entry in results["dev"].items():
        ratio = entry["map"] / peer["map"] if peer["map"] else float("nan")
        line = (
            f"dev {name:22s} MAP {entry['map']:.3f} ({ratio:.2f}x tfidf)  "
            f"micro-F1 {entry['micro_f1']:.3f}  fit {entry['fit_seconds']:.0f}s"
        )
        if entry.get("copies"):
            line += f"  infer {entry['inference_notes_per_second_eager']:.1f} notes/s eager"
        for copy_name, copy in entry.get("copies", {}).items():
            line += (
                f"; {copy['notes_per_second']:.1f} {copy_name} ({copy['speedup']:.2f}x; "
                f"MAP {copy['map']:.3f}, micro-F1 {copy['micro_f1']:.3f}, "
                f"max |diff| {copy['max_abs_difference']:.1e})"
            )
        lines.append(line)
        buckets = entry["macro_f1_by_bucket"]
        lines.append(
            "    macro-F1 by training notes: "
            + "  ".join(f"{b} {v['macro_f1']:.3f} ({v['codes']})" for b, v in buckets.items())
        )
    lines.append(f"peak RSS {results['peak_rss_gib']:.2f} GiB; GPU {results['gpu']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
