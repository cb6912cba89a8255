"""Everything a run logs to MLflow. The only module in `train/` that imports mlflow.

Never logged: note text, note identifiers, real notes as input examples.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow import ActiveRun
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

from autocode import __version__
from autocode.config import dotted
from autocode.decisions.coder import Coder
from autocode.env_defaults import QUIET_ARTIFACTS, environment_defaults
from autocode.infer.pyfunc import CODER_ARTIFACT, coder_signature, predict_frame, pyfunc_script
from autocode.metrics import json_compatible

# Invented text, so the logged input example never holds a real note.
SYNTHETIC_EXAMPLE = pd.DataFrame(
    {
        "note_id": ["example-1"],
        "text": ["Synthetic example: hypertension and type 2 diabetes, on metformin."],
    }
)
PIP_REQUIREMENTS = ["numpy", "scipy", "pandas", "scikit-learn", "mlflow", "simple-icd-10-cm"]


@contextmanager
def start_run(experiment: str, tracking_uri: str | None) -> Iterator[ActiveRun]:
    """A run in `experiment` on the given store (MLflow's default store when None)."""
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(tags=run_tags()) as run:
        yield run


def log_params(params: dict[str, str]) -> None:
    mlflow.log_params(params)


def log_metrics(metrics: dict[str, float]) -> None:
    mlflow.log_metrics(metrics)


def log_epoch_history(history: Sequence[Mapping[str, float]]) -> None:
    """A model's per-epoch records (loss, throughput, validation metric) as MLflow curves,
    one step per epoch; models that train in epochs keep them in `history_`."""
    for record in history:
        step = int(record["epoch"])
        mlflow.log_metrics(
            {f"epoch_{name}": value for name, value in record.items() if name != "epoch"},
            step=step,
        )


def run_tags() -> dict[str, str]:
    tags = {"autocode.version": __version__}
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def log_lineage(lineage: dict[str, Any], name: str) -> None:
    """Dataset lineage as MLflow inputs (the source, then each reviewed-notes file): path,
    digest and counts, no content."""
    _log_input(lineage["source"], name, lineage["digest"])
    for reviewed in lineage.get("reviewed", []):
        _log_input(reviewed["source"], f"{name}-reviewed", reviewed["digest"])
    mlflow.log_dict(lineage, "data/lineage.json")


def _log_input(path: str, name: str, digest: str) -> None:
    with warnings.catch_warnings():  # MLflow registers the local source class twice
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(Path(path).resolve()))
    dataset = MetaDataset(source=source, name=name, digest=digest[:16])  # type: ignore[abstract]
    mlflow.log_input(dataset, context="training")


def log_code_sources(lineage: dict[str, Any]) -> None:
    """The code tables a run's knowledge came from: file paths as params, digests and
    package versions as `data/code_sources.json`."""
    files = lineage["files"]
    mlflow.log_params({f"code_sources.{name}": entry["path"] for name, entry in files.items()})
    mlflow.log_dict(lineage, "data/code_sources.json")


def log_metrics_tree(metrics: dict[str, Any], prefix: str) -> None:
    """Flatten nested metric reports (`test.per_system.ICD10CM.micro_f1`) and log numbers."""
    mlflow.log_metrics(
        {
            key.replace(">", "gt"): float(value)  # MLflow metric names cannot hold '>'
            for key, value in dotted(metrics, prefix).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    )


def log_figure(figure: Figure, path: str) -> None:
    mlflow.log_figure(figure, path)


def log_table(table: pd.DataFrame, path: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        file = Path(directory) / Path(path).name
        table.to_csv(file, index=False)
        mlflow.log_artifact(str(file), str(Path(path).parent))


def log_coder(coder: Coder, registered_name: str | None) -> str:
    """Log the Coder as a pyfunc model (registered when a name is given); return its URI."""
    with tempfile.TemporaryDirectory() as directory:
        coder_dir = Path(directory) / CODER_ARTIFACT
        coder.save(coder_dir)
        output = predict_frame(coder, SYNTHETIC_EXAMPLE)
        with environment_defaults(QUIET_ARTIFACTS):
            info = mlflow.pyfunc.log_model(
                name="coder",
                python_model=str(pyfunc_script()),  # models from code: no pickle
                artifacts={CODER_ARTIFACT: str(coder_dir)},
                signature=coder_signature(output),
                input_example=SYNTHETIC_EXAMPLE,
                registered_model_name=registered_name,
                pip_requirements=PIP_REQUIREMENTS,
            )
    if registered_name and info.registered_model_version is not None:
        return f"models:/{registered_name}/{info.registered_model_version}"
    return str(info.model_uri)


def log_json(payload: dict[str, Any], path: str) -> None:
    """Strict JSON: undefined (NaN) metrics are written as null."""
    mlflow.log_text(json.dumps(json_compatible(payload), indent=2, allow_nan=False), path)


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,  # the package's checkout, not wherever we run
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
