"""Batch coding of a note archive: stream, code, route, write Parquet parts, resume.

Exactly-once: input rows are cut into parts of `batch_size` raw rows in the
loaders' deterministic order. A part's Parquet file is renamed into place only
when complete, after its quarantine file and its review cases (idempotent)
are written, so a job killed at any moment and started again skips finished
parts, redoes the unfinished one, and never writes a note twice.

One job at a time per output directory (`locking.output_lock`), pool workers that die
with the job, and a resume that waits for any worker of a killed job to be gone. The
model is named by its content (`loading.model_identity`) in the rows, the review queue
and the resume check, whatever address loaded it.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from autocode import __version__
from autocode.corpus.canonical import Canonicalizer, RawRow
from autocode.corpus.counting import ProgressSink, count_rows
from autocode.corpus.load import LoadOptions, canonicalizer_for, read_raw_rows, source_digest
from autocode.corpus.quarantine import LoadReport, Quarantine
from autocode.decisions.coder import Coder
from autocode.decisions.records import RECORDS_FORMAT
from autocode.infer import coding_worker
from autocode.infer.coding_worker import PartJob, PartResult
from autocode.infer.loading import coder_digest, model_identity, resolve_coder_dir
from autocode.infer.locking import output_lock
from autocode.infer.manifest import (
    check_same_job,
    check_same_queue,
    failure_reason,
    read_manifest,
    write_manifest,
)
from autocode.infer.output import part_name, quarantine_name, write_text_atomically
from autocode.private_files import make_private_dir


@dataclass(frozen=True)
class BatchSettings:
    batch_size: int = 1000
    workers: int = 1
    evidence: bool = True
    queue_url: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


@dataclass
class BatchSummary:
    read: int = 0
    coded: int = 0
    auto: int = 0
    review: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    parts_written: int = 0
    parts_resumed: int = 0
    rows_resumed: int = 0  # rows of the parts an earlier run finished: read, not coded
    queue_inserted: int = 0
    seconds: float = 0.0

    @property
    def rows_done_now(self) -> int:
        """Rows this run coded or quarantined: not those of parts an earlier run finished,
        nor those the loader skips (MIMIC's other note categories)."""
        return self.read - self.skipped - self.rows_resumed

    @property
    def notes_per_second(self) -> float:
        return self.rows_done_now / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"notes_per_second": self.notes_per_second}

    def add(self, result: PartResult) -> None:
        """Count one part written by this run."""
        self.coded += result.coded
        self.auto += result.auto
        self.review += result.review
        self.queue_inserted += result.queue_inserted
        self.parts_written += 1


def predict_archive(
    model_uri: str,
    input_path: Path,
    output_dir: Path,
    options: LoadOptions,
    settings: BatchSettings,
    progress: ProgressSink | None = None,
) -> BatchSummary:
    """Code every note of the input into `output_dir`; resume if it holds a partial run.

    `progress` is told the rows of the input (when they can be counted cheaply) and
    those earlier runs finished, then the rows of each part as this run finishes it.
    """
    started = time.perf_counter()
    with (
        open_job(model_uri, input_path, output_dir, options, settings) as job,
        failure_recorded(output_dir, job.manifest),
    ):
        remove_partial_files(output_dir)
        summary = _code_parts(job, input_path, output_dir, options, settings, progress)
        summary.seconds = time.perf_counter() - started
        write_manifest(
            output_dir, job.manifest | {"status": "complete", "summary": summary.to_dict()}
        )
    return summary


