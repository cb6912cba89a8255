"""`--engine spark`: the same parts, schema, decisions, quarantine and queue as the local engine.

Spark runs in local mode over the registered pyfunc model (`spark_udf`), so these tests
need Java; they train a small Coder and register it in a SQLite MLflow store of their own.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from autocode.corpus.load import LoadOptions
from autocode.corpus.synth import write_synthetic_archive
from autocode.decisions.records import DECISIONS_SCHEMA
from autocode.infer.batch import BatchSettings, BatchSummary, predict_archive
from autocode.infer.manifest import MANIFEST, OutputMismatchError
from autocode.infer.spark import SPARK_OUT_DIR, STAGING_DIR, predict_archive_spark
from autocode.review.store import ReviewStore
from coders import MIXED_ROUTING, registered_coder, train_small_coder

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java"),
]
pytest.importorskip("pyspark")

OPTIONS = LoadOptions(skip_unreadable_files=True)
MASTER = "local[2]"
BATCH_SIZE = 64  # parts cut across the archive's files (80 rows each)
MODEL_NAME = "spark-test-coder"


# ----------------------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Registered:
    model_uri: str
    coder_dir: Path  # the same Coder, saved as a bare directory
    archive: Path  # 200 notes to code, plus bad rows


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    root = tmp_path_factory.mktemp("spark")
    write_synthetic_archive(root / "train", 300, seed=1, n_codes=40)
    archive = root / "notes"
    write_synthetic_archive(archive, 200, seed=5, n_codes=40, rows_per_file=80, bad_row_rate=0.05)
    coder = train_small_coder(root / "train", "spark-test", epochs=5, routing=MIXED_ROUTING)
    coder.save(root / "coder")
    with registered_coder(coder, root, MODEL_NAME) as (model_uri, _):
        yield Registered(model_uri, root / "coder", archive)


@dataclass(frozen=True)
class Pair:
    """The same job run by both engines."""

    local: Path
    spark: Path
    local_summary: BatchSummary
    spark_summary: BatchSummary


@pytest.fixture(scope="module")
def with_evidence(registered: Registered, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """The registered model, evidence on; Spark starts in the leftovers of a killed run."""
    root = tmp_path_factory.mktemp("with-evidence")
    settings = BatchSettings(batch_size=BATCH_SIZE)
    local = predict_archive(
        registered.model_uri, registered.archive, root / "local", OPTIONS, settings
    )
    killed = root / "spark"
    fake_killed_spark_run(root / "local", killed)
    spark = predict_archive_spark(
        registered.model_uri, registered.archive, killed, OPTIONS, settings, MASTER
    )
    return Pair(root / "local", killed, local, spark)


def fake_killed_spark_run(finished: Path, target: Path) -> None:
    """A finished output turned into what a killed Spark job of the same job leaves."""
    shutil.copytree(finished, target)
    manifest = json.loads((target / MANIFEST).read_text())
    (target / MANIFEST).write_text(json.dumps({**manifest, "status": "running"}))
    (target / "part-000001.parquet").unlink()
    (target / "part-000002.parquet").write_bytes(b"half a part")
    (target / STAGING_DIR).mkdir()
    (target / STAGING_DIR / "part-000000.parquet").write_bytes(b"stale")
    (target / SPARK_OUT_DIR / "part=0").mkdir(parents=True)


@pytest.fixture(scope="module")
def without_evidence(registered: Registered, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """The bare Coder directory, evidence off, review cases into a queue per engine."""
    root = tmp_path_factory.mktemp("without-evidence")
    model, archive = str(registered.coder_dir), registered.archive

    def settings(engine: str) -> BatchSettings:
        queue = f"sqlite:///{root / f'{engine}-queue.db'}"
        return BatchSettings(batch_size=BATCH_SIZE, evidence=False, queue_url=queue)

    local = predict_archive(model, archive, root / "local", OPTIONS, settings("local"))
    spark = predict_archive_spark(
        model, archive, root / "spark", OPTIONS, settings("spark"), MASTER
    )
    return Pair(root / "local", root / "spark", local, spark)


# ----------------------------------------------------------------------------- helpers


def parts(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of every part file, by file name, in file order."""
    return {p.name: pq.read_table(p).to_pylist() for p in sorted(directory.glob("part-*.parquet"))}


def assert_same_decisions(local: dict[str, Any], spark: dict[str, Any]) -> None:
    exact = ("note_id", "codes", "route", "reasons", "model_uri", "model_version")
    assert {k: spark[k] for k in exact} == {k: local[k] for k in exact}
    ours, theirs = spark["predictions"], local["predictions"]
    assert [p["code"] for p in ours] == [p["code"] for p in theirs]
    for field in ("accepted", "predicted", "evidence"):
        assert [p[field] for p in ours] == [p[field] for p in theirs], field
    assert np.allclose([p["probability"] for p in ours], [p["probability"] for p in theirs])


