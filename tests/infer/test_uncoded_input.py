"""`autocode predict` on an archive waiting to be coded: only `note_id` and `text`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from autocode.cli import app
from autocode.corpus.synth import write_synthetic_archive
from autocode.review.store import ReviewStore
from coders import MIXED_ROUTING, train_small_coder

runner = CliRunner()
N_NOTES = 40


@pytest.fixture(scope="module")
def coder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("uncoded-coder")
    write_synthetic_archive(root / "train", 300, seed=1, n_codes=40)
    coder = train_small_coder(root / "train", "uncoded", epochs=2, routing=MIXED_ROUTING)
    coder.save(root / "coder")
    return root / "coder"


@pytest.fixture(scope="module")
def uncoded_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    root = tmp_path_factory.mktemp("uncoded-notes")
    write_synthetic_archive(root / "notes", N_NOTES, seed=5, n_codes=40)
    table = ds.dataset(root / "notes", format="parquet").to_table()
    return [{"note_id": r["note_id"], "text": r["text"]} for r in table.to_pylist()]


def write_uncoded(rows: list[dict[str, str]], directory: Path, kind: str) -> Path:
    directory.mkdir()
    path = directory / f"notes.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        pa_csv.write_csv(pa.Table.from_pylist(rows), path)
    return path


def predict(coder_dir: Path, path: Path, out: Path, *extra: str) -> dict[str, object]:
    args = ["predict", "--model", str(coder_dir), "--input", str(path), "--output", str(out)]
    result = runner.invoke(app, [*args, *extra, "--json"])
    assert result.exit_code == 0, result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_local_engine_with_a_sqlite_queue(
    coder_dir: Path, uncoded_rows: list[dict[str, str]], tmp_path: Path, kind: str
) -> None:
    path = write_uncoded(uncoded_rows, tmp_path / "in", kind)
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    summary = predict(coder_dir, path, tmp_path / "out", "--queue", queue)
    assert (summary["read"], summary["coded"], summary["quarantined"]) == (N_NOTES, N_NOTES, {})
    output = ds.dataset(tmp_path / "out", format="parquet").to_table()
    assert sorted(output["note_id"].to_pylist()) == sorted(r["note_id"] for r in uncoded_rows)
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["status"] == "complete"
    with ReviewStore(queue) as store:
        assert store.count() == summary["review"] == summary["queue_inserted"]


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")
def test_spark_engine(coder_dir: Path, uncoded_rows: list[dict[str, str]], tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    path = write_uncoded(uncoded_rows, tmp_path / "in", "csv")
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    extra = ("--engine", "spark", "--spark-master", "local[1]", "--queue", queue)
    summary = predict(coder_dir, path, tmp_path / "out", *extra)
    assert (summary["read"], summary["coded"]) == (N_NOTES, N_NOTES)
    output = ds.dataset(tmp_path / "out", format="parquet").to_table()
    assert sorted(output["note_id"].to_pylist()) == sorted(r["note_id"] for r in uncoded_rows)


def test_a_damaged_file_counts_its_rows_not_one_file(coder_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "notes.csv"
    path.write_bytes(
        b"note_id,text\na,chest pain\nb,PATIENT JOHN SMITHSON,extra\nc\xff,cough\nd,fever\n"
    )
    summary = predict(coder_dir, path, tmp_path / "out")
    assert (summary["read"], summary["coded"]) == (4, 2)
    assert summary["quarantined"] == {"malformed_row": 1, "undecodable_bytes": 1}
    quarantine_files = sorted((tmp_path / "out" / "_quarantine").glob("*.jsonl"))
    records = "".join(file.read_text() for file in quarantine_files)
    assert [json.loads(line)["row"] for line in records.splitlines()] == [2, 3]
    assert "JOHN" not in records