def _code_parts(
    job: Job,
    input_path: Path,
    output_dir: Path,
    options: LoadOptions,
    settings: BatchSettings,
    progress: ProgressSink | None,
) -> BatchSummary:
    summary = BatchSummary()
    worker_settings = job.worker_settings(output_dir, settings)
    # The runner first: its workers are forked before this job starts any thread.
    with _PartRunner(settings.workers, worker_settings, job, summary, progress) as run:
        if progress is not None:
            total = count_rows(input_path, options)
            progress.start(total, rows_in_finished_parts(output_dir, settings.batch_size, total))
        report = LoadReport()
        canonicalizer = canonicalizer_for(options, Quarantine(), report)
        parts = split_into_parts(read_raw_rows(input_path, options, report), settings.batch_size)
        for index, rows in parts:
            part = prepare_part(index, rows, canonicalizer, output_dir, summary)
            if part is not None:
                run(part, len(rows))
    report.check_balanced()
    summary.read = report.read
    summary.quarantined = dict(sorted(report.quarantined.items()))
    summary.skipped = sum(report.skipped.values())
    return summary


@contextmanager
def failure_recorded(output_dir: Path, manifest: dict[str, Any]) -> Iterator[None]:
    """`status: running` while the body runs; `failed` with a one-line reason if it raises."""
    write_manifest(output_dir, manifest | {"status": "running"})
    try:
        yield
    except BaseException as error:
        write_manifest(output_dir, manifest | {"status": "failed", "error": failure_reason(error)})
        raise


@dataclass
class Job:
    """The Coder and manifest of a batch job, checked against its output directory."""

    model_uri: str
    coder_dir: Path
    coder: Coder
    version: str
    manifest: dict[str, Any]
    existing: dict[str, Any] | None  # the manifest an earlier run left, if any
    lock_descriptor: int  # of the output lock; forked workers close their copy

    def worker_settings(
        self, output_dir: Path, settings: BatchSettings
    ) -> coding_worker.WorkerSettings:
        return coding_worker.WorkerSettings(
            self.model_uri,
            self.version,
            str(output_dir),
            settings.evidence,
            settings.queue_url,
        )


