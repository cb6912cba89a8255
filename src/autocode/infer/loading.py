"""Load a Coder from a local directory, `runs:/…`, `models:/name/version` or any MLflow URI.

A bad address is a user's mistake, not a crash: every way it can fail (no such
model, version, alias, run or artifact; a storage client not installed; a tracking
server that does not answer) raises `ModelAddressError`, one line naming the address.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path

from autocode.decisions.coder import CODER_ARTIFACT, CODER_FILE, Coder
from autocode.digests import update_with_file
from autocode.env_defaults import QUIET_ARTIFACTS, environment_defaults
from autocode.redaction import redacted

# Set around the download only, each only when the user has not set it. MLflow's
# defaults retry a server that does not answer 7 times with exponential backoff, for
# minutes, where a user who typed a wrong address wants to know at once; and its
# progress bar would stand between the user and our one-line error.
DOWNLOAD_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    **QUIET_ARTIFACTS,
}
_MAX_REASON_CHARS = 300
IDENTITY_HEX_CHARS = 16


class ModelAddressError(ValueError):
    """The model address names no loadable Coder; the message says which and why."""


def resolve_coder_dir(uri: str) -> Path:
    """A local Coder directory for the URI (MLflow models are downloaded once)."""
    local = Path(uri)
    if (local / CODER_FILE).is_file():
        return local
    if (local / "artifacts" / CODER_ARTIFACT / CODER_FILE).is_file():
        return local / "artifacts" / CODER_ARTIFACT
    if ":/" not in uri:
        what = "no such directory" if not local.exists() else f"not a Coder (no {CODER_FILE})"
        raise ModelAddressError(f"model {uri}: {what}, and not an MLflow model URI")
    model_dir = _download(uri)
    for candidate in (model_dir / "artifacts" / CODER_ARTIFACT, model_dir):
        if (candidate / CODER_FILE).is_file():
            return candidate
    raise ModelAddressError(
        f"model {uri}: not an autocode Coder (no artifacts/{CODER_ARTIFACT}/{CODER_FILE})"
    )


def load_coder(uri: str) -> Coder:
    return Coder.load(resolve_coder_dir(uri))


def _download(uri: str) -> Path:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    store = _store_of(uri)
    if store is not None and (missing := _missing_sqlite_file(store)) is not None:
        # Opening it would create an empty store here and then report no such model.
        raise ModelAddressError(
            f"model {uri}: no MLflow store at {missing} ({redacted(store)}); "
            "pass --tracking-uri or set MLFLOW_TRACKING_URI"
        )
    try:
        with environment_defaults(DOWNLOAD_SETTINGS):
            target = _scratch_dir()
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=target))
    except ModuleNotFoundError as error:
        raise ModelAddressError(
            f"model {uri}: reading it needs the Python package {error.name!r}, "
            "which is not installed"
        ) from None
    except MlflowException as error:
        reason = _reason(error)
        if store is not None and redacted(store) not in reason:
            reason += f" (in {redacted(store)})"
        raise ModelAddressError(f"model {uri}: {reason}") from None
    except OSError as error:  # a local artifact store whose files are gone or unreadable
        raise ModelAddressError(f"model {uri}: {error.strerror or error}") from None


def _store_of(uri: str) -> str | None:
    """The MLflow store a `models:/` (the registry) or `runs:/` (tracking) address is
    looked up in; None for addresses naming their storage themselves (`s3://…`)."""
    import mlflow

    if uri.startswith("models:/"):
        return str(mlflow.get_registry_uri())
    if uri.startswith("runs:/"):
        return str(mlflow.get_tracking_uri())
    return None


def _missing_sqlite_file(store: str) -> str | None:
    """The file a `sqlite:///…` store names, where it does not exist."""
    if not store.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    url = make_url(store)  # decodes the path ("my%20runs" is "my runs")
    path = url.database
    if not path or path == ":memory:" or url.query.get("uri") or Path(path).exists():
        return None  # in memory; or a SQLite URI filename, its own syntax
    return path


def _reason(error: Exception) -> str:
    """MLflow's message, or what the network said when the server could not be reached."""
    import requests

    cause = error.__cause__ or error.__context__
    if isinstance(cause, requests.RequestException):
        import mlflow

        return (
            f"cannot reach the MLflow tracking server at {redacted(mlflow.get_tracking_uri())} "
            f"({type(cause).__name__})"
        )
    message = str(getattr(error, "message", error)).strip()
    first_line = message.splitlines()[0] if message else type(error).__name__
    return first_line[:_MAX_REASON_CHARS]


def _scratch_dir() -> str:
    """A temporary directory for one download, removed when this process exits.

    MLflow's own default is a temporary directory it never removes: every `predict` of a
    registered model would leave a copy of its weights behind. Workers are forked or
    spawned children that exit without running `atexit`, so only the parent removes it.
    """
    directory = tempfile.mkdtemp(prefix="autocode-model-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def coder_digest(directory: Path) -> str:
    """SHA-256 over every file of the Coder directory: its weights as much as its settings.

    Relative paths are hashed with the contents, so renaming or moving a file changes
    the digest, and where the directory lives (or how it was addressed) does not.
    """
    digest = hashlib.sha256()
    files = sorted(path for path in directory.rglob("*") if path.is_file())
    for path in files:
        name = path.relative_to(directory).as_posix().encode("utf-8")
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        update_with_file(digest, path)
    return digest.hexdigest()


def model_identity(digest: str) -> str:
    """`sha256:<16 hex>`: one name per model content, whatever address loaded it.

    Registry versions, aliases, `latest`, `runs:/…` and a local copy of one model all
    give the same identity, so the review queue and a resumed output see one model.
    """
    return f"sha256:{digest[:IDENTITY_HEX_CHARS]}"
