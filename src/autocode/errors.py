"""Errors shared across layers."""

from __future__ import annotations


class NotFittedError(RuntimeError):
    """Raised when a model (or a lexicon) is used before `fit`."""