def assert_same_output(pair: Pair) -> None:
    local, spark = parts(pair.local), parts(pair.spark)
    assert list(spark) == list(local)  # the same parts, cut at the same rows
    for name in local:
        assert pq.read_schema(pair.spark / name).equals(DECISIONS_SCHEMA)
        assert [row["note_id"] for row in spark[name]] == [row["note_id"] for row in local[name]]
        for ours, theirs in zip(spark[name], local[name], strict=True):
            assert_same_decisions(theirs, ours)


def counts(summary: BatchSummary) -> tuple[Any, ...]:
    return (summary.read, summary.coded, summary.auto, summary.review, summary.quarantined)


# ----------------------------------------------------------------------------- tests


def test_spark_writes_the_local_engines_parts_and_decisions(with_evidence: Pair) -> None:
    assert_same_output(with_evidence)
    rows = [row for part in parts(with_evidence.spark).values() for row in part]
    assert {row["route"] for row in rows} == {"auto", "review"}  # both routes compared
    assert any(p["evidence"] for row in rows for p in row["predictions"])


def test_spark_counts_and_quarantines_as_the_local_engine(with_evidence: Pair) -> None:
    local, spark = with_evidence.local_summary, with_evidence.spark_summary
    assert counts(spark) == counts(local)
    assert spark.coded == 200
    assert spark.read == spark.coded + sum(spark.quarantined.values()) + spark.skipped
    assert sum(spark.quarantined.values()) > 0
    quarantine = sorted(p.name for p in (with_evidence.local / "_quarantine").iterdir())
    assert sorted(p.name for p in (with_evidence.spark / "_quarantine").iterdir()) == quarantine
    for name in quarantine:
        ours = (with_evidence.spark / "_quarantine" / name).read_text()
        assert ours == (with_evidence.local / "_quarantine" / name).read_text()


def test_a_killed_spark_run_is_redone_from_scratch(with_evidence: Pair) -> None:
    summary = with_evidence.spark_summary
    assert summary.parts_written == len(parts(with_evidence.local))
    assert summary.parts_resumed == 0
    manifest = json.loads((with_evidence.spark / MANIFEST).read_text())
    assert manifest["status"] == "complete"
    assert manifest["engine"] == "spark"
    assert manifest["summary"]["coded"] == summary.coded
    # The staging copy of the notes and the UDF output hold note text: gone.
    assert not (with_evidence.spark / STAGING_DIR).exists()
    assert not (with_evidence.spark / SPARK_OUT_DIR).exists()
    assert not list(with_evidence.spark.glob(".*.tmp"))


def test_a_rerun_of_a_complete_spark_job_does_nothing(
    registered: Registered, with_evidence: Pair
) -> None:
    before = {p: p.stat().st_mtime_ns for p in with_evidence.spark.rglob("*")}
    settings = BatchSettings(batch_size=BATCH_SIZE)
    again = predict_archive_spark(
        registered.model_uri, registered.archive, with_evidence.spark, OPTIONS, settings, MASTER
    )
    assert {p: p.stat().st_mtime_ns for p in with_evidence.spark.rglob("*")} == before
    assert counts(again) == counts(with_evidence.spark_summary)
    assert (again.parts_written, again.parts_resumed) == (
        0,
        with_evidence.spark_summary.parts_written,
    )
    with pytest.raises(OutputMismatchError, match="settings"):
        predict_archive_spark(
            registered.model_uri,
            registered.archive,
            with_evidence.spark,
            OPTIONS,
            BatchSettings(batch_size=BATCH_SIZE + 1),
            MASTER,
        )


def test_spark_honours_no_evidence_on_a_bare_coder_directory(without_evidence: Pair) -> None:
    assert_same_output(without_evidence)
    rows = [row for part in parts(without_evidence.spark).values() for row in part]
    assert all(p["evidence"] == [] for row in rows for p in row["predictions"])
    assert counts(without_evidence.spark_summary) == counts(without_evidence.local_summary)


def test_spark_enqueues_the_same_review_cases(without_evidence: Pair) -> None:
    assert without_evidence.spark_summary.queue_inserted == without_evidence.spark_summary.review
    queued = {}
    for engine in ("local", "spark"):
        with ReviewStore(
            f"sqlite:///{without_evidence.local.parent / f'{engine}-queue.db'}"
        ) as store:
            queued[engine] = [
                (
                    (case.note_id, case.model_version, case.reasons, case.text),
                    [prediction["code"] for prediction in case.predictions],
                )
                for case in store.cases(limit=None)
            ]
    assert queued["spark"] == queued["local"]
    assert len(queued["spark"]) == without_evidence.local_summary.review > 0


def test_an_archive_of_bad_rows_only_needs_no_spark_job(
    registered: Registered, tmp_path: Path
) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"note_id": "a", "text": "", "codes": []}\n{"note_id": null, "text": "x"}\n')
    summary = predict_archive_spark(
        str(registered.coder_dir), source, tmp_path / "out", OPTIONS, BatchSettings(), MASTER
    )
    assert (summary.read, summary.coded, sum(summary.quarantined.values())) == (2, 0, 2)
    [part] = parts(tmp_path / "out").values()
    assert part == []
    assert pq.read_schema(tmp_path / "out" / "part-000000.parquet").equals(DECISIONS_SCHEMA)