@contextmanager
def open_job(
    model_uri: str,
    input_path: Path,
    output_dir: Path,
    options: LoadOptions,
    settings: BatchSettings,
    **manifest_extras: Any,
) -> Iterator[Job]:
    """Check the job's arguments, load the Coder, and hold the output directory.

    Everything a user can get wrong is checked before the first note is read, each in
    one line; the output directory is locked for the whole job and refused if it
    holds another job's output.
    """
    refuse_output_inside_input(input_path, output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output {output_dir} is a file; it must be a directory")
    # The address first: a mistyped one must not leave an empty queue file behind.
    coder_dir = resolve_coder_dir(model_uri)
    if settings.queue_url is not None:
        from autocode.review.store import check_queue

        check_same_queue(read_manifest(output_dir), _queue_location(settings.queue_url), output_dir)
        check_queue(settings.queue_url)
    coder, digest, input_digest = load_and_fingerprint(coder_dir, input_path)
    version = model_identity(digest)
    manifest = start_manifest(
        model_uri, version, digest, input_digest, input_path, options, settings
    )
    manifest |= manifest_extras
    make_private_dir(output_dir)
    with output_lock(output_dir) as lock_descriptor:
        existing = read_manifest(output_dir)
        if existing is not None:
            check_same_job(existing, manifest, output_dir)
        yield Job(model_uri, coder_dir, coder, version, manifest, existing, lock_descriptor)


def load_and_fingerprint(coder_dir: Path, input_path: Path) -> tuple[Coder, str, str]:
    """The Coder, its digest and the input's: the files are hashed while the Coder loads.

    Hashing and file reads release the GIL, so on a second core the fingerprints cost
    the job no time. The threads end here, before any worker is forked.
    """
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fingerprint") as hashing:
        coder_hash = hashing.submit(coder_digest, coder_dir)
        input_hash = hashing.submit(source_digest, input_path)
        # The batch-coding copy: a transformer's faster CPU encoder (see Coder.for_batch_coding).
        coder = Coder.load(coder_dir).for_batch_coding()
        return coder, coder_hash.result(), input_hash.result()


def refuse_output_inside_input(input_path: Path, output_dir: Path) -> None:
    """Output written inside the input would be read back as input on the next run."""
    if input_path.is_dir() and output_dir.resolve().is_relative_to(input_path.resolve()):
        raise ValueError(f"--output {output_dir} is inside --input {input_path}")


def rows_in_finished_parts(output_dir: Path, part_rows: int, total: int | None) -> int:
    """Input rows covered by the parts an earlier run finished (the last part may be short)."""
    indices = [int(path.stem.removeprefix("part-")) for path in output_dir.glob("part-*.parquet")]
    if total is None:
        return part_rows * len(indices)
    return sum(max(0, min(part_rows, total - index * part_rows)) for index in indices)


def split_into_parts(rows: Iterator[RawRow], size: int) -> Iterator[tuple[int, list[RawRow]]]:
    for index in itertools.count():
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return
        yield index, chunk


def prepare_part(
    index: int,
    rows: list[RawRow],
    canonicalizer: Canonicalizer,
    output_dir: Path,
    summary: BatchSummary,
) -> PartJob | None:
    """Canonicalise one part's rows; None when the part was finished by an earlier run."""
    done = (output_dir / part_name(index)).is_file()
    canonicalizer.quarantine = Quarantine(keep_records=not done)
    notes = [note for note in map(canonicalizer.accept, rows) if note is not None]
    if done:
        routes = Counter(
            pq.read_table(output_dir / part_name(index), columns=["route"])["route"].to_pylist()
        )
        summary.coded += len(notes)
        summary.auto += routes.get("auto", 0)
        summary.review += routes.get("review", 0)
        summary.parts_resumed += 1
        summary.rows_resumed += len(rows)
        return None
    records = canonicalizer.quarantine.records or []
    if records:
        lines = "".join(json.dumps(record) + "\n" for record in records)
        write_text_atomically(lines, output_dir / quarantine_name(index))
    return PartJob(index, [n.note_id for n in notes], [n.text for n in notes])


class WorkerDiedError(Exception):
    """A pool worker was killed (typically by the out-of-memory killer) mid-part."""


class _PartRunner:
    """Runs part jobs in this process, or in a pool with a bounded number in flight."""

    def __init__(
        self,
        workers: int,
        settings: coding_worker.WorkerSettings,
        job: Job,
        summary: BatchSummary,
        progress: ProgressSink | None,
    ) -> None:
        self.workers = workers
        self.settings = settings
        self.job = job
        self.summary = summary  # every finished part's counts are added here
        self.progress = progress
        self.pending: deque[tuple[int, Future[PartResult], int]] = deque()
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _PartRunner:
        if self.workers > 1 and self.job.coder.codes_on_gpu():
            raise ValueError(
                f"--workers {self.workers}: the model codes on a GPU, which forked workers "
                "cannot use; use --workers 1 (one process keeps the GPU busy)"
            )
        coding_worker.use_coder(self.settings, self.job.coder)
        if self.workers > 1:
            # Lookup tables built on first use (the open part's name index takes seconds):
            # built once here, before the fork, and shared instead of built in each worker.
            self.job.coder.warm_up()
        # What is alive now (above all the Coder: vocabularies, lexicon, hundreds of
        # thousands of objects) is set out of the garbage collector's reach for the job.
        # Each full collection would walk it all again, and cost routing a part as much
        # as routing itself; in a forked worker it would also write to every page that
        # holds one of them, unsharing the Coder.
        gc.collect()  # garbage of the load (the eager copy, export scratch) is not kept
        gc.freeze()
        try:
            if self.workers > 1:
                self.pool = self._forked_pool()
        except BaseException:
            gc.unfreeze()
            raise
        return self

    def _forked_pool(self) -> ProcessPoolExecutor:
        """Workers forked now, sharing the loaded Coder copy-on-write: no worker loads it
        again or holds its own copy of the weights.

        Forked before the job reads anything or shows progress, so no thread of the job
        (Arrow's readers, the progress display) can hold a lock a worker would then wait
        on forever.
        """
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=get_context("fork"),
            initializer=coding_worker.start_forked_worker,
            initargs=(os.getpid(), self.job.lock_descriptor),
        )
        try:
            # A fork pool forks all its workers at its first task: this one.
            pool.submit(os.getpid).result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        return pool

    def __call__(self, job: PartJob, rows: int) -> None:
        """Code one part of `rows` input rows (its notes plus its quarantined rows)."""
        if self.pool is None:
            self._finished(coding_worker.code_part(job), rows)
            return
        try:
            future = self.pool.submit(coding_worker.code_part, job)
        except BrokenProcessPool:
            # The pool broke while earlier parts were in flight: name them all.
            unfinished = [index for index, _, _ in self.pending]
            raise self._worker_died([*unfinished, job.index]) from None
        self.pending.append((job.index, future, rows))
        while len(self.pending) >= 2 * self.workers:
            self._collect_oldest()

    def _collect_oldest(self) -> None:
        _, future, rows = self.pending[0]
        try:
            result = future.result()
        except BrokenProcessPool:
            raise self._worker_died([index for index, _, _ in self.pending]) from None
        self.pending.popleft()
        self._finished(result, rows)

    def _finished(self, result: PartResult, rows: int) -> None:
        self.summary.add(result)
        if self.progress is not None:
            self.progress.advance(rows)

    def _worker_died(self, parts: list[int]) -> WorkerDiedError:
        named = ", ".join(str(index) for index in parts)
        return WorkerDiedError(
            f"a worker process died (killed by the system, often for lack of memory) while "
            f"part(s) {named} were being coded; the parts already written are kept, and "
            "the same command again resumes from there (fewer --workers use less memory)"
        )

    def __exit__(self, *exc: object) -> None:
        try:
            if self.pool is not None:
                self._drain(self.pool, cancel=exc[0] is not None)
        finally:
            gc.unfreeze()

    def _drain(self, pool: ProcessPoolExecutor, cancel: bool) -> None:
        """Collect the parts still in flight (unless the job failed), then end the pool."""
        try:
            while self.pending and not cancel:
                self._collect_oldest()
        finally:
            pool.shutdown(wait=True, cancel_futures=cancel)


