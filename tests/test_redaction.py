"""Store and queue addresses shown without their secrets."""

from __future__ import annotations

import pytest

from autocode.redaction import redacted
from autocode.review.store import QueueUnavailableError, check_queue, queue_location


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


def test_a_queue_that_cannot_be_opened_is_named_without_either_password() -> None:
    url = "postgresql+psycopg://ada:pw1@127.0.0.1:9/queue?password=pw2"
    with pytest.raises(QueueUnavailableError) as refused:
        check_queue(url)
    message = str(refused.value)
    assert message.startswith("--queue postgresql+psycopg://ada:***@127.0.0.1:9/queue?password=***")
    assert "pw1" not in message and "pw2" not in message
