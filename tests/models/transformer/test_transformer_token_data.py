"""Training notes tokenised by a `datasets` map and cached on disk."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("datasets")

from autocode.labels import LabelSpace
from autocode.models.transformer import (
    TransformerModel,
    token_data,
)
from autocode.models.transformer.chunking import ChunkSettings, NoteTokens, tokenize
from autocode.models.transformer.encoder import TINY_BERT, build_tiny_bert

if TYPE_CHECKING:
    from conftest import TinyCorpus

NOTES = [
    "Patient seen today. Known ASTHMA, wheezing; gout flare of the left toe!",
    "",  # no token at all
    "Plan: colchicine 0.5mg, follow-up in two weeks. " * 6,  # past max_tokens
]
SETTINGS = ChunkSettings(length=16, stride=10, max_tokens=40)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return build_tiny_bert(NOTES, seed=0)[1]


def assert_same_tokens(got: list[NoteTokens], expected: list[NoteTokens]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.ids.dtype == a.offsets.dtype == a.words.dtype == np.int64
        assert np.array_equal(a.ids, b.ids)
        assert np.array_equal(a.offsets, b.offsets)
        assert np.array_equal(a.words, b.words)
        assert a.truncated == b.truncated


def count_tokenizing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every later `tokenize` call in the map is recorded (notes per call), then run."""
    calls: list[int] = []
    real = token_data.tokenize

    def counted(tokenizer: Any, texts: list[str], max_tokens: int) -> list[NoteTokens]:
        calls.append(len(texts))
        return real(tokenizer, texts, max_tokens)

    monkeypatch.setattr(token_data, "tokenize", counted)
    return calls


def test_map_gives_the_tokens_of_the_plain_path(tokenizer: Any) -> None:
    mapped = token_data.tokenized_notes(tokenizer, NOTES, SETTINGS)
    assert_same_tokens(mapped, tokenize(tokenizer, NOTES, SETTINGS.max_tokens))
    assert [len(n) for n in mapped][1] == 0 and mapped[1].offsets.shape == (0, 2)
    assert [n.truncated for n in mapped] == [False, False, True]


def test_no_notes_give_no_tokens_with_or_without_a_cache(tokenizer: Any, tmp_path: Path) -> None:
    assert token_data.tokenized_notes(tokenizer, [], SETTINGS) == []
    assert token_data.tokenized_notes(tokenizer, [], SETTINGS, tmp_path) == []


def test_second_run_reads_the_cache_file_and_tokenises_nothing(
    tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = token_data.tokenized_notes(tokenizer, NOTES, SETTINGS, tmp_path)
    key = token_data.token_cache_key(tokenizer, SETTINGS, NOTES)
    files = sorted(p.name for p in (tmp_path / token_data.TOKENS_DIR).iterdir())
    assert files == [f"{key}.arrow"]
    for text in filter(None, NOTES):  # the file keeps tokens, not text
        assert text.encode() not in (tmp_path / token_data.TOKENS_DIR / files[0]).read_bytes()
    calls = count_tokenizing(monkeypatch)
    again = token_data.tokenized_notes(tokenizer, NOTES, SETTINGS, tmp_path)
    assert calls == []
    assert_same_tokens(again, first)
    assert_same_tokens(again, tokenize(tokenizer, NOTES, SETTINGS.max_tokens))


def test_the_cache_key_follows_settings_texts_and_tokenizer(tokenizer: Any) -> None:
    key = token_data.token_cache_key(tokenizer, SETTINGS, NOTES)
    other_tokenizer = build_tiny_bert(["other words entirely"], seed=0)[1]
    assert key == token_data.token_cache_key(tokenizer, SETTINGS, list(NOTES))
    assert key != token_data.token_cache_key(tokenizer, ChunkSettings(16, 10, 41), NOTES)
    assert key != token_data.token_cache_key(tokenizer, ChunkSettings(16, 9, 40), NOTES)
    assert key != token_data.token_cache_key(tokenizer, SETTINGS, [*NOTES[:2], NOTES[2] + "."])
    assert key != token_data.token_cache_key(other_tokenizer, SETTINGS, NOTES)


def test_a_second_fit_reuses_the_tokenised_notes_with_the_same_result(
    tiny_corpus: TinyCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fit() -> TransformerModel:
        model = TransformerModel(
            model_name_or_path=TINY_BERT,
            mode="full",
            chunk_length=16,
            chunk_stride=10,
            token_budget=256,
            epochs=2,
            device="cpu",
            progress=False,
            cache_dir=str(tmp_path),
        )
        space = LabelSpace.from_codes(tiny_corpus.codes)
        return model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=space)

    first = fit()
    assert len(list((tmp_path / token_data.TOKENS_DIR).glob("*.arrow"))) == 1
    calls = count_tokenizing(monkeypatch)
    again = fit()
    assert calls == []  # the training notes came from the cache file
    texts = tiny_corpus.heldout_texts
    assert np.array_equal(again.predict_proba(texts), first.predict_proba(texts))
