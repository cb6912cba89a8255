"""The `autocode` command line, driven through Typer's CliRunner and one real process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from autocode import __version__
from autocode.cli import _code_automation, _rate, app
from autocode.corpus.synth import write_synthetic_archive

# Typer's runner keeps stdout and stderr apart (`result.stdout`, `result.stderr`).
runner = CliRunner()

# What `data synth` calls a bad row, and the reason `data stats` quarantines it under.
QUARANTINE_REASON_OF_BAD_ROW = {
    "duplicate_note_id": "duplicate_id",
    "malformed_code": "invalid_code",
    "missing_note_id": "missing_id",
    "empty_text": "empty_text",
}


def invoke(*args: str | Path) -> Result:
    return runner.invoke(app, [str(arg) for arg in args])


def stats_json(*args: str | Path) -> dict[str, Any]:
    result = invoke("data", "stats", *args, "--json")
    assert result.exit_code == 0, result.stderr
    stats: dict[str, Any] = json.loads(result.stdout)
    return stats


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """Exit code 2, one `error:` line on stderr naming the fragments, no traceback."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- basics


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "data" in result.stdout
    data_help = invoke("data", "--help")
    assert data_help.exit_code == 0
    for command in ("stats", "prepare", "synth"):
        assert command in data_help.stdout


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"autocode {__version__}"


def test_installed_entry_point_prints_the_version() -> None:
    # The console script installed next to this interpreter, run as a real process.
    script = Path(sys.executable).with_name("autocode")
    assert script.is_file(), f"{script} not installed (pip install -e .)"
    completed = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"autocode {__version__}"


