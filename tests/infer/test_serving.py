"""The registered model with MLflow's own tooling: `pyfunc.load_model` and `mlflow models serve`.

Both must give the decisions `autocode predict` writes for the same notes. The model is a
small TF-IDF Coder registered in a SQLite MLflow store of the test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from autocode.cli import app
from autocode.corpus.synth import write_synthetic_archive
from autocode.infer.pyfunc import OUTPUT_COLUMNS
from coders import MIXED_ROUTING, registered_coder, train_small_coder
from servers import free_port, running_server

MODEL_NAME = "serving-test-coder"
SERVER_START_TIMEOUT_S = 120
# What a user runs in a new shell: load the registered model, predict, print JSON.
FRESH_PROCESS_SCRIPT = """
import sys
import mlflow
import pandas as pd

model = mlflow.pyfunc.load_model(sys.argv[1])
notes = pd.read_parquet(sys.argv[2])
print(model.predict(notes[["note_id", "text"]]).to_json(orient="records"))
"""


@dataclass(frozen=True)
class Registered:
    model_uri: str
    tracking_uri: str
    archive: Path  # notes to code, plus bad rows


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    root = tmp_path_factory.mktemp("serving")
    write_synthetic_archive(root / "train", 300, seed=1, n_codes=40)
    archive = root / "notes"
    write_synthetic_archive(archive, 120, seed=5, n_codes=40, bad_row_rate=0.05)
    coder = train_small_coder(root / "train", "serving-test", epochs=5, routing=MIXED_ROUTING)
    with registered_coder(coder, root, MODEL_NAME) as (model_uri, tracking_uri):
        yield Registered(model_uri, tracking_uri, archive)


@pytest.fixture(scope="module")
def batch_output(
    registered: Registered, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """`autocode predict` over the archive: its rows by note id."""
    root = tmp_path_factory.mktemp("predict")
    arguments = ["predict", "--model", registered.model_uri, "--input", str(registered.archive)]
    arguments += ["--output", str(root / "out"), "--queue", f"sqlite:///{root / 'queue.db'}"]
    result = CliRunner().invoke(app, [*arguments, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    rows = ds.dataset(root / "out", format="parquet").to_table().to_pylist()
    assert len(rows) == 120
    return {row["note_id"]: row for row in rows}


def coded_notes(archive: Path, note_ids: set[str]) -> pd.DataFrame:
    """The archive's notes that the batch job coded (the bad rows were quarantined)."""
    notes = pq.read_table(archive, columns=["note_id", "text"]).to_pandas()
    return notes[notes.note_id.isin(note_ids)].drop_duplicates("note_id").reset_index(drop=True)


def assert_matches_batch(served: dict[str, Any], batch: dict[str, Any]) -> None:
    """One pyfunc output row (strings and JSON) against the batch row for the same note."""
    assert served["codes"] == ";".join(batch["codes"])
    assert served["route"] == batch["route"]
    assert json.loads(served["reasons"]) == batch["reasons"]
    predictions = json.loads(served["predictions"])
    assert [p["code"] for p in predictions] == [p["code"] for p in batch["predictions"]]
    for field in ("accepted", "predicted", "evidence"):
        assert [p[field] for p in predictions] == [p[field] for p in batch["predictions"]]
    assert np.allclose(
        [p["probability"] for p in predictions], [p["probability"] for p in batch["predictions"]]
    )


# ----------------------------------------------------------------------------- load_model


def test_load_model_in_a_fresh_process_predicts_what_autocode_predict_wrote(
    registered: Registered, batch_output: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    notes = coded_notes(registered.archive, set(batch_output))
    notes.to_parquet(tmp_path / "notes.parquet")
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_PROCESS_SCRIPT,
            registered.model_uri,
            tmp_path / "notes.parquet",
        ],
        env={**os.environ, "MLFLOW_TRACKING_URI": registered.tracking_uri},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    assert [row["note_id"] for row in served] == list(notes.note_id)
    assert all(list(row) == list(OUTPUT_COLUMNS) for row in served)
    for row in served:
        assert_matches_batch(row, batch_output[row["note_id"]])
    assert {row["route"] for row in served} == {"auto", "review"}  # both routes compared


# ----------------------------------------------------------------------------- models serve


@pytest.fixture
def model_server(registered: Registered, tmp_path: Path) -> Iterator[str]:
    """`mlflow models serve` of the registered model on a free loopback port."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("mlflow")), "models", "serve"]
    command += ["-m", registered.model_uri, "-h", "127.0.0.1", "-p", str(port)]
    command += ["--workers", "1", "--env-manager", "local"]
    # As in an activated virtualenv: the server execs `uvicorn` from PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": registered.tracking_uri}
    with running_server(command, port=port, cwd=tmp_path, env=env, probe="/ping") as url:
        yield url


def invoke(url: str, notes: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
    payload: dict[str, Any] = {
        "dataframe_split": {"columns": ["note_id", "text"], "data": notes.to_numpy().tolist()}
    }
    if params is not None:
        payload["params"] = params
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_codes_probabilities_and_route(
    registered: Registered, batch_output: dict[str, dict[str, Any]], model_server: str
) -> None:
    notes = coded_notes(registered.archive, set(batch_output))
    # A few notes of each route.
    routes = notes.note_id.map(lambda note_id: batch_output[note_id]["route"])
    sample = pd.concat([notes[routes == "auto"].head(3), notes[routes == "review"].head(3)])
    served = invoke(model_server, sample)["predictions"]
    assert [row["note_id"] for row in served] == list(sample.note_id)
    for row in served:
        assert row["route"] in {"auto", "review"}
        assert all(0.0 <= p["probability"] <= 1.0 for p in json.loads(row["predictions"]))
        assert_matches_batch(row, batch_output[row["note_id"]])

    # The `evidence` param of the signature travels in the request too.
    without = invoke(model_server, sample, params={"evidence": False})["predictions"]
    assert [row["codes"] for row in without] == [row["codes"] for row in served]
    assert all(p["evidence"] == [] for row in without for p in json.loads(row["predictions"]))
