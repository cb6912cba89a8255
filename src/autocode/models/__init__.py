"""Coding models: the CodingModel contract, its implementations and the registry."""

from __future__ import annotations

from autocode.models.base import CodingModel, NotFittedError
from autocode.models.tfidf import TfidfModel
from autocode.models.tfidf_lexicon import TfidfLexiconModel

MODELS: dict[str, type[CodingModel]] = {"tfidf": TfidfModel, "tfidf-lexicon": TfidfLexiconModel}


def model_class(name: str) -> type[CodingModel]:
    """The registered model class for a config name; unknown names list the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}") from None


__all__ = [
    "MODELS",
    "CodingModel",
    "NotFittedError",
    "TfidfLexiconModel",
    "TfidfModel",
    "model_class",
]
