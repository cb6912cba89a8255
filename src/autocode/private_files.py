"""Owner-only files and directories for anything that holds note text or note ids.

Notes are PHI: a file the job writes them to must not be readable by other users
of the machine, whatever the umask. Files are created with the mode up front (no
window between creation and a later chmod); directories get 0700 when created.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_private_dir(directory: Path) -> None:
    """Create `directory` (and missing parents) owner-only; an existing one is left as it is."""
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir(mode=DIR_MODE, exist_ok=True)
    # mkdir's mode is masked by the umask; 0700 only loses bits, but a umask such as
    # 0o277 would take the owner's own write bit.
    directory.chmod(DIR_MODE)


def create_private_file(path: Path) -> int:
    """A new, empty, owner-only file (any earlier file of that name replaced); its descriptor."""
    path.unlink(missing_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)


def open_private_binary(path: Path) -> BinaryIO:
    return os.fdopen(create_private_file(path), "wb")


def open_private_text(path: Path) -> TextIO:
    return os.fdopen(create_private_file(path), "w", encoding="utf-8")


def ensure_private_file(path: Path) -> None:
    """Create `path` owner-only if it does not exist (e.g. before a library opens it)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
