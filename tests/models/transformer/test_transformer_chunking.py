"""Long notes as overlapping chunks: offsets, coverage, truncation, token-budget batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from autocode.models.transformer.chunking import (
    ChunkSettings,
    chunk_note,
    collate,
    token_budget_batches,
    tokenize,
)
from autocode.models.transformer.encoder import build_tiny_bert

NOTE = (
    "Patient seen today.  Known ASTHMA, wheezing; gout flare of the left toe!\n"
    "Plan: colchicine 0.5mg, follow-up in two weeks (labs ordered)."
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return build_tiny_bert([NOTE, "asthma gout follow up"], seed=0)[1]


def test_offsets_point_at_each_token_characters(tokenizer: Any) -> None:
    [note] = tokenize(tokenizer, [NOTE], max_tokens=1000)
    assert not note.truncated
    pieces = tokenizer.convert_ids_to_tokens(note.ids.tolist())
    assert len(pieces) > 30
    for piece, (start, end) in zip(pieces, note.offsets.tolist(), strict=True):
        assert 0 <= start < end <= len(NOTE)
        assert NOTE[start:end].lower() == piece.removeprefix("##")
    # The pieces of one word share its word id; punctuation is a word of its own.
    asthma = [i for i, (s, _) in enumerate(note.offsets.tolist()) if NOTE[s:].startswith("ASTHMA")]
    comma = asthma[0] + 1
    assert NOTE[note.offsets[comma][0] : note.offsets[comma][1]] == ","
    assert note.words[comma] != note.words[asthma[0]]


@pytest.mark.parametrize(("length", "stride"), [(8, 6), (8, 3), (10, 8), (64, 10)])
def test_every_token_is_read_once_from_a_chunk_that_holds_it(
    tokenizer: Any, length: int, stride: int
) -> None:
    settings = ChunkSettings(length=length, stride=stride, max_tokens=1000)
    [tokens] = tokenize(tokenizer, [NOTE], settings.max_tokens)
    chunked = chunk_note(tokens, settings, tokenizer.cls_token_id, tokenizer.sep_token_id)
    n = len(tokens)
    expected_chunks = 1 + max(0, -(-(n - (length - 2)) // stride))
    assert len(chunked.chunk_ids) == expected_chunks
    for ids in chunked.chunk_ids:
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert len(ids) <= length
    read = [
        chunked.chunk_ids[c][p]
        for c, p in zip(chunked.token_chunk, chunked.token_position, strict=True)
    ]
    assert np.array_equal(read, tokens.ids)
    # In an overlap the copy read has at least as much context as the other one.
    content = length - 2
    starts = [c * stride for c in range(expected_chunks)]
    for t, c in enumerate(chunked.token_chunk):
        margin = min(t - starts[c], min(starts[c] + content, n) - 1 - t)
        for other, start in enumerate(starts):
            stop = min(start + content, n)
            if other != c and start <= t < stop:
                assert margin >= min(t - start, stop - 1 - t)


def test_collate_pads_chunks_and_indexes_each_note_tokens(tokenizer: Any) -> None:
    settings = ChunkSettings(length=8, stride=6, max_tokens=1000)
    texts = [NOTE, "gout", ""]
    notes = [
        chunk_note(t, settings, tokenizer.cls_token_id, tokenizer.sep_token_id)
        for t in tokenize(tokenizer, texts, settings.max_tokens)
    ]
    batch = collate(notes, tokenizer.pad_token_id)
    assert batch.input_ids.shape == (sum(len(n.chunk_ids) for n in notes), 8)
    assert batch.token_mask.sum(1).tolist() == [len(n.tokens) for n in notes]
    flat = batch.input_ids.reshape(-1)
    for row, note in enumerate(notes):
        indices = batch.token_index[row, batch.token_mask[row]]
        assert np.array_equal(flat[indices], note.tokens.ids)
    padding = batch.attention_mask == 0
    assert (batch.input_ids[padding] == tokenizer.pad_token_id).all()
    # The empty note still has a chunk ([CLS] [SEP]) but no token for the head to read.
    assert notes[2].chunk_ids[0].tolist() == [tokenizer.cls_token_id, tokenizer.sep_token_id]
    assert not batch.token_mask[2].any()


def test_a_note_longer_than_the_maximum_is_cut_and_flagged(tokenizer: Any) -> None:
    short, long = tokenize(tokenizer, ["gout flare", NOTE], max_tokens=10)
    assert not short.truncated and len(short) == 2
    assert long.truncated and len(long) == 10
    assert long.offsets[-1][1] < len(NOTE)


def test_token_budget_batches_bound_each_step() -> None:
    assert token_budget_batches([3, 3, 3, 10, 1, 1], budget=6) == [[0, 1], [2], [3], [4, 5]]
    assert token_budget_batches([], budget=6) == []


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"length": 2, "stride": 1, "max_tokens": 10}, "chunk_length"),
        ({"length": 8, "stride": 7, "max_tokens": 10}, "chunk_stride"),
        ({"length": 8, "stride": 0, "max_tokens": 10}, "chunk_stride"),
        ({"length": 8, "stride": 4, "max_tokens": 0}, "max_document_tokens"),
    ],
)
def test_chunk_settings_reject_bad_values_by_name(settings: dict[str, int], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ChunkSettings(**settings)
