"""The transformer through the whole product: train + MLflow, then batch coding of an archive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from autocode.cli import app
from autocode.config import load_config
from autocode.corpus.synth import write_synthetic_archive
from conftest import REPO_ROOT

pytest.importorskip("torch")


@pytest.mark.slow
def test_tiny_transformer_trains_logs_epochs_and_codes_an_uncoded_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_synthetic_archive(tmp_path / "archive", 240, seed=3, n_codes=30)
    shipped = load_config(REPO_ROOT / "configs" / "transformer-tiny.yaml")
    payload: dict[str, Any] = shipped.model_dump(mode="json", exclude_unset=True)
    payload["data"]["source"] = str(tmp_path / "archive")
    payload["model"]["params"]["epochs"] = 3
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(payload), encoding="utf-8")
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # a SQLite store's artifacts go under ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)

    result = CliRunner().invoke(app, ["train", "--config", str(config), "--json"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    trained = json.loads(result.stdout)
    history = MlflowClient(tracking_uri).get_metric_history(trained["run_id"], "epoch_loss")
    assert [metric.step for metric in history] == [1, 2, 3]  # one point per epoch

    # An archive waiting to be coded: ids and text only.
    notes = pq.read_table(tmp_path / "archive").select(["note_id", "text"]).slice(0, 20)
    (tmp_path / "uncoded").mkdir()
    pq.write_table(notes, tmp_path / "uncoded" / "notes.parquet")
    args = ["predict", "--model", trained["model_uri"], "--input", str(tmp_path / "uncoded")]
    args += ["--output", str(tmp_path / "coded"), "--json"]
    coded = CliRunner().invoke(app, args)
    assert coded.exit_code == 0, (coded.stderr, coded.exception)
    summary = json.loads(coded.stdout)
    assert (summary["read"], summary["coded"]) == (20, 20)
    table: pa.Table = ds.dataset(tmp_path / "coded", format="parquet").to_table()
    assert sorted(table["note_id"].to_pylist()) == sorted(notes["note_id"].to_pylist())
    for row in table.to_pylist():
        text = notes["text"][notes["note_id"].to_pylist().index(row["note_id"])].as_py()
        for prediction in row["predictions"]:
            for span in prediction["evidence"]:  # attention spans point into the note
                assert 0 <= span["start"] < span["end"] <= len(text)


def test_an_encoder_that_is_not_there_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_synthetic_archive(tmp_path / "archive", 60, seed=3, n_codes=10)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    config = str(REPO_ROOT / "configs" / "transformer-tiny.yaml")
    overrides = [f"data.source={tmp_path / 'archive'}", "model.params.model_name_or_path=/no/enc"]
    args = ["train", "--config", config, *(a for o in overrides for a in ("--set", o))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.stderr, result.exception)
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ") and "'/no/enc'" in line
    assert "Traceback" not in result.stderr
