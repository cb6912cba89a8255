"""Model addresses: every bad one is one line naming it; one identity per model content."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.tracking._tracking_service.utils as mlflow_tracking_utils
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from autocode.cli import app
from autocode.corpus.load import LoadOptions
from autocode.corpus.synth import write_synthetic_archive
from autocode.infer.batch import BatchSettings, predict_archive
from autocode.infer.loading import (
    DOWNLOAD_SETTINGS,
    ModelAddressError,
    coder_digest,
    load_coder,
    model_identity,
    resolve_coder_dir,
)
from autocode.infer.manifest import OutputMismatchError
from autocode.infer.pyfunc import predict_frame
from autocode.review.store import ReviewStore
from coders import MIXED_ROUTING, registered_coder, train_small_coder
from test_cli import assert_one_line_error

MODEL_NAME = "address-test-coder"
BATCH_OPTIONS = LoadOptions(skip_unreadable_files=True)
UNREACHABLE_SERVER = "http://127.0.0.1:9"  # the discard port on loopback: nothing listens


@dataclass(frozen=True)
class Registered:
    model_uri: str  # models:/name/1
    tracking_uri: str  # the SQLite store it is registered in
    run_id: str
    coder_dir: Path  # the same Coder saved locally
    archive: Path  # notes to code


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    root = tmp_path_factory.mktemp("addresses")
    write_synthetic_archive(root / "train", 200, seed=1, n_codes=40)
    write_synthetic_archive(root / "notes", 150, seed=5, n_codes=40)
    coder = train_small_coder(root / "train", "address-test", epochs=3, routing=MIXED_ROUTING)
    coder.save(root / "coder")
    with registered_coder(coder, root, MODEL_NAME) as (model_uri, tracking_uri):
        run_id = MlflowClient().get_model_version(MODEL_NAME, "1").run_id
        assert run_id is not None
        yield Registered(model_uri, tracking_uri, run_id, root / "coder", root / "notes")


# ----------------------------------------------------------------------------- bad addresses


def bad_addresses(run_id: str) -> dict[str, str]:
    """Each bad address and a fragment of what the error must say about it."""
    return {
        "models:/no-such-model/1": "no-such-model",
        f"models:/{MODEL_NAME}/99": "version=99",
        f"models:/{MODEL_NAME}@no-such-alias": "alias no-such-alias",
        "runs:/0123456789abcdef0123456789abcdef/coder": "0123456789abcdef",
        f"runs:/{run_id}/nope": "'nope'",
        "s3://autocode-test-bucket/coder": "not installed",
    }


def test_each_bad_address_raises_one_line_naming_it(registered: Registered, tmp_path: Path) -> None:
    cases = bad_addresses(registered.run_id) | {str(tmp_path / "nowhere"): "no such directory"}
    for address, fragment in cases.items():
        with pytest.raises(ModelAddressError) as raised:
            load_coder(address)
        message = str(raised.value)
        assert address in message and fragment in message, message
        assert "\n" not in message


def test_a_lookup_names_the_store_it_searched(registered: Registered) -> None:
    with pytest.raises(ModelAddressError) as raised:
        load_coder("models:/no-such-model/1")
    assert str(raised.value).endswith(f"not found (in {registered.tracking_uri})")


def test_a_store_file_that_does_not_exist_is_named_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's default store is `mlflow.db` in the current directory: run elsewhere, a
    registered model would be "not found" in a new, empty store left behind."""
    missing = tmp_path / "mlflow.db"
    monkeypatch.setattr(mlflow_tracking_utils, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    for address in ("models:/codiesp-best/1", "runs:/0123456789abcdef0123456789abcdef/coder"):
        with pytest.raises(ModelAddressError) as raised:
            load_coder(address)
        assert str(raised.value) == (
            f"model {address}: no MLflow store at {missing} (sqlite:///{missing}); "
            "pass --tracking-uri or set MLFLOW_TRACKING_URI"
        )
    assert not missing.exists()


def test_a_directory_that_is_not_a_coder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelAddressError, match="not a Coder"):
        resolve_coder_dir(str(tmp_path))


