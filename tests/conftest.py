"""Shared fixtures: tiny deterministic notes and the real corpus location."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from autocode.labels import LabelSpace

REPO_ROOT = Path(__file__).resolve().parents[1]
# Tests never download: a test that reached for the Hugging Face hub would fail here, not
# pass on a connected laptop and fail in CI.
os.environ["HF_HUB_OFFLINE"] = "1"


def shared_data_dir() -> Path:
    """`AUTOCODE_SHARED_DATA`, default `../shared/data` beside the repository."""
    return Path(os.environ.get("AUTOCODE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set AUTOCODE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def codiesp_root(shared_data: Path) -> Path:
    return shared_data / "codiesp"


# ----------------------------------------------------------------------------- tiny notes

# Each code is signalled by one word; the filler words carry no signal.
TINY_LABEL_WORDS = {
    "ICD10CM:D64.9": "anemia",
    "ICD10CM:E11.9": "diabetes",
    "ICD10CM:G43.909": "migraine",
    "ICD10CM:J45.909": "asthma",
    "ICD10CM:M10.9": "gout",
    "ICD10CM:S72.001A": "fracture",
}
TINY_FILLER = [
    "patient",
    "seen",
    "today",
    "in",
    "clinic",
    "reports",
    "feeling",
    "tired",
    "since",
    "last",
    "week",
    "vitals",
    "stable",
    "plan",
    "reviewed",
    "with",
    "family",
    "follow",
    "up",
    "in",
    "two",
    "weeks",
    "labs",
    "ordered",
    "sleeping",
    "well",
    "appetite",
    "fair",
    "walking",
    "with",
    "cane",
]


@dataclass(frozen=True)
class TinyCorpus:
    """Deterministic notes whose codes are named by one word each (see TINY_LABEL_WORDS)."""

    codes: list[str]  # label order: column j of Y is codes[j]
    texts: list[str]
    code_lists: list[list[str]]
    Y: np.ndarray  # (n_notes, n_codes) int multi-hot
    heldout_texts: list[str]  # one note per code, naming only that code's word
    heldout_labels: list[int]  # the column each held-out note is about

    @property
    def labels(self) -> LabelSpace:
        """The label space of Y's columns."""
        return LabelSpace.from_codes(self.codes)

    @property
    def words(self) -> list[str]:
        """The signal word of each label, in label order."""
        return [TINY_LABEL_WORDS[code] for code in self.codes]

    @staticmethod
    def note(rng: random.Random, words: list[str]) -> str:
        return tiny_note(rng, words)


def tiny_note(rng: random.Random, words: list[str]) -> str:
    """Eight filler words with the given signal words dropped in at random places."""
    tokens = rng.sample(TINY_FILLER, 8)
    for word in words:
        tokens.insert(rng.randrange(len(tokens) + 1), word)
    return " ".join(tokens).capitalize() + "."


def make_tiny_corpus(n_notes: int = 40, seed: int = 0) -> TinyCorpus:
    rng = random.Random(seed)
    codes = sorted(TINY_LABEL_WORDS)
    texts: list[str] = []
    code_lists: list[list[str]] = []
    for i in range(n_notes):
        # Every code leads a note in turn; half the notes carry a second code.
        labels = {i % len(codes)}
        if rng.random() < 0.5:
            labels.add(rng.randrange(len(codes)))
        note_codes = [codes[j] for j in sorted(labels)]
        texts.append(tiny_note(rng, [TINY_LABEL_WORDS[c] for c in note_codes]))
        code_lists.append(note_codes)
    Y = np.array([[int(c in note) for c in codes] for note in code_lists], dtype=np.int64)
    heldout_rng = random.Random(seed + 1)
    heldout = [tiny_note(heldout_rng, [TINY_LABEL_WORDS[c]]) for c in codes]
    return TinyCorpus(codes, texts, code_lists, Y, heldout, list(range(len(codes))))


@pytest.fixture(scope="session")
def tiny_corpus() -> TinyCorpus:
    return make_tiny_corpus()


@pytest.fixture(scope="session")
def tiny_validation_corpus() -> TinyCorpus:
    """An independent draw of the tiny notes, for tuning decisions."""
    return make_tiny_corpus(seed=1)


@pytest.fixture(autouse=True)
def _review_queue_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`predict` without `--queue` writes `review-queue.db` in the current directory: keep
    each test's default queue in its own temporary directory, never the repository."""
    monkeypatch.setattr(
        "autocode.review.store.DEFAULT_QUEUE_URL", f"sqlite:///{tmp_path / 'review-queue.db'}"
    )


class RecordingProgress:
    """A progress sink that remembers what it was told."""

    def __init__(self) -> None:
        self.total: int | None = -1
        self.done = -1
        self.advanced: list[int] = []

    def start(self, total: int | None, done: int = 0) -> None:
        self.total, self.done = total, done

    def advance(self, rows: int) -> None:
        self.advanced.append(rows)
