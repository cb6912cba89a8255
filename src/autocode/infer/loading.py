"""Load a Coder from a local directory, `runs:/…`, `models:/name/version` or any MLflow URI."""

from __future__ import annotations

import hashlib
from pathlib import Path

from autocode.infer.coder import CODER_ARTIFACT, CODER_FILE, Coder
from autocode.labels import LABELS_FILE


def resolve_coder_dir(uri: str) -> Path:
    """A local Coder directory for the URI (MLflow models are downloaded once)."""
    local = Path(uri)
    if (local / CODER_FILE).is_file():
        return local
    if (local / "artifacts" / CODER_ARTIFACT / CODER_FILE).is_file():
        return local / "artifacts" / CODER_ARTIFACT
    if ":/" not in uri:
        raise FileNotFoundError(f"{uri}: not a Coder directory and not an MLflow model URI")
    import mlflow.artifacts

    model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    return model_dir / "artifacts" / CODER_ARTIFACT


def load_coder(uri: str) -> Coder:
    return Coder.load(resolve_coder_dir(uri))


def coder_digest(directory: Path) -> str:
    """Identifies a Coder's decisions: its state and label space, not where it lives."""
    digest = hashlib.sha256()
    for name in (CODER_FILE, LABELS_FILE):
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()


def model_version(uri: str, coder: Coder, digest: str) -> str:
    """`models:/name/3` → "3"; otherwise the training run id, else the Coder digest.

    Aliases and `latest` move between versions, so they never name one: such
    URIs fall through to the run id or the digest of what was actually loaded.
    """
    if uri.startswith("models:/"):
        suffix = uri.rstrip("/").rsplit("/", 1)[-1]
        if suffix.isdigit():
            return suffix
    run_id = coder.info.get("run_id")
    return f"run:{run_id}" if run_id else f"local:{digest[:12]}"
