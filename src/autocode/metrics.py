"""Metrics for multi-label medical coding.

Conventions shared by every function here:

- ``y_true`` and ``y_pred`` are binary (n_docs, n_labels) matrices, dense numpy or
  scipy.sparse. Counting metrics stay sparse, so a 10k-wide label space is never
  densified as a whole.
- ``y_score`` / ``y_prob`` is a dense float (n_docs, n_labels) numpy array.
- Precision, recall and F1 (micro, macro, per code) are 0.0 wherever undefined, as
  with sklearn's ``zero_division=0``. Recall@k, MAP and AUC average over documents or
  labels where they are defined and are NaN only when there is none, so that
  "undefined" never reads as "bad".
- Ranking ties are broken by label index: among equal scores the lower column ranks
  first (a stable sort), so results are deterministic.
- ``evaluate`` can mark columns as unranked: gold codes outside the model's label space,
  which it never scores. They count as gold everywhere but are never retrieved: in
  P@k, R@k and MAP they sit below every ranked column, past any k, and in the micro AUC
  below every ranked entry (tied among themselves). A (document, label) mask marks single
  entries instead: a code outside the label space that an open part proposed for some
  notes is ranked in those notes only.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.stats import rankdata

from autocode.knowledge import system_columns

Matrix: TypeAlias = np.ndarray | sp.spmatrix | sp.sparray
FloatArray: TypeAlias = npt.NDArray[np.floating]
IntArray: TypeAlias = npt.NDArray[np.int64]

# Ranking work densifies a block of rows (or columns); this bounds a block to ~4M cells.
_BLOCK_CELLS = 1 << 22
BUCKETS = ("0", "1-5", "6-50", ">50")


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 of one averaging scheme."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin calibration summary; empty bins hold NaN means and a zero count."""

    mean_predicted: FloatArray
    observed_frequency: FloatArray
    count: IntArray


# -- input checks ---------------------------------------------------------------------


def as_binary(y: Matrix, name: str) -> sp.csr_array:
    """Return ``y`` as a boolean CSR array, rejecting non-2-D or non-0/1 input."""
    shape = y.shape if sp.issparse(y) else np.shape(y)
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_docs, n_labels); got shape {shape}")
    matrix = sp.csr_array(y) if sp.issparse(y) else sp.csr_array(np.asarray(y))
    bad = matrix.data[(matrix.data != 0) & (matrix.data != 1)]
    if bad.size:
        raise ValueError(f"{name} must be binary (0/1); found value {bad[0]!r}")
    return matrix != 0


def _as_scores(y_score: np.ndarray, name: str) -> FloatArray:
    if sp.issparse(y_score):
        raise ValueError(f"{name} must be a dense numpy array, not {type(y_score).__name__}")
    scores = np.asarray(y_score)
    # Float32 model outputs are kept as they are: a float64 copy would double the memory.
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if scores.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_docs, n_labels); got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return scores


def _check_shapes(
    name_a: str, shape_a: tuple[int, ...], name_b: str, shape_b: tuple[int, ...]
) -> None:
    if shape_a != shape_b:
        raise ValueError(f"shape mismatch: {name_a} {shape_a} vs {name_b} {shape_b}")
    if 0 in shape_a:
        raise ValueError(f"{name_a} and {name_b} are empty: shape {shape_a}")


def _binary_pair(y_true: Matrix, y_pred: Matrix) -> tuple[sp.csr_array, sp.csr_array]:
    true, pred = as_binary(y_true, "y_true"), as_binary(y_pred, "y_pred")
    _check_shapes("y_true", true.shape, "y_pred", pred.shape)
    return true, pred


def _true_and_scores(
    y_true: Matrix, y_score: np.ndarray, name: str = "y_score"
) -> tuple[sp.csr_array, FloatArray]:
    true, scores = as_binary(y_true, "y_true"), _as_scores(y_score, name)
    _check_shapes("y_true", true.shape, name, scores.shape)
    return true, scores


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> FloatArray:
    """Elementwise numerator / denominator, 0.0 where the denominator is 0."""
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


# -- set-based metrics ----------------------------------------------------------------


def _code_counts(true: sp.csr_array, pred: sp.csr_array) -> tuple[IntArray, IntArray, IntArray]:
    """Per code: true positives, predicted count, gold count."""
    tp = np.asarray(true.multiply(pred).sum(axis=0), dtype=np.int64)
    return tp, np.asarray(pred.sum(axis=0), np.int64), np.asarray(true.sum(axis=0), np.int64)


