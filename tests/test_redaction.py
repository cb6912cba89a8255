"""Store and queue addresses shown without their secrets."""

from __future__ import annotations

import pytest

from autocode.redaction import redacted
from autocode.review.store import queue_location


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("http://ada:s3cret@mlflow.example:5000", "http://ada:***@mlflow.example:5000"),
        ("https://mlflow.example/api?token=abc&x=1", "https://mlflow.example/api?token=***&x=1"),
        (
            "postgresql://ada:pw@db/mlflow?password=pw2&sslmode=require",
            "postgresql://ada:***@db/mlflow?password=***&sslmode=require",
        ),
        # Nothing secret: exactly as typed, three slashes and all.
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("sqlite:////var/lib/mlflow.db", "sqlite:////var/lib/mlflow.db"),
        ("http://ada@mlflow.example", "http://ada@mlflow.example"),
        ("databricks", "databricks"),
    ],
)
def test_secrets_are_masked_and_nothing_else_changes(address: str, shown: str) -> None:
    assert redacted(address) == shown


def test_a_queue_location_hides_both_kinds_of_password() -> None:
    location = queue_location("postgresql+psycopg://ada:pw@db/queue?password=pw2")
    assert "pw" not in location.replace("password", "")
    assert location == "postgresql+psycopg://ada:***@db/queue?password=***"
