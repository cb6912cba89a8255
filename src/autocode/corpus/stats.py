"""Corpus statistics computed in one streaming pass."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autocode.corpus.load import LoadOptions, stream_notes
from autocode.corpus.quarantine import LoadReport, Quarantine

PERCENTILES = (5, 25, 50, 75, 95, 99)


@dataclass
class CorpusStats:
    documents: int = 0
    code_rows: Counter[str] = field(default_factory=Counter)
    codes_by_system: dict[str, set[str]] = field(default_factory=dict)
    documents_without_codes: int = 0
    splits: Counter[str] = field(default_factory=Counter)
    text_lengths: list[int] = field(default_factory=list)
    report: LoadReport = field(default_factory=LoadReport)

    def to_dict(self) -> dict[str, Any]:
        lengths = np.array(self.text_lengths or [0])
        return {
            "documents": self.documents,
            "read": self.report.read,
            "quarantined": self.report.quarantined_total,
            "quarantined_by_reason": dict(sorted(self.report.quarantined.items())),
            "skipped": sum(self.report.skipped.values()),
            "skipped_by_reason": dict(sorted(self.report.skipped.items())),
            "code_rows": dict(sorted(self.code_rows.items())),
            "distinct_codes": {
                system: len(codes) for system, codes in sorted(self.codes_by_system.items())
            },
            "documents_without_codes": self.documents_without_codes,
            "splits": dict(sorted(self.splits.items())),
            "text_chars_percentiles": {
                str(p): float(np.percentile(lengths, p)) for p in PERCENTILES
            },
        }


def corpus_stats(
    path: Path, options: LoadOptions, quarantine_path: Path | None = None
) -> CorpusStats:
    """Count documents, codes per system, quarantine reasons and text lengths."""
    stats = CorpusStats()
    with Quarantine(quarantine_path) as quarantine:
        for note in stream_notes(path, options, quarantine, stats.report):
            stats.documents += 1
            stats.text_lengths.append(len(note.text))
            stats.splits[note.split or "unassigned"] += 1
            if not note.codes:
                stats.documents_without_codes += 1
            for code in note.codes:
                system = code.split(":", 1)[0]
                stats.code_rows[system] += 1
                stats.codes_by_system.setdefault(system, set()).add(code)
    stats.report.check_balanced()
    return stats