def _prf(
    tp: np.ndarray, predicted: np.ndarray, gold: np.ndarray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    return _ratio(tp, predicted), _ratio(tp, gold), _ratio(2 * tp, predicted + gold)


def _micro(tp: IntArray, predicted: IntArray, gold: IntArray) -> PRF:
    p, r, f = _prf(tp.sum(keepdims=True), predicted.sum(keepdims=True), gold.sum(keepdims=True))
    return PRF(float(p[0]), float(r[0]), float(f[0]))


def _macro(tp: IntArray, predicted: IntArray, gold: IntArray) -> PRF:
    seen = (predicted + gold) > 0
    if not seen.any():
        return PRF(0.0, 0.0, 0.0)
    p, r, f = _prf(tp[seen], predicted[seen], gold[seen])
    return PRF(float(p.mean()), float(r.mean()), float(f.mean()))


def micro_prf(y_true: Matrix, y_pred: Matrix) -> PRF:
    """Micro-averaged precision, recall and F1, pooling every (document, code) decision."""
    return _micro(*_code_counts(*_binary_pair(y_true, y_pred)))


def macro_prf(y_true: Matrix, y_pred: Matrix) -> PRF:
    """Macro-averaged precision, recall and F1 over codes in the gold OR predicted sets.

    Codes absent from both are excluded (Edin et al. 2023): counting them as F1=0 or 1
    would make the score depend on how wide the label space is. Macro-F1 is the mean
    of per-code F1, not the F1 of macro precision and macro recall. With no code seen
    at all, every value is 0.0.
    """
    return _macro(*_code_counts(*_binary_pair(y_true, y_pred)))


def per_code_prf(
    y_true: Matrix, y_pred: Matrix
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Per-code (precision, recall, f1, support); support is the gold count per code."""
    tp, predicted, gold = _code_counts(*_binary_pair(y_true, y_pred))
    return (*_prf(tp, predicted, gold), gold)


def _exact_match(true: sp.csr_array, pred: sp.csr_array) -> float:
    differing = sp.csr_array(true != pred)
    return float((np.diff(differing.indptr) == 0).mean())


def exact_match(y_true: Matrix, y_pred: Matrix) -> float:
    """Share of documents whose predicted code set equals the gold set exactly."""
    return _exact_match(*_binary_pair(y_true, y_pred))


# -- ranking metrics ------------------------------------------------------------------


@dataclass(frozen=True)
class _Ranking:
    """Per-document facts about the score ranking, gathered in one pass over the scores."""

    list_lengths: IntArray  # per document, how many labels are ranked
    gold_counts: IntArray
    hits: dict[int, IntArray]  # k -> gold codes among the top min(k, n_labels)
    average_precision: FloatArray  # 0.0 for documents without gold codes


def _blocks(length: int, width: int) -> Iterator[slice]:
    """Slices over ``length`` rows (or columns) so that a block holds ~_BLOCK_CELLS cells."""
    step = max(1, _BLOCK_CELLS // width)
    for start in range(0, length, step):
        yield slice(start, min(start + step, length))


def _check_ks(ks: Sequence[int]) -> None:
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}")


def _rank(
    true: sp.csr_array,
    scores: FloatArray,
    ks: Sequence[int],
    ranked: IntArray | None = None,
    hidden: npt.NDArray[np.bool_] | None = None,
) -> _Ranking:
    """Rank each document's labels; only the ``ranked`` columns (None: all) are retrievable,
    and of those, only the entries ``hidden`` (a documents x columns mask) leaves out.

    Gold codes elsewhere still count in ``gold_counts``: they are missed at every k.
    """
    _check_ks(ks)
    gold_counts = np.asarray(true.sum(axis=1), np.int64)
    columns = slice(None) if ranked is None else ranked
    n_docs = scores.shape[0]
    n_labels = scores.shape[1] if ranked is None else len(ranked)
    list_lengths = np.full(n_docs, n_labels, np.int64)
    if hidden is not None:
        list_lengths -= hidden[:, columns].sum(axis=1)
    hits = {k: np.zeros(n_docs, np.int64) for k in ks}
    precision_sums = np.zeros(n_docs)
    ranks = np.arange(1, n_labels + 1)
    for rows in _blocks(n_docs, n_labels) if n_labels else ():
        block_scores = scores[rows][:, columns]
        block_gold = true[rows][:, columns].toarray()
        if hidden is not None:
            # Hidden entries go below every real score and hold no gold to find.
            block_scores = np.where(hidden[rows][:, columns], -np.inf, block_scores)
            block_gold &= ~hidden[rows][:, columns]
        # 1. A stable sort of the negated scores keeps tied labels in index order.
        order = np.argsort(-block_scores, axis=1, kind="stable")
        gold_in_order = np.take_along_axis(block_gold, order, axis=1)
        # 2. found[:, r - 1] counts gold codes in the top r, i.e. precision@r * r.
        found = np.cumsum(gold_in_order, axis=1)
        for k in ks:
            hits[k][rows] = found[:, min(k, n_labels) - 1]
        # 3. trec_eval AP sums precision@r only at ranks r that hold a gold code.
        precision_sums[rows] = (found / ranks * gold_in_order).sum(axis=1)
    return _Ranking(list_lengths, gold_counts, hits, _ratio(precision_sums, gold_counts))


def _precision_at(ranking: _Ranking, k: int) -> float:
    # A document with nothing ranked retrieves nothing: 0 at any k.
    return float(_ratio(ranking.hits[k], np.minimum(k, ranking.list_lengths)).mean())


def _recall_at(ranking: _Ranking, k: int) -> float:
    has_gold = ranking.gold_counts > 0
    return _mean_or_nan(ranking.hits[k][has_gold] / ranking.gold_counts[has_gold])


def _map(ranking: _Ranking) -> float:
    return _mean_or_nan(ranking.average_precision[ranking.gold_counts > 0])


def precision_at_k(y_true: Matrix, y_score: np.ndarray, k: int) -> float:
    """Mean over all documents of (gold codes among the k best-scored) / k.

    Dividing by k, not by min(k, |gold|), is the usual MIMIC convention (Mullenbach et
    al. 2018): a document with fewer than k gold codes cannot reach 1.0, and one without
    gold codes scores 0. A k above n_labels is clamped to n_labels. Ties: lower label
    index first.
    """
    return _precision_at(_rank(*_true_and_scores(y_true, y_score), [k]), k)


def recall_at_k(y_true: Matrix, y_score: np.ndarray, k: int) -> float:
    """Mean over documents with gold codes of (gold codes among the k best) / |gold|.

    Documents without gold codes are excluded (their recall is undefined); NaN when no
    document has one. A k above n_labels is clamped. Ties: lower label index first.
    """
    return _recall_at(_rank(*_true_and_scores(y_true, y_score), [k]), k)


def mean_average_precision(y_true: Matrix, y_score: np.ndarray) -> float:
    """MAP as trec_eval computes it for CodiEsp, over each document's full ranked list.

    AP_d = (1/|gold_d|) * sum of precision@r over the ranks r that hold a gold code;
    MAP is the mean over documents with at least one gold code (NaN if there are none).
    Tied scores are ordered by label index, lower first (a stable sort).
    """
    return _map(_rank(*_true_and_scores(y_true, y_score), []))


def _auc_from_rank_sums(rank_sum: FloatArray, n_pos: np.ndarray, n_neg: np.ndarray) -> FloatArray:
    # Mann-Whitney U over average ranks: the share of (positive, negative) pairs ordered
    # correctly, ties counting half, which equals the trapezoidal ROC AUC.
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _micro_auc(
    true: sp.csr_array, scores: FloatArray, unranked: npt.NDArray[np.bool_] | None = None
) -> float:
    """``unranked``: a label mask or a (document, label) mask of entries never scored."""
    rows, cols = true.nonzero()
    if unranked is None or not unranked.any():
        ranked_scores, positives = scores, scores[rows, cols]
        unranked_pos = unranked_neg = 0
    else:
        # Unranked entries sit below every ranked one, tied among themselves: no pair of
        # an unranked positive with a ranked negative is ordered correctly.
        hidden = np.broadcast_to(unranked, scores.shape)
        hidden_positive = hidden[rows, cols]
        unranked_pos = int(hidden_positive.sum())
        unranked_neg = int(hidden.sum()) - unranked_pos
        ranked_scores = scores[~hidden]
        positives = scores[rows[~hidden_positive], cols[~hidden_positive]]
    n_pos = positives.size
    n_neg = ranked_scores.size - n_pos
    total_pos, total_neg = n_pos + unranked_pos, n_neg + unranked_neg
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    # Average ranks of the positives via one sorted copy, never a full n x L rank matrix.
    ordered = np.sort(ranked_scores, axis=None)
    below = np.searchsorted(ordered, positives, side="left")
    up_to = np.searchsorted(ordered, positives, side="right")
    rank_sum = ((below + 1 + up_to) / 2).sum()
    # Mann-Whitney U among ranked entries, plus the pairs that involve unranked ones.
    correct = rank_sum - n_pos * (n_pos + 1) / 2
    correct += n_pos * unranked_neg + unranked_pos * unranked_neg / 2
    return float(correct / (total_pos * total_neg))


def _macro_auc(true: sp.csr_array, scores: FloatArray) -> float:
    n_docs, n_labels = scores.shape
    n_pos = np.asarray(true.sum(axis=0), np.int64)
    defined = (n_pos > 0) & (n_pos < n_docs)
    if not defined.any():
        return float("nan")
    true_by_code = sp.csc_array(true)
    rank_sums = np.zeros(n_labels)
    for cols in _blocks(n_labels, n_docs):
        ranks = rankdata(scores[:, cols], axis=0)
        rank_sums[cols] = true_by_code[:, cols].multiply(ranks).sum(axis=0)
    n_pos = n_pos[defined]
    return float(_auc_from_rank_sums(rank_sums[defined], n_pos, n_docs - n_pos).mean())


def auc(y_true: Matrix, y_score: np.ndarray, average: Literal["micro", "macro"]) -> float:
    """ROC AUC, ties counting half (as sklearn's ``roc_auc_score``).

    ``micro`` pools every (document, label) entry into one ROC curve; ``macro`` averages
    the per-label AUC over labels with both positive and negative documents, skipping
    the rest. NaN only when nothing is defined (no such label, or one class in the pool).
    """
    true, scores = _true_and_scores(y_true, y_score)
    if average == "micro":
        return _micro_auc(true, scores)
    if average == "macro":
        return _macro_auc(true, scores)
    raise ValueError(f"average must be 'micro' or 'macro'; got {average!r}")


# -- calibration ----------------------------------------------------------------------


def _reliability(true: sp.csr_array, prob: FloatArray, n_bins: int) -> ReliabilityCurve:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    if prob.min() < 0 or prob.max() > 1:
        raise ValueError(
            f"probabilities must lie in [0, 1]; got range [{prob.min()}, {prob.max()}]"
        )
    # Bin i holds p in [i/n_bins, (i+1)/n_bins); p == 1.0 joins the last bin.
    bins = np.minimum((prob * n_bins).astype(np.intp), n_bins - 1)
    count = np.bincount(bins.ravel(), minlength=n_bins).astype(np.int64)
    prob_sum = np.bincount(bins.ravel(), weights=prob.ravel(), minlength=n_bins)
    positives = np.bincount(bins[true.nonzero()], minlength=n_bins)
    filled = count > 0
    mean_predicted = np.divide(prob_sum, count, out=np.full(n_bins, np.nan), where=filled)
    observed = np.divide(positives, count, out=np.full(n_bins, np.nan), where=filled)
    return ReliabilityCurve(mean_predicted, observed, count)


def _ece(true: sp.csr_array, prob: FloatArray, n_bins: int) -> float:
    curve = _reliability(true, prob, n_bins)
    filled = curve.count > 0
    gaps = np.abs(curve.observed_frequency[filled] - curve.mean_predicted[filled])
    return float((gaps * curve.count[filled]).sum() / curve.count.sum())


def reliability_curve(y_true: Matrix, y_prob: np.ndarray, n_bins: int = 10) -> ReliabilityCurve:
    """Calibration per equal-width probability bin, for plotting.

    Pools all (document, label) entries; bin i holds p in [i/n_bins, (i+1)/n_bins), and
    p == 1.0 joins the last bin. Per bin: mean predicted probability, observed share of
    positives, and entry count.
    """
    return _reliability(*_true_and_scores(y_true, y_prob, "y_prob"), n_bins)


def expected_calibration_error(y_true: Matrix, y_prob: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error over all (document, label) entries pooled.

    Sum over the equal-width bins of ``reliability_curve`` of
    (entries in bin / all entries) * |observed frequency - mean predicted|.
    """
    return _ece(*_true_and_scores(y_true, y_prob, "y_prob"), n_bins)


# Where ECE is worth reading: pairs the model gives a chance (at least 1%), or a note's
# ten most probable codes. Over every pair, the near-zero negatives (99.9% of CodiEsp's)
# drown any miscalibration of the codes a coder would see.
CANDIDATE_MIN_PROBABILITY = 0.01
CANDIDATE_TOP_K = 10


def candidate_calibration(
    y_true: Matrix,
    y_prob: np.ndarray,
    n_bins: int = 10,
    min_probability: float = CANDIDATE_MIN_PROBABILITY,
    top_k: int = CANDIDATE_TOP_K,
) -> dict[str, float]:
    """ECE over the candidate pairs: probability >= `min_probability`, or among a note's
    `top_k` most probable codes with a probability above 0 (a code never proposed is no
    candidate); `{"ece", "pairs"}`, ECE 0.0 over no pair (no code, as an open part
    without codes beyond the label space)."""
    if 0 in np.shape(y_prob):
        return {"ece": 0.0, "pairs": 0}
    true, prob = _true_and_scores(y_true, y_prob, "y_prob")
    found_rows, found_cols = [], []
    for block in _blocks(prob.shape[0], prob.shape[1]):  # a block's sort, not the whole's
        scores = prob[block]
        candidate = scores >= min_probability
        top = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
        np.put_along_axis(candidate, top, True, axis=1)
        rows, cols = np.nonzero(candidate & (scores > 0))
        found_rows.append(rows + block.start)
        found_cols.append(cols)
    rows, cols = np.concatenate(found_rows), np.concatenate(found_cols)
    if not rows.size:
        return {"ece": 0.0, "pairs": 0}
    gold = sp.csr_array(np.asarray(true[rows, cols]).reshape(1, -1))
    # Binned in double precision, whatever the scores' type: a float32 0.3 is below 0.3.
    values = prob[rows, cols].astype(np.float64).reshape(1, -1)
    return {"ece": _ece(gold, values, n_bins), "pairs": int(rows.size)}


# -- reports --------------------------------------------------------------------------


def frequency_buckets(train_counts: np.ndarray) -> npt.NDArray[np.str_]:
    """Name each code's training-frequency bucket: "0", "1-5", "6-50" or ">50"."""
    counts = np.asarray(train_counts)
    if counts.ndim != 1:
        raise ValueError(f"train_counts must be 1-D; got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError(f"train_counts must be non-negative; found {counts.min()}")
    # right=True maps 0 -> 0, 1..5 -> 1, 6..50 -> 2, above 50 -> 3.
    return np.asarray(BUCKETS)[np.digitize(counts, [0, 5, 50], right=True)]


def _report(
    true: sp.csr_array,
    scores: FloatArray,
    pred: sp.csr_array,
    ks: Sequence[int],
    unranked: npt.NDArray[np.bool_],
) -> dict[str, Any]:
    counts = _code_counts(true, pred)
    micro, macro = _micro(*counts), _macro(*counts)
    by_entry = unranked.ndim == 2 and bool(unranked.any())
    ranked = np.flatnonzero(~unranked) if unranked.ndim == 1 and unranked.any() else None
    ranking = _rank(true, scores, ks, ranked, unranked if by_entry else None)
    return {
        "documents": int(true.shape[0]),
        "micro_precision": micro.precision,
        "micro_recall": micro.recall,
        "micro_f1": micro.f1,
        "macro_precision": macro.precision,
        "macro_recall": macro.recall,
        "macro_f1": macro.f1,
        "precision_at_k": {str(k): _precision_at(ranking, k) for k in ks},
        "recall_at_k": {str(k): _recall_at(ranking, k) for k in ks},
        "map": _map(ranking),
        "auc_micro": _micro_auc(true, scores, unranked),
        "auc_macro": _macro_auc(true, scores),
        "exact_match": _exact_match(true, pred),
        "ece": _ece(true, scores, 10),
    }


def _bucket_report(
    true: sp.csr_array, pred: sp.csr_array, train_counts: np.ndarray
) -> dict[str, dict[str, Any]]:
    n_labels = true.shape[1]
    if np.shape(train_counts) != (n_labels,):
        raise ValueError(f"train_counts has shape {np.shape(train_counts)}; expected ({n_labels},)")
    buckets = frequency_buckets(train_counts)
    tp, predicted, gold = _code_counts(true, pred)
    report = {}
    for bucket in BUCKETS:
        codes = buckets == bucket
        if not codes.any():
            continue
        micro = _micro(tp[codes], predicted[codes], gold[codes])
        report[bucket] = {
            "micro_precision": micro.precision,
            "micro_recall": micro.recall,
            "micro_f1": micro.f1,
            "macro_f1": _macro(tp[codes], predicted[codes], gold[codes]).f1,
            "codes": int(codes.sum()),
        }
    return report


def evaluate(
    y_true: Matrix,
    y_score: np.ndarray,
    y_pred: Matrix,
    labels: Sequence[str],
    train_counts: np.ndarray | None = None,
    ks: Sequence[int] = (5, 8, 15),
    unranked: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric above in one JSON-serialisable report (plain floats and ints).

    Top-level keys are the overall metrics; ``per_system`` repeats them on each code
    system's columns (the part of ``SYSTEM:VALUE`` before the colon); ``per_bucket``,
    when ``train_counts`` is given, gives micro P/R/F1, macro-F1 and the code count per
    training-frequency bucket (empty buckets omitted). ``y_score`` must be probabilities,
    as it also feeds the ECE (10 bins). ``unranked`` marks the columns (a label mask) or
    the entries (a documents x labels mask) the model never ranks (see the module
    docstring); their scores still feed the ECE and the per-label AUC. Undefined averages
    are NaN (see the module docstring): pass the report through ``json_compatible``
    before writing JSON.
    """
    true, scores = _true_and_scores(y_true, y_score)
    pred = as_binary(y_pred, "y_pred")
    _check_shapes("y_true", true.shape, "y_pred", pred.shape)
    if len(labels) != true.shape[1]:
        raise ValueError(f"got {len(labels)} labels for {true.shape[1]} label columns")
    unranked_mask = _unranked_mask(unranked, true.shape)
    report = _report(true, scores, pred, ks, unranked_mask)
    report["per_system"] = {
        system: _report(true[:, cols], scores[:, cols], pred[:, cols], ks, unranked_mask[..., cols])
        for system, cols in system_columns(labels).items()
    }
    if train_counts is not None:
        report["per_bucket"] = _bucket_report(true, pred, train_counts)
    return report


def _unranked_mask(unranked: np.ndarray | None, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    if unranked is None:
        return np.zeros(shape[1], dtype=bool)
    mask = np.asarray(unranked)
    if mask.dtype != np.bool_ or mask.shape not in ((shape[1],), shape):
        raise ValueError(
            f"unranked must be a boolean mask of shape ({shape[1]},) or {shape}; "
            f"got {mask.dtype} of shape {mask.shape}"
        )
    return mask


def json_compatible(value: Any) -> Any:
    """``value`` with every NaN or infinite float, at any depth, replaced by None.

    JSON has no NaN: ``json.dumps`` would write the bare token ``NaN``, which strict
    parsers reject, so an undefined metric is written as ``null``.
    """
    if isinstance(value, dict):
        return {key: json_compatible(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_compatible(item) for item in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


# -- evidence -------------------------------------------------------------------------

CharSpan: TypeAlias = tuple[int, int]  # characters [start, end) of a note


def evidence_hit_rates(
    evidence: Sequence[Sequence[CharSpan]],
    gold: Sequence[Sequence[CharSpan]],
    ks: Sequence[int] = (1, 3),
) -> dict[int, float]:
    """Per k, the share of explained codes where one of the first k evidence spans overlaps
    a gold span of that code (spans share at least one character).

    Case i is one (note, code): `evidence[i]` its spans, strongest first; `gold[i]` the
    characters behind the code (every piece of every gold mention of it in the note). A
    case without evidence is a miss; NaN when there is no case.
    """
    _check_ks(ks)
    if len(evidence) != len(gold):
        raise ValueError(f"{len(evidence)} evidence lists but {len(gold)} gold lists")
    if not evidence:
        return {k: math.nan for k in ks}
    first_hit = [
        _first_overlap(spans, gold_spans) for spans, gold_spans in zip(evidence, gold, strict=True)
    ]
    return {k: sum(hit < k for hit in first_hit) / len(first_hit) for k in ks}


def _first_overlap(spans: Sequence[CharSpan], gold: Sequence[CharSpan]) -> float:
    """Position of the first span overlapping a gold span; infinity when none does."""
    for position, (start, end) in enumerate(spans):
        if any(start < gold_end and gold_start < end for gold_start, gold_end in gold):
            return position
    return math.inf
