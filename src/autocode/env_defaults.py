"""Environment variables set around one call, each only where the user has not set it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# MLflow's artifact progress bar, drawn on stderr while a model is downloaded (and while
# `log_model` downloads it back to validate the input example): between the user and our
# own progress lines or one-line errors, it says nothing they need.
QUIET_ARTIFACTS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


@contextmanager
def environment_defaults(settings: Mapping[str, str]) -> Iterator[None]:
    """MLflow reads these at each request: set only around our own calls, then restored."""
    added = [name for name in settings if name not in os.environ]
    os.environ.update({name: settings[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
