"""Errors that stop a load: the file itself cannot be used."""

from __future__ import annotations


class SourceError(Exception):
    """A source file is unusable as a whole (missing column, unreadable format).

    The message is one line naming the file and, where it applies, the column;
    the CLI prints it and exits with code 2.
    """

    def __init__(self, path: object, problem: str, *, unreadable: bool = False) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem
        # True when the bytes cannot be parsed at all (corrupt file), not a schema problem.
        self.unreadable = unreadable