def test_predict_and_evaluate_exit_2_with_one_line_for_each_bad_address(
    registered: Registered, tmp_path: Path
) -> None:
    runner = CliRunner()
    for address in bad_addresses(registered.run_id):
        evaluate = ["evaluate", "--model", address, "--data", str(registered.archive)]
        assert_one_line_error(runner.invoke(app, evaluate), address)
        predict = ["predict", "--model", address, "--input", str(registered.archive)]
        predict += ["--output", str(tmp_path / "out"), "--queue", f"sqlite:///{tmp_path / 'q.db'}"]
        assert_one_line_error(runner.invoke(app, predict), address)
        assert not (tmp_path / "out").exists()  # nothing written for a model never loaded


def test_an_unreachable_tracking_server_fails_fast_in_one_line(
    registered: Registered, tmp_path: Path
) -> None:
    """Run as a user would, in a fresh process: MLflow's defaults would retry for minutes."""
    command = [str(Path(sys.executable).parent / "autocode"), "predict"]
    command += ["--model", registered.model_uri, "--input", str(registered.archive)]
    command += ["--output", str(tmp_path / "out"), "--queue", f"sqlite:///{tmp_path / 'q.db'}"]
    env = {k: v for k, v in os.environ.items() if k not in DOWNLOAD_SETTINGS}
    env["MLFLOW_TRACKING_URI"] = UNREACHABLE_SERVER
    # The timeout only guards the test run; the defaults take over 4 minutes to give up.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert registered.model_uri in lines[0]
    assert f"cannot reach the MLflow tracking server at {UNREACHABLE_SERVER}" in lines[0]
    assert lines[0].count(UNREACHABLE_SERVER) == 1  # the server named once


def test_a_stores_password_never_shows_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mlflow_tracking_utils, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ada:s3cret@127.0.0.1:9")
    with pytest.raises(ModelAddressError) as raised:
        resolve_coder_dir("models:/codiesp-best/1")
    assert "http://ada:***@127.0.0.1:9" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_tracking_uri_option_finds_the_registry_without_the_environment(
    registered: Registered, tmp_path: Path
) -> None:
    """A fresh process where the environment names no usable store: the option does.

    The downloaded copy of the model is gone once each process has exited.
    """
    autocode = str(Path(sys.executable).parent / "autocode")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_TRACKING_URI"] = UNREACHABLE_SERVER  # the option must win over this
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    common = ["--model", registered.model_uri, "--tracking-uri", registered.tracking_uri]
    predict = [autocode, "predict", *common, "--input", str(registered.archive), "--json"]
    predict += ["--output", str(tmp_path / "out"), "--queue", f"sqlite:///{tmp_path / 'q.db'}"]
    evaluate = [autocode, "evaluate", *common, "--data", str(registered.archive), "--json"]
    results = []
    for command in (predict, evaluate):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout))
    assert results[0]["coded"] == 150
    assert 0.0 < results[1]["micro_f1"] <= 1.0
    assert not list((tmp_path / "tmp").rglob("MLmodel"))  # no copy of the model left behind


def test_fail_fast_settings_apply_only_during_the_call(
    registered: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlflow_tracking_utils, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE_SERVER)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # the user's own setting wins
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ModelAddressError, match="cannot reach"):
        resolve_coder_dir(registered.model_uri)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


# ----------------------------------------------------------------------------- identity


def addresses_of_one_model(registered: Registered) -> list[str]:
    return [
        registered.model_uri,
        f"models:/{MODEL_NAME}/latest",
        f"runs:/{registered.run_id}/coder",
        str(registered.coder_dir),
    ]


def test_every_address_of_one_model_gives_one_identity(registered: Registered) -> None:
    identities = {
        model_identity(coder_digest(resolve_coder_dir(address)))
        for address in addresses_of_one_model(registered)
    }
    assert len(identities) == 1
    (identity,) = identities
    assert identity.startswith("sha256:") and len(identity) == len("sha256:") + 16


