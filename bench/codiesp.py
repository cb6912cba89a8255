"""CodiEsp dev: the TF-IDF Coders against the plain scikit-learn pipeline a user would write.

Peer: TfidfVectorizer + OneVsRestClassifier(LogisticRegression(liblinear)),
best global threshold. Peer and autocode's linear layer read identical features
(same vectorizer settings); all train on CodiEsp train (English) and are scored
on dev, per code system, with every dev gold code counted (codes never seen in
training are misses for all). Also scored: tfidf-lexicon (the linear scores
re-ranked with the codes' own terms) and the full Coder of the config, whose
thresholds come from cross-fitting on train, never from dev.

With a config that has an open part (`open_codes:`, e.g. configs/codiesp-best.yaml), the
Coder is scored with its open-part proposals too. For ICD-10-CM it also reports, in the
same run: micro P/R/F1 per training-frequency bucket (unseen, 1, 2-5, 6-50, >50) for the
peer, tfidf-lexicon and the Coder with and without its open part; code-level automation
(the share of gold codes the review policy auto-accepts, and their precision); and ECE
over the pairs that matter (probability >= 0.01 or a note's top 10), for the label
space's codes and for the open part's.

    python bench/codiesp.py [--data DIR] [--config FILE] [--set KEY=VALUE ...] [--json]

`--set` changes the config as `autocode train --set` does; `--set data.language=es` scores
every model on the Spanish originals (with `codes.mentions` in the config, the matcher
also knows the terms mined from the training notes' CodiEsp-X mentions; add `--set
open_codes.procedures=false`: the PCS names are English).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from autocode import metrics
from autocode.config import TermRulesConfig, TrainConfig, load_config, shared_data_dir
from autocode.corpus.schema import NoteSet
from autocode.decisions.widening import Widened, widen
from autocode.knowledge import CodeKnowledge, system_columns
from autocode.labels import GoldWithUnseen, LabelSpace, gold_with_unseen
from autocode.models import TfidfLexiconModel
from autocode.models.linear import LinearSettings, train_linear
from autocode.train.evaluation import evaluate_coder
from autocode.train.fitting import fit_coder, fit_rules, model_params

sys.path.insert(0, str(Path(__file__).resolve().parent))
import open_scoring  # bench/ is not a package: its own folder on the path
from codiesp_common import codiesp_notes

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = np.arange(0.01, 0.95, 0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "codiesp")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "tfidf.yaml")
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    config = load_config(args.config, args.set)
    language = config.data.language
    train, dev = (codiesp_notes(args.data, split, language) for split in ("train", "dev"))
    space = LabelSpace().fit(train.codes)
    scored = gold_with_unseen(space, dev.codes)

    stage1 = _stage1_params(config)
    features = _vectorizer(stage1).fit(train.texts)
    X_train, X_dev = features.transform(train.texts), features.transform(dev.texts)
    Y_train = space.encode(train.codes)

    peer_seconds, peer_scores = _timed(lambda: _peer_scores(X_train, Y_train, X_dev))
    ours_seconds, our_scores = _timed(lambda: _linear_scores(stage1, X_train, Y_train, X_dev))
    lexicon = TfidfLexiconModel(**{**_lexicon_params(config), "tfidf": stage1})
    lexicon_seconds, lexicon = _timed(lambda: lexicon.fit(train.texts, Y_train, labels=space))
    lexicon_scores = lexicon.predict_proba(dev.texts)
    # Prediction speed of the re-ranked model against its own stage 1, same notes.
    repeated = dev.texts * 4
    stage1_predict, _ = _timed(lambda: lexicon.bases_[0].predict_proba(repeated))
    lexicon_predict, _ = _timed(lambda: lexicon.predict_proba(repeated))
    knowledge = CodeKnowledge(config.codes.sources(language=config.data.language))
    coder_seconds, coder = _timed(lambda: fit_coder(config, train, None, knowledge=knowledge).coder)
    coder_predict, _ = _timed(lambda: coder.predict_proba(repeated))
    evaluation = evaluate_coder(coder, dev.texts, dev.codes)
    thresholds = {
        name: _scores(scored, scores)["ICD10CM"]["threshold"]
        for name, scores in (("peer", peer_scores), ("tfidf_lexicon", lexicon_scores))
    }
    open_view = _open_view(
        {
            "peer": widen(space, dev.codes, peer_scores, peer_scores >= thresholds["peer"]),
            "tfidf_lexicon": widen(
                space, dev.codes, lexicon_scores, lexicon_scores >= thresholds["tfidf_lexicon"]
            ),
            "coder": evaluation.label_space_only,
            "coder_with_open": evaluation.scored,
        }
    )

    results = {
        "language": language,
        "documents": {"train": len(train), "dev": len(dev)},
        "labels": len(space.codes_),
        "unseen_dev_codes": scored.unseen,
        "features": X_train.shape[1],
        "train_seconds": {
            "peer_ovr_liblinear": peer_seconds,
            "autocode_linear": ours_seconds,
            "autocode_tfidf_lexicon": lexicon_seconds,
            "autocode_coder_with_crossfit": coder_seconds,
        },
        "time_ratio_autocode_over_peer": ours_seconds / peer_seconds,
        "predict_notes_per_second": {
            "tfidf": len(repeated) / stage1_predict,
            "tfidf_lexicon": len(repeated) / lexicon_predict,
            "coder_model": len(repeated) / coder_predict,  # the Coder's model, calibrated
        },
        "peer_best_global_threshold": _scores(scored, peer_scores),
        "autocode_best_global_threshold": _scores(scored, our_scores),
        "tfidf_lexicon_best_global_threshold": _scores(scored, lexicon_scores),
        "coder_model": config.model.name,
        "autocode_coder_tuned_thresholds": _coder_view(evaluation.report),
        "autocode_coder_tuned_thresholds_label_space_only": _coder_view(
            evaluation.report["label_space_only"]
        ),
        "coder_open_part": evaluation.report["open_part"],
        "open_part": None if coder.open_codes is None else coder.open_codes.report,
        "open_procedures": None if coder.open_procedures is None else coder.open_procedures.report,
        "icd10cm": open_view,
        "term_rules": None if coder.term_rules is None else coder.term_rules.report,
        "backing_threshold": coder.backing_threshold,
        "term_rules_by_target": _term_rules_by_target(config, knowledge, train, dev, space),
    }
    print(json.dumps(results, indent=2) if args.json else _table(results))


def _stage1_params(config: TrainConfig) -> dict[str, Any]:
    """The TF-IDF settings: the model's params, or tfidf-lexicon's stage-1 `tfidf` params."""
    name, params = _single_model(config)
    return dict(params["tfidf"]) if name == "tfidf-lexicon" else dict(params)


def _lexicon_params(config: TrainConfig) -> dict[str, Any]:
    name, params = _single_model(config)
    return dict(params) if name == "tfidf-lexicon" else {}


def _single_model(config: TrainConfig) -> tuple[str, dict[str, Any]]:
    """The config's model, or a fold ensemble's member: the name and params the peers'
    features and the plain tfidf-lexicon line are read off."""
    if config.model.name == "fold-ensemble":
        member = config.model.params["member"]
        return member["name"], member.get("params", {})
    return config.model.name, model_params(config)


def _vectorizer(params: dict[str, Any]) -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=(1, params.get("word_ngram_max", 2)),
        min_df=params.get("min_df", 2),
        sublinear_tf=True,
        dtype=np.float32,
    )


def _peer_scores(X_train: sp.csr_matrix, Y_train: sp.csr_matrix, X_dev: sp.csr_matrix) -> Any:
    peer = OneVsRestClassifier(LogisticRegression(solver="liblinear"))
    # int64 targets: with int8 (or sparse int8) targets this pipeline silently
    # learns almost nothing (dev MAP 0.03 instead of 0.21 on the top 300 codes).
    return peer.fit(X_train, Y_train.toarray().astype(np.int64)).predict_proba(X_dev)


def _linear_scores(
    params: dict[str, Any], X_train: sp.csr_matrix, Y_train: sp.csr_matrix, X_dev: sp.csr_matrix
) -> Any:
    settings = LinearSettings(
        **{
            k: params[k]
            for k in ("epochs", "batch_size", "learning_rate", "pos_weight")
            if k in params
        }
    )
    return train_linear(X_train, Y_train, settings).predict_proba(X_dev)


def _timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def _scores(scored: GoldWithUnseen, known_probs: np.ndarray) -> dict[str, Any]:
    """Best global threshold on dev (optimistic for both, identical protocol), per system."""
    labels, gold, probs = scored.labels, scored.gold, scored.pad(known_probs)
    scopes = {"all": np.arange(len(labels)), **system_columns(labels)}
    result = {}
    for system, columns in scopes.items():
        g, p = gold[:, columns], probs[:, columns]
        f1, threshold = max((metrics.micro_prf(g, p >= t).f1, t) for t in THRESHOLDS)
        result[system] = {
            "micro_f1": f1,
            "threshold": round(float(threshold), 2),
            "map": metrics.mean_average_precision(g, p),
        }
    return result


def _open_view(variants: dict[str, Widened]) -> dict[str, Any]:
    """ICD-10-CM figures of each variant: overall, per bucket; for the Coder's, automation
    and ECE over the pairs that matter (label-space codes, and the open part's)."""
    columns = {name: open_scoring.icd10cm_columns(v) for name, v in variants.items()}
    result: dict[str, Any] = {
        "overall": {name: open_scoring.overall(v, columns[name]) for name, v in variants.items()},
        "buckets": {
            name: open_scoring.per_bucket(v, columns[name]) for name, v in variants.items()
        },
    }
    with_open = variants["coder_with_open"]
    in_space = np.intersect1d(columns["coder_with_open"], np.flatnonzero(~with_open.outer))
    open_columns = np.intersect1d(columns["coder_with_open"], np.flatnonzero(with_open.outer))
    result["code_automation"] = {
        name: open_scoring.code_automation(variants[name], columns[name])
        for name in ("coder", "coder_with_open")
    }
    result["ece_that_matters"] = {
        "label_space": open_scoring.mattering_ece(with_open, in_space),
        "open_part": open_scoring.mattering_ece(with_open, open_columns),
        "all_pairs_label_space": metrics.expected_calibration_error(
            with_open.gold[:, in_space], with_open.probs[:, in_space]
        ),
    }
    result["confident_reliability"] = open_scoring.confident_reliability(with_open, in_space)
    return result


RULE_TARGETS = (0.90, 0.93, 0.95)


def _term_rules_by_target(
    config: TrainConfig, knowledge: CodeKnowledge, train: NoteSet, dev: NoteSet, space: LabelSpace
) -> dict[str, Any] | None:
    """Term rules fitted on train at each routing target as `autocode train` fits them
    (`fit_rules`: the config's folds, blocking and support), and what they alone accept
    of dev's ICD-10-CM gold codes, at what precision. None without mined terms."""
    if knowledge.mined is None:
        return None
    settings = config.routing.term_rules or TermRulesConfig()
    gold = [{c for c in codes if c.startswith("ICD10CM:")} for codes in dev.codes]
    n_gold = sum(map(len, gold))
    results = {}
    for target in RULE_TARGETS:
        routing = config.routing.model_copy(
            update={"target_precision": target, "term_rules": settings}
        )
        rules = fit_rules(config.model_copy(update={"routing": routing}), train, knowledge, space)
        accepted = [
            {c for c in codes if c.startswith("ICD10CM:")} for codes in rules.accepted(dev.texts)
        ]
        hits = sum(len(a & g) for a, g in zip(accepted, gold, strict=True))
        n_accepted = sum(map(len, accepted))
        cut, needed = rules.report["cut"], rules.report["min_notes"]
        results[str(target)] = {
            "rules": len(rules.rules),
            "cut": cut,
            "min_notes": needed,
            "held_out_check": rules.report["checked"].get(f"{needed} notes, {cut}"),
            "dev_accepted": n_accepted,
            "dev_precision": hits / n_accepted if n_accepted else 0.0,
            "dev_share_of_gold": hits / n_gold if n_gold else 0.0,
        }
    return results


def _coder_view(report: dict[str, Any]) -> dict[str, Any]:
    scopes = {"all": report, **report["per_system"]}
    return {
        name: {"micro_f1": values["micro_f1"], "map": values["map"]}
        for name, values in scopes.items()
    }


def _table(results: dict[str, Any]) -> str:
    lines = [
        f"CodiEsp dev, {results['language']} ({results['documents']['dev']} docs), "
        f"{results['labels']} train labels, "
        f"{results['unseen_dev_codes']} dev codes unseen in train, {results['features']} features",
        "train seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in results["train_seconds"].items()),
        f"time ratio autocode/peer (identical features): "
        f"{results['time_ratio_autocode_over_peer']:.2f}",
        "predict notes/s: "
        + ", ".join(f"{k} {v:.0f}" for k, v in results["predict_notes_per_second"].items()),
        f"coder: {results['coder_model']}",
        f"{'variant':36} {'system':9} {'micro-F1':>8} {'MAP':>6}",
    ]
    for variant in (
        "peer_best_global_threshold",
        "autocode_best_global_threshold",
        "tfidf_lexicon_best_global_threshold",
        "autocode_coder_tuned_thresholds_label_space_only",
        "autocode_coder_tuned_thresholds",
    ):
        for system, values in results[variant].items():
            lines.append(f"{variant:36} {system:9} {values['micro_f1']:8.3f} {values['map']:6.3f}")
    icd = results["icd10cm"]
    lines.append("ICD10CM at each variant's thresholds (peer, tfidf-lexicon: best global on dev)")
    lines.append(f"{'variant':16} {'micro-F1':>8} {'P':>6} {'R':>6} {'MAP':>6}")
    for name, values in icd["overall"].items():
        lines.append(
            f"{name:16} {values['micro_f1']:8.3f} {values['micro_precision']:6.3f} "
            f"{values['micro_recall']:6.3f} {values['map']:6.3f}"
        )
    lines.append("per training-count bucket: recall / precision / F1 (gold codes)")
    for name, buckets in icd["buckets"].items():
        cells = [
            f"{b} {v['recall']:.3f}/{v['precision']:.3f}/{v['f1']:.3f} ({v['gold']})"
            for b, v in buckets.items()
        ]
        lines.append(f"{name:16} " + "  ".join(cells))
    for name, values in icd["code_automation"].items():
        lines.append(f"code automation {name}: " + _pairs(values))
    for name, values in icd["ece_that_matters"].items():
        shown = _pairs(values) if isinstance(values, dict) else f"{values:.4f}"
        lines.append(f"ECE {name}: {shown}")
    lines.append("reliability of the confident label-space pairs (bin: pairs, mean p, gold):")
    lines += [
        f"  {row['bin']}: {row['pairs']}, {row['mean_probability']:.3f}, {row['gold_share']:.3f}"
        for row in icd["confident_reliability"]
    ]
    open_part = {k: v for k, v in results["coder_open_part"].items() if k != "per_system"}
    lines.append("coder's open part on dev: " + _pairs(open_part))
    for system, values in results["coder_open_part"]["per_system"].items():
        lines.append(f"  {system}: " + _pairs(values))
    for part in ("open_part", "open_procedures"):
        if results[part] is not None:
            lines.append(f"{part} (train, held-out codes): " + json.dumps(results[part]))
    if results["term_rules"] is not None:
        lines.append("coder's term rules (train, held out): " + json.dumps(results["term_rules"]))
        lines.append(f"backing threshold: {results['backing_threshold']}")
    for target, values in (results["term_rules_by_target"] or {}).items():
        lines.append(f"term rules at target {target}: " + json.dumps(values))
    return "\n".join(lines)


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
    )


if __name__ == "__main__":
    main()
