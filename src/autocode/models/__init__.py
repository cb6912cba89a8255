"""Coding models: the CodingModel contract, its implementations and the registry."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from autocode.models.base import CodingModel, NotFittedError
from autocode.models.params import constructor_params_model
from autocode.models.tfidf import TfidfModel
from autocode.models.tfidf_lexicon import TfidfLexiconModel
from autocode.models.transformer import TransformerModel

AtLeastOne = Annotated[int, Field(ge=1)]
NotNegative = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]

TfidfParams = constructor_params_model(
    TfidfModel,
    "TfidfParams",
    word_ngram_max=AtLeastOne,
    min_df=AtLeastOne,
    max_features=AtLeastOne | None,
    min_patients=AtLeastOne | None,
    epochs=AtLeastOne,
    batch_size=AtLeastOne,
    learning_rate=Positive,
    l2=Annotated[float, Field(ge=0)],
    pos_weight=Positive,
    sampled_negatives=AtLeastOne | None,
)
TfidfLexiconParams = constructor_params_model(
    TfidfLexiconModel,
    "TfidfLexiconParams",
    tfidf=TfidfParams | None,  # the stage-1 model's own params, checked as such
    inner_folds=Annotated[int, Field(ge=2)],
    hard_negatives=NotNegative,
    random_negatives=NotNegative,
    regularization=Positive,
)

UnitInterval = Annotated[float, Field(ge=0, lt=1)]
TransformerParams = constructor_params_model(
    TransformerModel,
    "TransformerParams",
    top_k=AtLeastOne,
    attention_dim=AtLeastOne,
    chunk_length=Annotated[int, Field(ge=3)],
    chunk_stride=AtLeastOne,
    max_document_tokens=AtLeastOne,
    epochs=AtLeastOne,
    learning_rate=Positive,
    encoder_learning_rate=Positive,
    weight_decay=Annotated[float, Field(ge=0)],
    warmup_ratio=UnitInterval,
    gradient_accumulation_steps=AtLeastOne,
    max_grad_norm=Annotated[float, Field(ge=0)],
    token_budget=AtLeastOne,
    dropout=UnitInterval,
    patience=AtLeastOne,
)

MODELS: dict[str, type[CodingModel]] = {
    "tfidf": TfidfModel,
    "tfidf-lexicon": TfidfLexiconModel,
    "transformer": TransformerModel,
}
PARAMS: dict[str, type[BaseModel]] = {
    "tfidf": TfidfParams,
    "tfidf-lexicon": TfidfLexiconParams,
    "transformer": TransformerParams,
}


def model_class(name: str) -> type[CodingModel]:
    """The registered model class for a config name; unknown names list the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}") from None


def params_model(name: str) -> type[BaseModel]:
    """The params model of a registered model name (see `model_class` for unknown names)."""
    model_class(name)
    return PARAMS[name]


__all__ = [
    "MODELS",
    "PARAMS",
    "CodingModel",
    "NotFittedError",
    "TfidfLexiconModel",
    "TfidfLexiconParams",
    "TfidfModel",
    "TfidfParams",
    "TransformerModel",
    "TransformerParams",
    "model_class",
    "params_model",
]
