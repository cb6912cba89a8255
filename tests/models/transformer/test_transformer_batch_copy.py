"""The batch-coding copy: ONNX Runtime (default) or int8 encoders on the CPU, alone and
inside a stack."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

pytest.importorskip("torch")

from autocode.models import StackModel, TfidfModel
from autocode.models.base import CopiesForBatchCoding
from autocode.models.transformer import TransformerModel
from autocode.models.transformer.encoder import TINY_BERT

if TYPE_CHECKING:
    from conftest import TinyCorpus

TINY: dict[str, Any] = {
    "model_name_or_path": TINY_BERT,
    "mode": "full",
    "chunk_length": 16,
    "chunk_stride": 10,
    "token_budget": 256,
    "epochs": 3,
    "learning_rate": 1e-2,
    "device": "cpu",
    "progress": False,
}
INT8_TOLERANCE = 0.05


def int8_modules(model: TransformerModel) -> int:
    return sum("quantized" in type(m).__module__ for m in model.network_.encoder.modules())


def test_a_transformer_asked_for_int8_codes_batches_in_int8(tiny_corpus: TinyCorpus) -> None:
    assert TransformerModel().batch_inference == "onnx"  # the default keeps eager's scores
    model = TransformerModel(**TINY, batch_inference="int8").fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    assert isinstance(model, CopiesForBatchCoding)
    fast = model.for_batch_coding()
    assert int8_modules(fast) > 0 and int8_modules(model) == 0
    assert fast.for_batch_coding() is fast  # already the fast copy
    model.batch_inference = "eager"
    assert model.for_batch_coding() is model
    texts = tiny_corpus.heldout_texts
    np.testing.assert_allclose(
        fast.predict_proba(texts), model.predict_proba(texts), atol=INT8_TOLERANCE
    )


def test_the_onnx_batch_copy_scores_and_explains_as_eager_does(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    model = TransformerModel(**{**TINY, "max_document_tokens": 40})
    model.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    onnx = model.for_batch_coding()
    assert type(onnx.network_.encoder).__name__ == "OnnxEncoder"
    long = " ".join(tiny_corpus.texts[:12])  # several chunks, truncated at 40 tokens
    texts = [*tiny_corpus.heldout_texts, long, ""]  # batches of unequal, padded chunks
    np.testing.assert_allclose(onnx.predict_proba(texts), model.predict_proba(texts), atol=1e-5)
    labels = [0, 2]
    for got, expected in zip(
        onnx.evidence(long, labels), model.evidence(long, labels), strict=True
    ):
        assert [(s.start, s.end) for s in got] == [(s.start, s.end) for s in expected]
    assert onnx.truncated(texts) == model.truncated(texts) and model.truncated([long]) == [True]
    with pytest.raises(ValueError, match="onnx inference copy is not saved"):
        onnx.save(tmp_path / "onnx")


def test_a_stack_codes_batches_with_its_bases_copies(tiny_corpus: TinyCorpus) -> None:
    bases = [{"name": "tfidf", "params": {"epochs": 3}}, {"name": "transformer", "params": TINY}]
    stack = StackModel(base_models=bases, inner_folds=2)
    stack.fit(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels)
    fast = stack.for_batch_coding()
    assert isinstance(fast.bases_[0], TfidfModel) and fast.bases_[0] is stack.bases_[0]
    fast_encoder, eager_encoder = fast.bases_[1].network_.encoder, stack.bases_[1].network_.encoder
    assert type(fast_encoder).__name__ == "OnnxEncoder" != type(eager_encoder).__name__
    assert fast.rerankers_ is stack.rerankers_ and fast.labels_ == stack.labels_
    texts = tiny_corpus.heldout_texts
    np.testing.assert_allclose(fast.predict_proba(texts), stack.predict_proba(texts), atol=1e-5)
    spans = fast.evidence(texts[0], [tiny_corpus.heldout_labels[0]])
    assert spans[0]  # the copy still explains: spans inside the note
    assert all(0 <= span.start < span.end <= len(texts[0]) for span in spans[0])
