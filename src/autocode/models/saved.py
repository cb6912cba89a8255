"""Saved state that executes no code when loaded: versioned JSON files and plain arrays.

A pickle (joblib) runs whatever it holds when loaded, and ties a saved model to the
library versions that wrote it. Saved models are JSON for settings and names and `.npz`
for numbers; every file carries the `format_version` of the layout that wrote it, and
loading refuses another version with one line naming the file, and refuses object arrays
(`allow_pickle=False`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

VERSION_KEY = "format_version"


def check_version(path: Path, found: object, expected: int | tuple[int, ...]) -> None:
    """One line naming the file and the version, when `found` is not `expected` (or not
    one of them: a layout that changed may still read the files of its older versions)."""
    readable = expected if isinstance(expected, tuple) else (expected,)
    if found not in readable:
        wanted = " or ".join(str(v) for v in readable)
        raise ValueError(
            f"{path}: format_version {found!r}, this autocode reads {wanted}: train the model "
            "again with this autocode, or load it with the version that saved it"
        )


def write_json(path: Path, payload: Mapping[str, Any], version: int) -> None:
    if VERSION_KEY in payload:
        raise ValueError(f"{path}: the payload may not set {VERSION_KEY!r} itself")
    path.write_text(json.dumps({VERSION_KEY: version, **payload}), encoding="utf-8")


def read_json(path: Path, version: int | tuple[int, ...]) -> dict[str, Any]:
    """The payload `write_json` wrote, without its version key."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    found = payload.pop(VERSION_KEY, None) if isinstance(payload, dict) else None
    check_version(path, found, version)
    return dict(payload)


def write_arrays(
    path: Path, arrays: Mapping[str, np.ndarray], version: int, *, compressed: bool = False
) -> None:
    """Numeric and string arrays only: an object array could only be loaded as a pickle.
    `compressed`: deflated (`np.savez_compressed`), read back the same way."""
    if VERSION_KEY in arrays:
        raise ValueError(f"{path}: the arrays may not be named {VERSION_KEY!r}")
    for name, array in arrays.items():
        if np.asarray(array).dtype.hasobject:
            raise ValueError(f"{path}: array {name!r} holds Python objects, which need pickle")
    save = np.savez_compressed if compressed else np.savez
    save(path, **{VERSION_KEY: np.int64(version)}, **arrays)  # type: ignore[arg-type]


def read_arrays(path: Path, version: int | tuple[int, ...]) -> dict[str, np.ndarray]:
    """The arrays `write_arrays` wrote, without the version entry."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    found = arrays.pop(VERSION_KEY, None)
    check_version(path, None if found is None else found.item(), version)
    return arrays
