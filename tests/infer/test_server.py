"""`autocode serve`: MLflow's request shapes in, the pyfunc's answers out, no note text in
any error, and a real server over a real connection."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from autocode.corpus.synth import write_synthetic_archive
from autocode.decisions.coder import Coder
from autocode.infer.pyfunc import predict_frame
from autocode.infer.server import ServedModel, create_app
from coders import train_coder_dir
from servers import free_port, running_server

SECRET = "Patient Jane Roe MRN 4455667"
NOTES = [
    {"note_id": "a", "text": "Type 2 diabetes and hypertension, on metformin."},
    {"note_id": "b", "text": "Asthma exacerbation; wheeze on exam."},
]
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def coder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    write_synthetic_archive(root / "train", 300, seed=1, n_codes=60)
    return train_coder_dir(root / "train", root / "coder")


@pytest.fixture(scope="module")
def client(coder_dir: Path) -> TestClient:
    served = ServedModel(Coder.load(coder_dir), str(coder_dir), "sha256:test")
    return TestClient(create_app(served, max_body_bytes=4096))


def test_records_and_split_bodies_answer_as_the_pyfunc_does(
    client: TestClient, coder_dir: Path
) -> None:
    expected = predict_frame(Coder.load(coder_dir), pd.DataFrame(NOTES)).to_dict("records")
    records = client.post("/invocations", json={"dataframe_records": NOTES})
    assert records.status_code == 200 and records.json() == {"predictions": expected}
    columns = ["note_id", "text"]
    split = {"columns": columns, "data": [[n["note_id"], n["text"]] for n in NOTES]}
    assert client.post("/invocations", json={"dataframe_split": split}).json() == records.json()
    # Without evidence: the same codes, no spans.
    bare = client.post(
        "/invocations", json={"dataframe_records": NOTES, "params": {"evidence": False}}
    ).json()["predictions"]
    assert [row["codes"] for row in bare] == [row["codes"] for row in expected]
    assert all(not p.get("evidence") for row in bare for p in json.loads(row["predictions"]))
    health = client.get("/ping").json()
    assert health == {"status": "ok", "model": str(coder_dir), "model_version": "sha256:test"}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            f"{SECRET} not json".encode(),
            400,
            "body is not JSON: Expecting value (line 1, column 1)",
        ),
        (b"\xff\xfe" + SECRET.encode(), 400, "body is not UTF-8 (byte 0)"),
        (json.dumps([SECRET]).encode(), 400, "body must be a JSON object with dataframe_records"),
        (
            json.dumps({"dataframe_records": [{"note_id": "a", "text": " "}]}).encode(),
            400,
            "row 0: text must be a non-empty string",
        ),
        (
            json.dumps({"dataframe_records": [{"note_id": "a", "text": SECRET + "\x00"}]}).encode(),
            400,
            "row 0: text has a NUL character at char 28",
        ),
        (
            json.dumps(
                {"dataframe_split": {"columns": ["note_id", "text"], "data": [["a"]]}}
            ).encode(),
            400,
            "row 0: 1 values for 2 columns",
        ),
        (
            json.dumps({"dataframe_records": NOTES, "params": {"evidence": "no"}}).encode(),
            400,
            "params.evidence must be true or false",
        ),
        (json.dumps({"text": SECRET * 200}).encode(), 413, "body over 4,096 bytes"),
    ],
)
def test_a_bad_request_is_one_line_naming_where_never_the_text(
    client: TestClient, body: bytes, status: int, error: str
) -> None:
    answer = client.post("/invocations", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status
    assert answer.json()["error"].startswith(error)
    assert SECRET not in answer.text and "Traceback" not in answer.text


def test_a_body_that_is_not_json_by_type_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/invocations", content=SECRET.encode(), headers={"content-type": "text/csv"}
    )
    assert (answer.status_code, answer.json()) == (415, {"error": "send application/json"})


@pytest.mark.slow
def test_autocode_serve_answers_over_a_real_connection(coder_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", "from autocode.cli import app; app()"]
    command += ["serve", "--model", str(coder_dir), "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    with running_server(command, port=port, cwd=tmp_path, env=env, probe="/ping") as base:
        body = json.dumps({"dataframe_records": NOTES}).encode()
        request = urllib.request.Request(
            f"{base}/invocations", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
        assert [row["note_id"] for row in predictions] == ["a", "b"]
        bad = urllib.request.Request(
            f"{base}/invocations", SECRET.encode(), {"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=60)
        assert refused.value.code == 400 and SECRET not in refused.value.read().decode()
    log = (tmp_path / f"server-{port}.log").read_text()
    assert "serving" in log and SECRET not in log and "Jane" not in log
