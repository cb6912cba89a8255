"""Coding models: the CodingModel contract, its implementations and the registry.

The registry maps a config name to a model class and the pydantic model of its
hyperparameters (built from its constructor, with ranges); a config's `model.params` is
validated by it when the config loads, and each model checks the same at the start of `fit`.
"""

from __future__ import annotations

from pydantic import BaseModel

from autocode.errors import NotFittedError
from autocode.models.base import CodingModel
from autocode.models.ensemble import FoldEnsemble, FoldEnsembleParams
from autocode.models.matcher import MatcherModel, MatcherParams
from autocode.models.stack import StackModel, StackParams, TfidfLexiconModel, TfidfLexiconParams
from autocode.models.tfidf import TfidfModel, TfidfParams
from autocode.models.transformer import TransformerModel, TransformerParams

MODELS: dict[str, type[CodingModel]] = {
    "tfidf": TfidfModel,
    "matcher": MatcherModel,
    "stack": StackModel,
    "tfidf-lexicon": TfidfLexiconModel,  # the preset stack([tfidf, matcher])
    "transformer": TransformerModel,
    "fold-ensemble": FoldEnsemble,  # a cross-fit's fold models, averaged
}
PARAMS: dict[str, type[BaseModel]] = {
    "tfidf": TfidfParams,
    "matcher": MatcherParams,
    "stack": StackParams,
    "tfidf-lexicon": TfidfLexiconParams,
    "transformer": TransformerParams,
    "fold-ensemble": FoldEnsembleParams,
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
    "FoldEnsemble",
    "FoldEnsembleParams",
    "MatcherModel",
    "MatcherParams",
    "NotFittedError",
    "StackModel",
    "StackParams",
    "TfidfLexiconModel",
    "TfidfLexiconParams",
    "TfidfModel",
    "TfidfParams",
    "TransformerModel",
    "TransformerParams",
    "model_class",
    "params_model",
]
