"""The batch job as a process: one job per output, workers that die with it, checks at start."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from autocode.cli import app
from autocode.corpus.load import LoadOptions
from autocode.corpus.synth import write_synthetic_archive
from autocode.infer import batch
from autocode.infer.batch import BatchSettings, WorkerDiedError, predict_archive
from autocode.infer.coding_worker import PartJob
from autocode.infer.locking import (
    LOCK_FILE,
    WORKERS_LOCK_FILE,
    OutputInUseError,
    hold_as_worker,
    wait_for_orphan_workers,
)
from autocode.infer.manifest import MANIFEST
from autocode.review.store import QueueUnavailableError
from coders import train_small_coder
from test_cli import assert_one_line_error

BATCH_OPTIONS = LoadOptions(skip_unreadable_files=True)
AUTOCODE = str(Path(sys.executable).parent / "autocode")


@pytest.fixture(scope="module")
def coder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coder")
    write_synthetic_archive(root / "train", 200, seed=1, n_codes=40)
    routing = {"min_support": 5, "target_recall": 0.8}
    coder = train_small_coder(root / "train", "job-test", epochs=2, routing=routing)
    coder.save(root / "coder")
    return root / "coder"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("archive") / "notes"
    write_synthetic_archive(directory, 300, seed=5, n_codes=40, bad_row_rate=0.05)
    return directory


def predict_command(coder_dir: Path, archive: Path, out: Path, *extra: str) -> list[str]:
    arguments = ["--model", str(coder_dir), "--input", str(archive), "--output", str(out)]
    return [AUTOCODE, "predict", *arguments, *extra]


def output_ids(out: Path) -> list[str]:
    return list(ds.dataset(out, format="parquet").to_table()["note_id"].to_pylist())


# ----------------------------------------------------------------------------- processes


@pytest.mark.slow
def test_kill_9_of_the_parent_leaves_no_worker_and_the_resume_codes_each_note_once(
    coder_dir: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "big"
    write_synthetic_archive(archive, 4000, seed=21, n_codes=40, rows_per_file=1000)
    out = tmp_path / "out"
    queue = ["--queue", f"sqlite:///{tmp_path / 'queue.db'}"]
    command = predict_command(coder_dir, archive, out, "--workers", "2", "--batch-size", "40")
    process = subprocess.Popen(
        [*command, *queue], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 180
    while not list(out.glob("part-*.parquet")):
        assert process.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline, "no part within 180 s"
        time.sleep(0.02)
    children = psutil.Process(process.pid).children(recursive=True)
    assert len(children) >= 2  # the pool's workers (and multiprocessing's helper)
    # Forked workers close their copy of the job's lock: only the job holds the output.
    held = [f.path for child in children for f in child.open_files()]
    assert str(out / WORKERS_LOCK_FILE) in held
    assert str(out / LOCK_FILE) not in held
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"still alive after the parent's kill -9: {alive}"
    finished = subprocess.run([*command, *queue, "--json"], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    ids = output_ids(out)
    assert len(ids) == len(set(ids)) == 4000 == json.loads(finished.stdout)["coded"]


@pytest.mark.slow
def test_ctrl_c_says_the_same_command_resumes_and_it_does(coder_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "big"
    write_synthetic_archive(archive, 3000, seed=22, n_codes=40, rows_per_file=1000)
    out = tmp_path / "out"
    command = [
        *predict_command(coder_dir, archive, out, "--batch-size", "40", "--workers", "2"),
        *["--queue", f"sqlite:///{tmp_path / 'queue.db'}"],
    ]
    # Its own process group, as a terminal's job: Ctrl-C signals the job and its workers.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while not list(out.glob("part-*.parquet")):
        assert process.poll() is None, "the job ended before it could be interrupted"
        assert time.monotonic() < deadline, "no part within 180 s"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    # Dead of SIGINT, as a shell loop calling it must see, after one line and no traceback.
    assert process.returncode == -signal.SIGINT
    assert f"interrupted: the parts finished in {out} are kept" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    finished = subprocess.run([*command, "--json"], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["parts_resumed"] >= 1
    ids = output_ids(out)
    assert len(ids) == len(set(ids)) == 3000


def test_a_worker_killed_mid_part_is_one_line_naming_the_part_and_the_resume_finishes(
    coder_dir: Path, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    settings = BatchSettings(batch_size=50, workers=2, evidence=False)
    prepare = batch.prepare_part

    def poison_part_2(*args: object, **kwargs: object) -> PartJob | None:
        part = prepare(*args, **kwargs)  # type: ignore[arg-type]
        if part is None or part.index != 2:
            return part
        # Unpickled in the worker: the worker process exits at once, as the OOM killer's
        # SIGKILL would end it.
        return PartJob(part.index, part.note_ids, [_ExitOnUnpickle(), *part.texts])  # type: ignore[list-item]

    monkeypatch.setattr(batch, "prepare_part", poison_part_2)
    with pytest.raises(WorkerDiedError, match=r"part\(s\) .*\b2\b.*resumes") as raised:
        predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, settings)
    assert "\n" not in str(raised.value)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"].startswith("WorkerDiedError: a worker process died")
    monkeypatch.undo()
    summary = predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, settings)
    ids = output_ids(out)
    assert len(ids) == len(set(ids)) == summary.coded
    assert json.loads((out / MANIFEST).read_text())["status"] == "complete"


class _ExitOnUnpickle:
    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (os._exit, (137,))


# ----------------------------------------------------------------------------- the lock


def test_a_second_run_on_a_held_output_is_refused_in_one_line(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(out / LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        arguments = ["--model", str(coder_dir), "--input", str(archive), "--output", str(out)]
        queue = ["--queue", f"sqlite:///{tmp_path / 'q.db'}"]
        result = CliRunner().invoke(app, ["predict", *arguments, *queue])
        assert_one_line_error(result, str(out), "in use")
        assert not list(out.glob("part-*")) and not (out / MANIFEST).exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder died without unlocking: the kernel released the lock, so the job runs.
    summary = predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings())
    assert summary.coded == len(output_ids(out))


@pytest.mark.slow
def test_two_real_runs_on_one_output_one_refused_one_complete(
    coder_dir: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "big"
    write_synthetic_archive(archive, 2000, seed=3, n_codes=40, rows_per_file=1000)
    out = tmp_path / "out"
    command = predict_command(coder_dir, archive, out, "--batch-size", "10", "--json")
    command += ["--queue", f"sqlite:///{tmp_path / 'q.db'}"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not list(out.glob("part-*.parquet")):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    # Stopped mid-job (it codes 2,000 notes in under a second): still running, as far as
    # the second run can tell, however fast the machine.
    first.send_signal(signal.SIGSTOP)
    try:
        assert first.poll() is None and len(list(out.glob("part-*.parquet"))) < 200
        second = subprocess.run(command, capture_output=True, text=True)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2
    assert second.stderr.splitlines() == [second.stderr.strip()]
    assert "in use" in second.stderr
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    ids = output_ids(out)
    assert len(ids) == len(set(ids)) == 2000 == json.loads(stdout)["coded"]


def test_a_worker_lock_held_by_an_orphan_delays_the_job_until_it_is_gone(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    descriptor = hold_as_worker(out)  # as a worker of a killed job would, still alive
    try:
        with pytest.raises(OutputInUseError, match="worker processes of an earlier run"):
            wait_for_orphan_workers(out, timeout_s=0.3)
    finally:
        os.close(descriptor)
    assert (out / WORKERS_LOCK_FILE).exists()
    summary = predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings())
    assert summary.coded > 0


# ----------------------------------------------------------------------------- checked at start


@pytest.mark.parametrize(
    ("queue", "fragment"),
    [
        ("notaurl", "not a database URL"),
        ("sqlite:////nonexistent/q.db", "unable to open database file"),
        ("postgresql+psycopg://autocode@127.0.0.1:9/queue", "Connection refused"),
    ],
)
def test_a_bad_queue_is_one_line_before_any_work(
    coder_dir: Path, archive: Path, tmp_path: Path, queue: str, fragment: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(QueueUnavailableError, match=fragment):
        predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings(queue_url=queue))
    assert not out.exists()
    command = ["predict", "--model", str(coder_dir), "--input", str(archive)]
    result = CliRunner().invoke(app, [*command, "--output", str(out), "--queue", queue])
    assert_one_line_error(result, fragment)


def test_output_naming_a_file_is_one_line(coder_dir: Path, archive: Path, tmp_path: Path) -> None:
    existing = tmp_path / "out.parquet"
    existing.write_bytes(b"not a directory")
    command = ["predict", "--model", str(coder_dir), "--input", str(archive)]
    # Spelled --out, as `data prepare` and `review export` spell it: the same option.
    result = CliRunner().invoke(app, [*command, "--out", str(existing)])
    assert_one_line_error(result, str(existing), "is a file")


def test_a_failed_run_marks_its_manifest_failed_with_the_reason(
    coder_dir: Path, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch, "prepare_part", broken_disk)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings())
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"] == "OSError: [Errno 28] No space left on device"


# ----------------------------------------------------------------------------- permissions


def test_output_parts_quarantine_queue_and_lock_are_owner_only(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    previous = os.umask(0o022)  # the usual umask, which would make them world-readable
    try:
        out = tmp_path / "out"
        queue = tmp_path / "queue.db"
        settings = BatchSettings(batch_size=100, queue_url=f"sqlite:///{queue}")
        summary = predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, settings)
    finally:
        os.umask(previous)
    assert summary.review > 0 and sum(summary.quarantined.values()) > 0
    files = [*out.glob("part-*.parquet"), *(out / "_quarantine").glob("*.jsonl"), queue]
    assert len(files) >= 3
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (out, out / "_quarantine"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_the_lock_file_is_released_when_the_job_ends(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings())
    descriptor = os.open(out / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still held
    finally:
        os.close(descriptor)


def test_spark_staging_copies_are_owner_only(archive: Path, tmp_path: Path) -> None:
    from autocode.infer.spark import STAGING_DIR, _stage

    out = tmp_path / "out"
    out.mkdir()
    previous = os.umask(0o022)
    try:
        _stage(archive, BATCH_OPTIONS, 100, out)
    finally:
        os.umask(previous)
    staged = list((out / STAGING_DIR).glob("part-*.parquet"))
    assert staged
    assert stat.S_IMODE((out / STAGING_DIR).stat().st_mode) == 0o700
    for path in staged:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_staging_left_by_a_killed_spark_run_is_removed_on_the_next_start(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    from autocode.infer.spark import SPARK_OUT_DIR, STAGING_DIR

    out = tmp_path / "out"
    (out / STAGING_DIR).mkdir(parents=True)
    (out / STAGING_DIR / "part-000000.parquet").write_text("a staged note's text")
    (out / SPARK_OUT_DIR / "part=0").mkdir(parents=True)
    predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings())
    assert not (out / STAGING_DIR).exists()
    assert not (out / SPARK_OUT_DIR).exists()


def test_the_spark_engine_takes_the_same_lock(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    from autocode.infer.spark import predict_archive_spark

    out = tmp_path / "out"
    out.mkdir()
    descriptor = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with pytest.raises(OutputInUseError, match="in use"):
            predict_archive_spark(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings())
    finally:
        os.close(descriptor)
    assert not (out / MANIFEST).exists()
