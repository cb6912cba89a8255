"""The work on one part, in the main process or a pool worker: code, enqueue, write."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autocode.decisions.coder import Coder
from autocode.decisions.records import REVIEW, Decision, to_arrow
from autocode.decisions.routing import decide
from autocode.infer.locking import hold_as_worker
from autocode.infer.output import part_name, write_atomically


@dataclass(frozen=True)
class WorkerSettings:
    coder_dir: str
    model_uri: str
    model_version: str
    output_dir: str
    evidence: bool
    queue_url: str | None


@dataclass(frozen=True)
class PartJob:
    index: int
    note_ids: list[str]
    texts: list[str]


@dataclass(frozen=True)
class PartResult:
    index: int
    coded: int
    auto: int
    review: int
    queue_inserted: int


@dataclass
class WorkerState:
    settings: WorkerSettings
    coder: Coder
    store: Any = None  # the review store, opened on the first routed note


_state: WorkerState | None = None
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PARENT_POLL_S = 1.0


def load_worker(settings: WorkerSettings, parent_pid: int) -> None:
    """Pool initializer: tie the worker's life to the job's, then load the Coder once."""
    die_with_parent(parent_pid)
    # The descriptor stays open, and the shared lock held, until the process exits.
    hold_as_worker(Path(settings.output_dir))
    use_coder(settings, Coder.load(Path(settings.coder_dir)).for_batch_coding())


def die_with_parent(parent_pid: int) -> None:
    """A worker outliving a killed job would keep writing parts into a resumed one.

    On Linux the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG); a
    daemon thread that polls the parent's pid covers the other systems, and a parent
    that died before this ran.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)  # no cleanup: the parent's job is gone, and its resume redoes this part


def use_coder(settings: WorkerSettings, coder: Coder) -> None:
    global _state
    _state = WorkerState(settings, coder)


def code_part(job: PartJob) -> PartResult:
    if _state is None:
        raise RuntimeError("code_part called before load_worker/use_coder")
    settings, coder = _state.settings, _state.coder
    decisions: list[Decision] = []
    if job.texts:
        decisions = decide(
            coder,
            coder.predict_proba(job.texts),
            job.texts if settings.evidence else None,
            truncated=coder.truncated(job.texts),
        )
    return finish_part(_state, job, decisions)


def finish_part(state: WorkerState, job: PartJob, decisions: list[Decision]) -> PartResult:
    """Queue the part's review cases, then write its file: the order exactly-once relies on."""
    settings = state.settings
    inserted = enqueue_reviews(state, job, decisions)
    table = to_arrow(
        job.note_ids, decisions, settings.model_uri, settings.model_version, datetime.now(UTC)
    )
    # Last: the part's file under its final name is what marks it done.
    write_atomically(table, Path(settings.output_dir) / part_name(job.index))
    review = sum(d.route == REVIEW for d in decisions)
    return PartResult(job.index, len(decisions), len(decisions) - review, review, inserted)


def enqueue_reviews(state: WorkerState, job: PartJob, decisions: list[Decision]) -> int:
    settings = state.settings
    if settings.queue_url is None:
        return 0
    from autocode.review.store import NewCase, ReviewStore

    cases = [
        NewCase.from_decision(note_id, text, decision, settings.model_uri, settings.model_version)
        for note_id, text, decision in zip(job.note_ids, job.texts, decisions, strict=True)
        if decision.route == REVIEW
    ]
    if not cases:
        return 0
    if state.store is None:
        state.store = ReviewStore(settings.queue_url)
    return int(state.store.enqueue(cases).inserted)
