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


def error_summary(error: Exception) -> str:
    """The first line of a reader's error, safe to print: never a quoted row.

    pyarrow's CSV errors end with the offending row ("CSV parse error: Expected 9
    columns, got 3: <the row's text>"), which is note text; that tail is cut off.
    Other messages (Parquet, decoders) describe structure, and are capped in length.
    """
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if first.startswith("CSV parse error"):
        return ": ".join(first.split(": ")[:2])
    return first[:200]
