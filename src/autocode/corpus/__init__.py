"""Load note archives into canonical notes; quarantine what cannot be used; split."""

from autocode.corpus.errors import SourceError
from autocode.corpus.load import LoadedNotes, LoadOptions, load_notes, stream_notes
from autocode.corpus.quarantine import LoadReport, Quarantine
from autocode.corpus.schema import NOTE_SCHEMA, Note
from autocode.corpus.table import ColumnMap

__all__ = [
    "NOTE_SCHEMA",
    "ColumnMap",
    "LoadOptions",
    "LoadReport",
    "LoadedNotes",
    "Note",
    "Quarantine",
    "SourceError",
    "load_notes",
    "stream_notes",
]
