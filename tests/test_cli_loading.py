"""Loader behaviour seen from the command line: uncoded archives, bad rows, bad flags."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from autocode.cli import app
from autocode.config import DataConfig
from autocode.corpus.errors import SourceError
from autocode.train.data import load_experiment_data

runner = CliRunner()
SECRET = "PATIENT JOHN SMITHSON MRN 998877"
UNCODED = [{"note_id": f"n{i}", "text": f"note {i} chest pain"} for i in range(4)]


def invoke(*args: str | Path) -> Result:
    return runner.invoke(app, [str(arg) for arg in args])


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def write_uncoded(directory: Path, kind: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"notes.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pylist(UNCODED), path)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in UNCODED))
    else:
        path.write_text(
            "note_id,text\n" + "".join(f"{r['note_id']},{r['text']}\n" for r in UNCODED)
        )
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet", "jsonl"])
def test_stats_and_prepare_read_an_uncoded_archive(tmp_path: Path, kind: str) -> None:
    path = write_uncoded(tmp_path / "in", kind)
    stats = invoke("data", "stats", path, "--json")
    assert stats.exit_code == 0, stats.stderr
    values = json.loads(stats.stdout)
    assert (values["documents"], values["documents_without_codes"]) == (4, 4)
    prepared = invoke("data", "prepare", path, "--out", tmp_path / "out", "--json")
    assert prepared.exit_code == 0, prepared.stderr
    assert json.loads(prepared.stdout)["kept"] == 4
    notes = pq.read_table(tmp_path / "out" / "notes.parquet")
    assert notes.column("codes").to_pylist() == [[]] * 4


def test_evaluate_and_train_say_they_need_gold_codes(tmp_path: Path) -> None:
    path = write_uncoded(tmp_path, "csv")
    result = invoke("evaluate", "--model", tmp_path / "no-model", "--data", path)
    assert_one_line_error(result, "no codes column 'codes'; evaluate needs gold codes")
    with pytest.raises(SourceError, match="no codes column 'codes'; train needs gold codes"):
        load_experiment_data(DataConfig(source=str(path)), seed=0)


@pytest.mark.parametrize(
    "command",
    [
        ["data", "stats", "{path}"],
        ["data", "prepare", "{path}", "--out", "{out}"],
        ["evaluate", "--model", "{out}", "--data", "{path}"],
        ["predict", "--model", "{out}", "--input", "{path}", "--output", "{out}"],
    ],
)
def test_an_unknown_system_is_a_one_line_error(tmp_path: Path, command: list[str]) -> None:
    path = write_uncoded(tmp_path, "csv")
    args = [arg.format(path=path, out=tmp_path / "out") for arg in command]
    result = invoke(*args, "--system", "ICD11")
    assert_one_line_error(result, "code system 'ICD11' is not one of")


def test_stats_reports_bad_rows_instead_of_failing_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(
        b"note_id,text,codes\n"
        b"a,fine,ICD10CM:I10\n"
        b"b," + SECRET.encode() + b",ICD10CM:I10,extra\n"
        b"c\xff,bad id byte,ICD10CM:I10\n"
        b"d,ok,\n"
        b'e,"' + SECRET.encode() + b"\nf,never,\n"
    )
    result = invoke("data", "stats", path, "--json")
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["read"], stats["documents"]) == (5, 2)
    assert stats["quarantined_by_reason"] == {
        "malformed_row": 1,
        "undecodable_bytes": 1,
        "unterminated_quote": 1,
    }
    assert SECRET not in result.stdout + result.stderr


def test_an_unread_file_is_one_warning_line_and_counted_as_skipped(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_uncoded(archive, "csv")
    (archive / "README.txt").write_text(SECRET, encoding="utf-8")
    result = invoke("data", "stats", archive)
    assert result.exit_code == 0, result.stderr
    warning_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warning_lines) == 1
    assert warning_lines[0].startswith("warning: ")
    assert "README.txt" in warning_lines[0] and "counted as skipped" in warning_lines[0]
    assert "unread_file" in result.stdout  # the table says why the row was skipped
    as_json = json.loads(invoke("data", "stats", archive, "--json").stdout)
    assert (as_json["read"], as_json["documents"], as_json["skipped"]) == (5, 4, 1)
    assert as_json["skipped_by_reason"] == {"unread_file": 1}
    assert SECRET not in result.stdout + result.stderr
