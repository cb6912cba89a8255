"""Batch coding on Spark: the MLflow pyfunc model as a `spark_udf` over a note archive.

The same job as `batch.predict_archive`, with the same output directory: part files
of `DECISIONS_SCHEMA`, `_quarantine/`, `_manifest.json`, and review cases in the queue.

1. Stage (driver): the input is read and canonicalised by the local engine's own part
   code, so parts, quarantine files and counts are identical (read = coded +
   quarantined + skipped); each part's notes go to `_staging/part-NNNNNN.parquet`.
2. Predict (Spark): the staging files → `spark_udf(model)` over struct(note_id, text)
   → `_spark_out/`, partitioned by part. The model is any MLflow model URI; a bare
   Coder directory is first wrapped as a pyfunc model in `_staging/model`. Without
   evidence the UDF passes `params={"evidence": False}` (models logged before that
   param existed compute spans anyway; step 3 drops them).
3. Convert (driver, one part at a time): the UDF's strings become the local engine's
   decisions (`codes` list, parsed `predictions` and `reasons`), written as the same
   part files by `records.to_arrow`; a part's review cases are enqueued before its file
   is written. The staging copies of the notes and the UDF output are deleted at the end.

Resuming: a rerun that finds a complete `_manifest.json` does nothing. Any other rerun
(of a killed job) starts again from scratch: Spark commits its output per job, not per
part, so nothing of an unfinished Spark job can be kept. Enqueueing is idempotent, so a
redone part adds no review case twice.

Parallelism is the Spark master's (`local[*]`: every core); `settings.workers` is not
used. `settings.batch_size` cuts the parts and bounds the notes per UDF call. On a
cluster the output directory must be on a filesystem that the driver and every executor
see at the same path, and executors need autocode installed (`env_manager="local"`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from autocode.corpus.load import LoadOptions, canonicalizer_for, read_raw_rows
from autocode.corpus.quarantine import LoadReport, Quarantine
from autocode.decisions.records import Decision
from autocode.infer import coding_worker

# The local engine's own part and manifest code: both engines must cut, count,
# quarantine and describe a job identically.
from autocode.infer.batch import (
    BatchSettings,
    BatchSummary,
    Job,
    failure_recorded,
    open_job,
    prepare_part,
    remove_partial_files,
    split_into_parts,
)
from autocode.infer.coding_worker import PartJob
from autocode.infer.manifest import write_manifest
from autocode.infer.output import QUARANTINE_DIR, part_name
from autocode.infer.pyfunc import (
    CODER_ARTIFACT,
    INPUT_COLUMNS,
    OUTPUT_COLUMNS,
    coder_signature,
    pyfunc_script,
)
from autocode.private_files import make_private_dir, open_private_binary

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"
STAGING_DIR = "_staging"  # '_' prefix: Parquet readers of the output skip both
SPARK_OUT_DIR = "_spark_out"
PART, POSITION = "part", "position"  # position in the part restores the input order
STAGING_SCHEMA = pa.schema(
    [
        pa.field(PART, pa.int32(), nullable=False),
        pa.field(POSITION, pa.int32(), nullable=False),
        pa.field("note_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
    ]
)
STAGING_DDL = f"{PART} INT, {POSITION} INT, note_id STRING, text STRING"
# The pyfunc output (see `pyfunc.predict_frame`): every column a string.
UDF_RESULT_DDL = ", ".join(f"{column} STRING" for column in OUTPUT_COLUMNS)
DRIVER_MEMORY = "1g"  # the driver holds no archive, only batches in flight


def predict_archive_spark(
    model_uri: str,
    input_path: Path,
    output_dir: Path,
    options: LoadOptions,
    settings: BatchSettings,
    spark_master: str = DEFAULT_MASTER,
) -> BatchSummary:
    """Code every note of the input on Spark into `output_dir`, as `predict_archive` does."""
    started = time.perf_counter()
    extras = {"engine": "spark", "spark_master": spark_master}
    with open_job(model_uri, input_path, output_dir, options, settings, **extras) as job:
        if job.existing is not None and job.existing.get("status") == "complete":
            return _nothing_to_do(job.existing, started)
        with failure_recorded(output_dir, job.manifest):
            summary = _run_job(job, input_path, output_dir, options, settings, spark_master)
            summary.seconds = time.perf_counter() - started
            write_manifest(
                output_dir, job.manifest | {"status": "complete", "summary": summary.to_dict()}
            )
    return summary


def _run_job(
    job: Job,
    input_path: Path,
    output_dir: Path,
    options: LoadOptions,
    settings: BatchSettings,
    spark_master: str,
) -> BatchSummary:
    _clear_output(output_dir)
    try:
        report, n_parts = _stage(input_path, options, settings.batch_size, output_dir)
        if report.kept:  # else every part is empty: no Spark job to run
            udf_model = _pyfunc_model_uri(job.model_uri, job.coder_dir, output_dir / STAGING_DIR)
            with _spark_session(spark_master, settings.batch_size) as spark:
                _predict_staged(spark, udf_model, output_dir, settings.evidence)
        worker = job.worker_settings(output_dir, settings)
        state = coding_worker.WorkerState(worker, job.coder)  # holds the review store once opened
        summary = _write_parts(output_dir, n_parts, state)
        if state.store is not None:
            state.store.close()
    finally:
        _remove_scratch(output_dir)  # staged notes hold note text: never left behind
    summary.read = report.read
    summary.quarantined = dict(sorted(report.quarantined.items()))
    summary.skipped = sum(report.skipped.values())
    return summary


def _nothing_to_do(manifest: dict[str, Any], started: float) -> BatchSummary:
    """The recorded summary, every part counted as resumed, as the local engine reports."""
    recorded = manifest["summary"]
    summary = BatchSummary(**{k: v for k, v in recorded.items() if k != "notes_per_second"})
    return replace(
        summary,
        parts_written=0,
        parts_resumed=summary.parts_written + summary.parts_resumed,
        rows_resumed=summary.read - summary.skipped,
        queue_inserted=0,
        seconds=time.perf_counter() - started,
    )


def _clear_output(output_dir: Path) -> None:
    """Whatever an unfinished run left: a Spark job is redone from scratch."""
    remove_partial_files(output_dir)
    for part in output_dir.glob("part-*.parquet"):
        part.unlink()
    shutil.rmtree(output_dir / QUARANTINE_DIR, ignore_errors=True)
    _remove_scratch(output_dir)


def _remove_scratch(output_dir: Path) -> None:
    """The staging copy of the notes and the UDF output: never kept, they hold note text."""
    for directory in (STAGING_DIR, SPARK_OUT_DIR):
        shutil.rmtree(output_dir / directory, ignore_errors=True)


# ----------------------------------------------------------------------------- 1. stage


def _stage(
    input_path: Path, options: LoadOptions, batch_size: int, output_dir: Path
) -> tuple[LoadReport, int]:
    """Canonical notes of every part into `_staging/`; quarantine files as the local engine."""
    staging = output_dir / STAGING_DIR
    make_private_dir(staging)
    report = LoadReport()
    canonicalizer = canonicalizer_for(options, Quarantine(), report)
    n_parts = 0
    for index, rows in split_into_parts(read_raw_rows(input_path, options, report), batch_size):
        job = prepare_part(index, rows, canonicalizer, output_dir, BatchSummary())
        if job is None:  # _clear_output removed every part file, so no part can be done
            raise RuntimeError(f"part {index} unexpectedly finished before the Spark job ran")
        with open_private_binary(staging / part_name(index)) as file:
            pq.write_table(_staging_table(job), file)
        n_parts += 1
    report.check_balanced()
    return report, n_parts


def _staging_table(job: PartJob) -> pa.Table:
    size = len(job.note_ids)
    columns = {
        PART: pa.array([job.index] * size, pa.int32()),
        POSITION: pa.array(range(size), pa.int32()),
        "note_id": job.note_ids,
        "text": job.texts,
    }
    return pa.table(columns, schema=STAGING_SCHEMA)


def _pyfunc_model_uri(model_uri: str, coder_dir: Path, staging: Path) -> str:
    """`spark_udf` loads MLflow models only: a bare Coder directory is wrapped as one."""
    if Path(model_uri) != coder_dir:
        return model_uri
    import mlflow.pyfunc

    target = staging / "model"
    with warnings.catch_warnings():  # a scratch copy for this job: no input example needed
        warnings.simplefilter("ignore", UserWarning)
        mlflow.pyfunc.save_model(
            str(target),
            python_model=str(pyfunc_script()),  # models from code, as `log_coder` logs it
            artifacts={CODER_ARTIFACT: str(coder_dir)},
            signature=coder_signature(),
            pip_requirements=["mlflow", "autocode"],  # unused: the UDF runs in this environment
        )
    return str(target)


# ----------------------------------------------------------------------------- 2. predict


@contextmanager
def _spark_session(master: str, batch_size: int) -> Iterator[SparkSession]:
    from pyspark.sql import SparkSession

    with _local_python_workers(master), _owner_only_files():
        spark = (
            SparkSession.builder.master(master)
            .appName("autocode-predict")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", DRIVER_MEMORY)
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_size))
            # `_spark_out` holds note ids and evidence offsets: owner-only, as our own files.
            .config("spark.hadoop.fs.permissions.umask-mode", "077")
            .getOrCreate()
        )
    try:
        yield spark
    finally:
        spark.stop()


@contextmanager
def _owner_only_files() -> Iterator[None]:
    """The JVM (started with the session) inherits the umask: owner-only files in local mode."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@contextmanager
