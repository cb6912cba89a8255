"""The notes of one experiment, per role: train, validation (optional) and test."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from autocode.config import DataConfig
from autocode.corpus.load import LoadOptions, load_notes
from autocode.corpus.quarantine import LoadReport
from autocode.corpus.schema import NOTE_ID, NoteSet
from autocode.corpus.splits import SplitRatios, assign_splits, group_key, note_groups
from autocode.corpus.table import ColumnMap


@dataclass(frozen=True)
class ReviewedSource:
    """One reviewed-notes file and what it did to the training notes."""

    source: str
    digest: str
    load: dict[str, Any]
    added: int  # notes new to training
    replaced: int  # training notes whose codes the reviewers' codes replaced
    held_out: int  # notes of the validation or test roles, kept out of training

    def described(self) -> str:
        """What the file did to training, in one line for the run's log."""
        return (
            f"reviewed notes from {self.source}: {self.replaced} replaced training notes' "
            f"codes, {self.added} added, {self.held_out} kept out (notes of splits not "
            f"trained on); quarantined {self.load['quarantined']}"
        )


@dataclass
class ExperimentData:
    train: NoteSet
    validation: NoteSet | None  # None: tune decisions on out-of-fold training scores
    test: NoteSet
    report: LoadReport
    source: str
    source_digest: str
    split_counts: dict[str, int] = field(default_factory=dict)
    reviewed: list[ReviewedSource] = field(default_factory=list)

    def lineage(self) -> dict[str, Any]:
        """What was trained on, without any note content: for MLflow and manifests."""
        return {
            "source": self.source,
            "digest": self.source_digest,
            "load": self.report.to_dict(),
            "source_splits": self.split_counts,
            "roles": {
                "train": len(self.train),
                "validation": len(self.validation) if self.validation else "cross-fit",
                "test": len(self.test),
            },
            "reviewed": [asdict(reviewed) for reviewed in self.reviewed],
        }


def load_experiment_data(config: DataConfig, seed: int) -> ExperimentData:
    options = LoadOptions(
        format=config.format,
        columns=ColumnMap(
            id_col=config.id_col, text_col=config.text_col, codes_col=config.codes_col
        ),
        system=config.system,
        language=config.language,
        max_text_chars=config.max_text_chars,
        needs_codes_for="train",
    )
    loaded = load_notes(Path(config.source), options)
    table = assign_splits(loaded.table, SplitRatios(*config.split_ratios), seed)
    if config.systems:
        table = _keep_systems(table, set(config.systems))
    splits = table.column("split").to_pylist()
    train = _role(table, splits, config.train_splits)
    held_out = {
        note_id
        for note_id, split in zip(table.column(NOTE_ID).to_pylist(), splits, strict=True)
        if split not in config.train_splits
    }
    reviewed = [_add_reviewed(train, Path(path), held_out, options) for path in config.reviewed]
    return ExperimentData(
        train=train,
        validation=_role(table, splits, config.validation_splits) or None,
        test=_role(table, splits, config.test_splits),
        report=loaded.report,
        source=config.source,
        source_digest=loaded.source_digest,
        split_counts=dict(sorted(Counter(splits).items())),
        reviewed=reviewed,
    )


def _add_reviewed(
    train: NoteSet, path: Path, held_out: set[str], options: LoadOptions
) -> ReviewedSource:
    """Reviewed notes into `train` in place: the reviewers' codes are the final ones."""
    loaded = load_notes(path, replace(options, format="table", columns=ColumnMap()))
    position = {note_id: i for i, note_id in enumerate(train.note_ids)}
    added = replaced = kept_out = 0
    for row in loaded.table.select([NOTE_ID, "text", "codes"]).to_pylist():
        note_id, text, codes = row[NOTE_ID], row["text"], row["codes"]
        if note_id in held_out:
            kept_out += 1  # reviewed, but a held-out note: training on it would leak
        elif note_id in position:
            train.codes[position[note_id]] = codes
            replaced += 1
        else:
            train.append(note_id, text, codes, group_key(None, note_id))
            added += 1
    return ReviewedSource(
        str(path), loaded.source_digest, loaded.report.to_dict(), added, replaced, kept_out
    )


def _role(table: pa.Table, splits: list[str], names: list[str]) -> NoteSet:
    """Notes of the named splits (an empty NoteSet is falsy: no notes in that role)."""
    rows = [i for i, split in enumerate(splits) if split in names]
    subset = table.take(pa.array(rows, pa.int64()))
    return NoteSet(
        texts=subset.column("text").to_pylist(),
        codes=subset.column("codes").to_pylist(),
        groups=note_groups(subset),
        note_ids=subset.column(NOTE_ID).to_pylist(),
    )


def _keep_systems(table: pa.Table, systems: set[str]) -> pa.Table:
    codes = [
        [code for code in note_codes if code.split(":", 1)[0] in systems]
        for note_codes in table.column("codes").to_pylist()
    ]
    index = table.schema.get_field_index("codes")
    return table.set_column(index, "codes", pa.array(codes, pa.list_(pa.string())))
