"""Long notes as overlapping encoder chunks, every token mapped back to note characters.

A note is tokenised once with character offsets and cut to `max_tokens`. Chunks of
`length` tokens ([CLS] + content + [SEP]) start every `stride` content tokens, so
neighbouring chunks overlap by `length - 2 - stride` tokens. A token inside an overlap is
encoded twice; the head reads only one copy of it, the one farther from its chunk's edge
(more context on both sides), so every note token is attended exactly once.

Everything here is numpy: batches are built without torch, and tested without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SPECIAL_TOKENS = 2  # [CLS] and [SEP] around each chunk's content


@dataclass(frozen=True)
class ChunkSettings:
    length: int  # tokens per chunk, special tokens included
    stride: int  # content tokens from one chunk's start to the next's
    max_tokens: int  # note tokens read; the rest is truncated

    def __post_init__(self) -> None:
        if self.length <= SPECIAL_TOKENS:
            raise ValueError(f"chunk_length must be > {SPECIAL_TOKENS}, got {self.length}")
        content = self.length - SPECIAL_TOKENS
        if not 1 <= self.stride <= content:
            raise ValueError(
                f"chunk_stride must be between 1 and chunk_length - 2 = {content}, "
                f"got {self.stride}"
            )
        if self.max_tokens < 1:
            raise ValueError(f"max_document_tokens must be >= 1, got {self.max_tokens}")

    @property
    def content(self) -> int:
        return self.length - SPECIAL_TOKENS


@dataclass(frozen=True)
class NoteTokens:
    """One note's tokens (no special tokens), their character spans, and whether the note
    had more tokens than were kept."""

    ids: np.ndarray  # (T,) int64
    offsets: np.ndarray  # (T, 2) int64: characters [start, end) of each token
    words: np.ndarray  # (T,) int64: the word (as the tokenizer splits words) of each token
    truncated: bool

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class ChunkedNote:
    """A note's chunks and, per note token, which chunk copy the head reads."""

    tokens: NoteTokens
    chunk_ids: list[np.ndarray]  # each ([CLS], content..., [SEP]), int64
    token_chunk: np.ndarray  # (T,) chunk holding the copy read of token t
    token_position: np.ndarray  # (T,) its position inside that chunk ([CLS] is 0)


@dataclass(frozen=True)
class ChunkBatch:
    """Chunks of several notes, padded, and each note's tokens as flat indices into the
    (chunks × positions) grid of encoder outputs."""

    input_ids: np.ndarray  # (n_chunks, L) int64, padded with the pad id
    attention_mask: np.ndarray  # (n_chunks, L) int64
    token_index: np.ndarray  # (n_notes, T_max) int64 into n_chunks * L; 0 where padding
    token_mask: np.ndarray  # (n_notes, T_max) bool: a real note token

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())


def tokenize(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[NoteTokens]:
    """Token ids and character offsets of each note, cut to `max_tokens`."""
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        truncation=False,
        verbose=False,  # a long note is expected here, not a warning
    )
    notes = []
    for k, (ids, offsets) in enumerate(
        zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
    ):
        kept = min(len(ids), max_tokens)
        words = [-1 if w is None else w for w in encoded.word_ids(k)[:kept]]
        notes.append(
            NoteTokens(
                ids=np.asarray(ids[:kept], dtype=np.int64),
                offsets=np.asarray(offsets[:kept], dtype=np.int64).reshape(kept, 2),
                words=np.asarray(words, dtype=np.int64),
                truncated=len(ids) > max_tokens,
            )
        )
    return notes


def chunk_note(
    tokens: NoteTokens, settings: ChunkSettings, cls_id: int, sep_id: int
) -> ChunkedNote:
    n = len(tokens)
    starts = [0]
    while starts[-1] + settings.content < n:
        starts.append(starts[-1] + settings.stride)
    chunk_ids = [
        np.concatenate([[cls_id], tokens.ids[start : start + settings.content], [sep_id]]).astype(
            np.int64
        )
        for start in starts
    ]
    # The copy read is the one with the most context: farthest from its chunk's edges.
    best_margin = np.full(n, -1, dtype=np.int64)
    token_chunk = np.zeros(n, dtype=np.int64)
    token_position = np.zeros(n, dtype=np.int64)
    for c, start in enumerate(starts):
        stop = min(start + settings.content, n)
        inside = np.arange(start, stop)
        margin = np.minimum(inside - start, stop - 1 - inside)
        better = margin > best_margin[inside]
        chosen = inside[better]
        best_margin[chosen] = margin[better]
        token_chunk[chosen] = c
        token_position[chosen] = chosen - start + 1  # + 1: after [CLS]
    return ChunkedNote(tokens, chunk_ids, token_chunk, token_position)


def collate(notes: Sequence[ChunkedNote], pad_id: int) -> ChunkBatch:
    chunks = [ids for note in notes for ids in note.chunk_ids]
    width = max(len(ids) for ids in chunks)
    input_ids = np.full((len(chunks), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(chunks), width), dtype=np.int64)
    for row, ids in enumerate(chunks):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    longest = max(1, max(len(note.tokens) for note in notes))
    token_index = np.zeros((len(notes), longest), dtype=np.int64)
    token_mask = np.zeros((len(notes), longest), dtype=bool)
    first_chunk = 0
    for row, note in enumerate(notes):
        n = len(note.tokens)
        token_index[row, :n] = (first_chunk + note.token_chunk) * width + note.token_position
        token_mask[row, :n] = True
        first_chunk += len(note.chunk_ids)
    return ChunkBatch(input_ids, attention_mask, token_index, token_mask)


def token_budget_batches(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive indices grouped so that each group's sizes sum to at most `budget`
    (a single larger item forms its own group): memory per step is bounded by tokens,
    not by a count of notes of any length."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i, size in enumerate(sizes):
        if current and total + size > budget:
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += size
    if current:
        batches.append(current)
    return batches


def chunk_tokens(note: ChunkedNote) -> int:
    """Encoder positions a note occupies: what its step costs."""
    return sum(len(ids) for ids in note.chunk_ids)
