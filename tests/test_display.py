"""The CLI's progress display: rows done of a total, resumed work, library log lines."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from autocode.display import logged_stages, row_progress


def recording_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=160, force_terminal=False), buffer


def test_rows_done_of_the_total_start_from_a_resumed_run() -> None:
    console, buffer = recording_console()
    with row_progress(console, "coding", unit="notes") as progress:
        progress.start(10, done=4)
        progress.advance(3)
        task = progress.task
        assert task is not None
        assert (task.completed, task.total) == (7, 10)
        # The 4 notes of the earlier run are not part of this run's speed samples.
        assert sum(sample.completed for sample in task._progress) == 3
    assert "7/10" in buffer.getvalue()


def test_the_times_are_labelled_and_a_resumed_runs_rows_are_not_its_rate() -> None:
    console, buffer = recording_console()
    with row_progress(console, "coding", unit="notes") as progress:
        progress.start(10, done=10)  # every part finished by an earlier run
    shown = buffer.getvalue()
    assert "10/10 - notes/s left" in shown and " took " in shown

    console, buffer = recording_console()
    with row_progress(console, "coding", unit="notes") as progress:
        progress.start(10, done=4)
        progress.advance(6)  # one sample: too few for rich's speed, so the run's average
        task = progress.task
        assert task is not None and task.speed is None
    assert "10/10 - notes/s" not in buffer.getvalue()


def test_unknown_total_shows_a_count_without_a_bar() -> None:
    console, buffer = recording_console()
    with row_progress(console, "coding", unit="notes") as progress:
        progress.start(None)
        progress.advance(5)
    assert "5 notes" in buffer.getvalue()
    assert "/" not in buffer.getvalue().split("notes")[0]


def test_library_info_lines_are_printed_and_debug_lines_only_refresh_the_status() -> None:
    console, buffer = recording_console()
    library = logging.getLogger("autocode.models.crossfit")
    with logged_stages(console):
        library.info("cross-fit fold %d/%d", 1, 5)
        library.debug("linear layer epoch %d/%d", 2, 5)
    printed = buffer.getvalue()
    assert "cross-fit fold 1/5" in printed
    assert "epoch 2/5" not in printed
    assert logging.getLogger("autocode").handlers == []  # logging restored after the block
