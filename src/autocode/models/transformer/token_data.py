"""Training notes tokenised through a Hugging Face `datasets` map, cached on disk.

`Dataset.map` (batched) runs `chunking.tokenize` over the notes and, with a cache folder,
writes the result as one Arrow file named by a fingerprint of the tokenizer, the chunking
settings and the texts: a later epoch, fold, fit or run on the same notes with the same
tokenizer and settings reads that file (memory-mapped) instead of tokenising again. The
file holds token ids, offsets and word numbers, never the text, and its name is a digest,
so nothing a note says is written in clear.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from autocode.models.transformer.chunking import ChunkSettings, NoteTokens, tokenize

TOKENS_DIR = "tokens"  # inside the cache folder, beside the frozen token states
MAP_BATCH = 256  # notes per `tokenize` call: the fast tokenizer's batch


def tokenized_notes(
    tokenizer: Any,
    texts: Sequence[str],
    settings: ChunkSettings,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> list[NoteTokens]:
    """Each note's tokens, as `tokenize` gives them; read from `cache_dir` when a run with
    the same tokenizer, settings and texts wrote them there, written there otherwise."""
    if not texts:  # a map over no rows returns a table without the declared columns
        return []
    with _progress_bars(progress):
        return _map_tokens(tokenizer, texts, settings, cache_dir)


def _map_tokens(
    tokenizer: Any, texts: Sequence[str], settings: ChunkSettings, cache_dir: Path | None
) -> list[NoteTokens]:
    from datasets import Dataset, Features, List, Value

    notes = Dataset.from_dict({"text": list(texts)})
    key = token_cache_key(tokenizer, settings, texts)
    cache_file = None
    if cache_dir is not None:
        (cache_dir / TOKENS_DIR).mkdir(parents=True, exist_ok=True)
        cache_file = str(cache_dir / TOKENS_DIR / f"{key}.arrow")
    tokens = notes.map(
        _tokenize_batch,
        batched=True,
        batch_size=MAP_BATCH,
        fn_kwargs={"tokenizer": tokenizer, "max_tokens": settings.max_tokens},
        # Declared, not inferred: a batch of empty notes would otherwise type as null.
        features=Features(
            {
                "ids": List(Value("int64")),
                "offsets": List(Value("int64")),
                "words": List(Value("int64")),
                "truncated": Value("bool"),
            }
        ),
        remove_columns=["text"],  # the cache keeps no note text
        keep_in_memory=cache_file is None,
        cache_file_name=cache_file,
        load_from_cache_file=True,
        new_fingerprint=key,
        desc="Tokenising notes",
    )
    return _note_tokens(tokens.data.table)


def token_cache_key(tokenizer: Any, settings: ChunkSettings, texts: Sequence[str]) -> str:
    """Changes with the tokenizer (vocabulary, normaliser, special tokens), the chunking
    settings, or any note's text."""
    digest = hashlib.sha256()
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    digest.update(repr(sorted(tokenizer.special_tokens_map.items())).encode())
    digest.update(repr((settings.length, settings.stride, settings.max_tokens)).encode())
    for text in texts:
        encoded = text.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()[:32]


@contextmanager
def _progress_bars(show: bool) -> Iterator[None]:
    """`datasets` shows a bar per map unless bars are off, a global setting: turned off
    only for the map, and only when they were on."""
    from datasets.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    turn_off = not show and not are_progress_bars_disabled()
    if turn_off:
        disable_progress_bars()
    try:
        yield
    finally:
        if turn_off:
            enable_progress_bars()


def _tokenize_batch(batch: dict[str, list[str]], tokenizer: Any, max_tokens: int) -> dict[str, Any]:
    notes = tokenize(tokenizer, batch["text"], max_tokens)
    return {
        "ids": [note.ids for note in notes],
        "offsets": [note.offsets.ravel() for note in notes],  # (T, 2) flattened: one list
        "words": [note.words for note in notes],
        "truncated": [note.truncated for note in notes],
    }


def _note_tokens(table: pa.Table) -> list[NoteTokens]:
    ids = _rows(table.column("ids"))
    offsets = _rows(table.column("offsets"))
    words = _rows(table.column("words"))
    truncated = table.column("truncated").to_pylist()
    return [
        NoteTokens(
            ids=ids[k],
            offsets=offsets[k].reshape(-1, 2),
            words=words[k],
            truncated=bool(truncated[k]),
        )
        for k in range(table.num_rows)
    ]


def _rows(column: pa.ChunkedArray) -> list[np.ndarray]:
    """A list<int64> column as one int64 array per row, without a Python int per token."""
    rows: list[np.ndarray] = []
    for chunk in column.chunks:
        bounds = chunk.offsets.to_numpy()
        values = chunk.values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        rows.extend(values[bounds[k] : bounds[k + 1]].copy() for k in range(len(chunk)))
    return rows
