"""Load a Coder from a local directory, `runs:/…`, `models:/name/version` or any MLflow URI."""

from __future__ import annotations

from pathlib import Path

from autocode.infer.coder import CODER_FILE, Coder
from autocode.infer.pyfunc import CODER_ARTIFACT


def load_coder(uri: str) -> Coder:
    local = Path(uri)
    if (local / CODER_FILE).is_file():
        return Coder.load(local)
    if local.is_dir() and (local / "artifacts" / CODER_ARTIFACT).is_dir():
        return Coder.load(local / "artifacts" / CODER_ARTIFACT)
    if "://" not in uri and ":/" not in uri:
        raise FileNotFoundError(f"{uri}: not a Coder directory and not an MLflow model URI")
    import mlflow.artifacts

    model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    return Coder.load(model_dir / "artifacts" / CODER_ARTIFACT)
