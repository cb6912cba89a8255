"""LabelSpace: the ordered codes a model predicts, and multi-hot encoding.

Fitted on training notes with a minimum count; saved with the model so that
column j means the same code at training and at inference time.

These codes are the label space's closed part: the columns a model scores. A Coder may
also have open parts (`decisions.open_codes.OpenCodes`): any other ICD-10-CM code a
note names, proposed from the code system's own names (`knowledge.candidates`), and any
other ICD-10-PCS prefix (`knowledge.pcs_names`), each with a pooled calibration fitted
on codes held out of the training folds. Open codes have no
column; they are listed per note, and routed to review unless their held-out precision
met the routing target.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

from autocode.knowledge import CodeKnowledge, system_columns

LABELS_FILE = "labels.json"


@dataclass
class EncodeReport:
    """Codes met at encode time that the label space does not predict."""

    unknown: Counter[str] = field(default_factory=Counter)

    @property
    def unknown_total(self) -> int:
        return sum(self.unknown.values())


# What codes mean when a label space is given no knowledge: the packaged ICD tables only.
PACKAGED_KNOWLEDGE = CodeKnowledge()


class LabelSpace:
    """Sorted codes seen at least `min_count` times in training.

    `knowledge` says what the codes mean, for the models that read it (default: the
    packaged ICD tables, no HCPCS or CPT files); it is an input, not saved.
    """

    def __init__(self, min_count: int = 1, knowledge: CodeKnowledge | None = None) -> None:
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        self.min_count = min_count
        self.knowledge = knowledge or PACKAGED_KNOWLEDGE

    def fit(self, code_lists: Iterable[Sequence[str]]) -> Self:
        counts = Counter(code for codes in code_lists for code in set(codes))
        self.codes_ = sorted(code for code, n in counts.items() if n >= self.min_count)
        self.counts_ = np.array([counts[code] for code in self.codes_], dtype=np.int64)
        self.dropped_ = sorted(code for code, n in counts.items() if n < self.min_count)
        self._index = {code: j for j, code in enumerate(self.codes_)}
        return self

    def __len__(self) -> int:
        return len(self._fitted_codes())

    def index(self, code: str) -> int:
        self._fitted_codes()
        return self._index[code]

    def encode(
        self, code_lists: Sequence[Sequence[str]], report: EncodeReport | None = None
    ) -> sp.csr_matrix:
        """Multi-hot CSR matrix (n_notes × n_codes); unknown codes are counted in `report`."""
        codes = self._fitted_codes()
        rows: list[int] = []
        cols: list[int] = []
        for i, note_codes in enumerate(code_lists):
            for code in set(note_codes):
                j = self._index.get(code)
                if j is None:
                    if report is not None:
                        report.unknown[code] += 1
                    continue
                rows.append(i)
                cols.append(j)
        data = np.ones(len(rows), dtype=np.int8)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(code_lists), len(codes)))

    def decode(self, matrix: np.ndarray | sp.spmatrix) -> list[list[str]]:
        """Code lists from a binary matrix, in label-space order."""
        codes = self._fitted_codes()
        csr = sp.csr_matrix(matrix)
        if csr.shape[1] != len(codes):
            raise ValueError(f"matrix has {csr.shape[1]} columns, label space has {len(codes)}")
        return [
            [codes[j] for j in sorted(csr.indices[csr.indptr[i] : csr.indptr[i + 1]])]
            for i in range(csr.shape[0])
        ]

    def system_columns(self) -> dict[str, np.ndarray]:
        """Code system -> its label columns (see `knowledge.system_columns`)."""
        return system_columns(self._fitted_codes())

    def save(self, directory: Path) -> None:
        payload = {
            "min_count": self.min_count,
            "codes": self._fitted_codes(),
            "counts": self.counts_.tolist(),
        }
        (directory / LABELS_FILE).write_text(json.dumps(payload), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, knowledge: CodeKnowledge | None = None) -> LabelSpace:
        payload = json.loads((directory / LABELS_FILE).read_text(encoding="utf-8"))
        return cls.from_codes(
            payload["codes"], payload["counts"], payload["min_count"], knowledge=knowledge
        )

    @classmethod
    def from_codes(
        cls,
        codes: Sequence[str],
        counts: Sequence[int] | None = None,
        min_count: int = 1,
        *,
        knowledge: CodeKnowledge | None = None,
    ) -> LabelSpace:
        """A label space with exactly these codes, in this order."""
        space = cls(min_count=min_count, knowledge=knowledge)
        space.codes_ = list(codes)
        space.counts_ = np.array(counts if counts is not None else [0] * len(codes), np.int64)
        space.dropped_ = []
        space._index = {code: j for j, code in enumerate(space.codes_)}
        return space

    def _fitted_codes(self) -> list[str]:
        if not hasattr(self, "codes_"):
            raise RuntimeError("LabelSpace is not fitted yet: call fit(code_lists) first")
        return self.codes_


@dataclass(frozen=True)
class GoldWithUnseen:
    """Gold codes scored against a label space that lacks some of them.

    Columns: the space's codes, then every gold code it lacks (sorted). A model has no
    score for those: `pad` gives them zero scores, and `unranked` marks them so ranking
    metrics count them as relevant but never retrieved.
    """

    labels: list[str]
    gold: sp.csr_matrix
    known: int  # how many leading columns are the label space's own

    @property
    def unseen(self) -> int:
        return len(self.labels) - self.known

    @property
    def unranked(self) -> np.ndarray:
        return np.arange(len(self.labels)) >= self.known

    def pad(self, scores: np.ndarray) -> np.ndarray:
        """(notes, known) scores or decisions widened with a zero (False) column per unseen code."""
        if scores.shape[1] != self.known:
            raise ValueError(f"scores have {scores.shape[1]} columns; expected {self.known}")
        padding = np.zeros((scores.shape[0], self.unseen), dtype=scores.dtype)
        return np.hstack([scores, padding])


def gold_with_unseen(space: LabelSpace, code_lists: Sequence[Sequence[str]]) -> GoldWithUnseen:
    """Every gold code counts, including those `space` never learned (see GoldWithUnseen)."""
    known = list(space.codes_)
    unseen = sorted({code for codes in code_lists for code in codes} - set(known))
    extended = LabelSpace.from_codes(known + unseen)
    return GoldWithUnseen(extended.codes_, extended.encode(code_lists), len(known))