def _local_python_workers(master: str) -> Iterator[None]:
    """In local mode Spark's Python workers run this interpreter, which has autocode.

    Spark starts `PYSPARK_PYTHON`, else whatever `python3` is first on PATH, and reads
    the variable once, when the session starts; it is restored afterwards.
    """
    if not master.startswith("local") or "PYSPARK_PYTHON" in os.environ:
        yield
        return
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        yield
    finally:
        del os.environ["PYSPARK_PYTHON"]


def _predict_staged(spark: SparkSession, model_uri: str, output_dir: Path, evidence: bool) -> None:
    import mlflow.pyfunc
    from pyspark.sql.functions import struct

    predict = mlflow.pyfunc.spark_udf(
        spark,
        model_uri,
        result_type=UDF_RESULT_DDL,
        env_manager="local",
        params=None if evidence else {"evidence": False},
    )
    # The files, not their folder: Spark warns about reading a folder named '_…'.
    staged = sorted((output_dir / STAGING_DIR).resolve().glob("part-*.parquet"))
    notes = spark.read.schema(STAGING_DDL).parquet(*(path.as_uri() for path in staged))
    coded = notes.select(PART, POSITION, predict(struct(*INPUT_COLUMNS)).alias("result"))
    (
        coded.select(PART, POSITION, "result.*")
        .write.mode("overwrite")
        .partitionBy(PART)
        .parquet((output_dir / SPARK_OUT_DIR).resolve().as_uri())
    )


