"""`autocode review` commands: migrate, add-user (password never on the command line), export."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from alembic import command
from sqlalchemy import create_engine
from typer.testing import CliRunner

from autocode.cli import app
from autocode.review import ReviewStore, leases, schema
from autocode.review.auth import authenticate
from review.test_schema import write_old_queue
from review.test_store import new_case

runner = CliRunner()


def test_add_user_reads_the_password_from_stdin_or_the_environment(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    result = runner.invoke(
        app,
        ["review", "add-user", "ada", "--role", "admin", "--db", url],
        input="a long password 1\n",
    )
    assert result.exit_code == 0, result.output
    env = {"AUTOCODE_REVIEW_PASSWORD": "a long password 2"}
    result = runner.invoke(app, ["review", "add-user", "rob", "--db", url], env=env)
    assert result.exit_code == 0 and "added reviewer rob" in result.output
    with ReviewStore(url) as store:
        ada = authenticate(store, "ada", "a long password 1")
        assert ada is not None and ada.role == "admin"
        assert authenticate(store, "rob", "a long password 2") is not None
    taken = runner.invoke(app, ["review", "add-user", "rob", "--db", url], env=env)
    assert taken.exit_code == 2 and "already exists" in taken.output
    bad_role = runner.invoke(
        app, ["review", "add-user", "x", "--role", "boss", "--db", url], env=env
    )
    assert bad_role.exit_code == 2 and "'boss'" in bad_role.output


def test_add_user_has_no_password_option():
    result = runner.invoke(app, ["review", "add-user", "--help"])
    assert "--password" not in result.output


def test_migrate_upgrades_an_old_queue_and_export_writes_reviewed_notes(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    write_old_queue(url)
    result = runner.invoke(app, ["review", "migrate", "--db", url])
    assert result.exit_code == 0 and f"queue schema: 0001 -> {schema.HEAD}" in result.output
    with ReviewStore(url) as store:
        store.enqueue([new_case(99999)])
        lease = leases.claim_next(store, "rob")
        assert lease is not None
        leases.submit(store, lease.case_id, lease.token, "rob", {})
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["review", "export", "--db", url, "--out", str(out)])
    assert result.exit_code == 0 and "exported 2 reviewed notes" in result.output
    assert pq.read_table(out).num_rows == 2


def test_a_queue_of_an_older_schema_is_refused_in_one_line_naming_the_migration(
    tmp_path: Path,
):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), "0003")
    engine.dispose()
    env = {"AUTOCODE_REVIEW_PASSWORD": "a long password 1"}
    commands = [
        ["review", "serve", "--db", url, "--port", "1"],
        ["review", "add-user", "ada", "--db", url],
        ["review", "export", "--db", url, "--out", str(tmp_path / "out.parquet")],
    ]
    for args in commands:
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.output.strip() == (
            f"error: --db {url}: cannot open the queue: the queue at {url} has schema "
            f"revision 0003, this autocode uses {schema.HEAD}: run `autocode review migrate "
            f"--db {url}` to upgrade it in place"
        ), args
    assert not (tmp_path / "out.parquet").exists()


def test_serve_says_what_a_missing_hcpcs_release_and_an_unset_secret_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: served.append(app))
    monkeypatch.setenv("AUTOCODE_SHARED_DATA", str(tmp_path / "no-shared-data"))
    monkeypatch.delenv("AUTOCODE_REVIEW_SECRET", raising=False)
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    result = runner.invoke(app, ["review", "serve", "--db", url])
    assert result.exit_code == 0, result.output
    assert len(served) == 1
    missing = tmp_path / "no-shared-data" / "hcpcs" / "2020-Alpha-Numeric-HCPCS-File.zip"
    assert f"warning: no HCPCS release at {missing}: code search" in result.output
    assert "warning: AUTOCODE_REVIEW_SECRET is not set" in result.output

    monkeypatch.setenv("AUTOCODE_REVIEW_SECRET", "abc")  # set, but anyone could guess it
    weak = runner.invoke(app, ["review", "serve", "--db", url])
    assert weak.exit_code == 0
    assert "warning: AUTOCODE_REVIEW_SECRET has 3 characters" in weak.output
    monkeypatch.setenv("AUTOCODE_REVIEW_SECRET", "s" * 48)
    again = runner.invoke(app, ["review", "serve", "--db", url])
    assert again.exit_code == 0 and "AUTOCODE_REVIEW_SECRET" not in again.output


def test_add_user_without_a_password_says_where_one_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTOCODE_REVIEW_PASSWORD", raising=False)
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    result = runner.invoke(app, ["review", "add-user", "ada", "--db", url], input="")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: no password given for ada: set AUTOCODE_REVIEW_PASSWORD or write it on stdin"
    )
