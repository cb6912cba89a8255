"""SHA-256 of files, read in chunks: how artifacts and sources are identified by content."""

from __future__ import annotations

import hashlib
from pathlib import Path


def update_with_file(digest: hashlib._Hash, path: Path) -> None:
    """Feed the file's bytes to `digest`, 1 MiB at a time (any size, bounded memory)."""
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    update_with_file(digest, path)
    return digest.hexdigest()
