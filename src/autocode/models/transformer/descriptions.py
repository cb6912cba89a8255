"""The words each label's code stands for, to start its attention from.

One function, so the source of descriptions can move (to the knowledge package) by
changing one import.
"""

from __future__ import annotations

from collections.abc import Sequence

from autocode.codes.terms import code_description


def label_descriptions(codes: Sequence[str]) -> list[str]:
    """Each code's description; "" where none is known (its label starts at random)."""
    return [code_description(code) for code in codes]