@pytest.mark.slow
def test_a_first_train_prints_our_stages_not_mlflows_housekeeping(tmp_path: Path) -> None:
    """A user's first run, in a fresh process and directory: MLflow creates its store
    there, and says so at INFO, between our stage lines, unless told otherwise."""
    write_synthetic_archive(tmp_path / "archive", 150, seed=4, n_codes=30)
    script = Path(sys.executable).with_name("autocode")
    config = Path(__file__).parents[1] / "configs" / "demo.yaml"
    command = [str(script), "train", "--config", str(config), "--set", "data.source=archive"]
    command += ["--set", "model.params.epochs=2"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mlflow.db").is_file()  # the store was created, quietly
    assert "INFO" not in done.stderr, done.stderr
    assert "fitting tfidf" in done.stderr


def test_code_automation_says_undefined_shares_and_precisions_as_such() -> None:
    # A system with accepts but no gold code in the notes scored: its share is undefined.
    assert _code_automation({"code_automation_rate": None, "code_auto_precision": 0.5}) == (
        "- of the gold codes, precision 0.500"
    )
    assert _code_automation({"code_automation_rate": 0.0, "code_auto_precision": None}) == "none"
    figures = {"code_automation_rate": 0.25, "code_auto_precision": 0.95}
    assert _code_automation(figures, "its gold codes") == "25.0% of its gold codes, precision 0.950"


# ----------------------------------------------------------------------------- synth + stats


def test_synth_then_stats_matches_the_parquet_files(tmp_path: Path) -> None:
    out = tmp_path / "archive"
    result = invoke("data", "synth", "--out", out, "--notes", "50", "--seed", "1")
    assert result.exit_code == 0, result.stderr
    stats = stats_json(out)

    # The same numbers, counted straight from the files with pyarrow.
    table = pa.concat_tables(pq.read_table(path) for path in sorted(out.glob("*.parquet")))
    codes = [code for row in table.column("codes").to_pylist() for code in row]
    by_system = Counter(code.split(":", 1)[0] for code in codes)
    distinct = Counter(code.split(":", 1)[0] for code in set(codes))
    assert table.num_rows == 50
    assert stats["documents"] == 50
    assert stats["read"] == 50
    assert stats["quarantined"] == 0
    assert stats["code_rows"] == dict(by_system)
    assert stats["distinct_codes"] == dict(distinct)
    assert sum(stats["code_rows"].values()) == len(codes)
    assert set(stats["code_rows"]) <= {"ICD10CM", "ICD10PCS", "CPT", "HCPCS"}


def test_bad_rows_are_quarantined_by_kind(tmp_path: Path) -> None:
    out = tmp_path / "archive"
    args = ("--notes", "200", "--seed", "4", "--bad-row-rate", "0.2")
    result = invoke("data", "synth", "--output", out, *args)  # as `predict` spells it
    assert result.exit_code == 0, result.stderr
    # The CLI wrote what the library writes for the same arguments.
    summary = write_synthetic_archive(tmp_path / "reference", 200, 4, bad_row_rate=0.2)
    assert all(summary.bad_rows.values()), summary.bad_rows  # every kind is exercised
    assert f"{sum(summary.bad_rows.values())} bad rows" in result.stdout

    stats = stats_json(out)
    expected = {
        QUARANTINE_REASON_OF_BAD_ROW[kind]: count for kind, count in summary.bad_rows.items()
    }
    assert stats["quarantined_by_reason"] == expected
    assert stats["quarantined"] == sum(summary.bad_rows.values())
    assert stats["documents"] == summary.notes == 200
    assert stats["read"] == summary.rows == pq.read_metadata(summary.files[0]).num_rows


# ----------------------------------------------------------------------------- real corpus


@pytest.mark.integration
@pytest.mark.parametrize("language", ["en", "es"])
def test_stats_on_codiesp_dev(codiesp_root: Path, language: str) -> None:
    stats = stats_json(codiesp_root, "--split", "dev", "--language", language)
    assert stats["documents"] == 250
    assert stats["code_rows"] == {"ICD10CM": 2677, "ICD10PCS": 794}
    assert stats["distinct_codes"]["ICD10CM"] == 1158
    assert stats["quarantined"] == 0
    assert stats["splits"] == {"dev": 250}


@pytest.mark.integration
def test_codiesp_language_changes_the_text(codiesp_root: Path) -> None:
    english = stats_json(codiesp_root, "--split", "dev", "--language", "en")
    spanish = stats_json(codiesp_root, "--split", "dev", "--language", "es")
    assert english["text_chars_percentiles"] != spanish["text_chars_percentiles"]


# ----------------------------------------------------------------------------- bad input


def test_parquet_without_text_column_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.parquet"
    rows = [{"note_id": "n1", "body": "Chest pain.", "codes": ["ICD10CM:R07.9"]}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    result = invoke("data", "stats", path)
    assert_one_line_error(result, str(path), "'text'")


def test_directory_without_table_files_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("not a note table\n", encoding="utf-8")
    result = invoke("data", "stats", tmp_path)
    assert_one_line_error(result, str(tmp_path), ".parquet")


def test_missing_path_is_a_one_line_error(tmp_path: Path) -> None:
    result = invoke("data", "stats", tmp_path / "nowhere")
    assert_one_line_error(result, str(tmp_path / "nowhere"), "no such file")


def test_unknown_format_names_the_valid_ones(tmp_path: Path) -> None:
    result = invoke("data", "stats", tmp_path, "--format", "xml")
    assert_one_line_error(result, "'xml'", "codiesp", "mimic3")


# ----------------------------------------------------------------------------- column mapping


def test_column_mapping_on_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "doc,body,dx\n"
        '7,"Heart failure, type 2 diabetes.",i509;e119\n'
        "8,Essential hypertension.,I10\n"
        "9,Diabetes follow-up.,E11.9\n",
        encoding="utf-8",
    )
    mapping = ("--id-col", "doc", "--text-col", "body", "--codes-col", "dx")
    stats = stats_json(path, *mapping, "--system", "ICD10CM")
    assert stats["documents"] == 3
    assert stats["quarantined"] == 0
    assert stats["code_rows"] == {"ICD10CM": 4}
    assert stats["distinct_codes"] == {"ICD10CM": 3}

    # Without the mapping the file lacks the canonical id column.
    assert_one_line_error(invoke("data", "stats", path), str(path), "'note_id'")
    # Without --system the bare codes cannot be placed in a code system.
    unplaced = stats_json(path, *mapping)
    assert unplaced["documents"] == 0
    assert unplaced["quarantined_by_reason"] == {"invalid_code": 3}


def test_a_job_s_rate_keeps_two_digits_below_ten_notes_a_second() -> None:
    # 3 notes in 20 s read "0 notes/s" when every rate was rounded to whole notes.
    assert _rate(3 / 20) == "0.15"
    assert _rate(0.0) == "0"
    assert _rate(9.96) == "10"
    assert _rate(1234.4) == "1234"