def start_manifest(
    model_uri: str,
    version: str,
    digest: str,
    input_digest: str,
    input_path: Path,
    options: LoadOptions,
    settings: BatchSettings,
) -> dict[str, Any]:
    return {
        "model_uri": model_uri,
        "model_version": version,
        "coder_digest": digest,
        "input": str(input_path),
        "input_digest": input_digest,
        "records_format": RECORDS_FORMAT,
        "settings": {
            "batch_size": settings.batch_size,
            "evidence": settings.evidence,
            "format": options.format,
            "columns": asdict(options.columns),
            "system": options.system,
            "splits": list(options.splits) if options.splits else None,
            "language": options.language,
            "max_text_chars": options.max_text_chars,
            "split_file": str(options.split_file) if options.split_file else None,
            "include_cpt": options.include_cpt,
            "queue": _queue_location(settings.queue_url),
        },
        "autocode_version": __version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _queue_location(url: str | None) -> str | None:
    """None where there is no queue, or its URL is malformed (`check_queue` says so)."""
    if url is None:
        return None
    from sqlalchemy.exc import ArgumentError

    from autocode.review.store import queue_location

    try:
        return queue_location(url)
    except ArgumentError:
        return None


def remove_partial_files(output_dir: Path) -> None:
    """Temporary files of a killed run: never complete, always safe to delete."""
    for temporary in [*output_dir.glob(".*.tmp"), *output_dir.glob("*/.*.tmp")]:
        temporary.unlink()
    # Scratch copies a failed Spark run may have left; they hold note text.
    for scratch in ("_staging", "_spark_out"):
        shutil.rmtree(output_dir / scratch, ignore_errors=True)