def test_two_addresses_of_one_model_queue_one_case_per_note_and_resume_one_output(
    registered: Registered, tmp_path: Path
) -> None:
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    settings = BatchSettings(batch_size=40, evidence=False, queue_url=queue)
    out = tmp_path / "out"
    first = predict_archive(registered.model_uri, registered.archive, out, BATCH_OPTIONS, settings)
    parts = sorted(out.glob("part-*.parquet"))
    parts[-1].unlink()  # as if the first run had been killed before its last part
    address = f"runs:/{registered.run_id}/coder"
    second = predict_archive(address, registered.archive, out, BATCH_OPTIONS, settings)
    assert second.parts_resumed == len(parts) - 1 and second.parts_written == 1
    again = predict_archive(
        str(registered.coder_dir), registered.archive, out, BATCH_OPTIONS, settings
    )
    assert again.queue_inserted == 0
    rows = ds.dataset(out, format="parquet").to_table()
    assert rows.num_rows == len(set(rows["note_id"].to_pylist())) == first.coded
    assert len(set(rows["model_version"].to_pylist())) == 1
    with ReviewStore(queue) as store:
        cases = store.cases(status=None, limit=None)
    assert first.review > 0
    assert len(cases) == len({case.note_id for case in cases}) == first.review


def test_tampered_weights_change_the_digest_and_refuse_the_resume(
    registered: Registered, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    settings = BatchSettings(batch_size=50, evidence=False)
    predict_archive(str(registered.coder_dir), registered.archive, out, BATCH_OPTIONS, settings)
    tampered = tmp_path / "tampered"
    shutil.copytree(registered.coder_dir, tampered)
    weights = _weights_file(tampered)
    arrays = dict(np.load(weights))
    name = next(key for key, value in arrays.items() if value.dtype.kind == "f")
    arrays[name] = arrays[name] * 1.5
    np.savez(weights, **arrays)
    assert coder_digest(tampered) != coder_digest(registered.coder_dir)
    with pytest.raises(OutputMismatchError, match="coder_digest"):
        predict_archive(str(tampered), registered.archive, out, BATCH_OPTIONS, settings)


# ----------------------------------------------------------------------------- pyfunc


def test_pyfunc_accepts_integer_note_ids(registered: Registered) -> None:
    model = mlflow.pyfunc.load_model(registered.model_uri)
    texts = ["Hypertension and type 2 diabetes.", "Asthma, on inhaler."]
    by_int = model.predict(pd.DataFrame({"note_id": [101, 102], "text": texts}))
    by_str = model.predict(pd.DataFrame({"note_id": ["101", "102"], "text": texts}))
    assert list(by_int["note_id"]) == ["101", "102"]
    assert by_int.equals(by_str)


def test_pyfunc_errors_quote_no_note_text(registered: Registered) -> None:
    model = mlflow.pyfunc.load_model(registered.model_uri)
    secret = "PATIENT JOHN SMITHSON MRN 998877 chest pain"
    bad_inputs = [
        pd.DataFrame({"note_id": [1.5], "text": [secret]}),
        pd.DataFrame({"note_id": [None], "text": [secret]}),
        pd.DataFrame({"id": ["a"], "text": [secret]}),
        pd.DataFrame({"note_id": ["a", "b"], "text": [secret, 7]}),
    ]
    for frame in bad_inputs:
        with pytest.raises(Exception) as raised:
            model.predict(frame)
        assert "SMITHSON" not in str(raised.value)
        assert "row " in str(raised.value) or "missing column" in str(raised.value)


def test_predict_frame_names_a_bad_id_by_position() -> None:
    with pytest.raises(ValueError, match="row 1: note_id must be"):
        predict_frame(None, pd.DataFrame({"note_id": ["a", True], "text": ["x", "y"]}))  # type: ignore[arg-type]


def _weights_file(coder_dir: Path) -> Path:
    found = sorted(coder_dir.rglob("*.npz"))
    assert found, f"no .npz weights under {coder_dir}"
    return found[0]
