"""Label columns grouped by code system: the one grouping every layer uses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def code_system(code: str) -> str:
    """The system of a code written `SYSTEM:VALUE`; a one-line error names any other spelling."""
    system, colon, value = code.partition(":")
    if not (system and colon and value):
        raise ValueError(f"label {code!r} is not written SYSTEM:VALUE")
    return system


def system_columns(codes: Sequence[str]) -> dict[str, np.ndarray]:
    """Code system -> the (sorted) indices of its codes in `codes`, systems in name order."""
    systems = np.asarray([code_system(code) for code in codes], dtype=str)
    return {system: np.flatnonzero(systems == system) for system in sorted(set(systems.tolist()))}