# ----------------------------------------------------------------------------- 3. convert


def _write_parts(output_dir: Path, n_parts: int, worker: coding_worker.WorkerState) -> BatchSummary:
    """The UDF's output as the local engine's part files, one part in memory at a time."""
    summary = BatchSummary()
    settings = worker.settings
    for index in range(n_parts):
        staged = pq.read_table(output_dir / STAGING_DIR / part_name(index))
        job = PartJob(index, staged["note_id"].to_pylist(), staged["text"].to_pylist())
        decisions = _part_decisions(output_dir / SPARK_OUT_DIR, job, settings.evidence)
        summary.add(coding_worker.finish_part(worker, job, decisions))
    return summary


def _part_decisions(spark_out: Path, job: PartJob, evidence: bool) -> list[Decision]:
    if not job.note_ids:  # every row quarantined or skipped: Spark wrote nothing
        return []
    result = pq.read_table(spark_out / f"{PART}={job.index}").sort_by(POSITION)
    if result["note_id"].to_pylist() != job.note_ids:
        raise RuntimeError(f"Spark output of part {job.index} does not match its notes")
    columns = [result[name].to_pylist() for name in ("codes", "predictions", "route", "reasons")]
    return [_decision(*row, evidence=evidence) for row in zip(*columns, strict=True)]


def _decision(
    codes: str, predictions: str, route: str, reasons: str, *, evidence: bool
) -> Decision:
    """A pyfunc output row as the Decision the local engine would have made."""
    decision = Decision.from_json(
        {
            "codes": codes.split(";") if codes else [],
            "predictions": json.loads(predictions),
            "route": route,
            "reasons": json.loads(reasons),
        }
    )
    if not evidence:  # a model logged without the `evidence` param computes spans anyway
        for prediction in decision.predictions:
            prediction.evidence = []
    return decision
