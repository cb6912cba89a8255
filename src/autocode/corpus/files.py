"""Which files of an input the table loaders read, how, and which they leave unread.

A table file is named by its format suffix, optionally followed by a compression
suffix: `notes.csv`, `notes.tsv.gz`, `notes.jsonl.zst`, `notes.ndjson`, `part.parquet`.
"""

from __future__ import annotations

import glob
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pyarrow as pa

from autocode.corpus.errors import SourceError

FORMAT_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
COMPRESSION_SUFFIXES = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
STREAM_FORMATS = ("csv", "tsv", "jsonl")  # Parquet compresses inside the file
READ_SUFFIXES = ", ".join(
    [*FORMAT_SUFFIXES, *(f"{s}{c}" for s in (".csv", ".tsv", ".jsonl") for c in (".gz", ".zst"))]
)


class UnreadFileWarning(UserWarning):
    """A file in the input that the loaders do not read; it is counted as skipped."""


@dataclass(frozen=True)
class TableFile:
    path: Path
    kind: str  # csv, tsv, jsonl or parquet
    compression: str | None = None  # gzip or zstd, for stream formats

    def open(self) -> io.BufferedReader:
        """The file's bytes, decompressed."""
        stream = pa.input_stream(str(self.path), compression=self.compression)
        return io.BufferedReader(cast(io.RawIOBase, stream))


def table_file(path: Path) -> TableFile | None:
    """How to read `path`, or None when no loader reads files of its name."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSION_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if compression is not None:
        suffixes = suffixes[:-1]
    kind = FORMAT_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if kind is None or (compression is not None and kind not in STREAM_FORMATS):
        return None
    return TableFile(path, kind, compression)


def list_table_files(path: str | Path) -> tuple[list[TableFile], list[Path]]:
    """(files the loaders read, other files) named by a file, a directory or a glob, sorted.

    Names starting with '.' or '_' in a directory are metadata by the Hadoop and Arrow
    convention (`_SUCCESS`, `.part-0.crc`) and are neither read nor counted.
    """
    text = str(path)
    if any(char in text for char in "*?["):
        candidates = [Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file()]
    elif Path(text).is_dir():
        candidates = [
            p for p in Path(text).rglob("*") if p.is_file() and not p.name.startswith((".", "_"))
        ]
    elif Path(text).is_file():
        single = table_file(Path(text))
        if single is None:
            raise SourceError(text, f"not a note table file (the loaders read {READ_SUFFIXES})")
        return [single], []
    else:
        raise SourceError(text, "no such file or directory")
    readable = [(p, table_file(p)) for p in sorted(candidates)]
    files = [found for _, found in readable if found is not None]
    if not files:
        raise SourceError(text, f"no note table files found (the loaders read {READ_SUFFIXES})")
    return files, [p for p, found in readable if found is None]


def expand_table_paths(path: str | Path) -> list[Path]:
    """Every file the input names, read or not: what its digest covers."""
    files, unread = list_table_files(path)
    return sorted([file.path for file in files] + unread)


def warn_unread(path: Path) -> None:
    warnings.warn(
        f"{path}: not read (the loaders read {READ_SUFFIXES}); counted as skipped",
        UnreadFileWarning,
        stacklevel=3,
    )
