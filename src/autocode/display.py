"""What a long command shows while it runs: notes done of the total, rate, time left.

The library reports progress two ways, and this module turns both into a display
on stderr for the CLI:
- counted work (batch coding, `data prepare`) calls a `RowProgress` with rows done;
- staged work (training: stages, folds, epochs) logs through `logging`: INFO
  records become permanent lines, DEBUG records (epochs) only refresh a status line.
Nothing here is imported by the library itself, so it stays free of display code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

LIBRARY_LOGGER = "autocode"


class RateColumn(ProgressColumn):
    """Units per second over rich's recent-speed window, else this run's average ("-"
    while this run has done nothing: the rows of a resumed job's finished parts are not
    its work)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        done_now = task.completed - task.fields.get("resumed", 0)
        if speed is None and done_now > 0 and task.elapsed:
            speed = done_now / task.elapsed
        return Text(f"- {self.unit}/s" if speed is None else f"{speed:,.0f} {self.unit}/s")


class LabelledColumn(ProgressColumn):
    """Another column with a word before it: two bare clock times do not say which is
    the time left and which the time taken."""

    def __init__(self, label: str, column: ProgressColumn) -> None:
        super().__init__()
        self.label, self.column = label, column

    def render(self, task: Task) -> Text:
        shown = self.column.render(task)
        return Text.assemble(f"{self.label} ", shown if isinstance(shown, Text) else str(shown))


class RowProgress:
    """A progress bar of rows: `start(total, done)` once, then `advance(rows)`.

    `total` None (a stream, or a format that cannot be counted cheaply) shows a
    count and a rate without a bar or time left. `done` is the work an earlier run
    finished (a resumed job), so the bar and the time left start from there; the
    rate counts only what this run does.
    """

    def __init__(self, console: Console, description: str, unit: str) -> None:
        self._console = console
        self._description = description
        self._unit = unit
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total: int | None, done: int = 0) -> None:
        columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn(), RateColumn(self._unit)]
            columns.append(LabelledColumn("left", TimeRemainingColumn()))
        else:
            columns += [TextColumn(f"{{task.completed:,.0f}} {self._unit}"), RateColumn(self._unit)]
        columns.append(LabelledColumn("took", TimeElapsedColumn()))
        self._progress = Progress(*columns, console=self._console)
        self._progress.start()
        self._task = self._progress.add_task(self._description, total=total, resumed=done)
        if done:
            # Set without a time stamp, so rich's speed (and time left) ignores it.
            self._progress.tasks[self._task].completed = done

    @property
    def task(self) -> Task | None:
        """The rich task behind the bar, once started."""
        if self._progress is None or self._task is None:
            return None
        return self._progress.tasks[self._task]

    def advance(self, rows: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, rows)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@contextmanager
def row_progress(console: Console, description: str, unit: str = "rows") -> Iterator[RowProgress]:
    display = RowProgress(console, description, unit)
    try:
        yield display
    finally:
        display.stop()


class _StatusHandler(logging.Handler):
    def __init__(self, console: Console, status: object) -> None:
        super().__init__(logging.DEBUG)
        self._console = console
        self._status = status

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.INFO:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            self._console.print(f"{stamp} {message}", markup=False, highlight=False, soft_wrap=True)
        self._status.update(message)  # type: ignore[attr-defined]


@contextmanager
def logged_stages(console: Console) -> Iterator[None]:
    """Show the library's log records while the block runs; restore logging after."""
    library = logging.getLogger(LIBRARY_LOGGER)
    with console.status("starting") as status:
        handler = _StatusHandler(console, status)
        previous_level, previous_propagate = library.level, library.propagate
        library.addHandler(handler)
        library.setLevel(logging.DEBUG)
        library.propagate = False  # MLflow's root handlers must not print our lines twice
        try:
            yield
        finally:
            library.removeHandler(handler)
            library.setLevel(previous_level)
            library.propagate = previous_propagate
