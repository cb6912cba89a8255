"""Where in the note a prediction came from: spans of the n-grams that drove it."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate, pairwise
from typing import Any, Generic, NamedTuple, Protocol, Self, TypeVar

import numpy as np
import scipy.sparse as sp

T = TypeVar("T")
# Batches a model remembers what it computed from, and their notes in all (a larger batch,
# a whole archive at once, is not kept): a stack predicts a batch in blocks, and a batch
# job's part of 1,000 notes is at most a few dozen blocks. Bounded by notes, a batch job
# keeps its last few parts' rows, not its last 32 parts' (on the demo Coder, 270 MB).
REMEMBERED_BATCHES = 32
REMEMBERED_NOTES = 4096
WEIGHTS_BUDGET = 2**20  # (pair, feature) weights compared at once
# Features ranked per label for evidence (`StrongestFeatures`): on CodiEsp (1,000 notes,
# their 30 most probable codes) the pairs find their three strongest among a label's first
# 1,024 for 99% of the pairs (90% among the first 512; the ranking takes 9 MB on disk).
RANKED_FEATURES = 1024
# A label's ranking is walked in stages, each for the pairs the ones before left short: of
# the same pairs, 18% are settled by the first 32 ranks, 45% by 128, 69% by 256, 90% by 512.
RANK_STAGES = (32, 128, 256, 512)
RANKING_BUDGET = 2**22  # weights of a block of labels ranked at once (16 MB of float32)
# N-grams of a note `NgramLocator` searches for rather than split and index the note: on
# the demo and CodiEsp notes (2-3k characters) searching costs less up to about 30-40.
SEARCHED_NGRAMS = 32
# scikit-learn's default token pattern finds the same tokens without its word boundaries,
# in two thirds of the time: a scan that passed a word's start (one letter long) is past
# the word, and a greedy run of word characters ends at one's end.
DEFAULT_TOKENS = r"\b\w\w+\b"
_DEFAULT_TOKEN = re.compile(r"\w\w+")  # the same tokens; from a word's end: the next token


WEIGHT_DIGITS = 6  # an evidence span's weight, as the records' JSON and Arrow forms write it


class EvidenceSpan(NamedTuple):
    """Characters [start, end) of the note behind a prediction, and how much they weigh.

    One type from the model to the batch output: a model's spans become a decision's as
    they are (a part's evidence is some 100k spans; copying each into another type would
    cost about a tenth of evidence's time). The words are the note's own, `text[start:end]`.
    A named tuple: a frozen dataclass costs several times as much to build.
    """

    start: int
    end: int
    weight: float

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "weight": round(self.weight, WEIGHT_DIGITS)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(int(value["start"]), int(value["end"]), float(value["weight"]))


class NgramLocator:
    """Where a word n-gram (as the vectorizer spells it) first occurs in one text.

    Tokens are the pattern's matches, lowercased, and an n-gram is its tokens joined by one
    space. A caller that will ask for at most `SEARCHED_NGRAMS` n-grams (`asked`) has them
    searched for in the lowercased text (`str.find`, word boundaries checked; scikit-learn's
    default pattern only): the demo Coder's notes ask for some 20, and are never split
    whole. Otherwise the note is split and indexed once (`_TokenIndex`), and each n-gram
    costs a lookup: a CodiEsp note asks for some 60.
    """

    def __init__(self, text: str, token_pattern: str, asked: int | None = None) -> None:
        self._text = text
        # "(?u)" is already the default of str patterns, and a flag may not follow "(".
        self._pattern = token_pattern.removeprefix("(?u)")
        self._lowered = text.lower()  # as the vectorizer reads it
        # Searching needs the default tokens, and offsets lowercasing keeps (not so "İ").
        self._searching = (
            asked is not None
            and asked <= SEARCHED_NGRAMS
            and self._pattern == DEFAULT_TOKENS
            and len(self._lowered) == len(text)
        )
        self._index: _TokenIndex | None = None

    def first(self, ngram: str) -> tuple[int, int] | None:
        """Character span of the n-gram's first occurrence; None if it does not occur."""
        if self._searching:
            return _searched(self._lowered, ngram)
        if self._index is None:
            self._index = _TokenIndex(self._text, self._lowered, self._pattern)
        return self._index.first(ngram)


def _searched(lowered: str, ngram: str) -> tuple[int, int] | None:
    """`NgramLocator.first` under the default pattern (tokens: maximal runs of two or more
    word characters) by search: the first word where word boundaries hold on both sides,
    followed by the rest, token after token."""
    first, *rest = ngram.split(" ")
    if not _DEFAULT_TOKEN.fullmatch(first):  # never a token ("a"); the rest are compared
        return None
    start = lowered.find(first)
    while start >= 0:
        end = start + len(first)
        if _is_boundary(lowered, start) and _is_boundary(lowered, end):
            for word in rest:
                following = _DEFAULT_TOKEN.search(lowered, end)
                if following is None or following.group() != word:
                    break
                end = following.end()
            else:
                return start, end
        start = lowered.find(first, start + 1)
    return None


def _is_boundary(text: str, at: int) -> bool:
    """Whether position `at` has a word character on at most one side: a word's edge, for
    a word at `at` or ending there (a word character is `str.isalnum()` or "_", as for
    the patterns of Python's `re`)."""
    if at == 0 or at == len(text):
        return True
    before, after = text[at - 1], text[at]
    return not ((before.isalnum() or before == "_") and (after.isalnum() or after == "_"))


class _TokenIndex:
    """A text split once into tokens and the text between them (no match object per
    token), each token's first place indexed (a dict built in C); an n-gram's later
    occurrences, where its first word's first one is not followed by the rest, are
    found by `list.index`, at C speed too."""

    def __init__(self, text: str, lowered: str, pattern: str) -> None:
        grouped = _split_pattern(pattern)
        if len(lowered) == len(text):  # the same offsets
            parts = grouped.split(lowered)  # between, token, between, token, ..., between
            self._tokens = parts[1::2]
        else:
            parts = grouped.split(text)
            self._tokens = [token.lower() for token in parts[1::2]]
        self._part_ends = list(accumulate(map(len, parts)))
        # Read backwards, a repeated token's first place is the one written last.
        last = len(self._tokens) - 1
        self._first_place = dict(zip(reversed(self._tokens), range(last, -1, -1), strict=True))

    def first(self, ngram: str) -> tuple[int, int] | None:
        first = self._first_place.get(ngram)  # most n-grams asked for are single words
        if first is not None:
            return self._part_ends[2 * first], self._part_ends[2 * first + 1]
        words = ngram.split(" ")
        tokens, length = self._tokens, len(words)
        first = self._first_place.get(words[0])
        if first is None or length == 1:
            return None
        try:
            while tokens[first : first + length] != words:
                first = tokens.index(words[0], first + 1)
        except ValueError:
            return None
        # Token i is part 2i + 1: it starts where part 2i ends.
        return self._part_ends[2 * first], self._part_ends[2 * (first + length - 1) + 1]


@cache
def _split_pattern(token_pattern: str) -> re.Pattern[str]:
    faster = _DEFAULT_TOKEN.pattern if token_pattern == DEFAULT_TOKENS else token_pattern
    return re.compile(f"({faster})")


# coef[features[k], labels[k]] for each k: the weights a linear layer gives (feature, label)
# pairs, whether it holds them dense or pruned.
WeightsAt = Callable[[np.ndarray, np.ndarray], np.ndarray]


def top_weighted_features(
    rows: sp.csr_matrix,
    coef: WeightsAt,
    notes: np.ndarray,
    labels: np.ndarray,
    top_n: int,
    strongest: StrongestFeatures | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each pair (`notes[p]`, `labels[p]`): the `top_n` features present in the note's row
    that weigh positively for the label (`coef(feature, label)`), largest first, ties to
    the earlier feature of the row; as (pairs, top_n) feature columns (-1 past the row's
    positive ones) and weights (0 there). Every pair at once, not a loop over notes.

    With `strongest` (the same weights' per-label ranking), the pairs it settles are read
    from it, and only the others weigh every feature of their note.
    """
    features = np.full((len(notes), top_n), -1, np.int64)
    values = np.zeros((len(notes), top_n), np.float32)
    todo = np.arange(len(notes))
    if strongest is not None and len(notes):
        found, found_values, settled = strongest.top_of_pairs(rows, notes, labels, top_n)
        features[settled], values[settled] = found[settled], found_values[settled]
        todo = np.flatnonzero(~settled)
    counts = np.diff(rows.indptr)[notes[todo]]
    with_features = todo[counts > 0]
    # Chunks of pairs holding at most the budget of weights (one pair at least).
    ends = np.cumsum(counts[counts > 0])
    chunk_of = ends // WEIGHTS_BUDGET
    for chunk in np.split(with_features, np.flatnonzero(np.diff(chunk_of)) + 1):
        if chunk.size:
            _top_of_pairs(rows, coef, notes[chunk], labels[chunk], top_n, (features, values), chunk)
    shown = values > 0  # what does not add to the score is not evidence of the label
    return np.where(shown, features, -1), np.where(shown, values, np.float32(0))


def _top_of_pairs(
    rows: sp.csr_matrix,
    coef: WeightsAt,
    notes: np.ndarray,
    labels: np.ndarray,
    top_n: int,
    out: tuple[np.ndarray, np.ndarray],
    out_rows: np.ndarray,
) -> None:
    """`top_weighted_features` of pairs whose notes all have features, into
    `out[.][out_rows]` (non-positive weights included)."""
    counts = np.diff(rows.indptr)[notes]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])  # each pair's first element
    n_elements = int(counts.sum())
    # Element e of pair p is entry indptr[note] + (e - starts[p]) of the note's row.
    entries = np.repeat(rows.indptr[notes] - starts, counts) + np.arange(n_elements)
    columns = rows.indices[entries]
    weights = coef(columns, np.repeat(labels, counts))
    order = np.arange(n_elements)
    for k in range(top_n):
        # Each pair's largest left, and the first element holding it; then it is taken out.
        largest = np.maximum.reduceat(weights, starts)
        holding = weights == np.repeat(largest, counts)
        first = np.minimum.reduceat(np.where(holding, order, n_elements), starts)
        found = largest > -np.inf
        out[0][out_rows[found], k] = columns[first[found]]
        out[1][out_rows[found], k] = largest[found]
        weights[first[found]] = -np.inf


class RankableWeights(Protocol):
    """A linear layer's weights as `StrongestFeatures` reads them."""

    @property
    def shape(self) -> tuple[int, int]: ...  # (n_features, n_labels)

    def label_blocks(self, per_block: int) -> Iterator[tuple[int, np.ndarray]]:
        """Each block of `per_block` labels' dense (n_features, labels) float32 weights,
        with the index of its first label."""
        ...


@dataclass(frozen=True)
class StrongestFeatures:
    """Each label's `k` strongest positive-weight features, strongest first (ties: lower
    feature first), and whether those are all of its positive ones.

    Evidence wants a pair's three strongest features of the note, and weighing every
    feature of the note for every code it lists is most of evidence's cost (a CodiEsp note
    has hundreds of n-grams and lists some 30 codes). Walking the label's ranking instead
    and keeping the note's features settles a pair exactly once `top_n` are found (any
    feature past the ranking weighs no more), or when the ranking is complete; only the
    other pairs need every weight.
    """

    features: np.ndarray  # (n_labels, k): feature ids; n_features past a label's own
    weights: np.ndarray  # (n_labels, k) float32; 0 past a label's own
    complete: np.ndarray  # (n_labels,) bool: the label has no other positive weight
    n_features: int

    @classmethod
    def of_weights(
        cls, weights: RankableWeights, k: int = RANKED_FEATURES, n_features: int | None = None
    ) -> StrongestFeatures:
        """Ranks the first `n_features` features (all by default: evidence may read only
        the word n-grams) of every label, a block of labels' dense columns at a time."""
        n_all, n_labels = weights.shape
        n_features = n_all if n_features is None else n_features
        ranking = cls(
            np.full((n_labels, k), n_features, np.int32),
            np.zeros((n_labels, k), np.float32),
            np.zeros(n_labels, bool),
            n_features,
        )
        per_block = max(1, RANKING_BUDGET // max(n_all, 1))
        for start, block in weights.label_blocks(per_block):
            ranking._rank_block(start, block[:n_features], k)
        return ranking

    def _rank_block(self, start: int, block: np.ndarray, k: int) -> None:
        """Ranks labels start, start + 1, ... from their (n_features, labels) columns."""
        n_features = block.shape[0]
        if n_features > k:  # each column's k-th largest weight
            kth = -np.partition(-block, k - 1, axis=0)[k - 1]
        else:
            kth = np.full(block.shape[1], -np.inf, np.float32)
        # Above the k-th (and positive), then ties with it, the lower features first.
        chosen = block > np.maximum(kth, 0)
        tied = (block == kth) & (kth > 0)
        room = k - chosen.sum(axis=0)
        chosen |= tied & (np.cumsum(tied, axis=0, dtype=np.int32) <= room)
        features, labels = np.nonzero(chosen)
        values = block[features, labels]
        order = np.lexsort((features, -values, labels))
        features, labels, values = features[order], labels[order], values[order]
        first_of_label = np.searchsorted(labels, labels)  # each entry's label's first entry
        rank = np.arange(labels.size) - first_of_label
        self.features[start + labels, rank] = features
        self.weights[start + labels, rank] = values
        positives = (block > 0).sum(axis=0)
        self.complete[start : start + block.shape[1]] = positives <= k

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "features": self.features,
            "weights": self.weights,
            "complete": self.complete,
            "n_features": np.array(self.n_features, np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> StrongestFeatures:
        return cls(
            arrays["features"], arrays["weights"], arrays["complete"], int(arrays["n_features"])
        )

    def top_of_pairs(
        self, rows: sp.csr_matrix, notes: np.ndarray, labels: np.ndarray, top_n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pair, the first `top_n` of the label's ranking present in the note's row (as
        `top_weighted_features` gives them), and whether that settles the pair."""
        if rows.shape[1] > self.n_features:  # the flat table below would mix up rows
            raise ValueError(
                f"rows have {rows.shape[1]} features; the ranking has {self.n_features}"
            )
        features = np.full((len(notes), top_n), -1, np.int64)
        values = np.zeros((len(notes), top_n), np.float32)
        settled = np.zeros(len(notes), bool)
        k = self.features.shape[1]
        stages = list(pairwise([0, *(rank for rank in RANK_STAGES if rank < k), k]))
        # The rows as a dense presence table, a block of notes at a time (its last column:
        # the padding of short rankings, never present).
        width = self.n_features + 1
        notes_per_block = max(1, WEIGHTS_BUDGET * 8 // width)
        for start in range(0, rows.shape[0], notes_per_block):
            block = rows[start : start + notes_per_block]
            pairs = np.flatnonzero((notes >= start) & (notes < start + block.shape[0]))
            if not pairs.size:
                continue
            present = np.zeros(block.shape[0] * width, bool)  # row-major, read flat
            in_rows = np.repeat(np.arange(block.shape[0]) * width, np.diff(block.indptr))
            present[in_rows + block.indices] = True
            for chunk in np.array_split(pairs, -(-pairs.size * k // WEIGHTS_BUDGET)):
                # Stage by stage (`RANK_STAGES`): the later ranks are read only for the
                # pairs the earlier ones left short of `top_n`.
                seen = np.zeros(chunk.size, np.int64)  # of each pair's features, found so far
                for first, end in stages:
                    ranked = self.features[labels[chunk], first:end]
                    found = present[((notes[chunk] - start) * width)[:, None] + ranked]
                    # The found ones, pair by pair in rank order: each one's slot is the
                    # pair's count so far plus its place among the pair's found ones here.
                    pair, position = np.nonzero(found)
                    found_here = np.bincount(pair, minlength=chunk.size)
                    place = np.arange(pair.size) - np.searchsorted(pair, pair)
                    slot = seen[pair] + place
                    kept = slot < top_n
                    pair, position, slot = pair[kept], position[kept], slot[kept]
                    features[chunk[pair], slot] = ranked[pair, position]
                    values[chunk[pair], slot] = self.weights[labels[chunk[pair]], first + position]
                    seen = seen + found_here
                    settled[chunk[seen >= top_n]] = True
                    chunk, seen = chunk[seen < top_n], seen[seen < top_n]
                settled[chunk] = self.complete[labels[chunk]]
        return features, values, settled


class RecentBatches(Generic[T]):
    """What a model computed from its last few batches of texts, found again by the texts.

    Evidence asked for the notes just predicted reuses what prediction derived from them
    (feature rows, term matches) instead of deriving it again. A batch is found by its
    texts, compared element by element: for the very same strings, one identity check each.
    Shared safely between threads; a copy or pickle of the model starts empty (it holds
    note text, which must not travel with a model).
    """

    def __init__(self) -> None:
        self._batches: deque[tuple[tuple[str, ...], T]] = deque(maxlen=REMEMBERED_BATCHES)
        self._lock = threading.Lock()

    def remember(self, texts: Sequence[str], value: T) -> None:
        if len(texts) > REMEMBERED_NOTES:
            return
        with self._lock:
            self._batches.append((tuple(texts), value))
            while sum(len(batch) for batch, _ in self._batches) > REMEMBERED_NOTES:
                self._batches.popleft()

    def find(self, texts: Sequence[str]) -> T | None:
        key = tuple(texts)
        with self._lock:
            batches = list(self._batches)
        for remembered, value in reversed(batches):
            if remembered == key:
                return value
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), ())
