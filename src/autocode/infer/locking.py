"""One batch job per output directory, and no worker of a dead job still writing to it.

`_lock`: the job holds an exclusive `flock` on it from start to end. The kernel
releases it when the process dies, however it dies, so a killed job never leaves
a stale lock behind, and a second job on the same output is refused at once.

`_workers.lock`: every pool worker holds a shared `flock` on it for its life. Workers
die with their parent (see `coding_worker.die_with_parent`), but dying takes a moment;
a resumed job takes this lock exclusively before it writes anything, which waits until
the last worker of the killed job is gone, so it never races an orphan.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autocode.private_files import FILE_MODE

LOCK_FILE = "_lock"
WORKERS_LOCK_FILE = "_workers.lock"
ORPHAN_WAIT_S = 30.0
_POLL_S = 0.05


class OutputInUseError(Exception):
    """Another job is writing the output directory, or its workers are still alive."""


@contextmanager
def output_lock(output_dir: Path) -> Iterator[int]:
    """Hold the output directory for this job; refuse it if another job holds it.

    Yields the lock's descriptor: a forked worker inherits it, and closes its copy
    (`release_inherited_lock`) so that only the job itself holds the directory.
    """
    path = output_dir / LOCK_FILE
    descriptor = _open_lock_file(path)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputInUseError(
                f"--output {output_dir} is in use by another autocode run (it holds {path}); "
                "wait for it to finish or choose another --output"
            ) from None
        wait_for_orphan_workers(output_dir)
        yield descriptor
    finally:
        os.close(descriptor)  # closing the last descriptor releases the lock


def wait_for_orphan_workers(output_dir: Path, timeout_s: float = ORPHAN_WAIT_S) -> None:
    """Return once no worker process of an earlier job holds `_workers.lock`."""
    descriptor = _open_lock_file(output_dir / WORKERS_LOCK_FILE)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OutputInUseError(
                        f"--output {output_dir}: worker processes of an earlier run are still "
                        f"alive after {timeout_s:.0f} s (they hold "
                        f"{output_dir / WORKERS_LOCK_FILE}); stop them and run again"
                    ) from None
                time.sleep(_POLL_S)
    finally:
        os.close(descriptor)


def hold_as_worker(output_dir: Path) -> int:
    """Called in a pool worker: a shared lock kept until the process ends; its descriptor."""
    descriptor = _open_lock_file(output_dir / WORKERS_LOCK_FILE)
    fcntl.flock(descriptor, fcntl.LOCK_SH)
    return descriptor


def release_inherited_lock(descriptor: int) -> None:
    """Called in a forked worker: close its copy of the job's lock descriptor.

    The lock lives as long as any copy of the descriptor is open; a worker that kept
    one would hold the output after its job was killed, until it died itself.
    """
    os.close(descriptor)


def _open_lock_file(path: Path) -> int:
    # O_CLOEXEC: a program the job starts (Spark's JVM) must not inherit the job's lock.
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
