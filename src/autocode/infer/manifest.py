"""`_manifest.json` of a batch job: what produced the output directory.

A restarted job must use the same model, input and part size as the one
that began the directory; anything else would mix two jobs in one output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autocode.infer.output import write_text_atomically

MANIFEST = "_manifest.json"
# Fields that must match for a run to continue an existing output directory.
# The model is identified by its content: the same Coder under another URI may continue.
# Parts of another records format (`decisions.records.RECORDS_FORMAT`) would not read as
# one dataset with the new ones.
IDENTITY_FIELDS = ("coder_digest", "input_digest", "records_format", "settings")
# Settings recorded only since some outputs began: such an output resumes with any value.
# Only these: a setting that changes what a part holds must never be filled in.
SETTINGS_ADDED_LATER = ("queue",)
_MAX_ERROR_CHARS = 500


class OutputMismatchError(Exception):
    """The output directory belongs to a job with another model, input or settings."""


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    write_text_atomically(json.dumps(manifest, indent=2, sort_keys=True), directory / MANIFEST)


def check_same_job(existing: dict[str, Any], current: dict[str, Any], directory: Path) -> None:
    for field in IDENTITY_FIELDS:
        before, now = existing.get(field), current.get(field)
        if field == "settings" and isinstance(before, dict) and isinstance(now, dict):
            before = {key: now.get(key) for key in SETTINGS_ADDED_LATER} | before
        if before != now:
            raise OutputMismatchError(
                f"{directory} holds output of another job: {_difference(field, before, now)}; "
                "use a new --output"
            )


def check_same_queue(existing: dict[str, Any] | None, queue: str | None, directory: Path) -> None:
    """`check_same_job`'s test of the review queue alone, made before the queue is opened:
    a refused resume must not create the other queue's database."""
    recorded = (existing or {}).get("settings", {}).get("queue")
    if recorded is not None and queue is not None and recorded != queue:
        raise OutputMismatchError(
            f"{directory} holds output of another job: settings.queue was {recorded!r}, now "
            f"{queue!r}; resume with the --queue it began with, or use a new --output"
        )


def _difference(field: str, before: Any, now: Any) -> str:
    """What changed, named key by key where both are settings (not their whole dicts)."""
    if isinstance(before, dict) and isinstance(now, dict):
        changed = [
            f"{field}.{key} was {before.get(key)!r}, now {now.get(key)!r}"
            for key in sorted(before.keys() | now.keys())
            if before.get(key) != now.get(key)
        ]
        return "; ".join(changed)
    return f"{field} was {before!r}, now {now!r}"


def failure_reason(error: BaseException) -> str:
    """One line for the manifest of a failed run (our errors never quote note text)."""
    message = str(error).strip()
    first_line = message.splitlines()[0] if message else ""
    reason = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    return reason[:_MAX_ERROR_CHARS]
