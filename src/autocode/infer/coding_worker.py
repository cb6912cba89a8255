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

from threadpoolctl import threadpool_limits

from autocode.collector import collector_paused
from autocode.decisions.coder import Coder
from autocode.decisions.records import REVIEW, Decision, to_arrow
from autocode.decisions.routing import decide
from autocode.infer.locking import hold_as_worker, release_inherited_lock
from autocode.infer.output import part_name, write_atomically


@dataclass(frozen=True)
class WorkerSettings:
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


def start_forked_worker(parent_pid: int, inherited_lock: int) -> None:
    """Pool initializer of a worker forked from the job after `use_coder`.

    The worker codes with the job's own Coder, shared copy-on-write: nothing is loaded
    again. It dies with the job, holds the output only through `_workers.lock`, and
    runs its numerical libraries on one thread, since the workers fill the cores.
    """
    # Ctrl-C at a terminal signals the whole process group: the job answers it (one
    # line, then it exits, and its workers with it); a worker would print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)
    release_inherited_lock(inherited_lock)
    if _state is None:
        raise RuntimeError("a coding worker must be forked after use_coder")
    # The descriptor stays open, and the shared lock held, until the process exits.
    hold_as_worker(Path(_state.settings.output_dir))
    threadpool_limits(1)


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
        raise RuntimeError("code_part called before use_coder")
    settings, coder = _state.settings, _state.coder
    if not job.texts:
        return finish_part(_state, job, [])
    probabilities = coder.predict_proba(job.texts)
    truncated = coder.truncated(job.texts)
    # Codes beyond the label space, codes term rules accept and codes named only negated
    # or within other codes' names (never accepted), with or without evidence.
    proposals = coder.open_proposals(job.texts)
    rule_accepted = coder.rule_accepts(job.texts, probabilities)
    unaffirmed = coder.unaffirmed(job.texts, probabilities)
    # The part's records (some 100k evidence spans) live until its file is written, and die
    # before the collector, paused until then, is back: it never walks them (were they
    # alive as it resumed, its first pass would walk them all once).
    with collector_paused():
        decisions = decide(
            coder,
            probabilities,
            job.texts if settings.evidence else None,
            truncated=truncated,
            open_proposals=proposals,
            rule_accepted=rule_accepted,
            unaffirmed=unaffirmed,
        )
        result = finish_part(_state, job, decisions)
        del decisions
    return result


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
