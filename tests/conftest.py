"""Shared fixtures: tiny deterministic notes and the real corpus location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """`AUTOCODE_SHARED_DATA`, default `../shared/data` beside the repository."""
    return Path(os.environ.get("AUTOCODE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set AUTOCODE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def codiesp_root(shared_data: Path) -> Path:
    return shared_data / "codiesp"
