"""Batch coding on Spark: the MLflow pyfunc model as a `spark_udf` over a note archive.

The same job as `batch.predict_archive`, with the same output directory: part files
of `OUTPUT_SCHEMA`, `_quarantine/`, `_manifest.json`, and review cases in the queue.

1. Stage (driver): the input is read and canonicalised by the local engine's own part
   code, so quarantine files and counts are identical (read = coded + quarantined +
   skipped); each part's notes go to `_staging/part-NNNNNN.parquet`.
2. Predict (Spark): `spark.read.parquet(_staging)` → `spark_udf(model_uri)` over
   struct(note_id, text) → `_spark_out/`, partitioned by part.
3. Convert (driver, one part at a time): the UDF's strings become the local engine's
   decisions (`codes` list, parsed `predictions` and `reasons`), written as the same
   part files by `decisions_table`; review cases are enqueued before a part is written.
   The staging copies of the notes are deleted at the end.

Resuming: a rerun whose `_manifest.json` says complete does nothing. Any other rerun
(a killed job) starts again from scratch: Spark commits its output per job, not per
part, so nothing of an unfinished Spark job can be kept. Enqueueing is idempotent, so
a redone part adds no review case twice.

On a cluster (`spark_master` other than `local[...]`) the output directory must be on
a filesystem that the driver and every executor see at the same path, and executors
need autocode installed (the UDF runs with `env_manager="local"`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from autocode.corpus.canonical import Canonicalizer
from autocode.corpus.load import LoadOptions, read_raw_rows
from autocode.corpus.quarantine import LoadReport, Quarantine
from autocode.infer.batch import (
    BatchSettings,
    BatchSummary,
    _parts,
    _prepare_part,
    _remove_partial_files,
    _start_manifest,
)
from autocode.infer.coder import Coder
from autocode.infer.loading import coder_digest, model_version, resolve_coder_dir
from autocode.infer.manifest import check_same_job, read_manifest, write_manifest
from autocode.infer.output import QUARANTINE_DIR, decisions_table, part_name, write_atomically
from autocode.infer.pyfunc import CODER_ARTIFACT, INPUT_COLUMNS, OUTPUT_COLUMNS
from autocode.infer.routing import REVIEW, Decision

DEFAULT_MASTER = "local[*]"
STAGING_DIR = "_staging"  # '_' prefix: Parquet readers of the output skip both
SPARK_OUT_DIR = "_spark_out"
STAGING_SCHEMA = pa.schema(
    [
        pa.field("part", pa.int32(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),  # position in the part: restores order
        pa.field("note_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
    ]
)
# The pyfunc output, all strings (see `pyfunc.predict_frame`), as a Spark DDL struct.
UDF_RESULT_TYPE = ", ".join(f"{column} string" for column in OUTPUT_COLUMNS)


@dataclass_free_marker := None  # noqa: B018 (placeholder removed below)
