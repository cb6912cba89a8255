"""Batch coding: every note exactly once, resumable after kill -9, refuses mixed jobs."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from autocode.corpus.load import LoadOptions
from autocode.corpus.synth import write_synthetic_archive
from autocode.decisions.coder import Coder
from autocode.decisions.records import DECISIONS_SCHEMA
from autocode.decisions.routing import decide
from autocode.infer.batch import BatchSettings, predict_archive
from autocode.infer.loading import coder_digest, model_identity
from autocode.infer.manifest import OutputMismatchError
from autocode.infer.pyfunc import OUTPUT_COLUMNS, predict_frame
from autocode.train.evaluation import evaluate_coder
from coders import train_coder_dir
from conftest import RecordingProgress

BATCH_OPTIONS = LoadOptions(skip_unreadable_files=True)


@pytest.fixture(scope="module")
def coder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coder")
    write_synthetic_archive(root / "train", 300, seed=1, n_codes=60)
    return train_coder_dir(root / "train", root / "coder")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("archive") / "notes"
    write_synthetic_archive(
        directory, 600, seed=5, n_codes=60, rows_per_file=250, bad_row_rate=0.05
    )
    return directory


def output_table(directory: Path) -> pa.Table:
    return ds.dataset(directory, format="parquet").to_table()


def test_every_kept_note_is_coded_once_and_counts_add_up(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    summary = predict_archive(
        str(coder_dir), archive, tmp_path / "out", BATCH_OPTIONS, BatchSettings(batch_size=97)
    )
    table = output_table(tmp_path / "out")
    ids = table["note_id"].to_pylist()
    assert len(ids) == len(set(ids)) == summary.coded == 600
    assert summary.read == summary.coded + sum(summary.quarantined.values())
    assert summary.auto + summary.review == summary.coded
    assert table.schema.equals(DECISIONS_SCHEMA)
    assert set(table["route"].to_pylist()) <= {"auto", "review"}
    quarantine_lines = [
        json.loads(line)
        for file in sorted((tmp_path / "out" / "_quarantine").glob("*.jsonl"))
        for line in file.read_text().splitlines()
    ]
    assert len(quarantine_lines) == sum(summary.quarantined.values()) > 0
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["summary"]["coded"] == 600


def test_accepted_codes_match_the_coder(coder_dir: Path, archive: Path, tmp_path: Path) -> None:
    predict_archive(str(coder_dir), archive, tmp_path / "out", BATCH_OPTIONS, BatchSettings())
    table = output_table(tmp_path / "out").to_pylist()
    coder = Coder.load(coder_dir)
    sources = ds.dataset(archive, format="parquet").to_table().to_pylist()
    text_of = {row["note_id"]: row["text"] for row in sources}
    sample = table[:20]
    probs = coder.predict_proba([text_of[row["note_id"]] for row in sample])
    accept = coder.policy.accept
    for row, note_probs in zip(sample, probs, strict=True):
        expected = {
            coder.labels.codes_[j] for j in range(len(accept)) if note_probs[j] >= accept[j]
        }
        assert set(row["codes"]) == expected
        for prediction in row["predictions"]:
            j = coder.labels.index(prediction["code"])
            assert prediction["probability"] == pytest.approx(float(note_probs[j]), abs=1e-6)


def test_resume_skips_finished_parts_and_redoes_partial_ones(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    settings = BatchSettings(batch_size=100, evidence=False)
    first = predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, settings)
    parts = sorted(out.glob("part-*.parquet"))
    # Simulate a kill: two parts never finished, one left as a temporary file.
    parts[1].unlink()
    parts[3].rename(out / f".{parts[3].name}.tmp")
    second = predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, settings)
    assert second.parts_written == 2
    assert second.parts_resumed == len(parts) - 2
    assert (second.coded, second.auto, second.review) == (first.coded, first.auto, first.review)
    ids = output_table(out)["note_id"].to_pylist()
    assert len(ids) == len(set(ids)) == first.coded
    assert not list(out.glob(".*.tmp"))


def test_another_model_input_or_part_size_is_refused(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings(batch_size=200))
    with pytest.raises(OutputMismatchError) as refused:
        predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings(batch_size=50))
    # Only what differs is named, not both settings whole.
    assert "settings.batch_size was 200, now 50; use a new --output" in str(refused.value)
    assert "evidence" not in str(refused.value)
    other_input = tmp_path / "other"
    write_synthetic_archive(other_input, 50, seed=9, n_codes=60)
    with pytest.raises(OutputMismatchError, match="input_digest"):
        predict_archive(str(coder_dir), other_input, out, BATCH_OPTIONS, BatchSettings(200))
    other_coder = train_coder_dir(archive, tmp_path / "coder2", seed=3)
    with pytest.raises(OutputMismatchError, match="coder_digest"):
        predict_archive(str(other_coder), archive, out, BATCH_OPTIONS, BatchSettings(200))
    # Output written before decision records format 2 is not continued with format 2 parts.
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["records_format"] == 2
    del manifest["records_format"]
    (out / "_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OutputMismatchError, match="records_format was None, now 2"):
        predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, BatchSettings(200))


def test_a_resume_writing_to_another_review_queue_is_refused(
    coder_dir: Path, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    first_queue = tmp_path / "first.db"
    first = BatchSettings(batch_size=200, evidence=False, queue_url=f"sqlite:///{first_queue}")
    predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, first)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["settings"]["queue"] == f"sqlite:///{first_queue}"

    elsewhere = dataclasses.replace(first, queue_url=f"sqlite:///{tmp_path / 'second.db'}")
    with pytest.raises(OutputMismatchError) as refused:
        predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, elsewhere)
    assert f"settings.queue was 'sqlite:///{first_queue}', now " in str(refused.value)
    assert "resume with the --queue it began with" in str(refused.value)
    assert not (tmp_path / "second.db").exists()  # refused before the queue was opened

    # The same file named relative to another working directory is the same queue.
    monkeypatch.chdir(tmp_path)
    again = predict_archive(
        str(coder_dir),
        archive,
        out,
        BATCH_OPTIONS,
        dataclasses.replace(first, queue_url="sqlite:///first.db"),
    )
    assert again.parts_written == 0
    assert again.rows_done_now == 0 and again.rows_resumed == again.read  # no rate
    assert again.notes_per_second == 0.0
    # Output begun before the queue was recorded resumes with any queue.
    del manifest["settings"]["queue"]
    (out / "_manifest.json").write_text(json.dumps(manifest))
    resumed = predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, elsewhere)
    assert (resumed.parts_written, resumed.parts_resumed) == (0, again.parts_resumed)
    # Only the queue is filled in so: any other setting missing is another job's output.
    del manifest["settings"]["evidence"]
    (out / "_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OutputMismatchError, match=r"settings\.evidence was None, now False"):
        predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, elsewhere)


def test_corrupt_part_is_quarantined_and_the_job_goes_on(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for part in sorted(archive.glob("*.parquet")):
        (source / part.name).write_bytes(part.read_bytes())
    (source / "notes-99999.parquet").write_bytes(b"PAR1 truncated by a failing disk")
    summary = predict_archive(
        str(coder_dir), source, tmp_path / "out", BATCH_OPTIONS, BatchSettings()
    )
    assert summary.quarantined["unreadable_file"] == 1
    assert summary.coded == 600
    lines = [
        json.loads(line)
        for file in (tmp_path / "out" / "_quarantine").glob("*.jsonl")
        for line in file.read_text().splitlines()
    ]
    unreadable = [r for r in lines if r["reason"] == "unreadable_file"]
    assert unreadable[0]["source"].endswith("notes-99999.parquet")


def test_two_workers_give_the_same_output_as_one(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    one = BatchSettings(batch_size=150, workers=1, evidence=False)
    two = BatchSettings(batch_size=150, workers=2, evidence=False)
    predict_archive(str(coder_dir), archive, tmp_path / "one", BATCH_OPTIONS, one)
    predict_archive(str(coder_dir), archive, tmp_path / "two", BATCH_OPTIONS, two)
    columns = ["note_id", "codes", "route", "reasons"]
    first = output_table(tmp_path / "one").select(columns).sort_by("note_id")
    second = output_table(tmp_path / "two").select(columns).sort_by("note_id")
    assert first.equals(second)


def test_workers_code_with_the_jobs_loaded_coder_not_one_of_their_own(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    # The Coder's files are gone once the job starts coding: a worker that loaded its own
    # copy would fail, one that shares the job's codes every part.
    copy = tmp_path / "coder"
    shutil.copytree(coder_dir, copy)

    class RemoveCoderAtStart(RecordingProgress):
        def start(self, total: int | None, done: int = 0) -> None:
            shutil.rmtree(copy)
            super().start(total, done)

    settings = BatchSettings(batch_size=100, workers=2, evidence=False)
    out = tmp_path / "out"
    summary = predict_archive(
        str(copy), archive, out, BATCH_OPTIONS, settings, RemoveCoderAtStart()
    )
    assert not copy.exists()
    ids = output_table(out)["note_id"].to_pylist()
    assert summary.parts_written == -(-summary.read // 100) > 1
    assert len(ids) == len(set(ids)) == summary.coded > 0


@pytest.mark.slow
def test_kill_9_at_several_points_then_resume_gives_exactly_once(
    coder_dir: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "big"
    write_synthetic_archive(archive, 3000, seed=21, n_codes=60, rows_per_file=1000)
    out = tmp_path / "out"
    command = [
        str(Path(sys.executable).parent / "autocode"),
        "predict",
        "--model",
        str(coder_dir),
        "--input",
        str(archive),
        "--output",
        str(out),
        "--batch-size",
        "50",
        "--queue",
        f"sqlite:///{tmp_path / 'queue.db'}",
        "--json",
    ]
    for parts_before_kill in (3, 12, 25):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(list(out.glob("part-*.parquet"))) < parts_before_kill:
            assert process.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "no progress within 120 s"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    summary = json.loads(finished.stdout)
    ids = output_table(out)["note_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 3000 == summary["coded"]
    assert summary["parts_resumed"] >= 25
    assert summary["parts_written"] == 60 - summary["parts_resumed"]
    assert not list(out.glob(".*.tmp"))
    written = [pq.read_metadata(p).num_rows for p in out.glob("part-*.parquet")]
    assert sum(written) == 3000


class ReadsFirstChars:
    """A model that, like a transformer, reads only the first `limit` characters."""

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    def predict_proba(self, texts: list[str]) -> Any:
        return self.inner.predict_proba([text[: self.limit] for text in texts])

    def truncated(self, texts: list[str]) -> list[bool]:
        return [len(text) > self.limit for text in texts]


def test_notes_longer_than_the_model_reads_go_to_review(coder_dir: Path) -> None:
    coder = Coder.load(coder_dir)
    limited = dataclasses.replace(coder, model=ReadsFirstChars(coder.model, limit=500))
    texts = ["Hypertension. " * 10, "Hypertension. " * 100]
    truncated = limited.truncated(texts)
    assert truncated == [False, True]
    decisions = decide(limited, limited.predict_proba(texts), truncated=truncated)
    assert not any("truncated" in reason for reason in decisions[0].reasons)
    assert "truncated: the model read only part of the note" in decisions[1].reasons
    assert decisions[1].route == "review"
    assert coder.truncated(texts) == [False, False]  # TF-IDF reads every note whole


def test_output_inside_the_input_directory_is_refused(coder_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    write_synthetic_archive(source, 20, seed=2, n_codes=60)
    with pytest.raises(ValueError, match="is inside --input"):
        predict_archive(str(coder_dir), source, source / "out", BATCH_OPTIONS, BatchSettings())


def test_gold_codes_the_model_never_learned_are_misses_not_review(
    coder_dir: Path, archive: Path
) -> None:
    coder = Coder.load(coder_dir)
    sources = ds.dataset(archive, format="parquet").to_table(columns=["text"])
    candidates = sources["text"].to_pylist()[:50]
    predicted = coder.predicted_codes(coder.predict_proba(candidates))
    # Gold = exactly the codes the Coder predicts, so the base recall is 1 by construction.
    chosen = [(t, c) for t, c in zip(candidates, predicted, strict=True) if c][:3]
    texts, known = [t for t, _ in chosen], [c for _, c in chosen]
    with_unseen = [[*codes, "ICD10CM:Z99.89"] for codes in known]
    base = evaluate_coder(coder, texts, known).report
    extended = evaluate_coder(coder, texts, with_unseen).report
    assert extended["unseen_gold_codes"] == 1
    # The unseen code cannot make a note uncertain: the same notes are automated.
    assert extended["automation_rate"] == base["automation_rate"]
    gold_known = sum(len(codes) for codes in known)
    assert base["micro_recall"] == 1.0
    assert extended["micro_recall"] == pytest.approx(gold_known / (gold_known + len(known)))


def test_model_version_is_the_content_identity_whatever_the_address(
    coder_dir: Path, archive: Path, tmp_path: Path
) -> None:
    predict_archive(str(coder_dir), archive, tmp_path / "out", BATCH_OPTIONS, BatchSettings())
    versions = set(output_table(tmp_path / "out")["model_version"].to_pylist())
    assert versions == {model_identity(coder_digest(coder_dir))}


def test_pyfunc_refuses_missing_text_by_position_and_accepts_an_empty_frame(
    coder_dir: Path,
) -> None:
    coder = Coder.load(coder_dir)
    notes = pd.DataFrame({"note_id": ["a", "b"], "text": ["Hypertension.", None]})
    with pytest.raises(ValueError, match="row 1: text must be a non-empty string"):
        predict_frame(coder, notes)
    empty = predict_frame(coder, pd.DataFrame({"note_id": [], "text": []}))
    assert list(empty.columns) == list(OUTPUT_COLUMNS) and len(empty) == 0
    # What batch coding quarantines, served notes are refused for, naming the rule only.
    refused = {
        "row 0: text has a NUL character at char 3": ["abc\x00 SECRET", "x"],
        "row 1: text of 1000001 chars > limit 1000000": ["fine", "y" * 1_000_001],
    }
    for message, texts in refused.items():
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            predict_frame(coder, pd.DataFrame({"note_id": ["a", "b"], "text": texts}))
    repeated = pd.DataFrame({"note_id": ["a", "b", "a"], "text": ["x", "y", "z"]})
    with pytest.raises(ValueError, match=r"^rows 0 and 2: the same note_id$"):
        predict_frame(coder, repeated)


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_knows_the_total_and_a_resume_starts_at_the_finished_parts(
    coder_dir: Path, archive: Path, tmp_path: Path, workers: int
) -> None:
    out = tmp_path / "out"
    settings = BatchSettings(batch_size=100, evidence=False, workers=workers)
    first_progress = RecordingProgress()
    first = predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, settings, first_progress)
    assert first_progress.total == first.read  # counted before a row was coded
    assert first_progress.done == 0
    assert sum(first_progress.advanced) == first.read
    assert len(first_progress.advanced) == first.parts_written
    # Kill simulated: parts 2 and the last one never finished.
    parts = sorted(out.glob("part-*.parquet"))
    parts[2].unlink()
    parts[-1].unlink()
    last_part_rows = first.read - 100 * (len(parts) - 1)
    second_progress = RecordingProgress()
    predict_archive(str(coder_dir), archive, out, BATCH_OPTIONS, settings, second_progress)
    assert second_progress.total == first.read
    assert second_progress.done == first.read - 100 - last_part_rows
    assert sorted(second_progress.advanced) == sorted([100, last_part_rows])


@pytest.mark.parametrize("path", ["code_part", "predict_frame"])
def test_the_records_die_before_the_collector_is_back(
    coder_dir: Path, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """A part's records (with evidence, thousands of small objects) are freed while the
    collector is paused: were they alive as it resumed, its first pass would walk them all."""
    import gc

    from autocode import collector
    from autocode.decisions.records import Prediction
    from autocode.infer import coding_worker

    def predictions_alive() -> int:
        return sum(isinstance(o, Prediction) for o in gc.get_objects())

    alive_at_resume: list[int] = []

    class RecordingCollector:
        """The gc module, noting the records alive each time the collector is back on."""

        def __getattr__(self, name: str) -> Any:
            return getattr(gc, name)

        def enable(self) -> None:
            alive_at_resume.append(predictions_alive())
            gc.enable()

    coder = Coder.load(coder_dir)
    notes = ds.dataset(archive).to_table().slice(0, 40)
    note_ids = [f"n{k}" for k in range(notes.num_rows)]
    texts = [text or "Gout flare." for text in notes.column("text").to_pylist()]
    before = predictions_alive()
    monkeypatch.setattr(collector, "gc", RecordingCollector())
    if path == "code_part":
        settings = coding_worker.WorkerSettings("m", "1", str(tmp_path), True, None)
        coding_worker.use_coder(settings, coder)
        assert coding_worker.code_part(coding_worker.PartJob(0, note_ids, texts)).coded == 40
        spans = pq.read_table(tmp_path / "part-000000.parquet").column("predictions")
        assert sum(len(p["evidence"]) for note in spans.to_pylist() for p in note) > 40
    else:
        frame = predict_frame(coder, pd.DataFrame({"note_id": note_ids, "text": texts}))
        assert len(frame) == 40
    # Back on once (the pause in `decide` is nested), with none of the part's records alive.
    assert alive_at_resume == [before]


def test_a_part_that_fails_leaves_the_collector_on(
    coder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from autocode.infer import coding_worker

    settings = coding_worker.WorkerSettings("m", "1", str(tmp_path), True, None)
    coding_worker.use_coder(settings, Coder.load(coder_dir))

    def failing(*args: Any, **kwargs: Any) -> None:
        assert not gc.isenabled()  # paused while the part's records are built
        raise RuntimeError("routing failed")

    monkeypatch.setattr(coding_worker, "decide", failing)
    with pytest.raises(RuntimeError, match="routing failed"):
        coding_worker.code_part(coding_worker.PartJob(0, ["n1"], ["Gout flare."]))
    assert gc.isenabled()
    assert not list(tmp_path.iterdir())  # no part written
