"""The canonical note: columns, Arrow schema, and validation of one row.

Every loader turns its source into batches of this shape; everything
downstream (splits, training, batch prediction) reads only this shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

NOTE_ID = "note_id"
TEXT = "text"
CODES = "codes"
PATIENT_ID = "patient_id"
ENCOUNTER_ID = "encounter_id"
SPLIT = "split"

NOTE_SCHEMA = pa.schema(
    [
        pa.field(NOTE_ID, pa.string(), nullable=False),
        pa.field(TEXT, pa.string(), nullable=False),
        pa.field(CODES, pa.list_(pa.string()), nullable=False),
        pa.field(PATIENT_ID, pa.string()),
        pa.field(ENCOUNTER_ID, pa.string()),
        pa.field(SPLIT, pa.string()),
    ]
)

DEFAULT_MAX_TEXT_CHARS = 1_000_000


@dataclass
class Note:
    """One canonical note. `codes` are normalised `SYSTEM:VALUE` strings."""

    note_id: str
    text: str
    codes: list[str] = field(default_factory=list)
    patient_id: str | None = None
    encounter_id: str | None = None
    split: str | None = None

    def as_row(self) -> dict[str, object]:
        return {
            NOTE_ID: self.note_id,
            TEXT: self.text,
            CODES: list(self.codes),
            PATIENT_ID: self.patient_id,
            ENCOUNTER_ID: self.encounter_id,
            SPLIT: self.split,
        }


def notes_to_table(notes: list[Note]) -> pa.Table:
    """Build an Arrow table in the canonical schema from notes."""
    return pa.Table.from_pylist([note.as_row() for note in notes], schema=NOTE_SCHEMA)


@dataclass
class NoteSet:
    """Texts and their gold code lists for one role (train, validation, test).

    `groups` names each note's patient (its note id where the patient is unknown); None:
    every note counts as its own patient.
    """

    texts: list[str]
    codes: list[list[str]]
    groups: list[str] | None = None
    note_ids: list[str] = field(default_factory=list)  # where known (a loaded source)

    def __len__(self) -> int:
        return len(self.texts)

    def append(self, note_id: str, text: str, codes: list[str], group: str) -> None:
        """One more note, in a set that records its note ids."""
        if len(self.note_ids) != len(self.texts):
            raise ValueError("append needs a NoteSet that records the id of every note")
        self.note_ids.append(note_id)
        self.texts.append(text)
        self.codes.append(codes)
        if self.groups is not None:
            self.groups.append(group)
