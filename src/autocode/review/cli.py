"""`autocode review ...`: migrate the queue, add users, serve the reviewer app, export labels."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from autocode.review.store import ReviewStore

review_app = typer.Typer(help="The review queue and the reviewer web app.", no_args_is_help=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Queue SQLAlchemy URL [default: sqlite:///review-queue.db]."),
]
PASSWORD_ENV = "AUTOCODE_REVIEW_PASSWORD"
SECRET_ENV = "AUTOCODE_REVIEW_SECRET"
MIN_SECRET_CHARS = 32  # a guessable secret lets anyone sign a session cookie


def _url(db: str | None) -> str:
    from autocode.review.store import default_queue_url

    return db or default_queue_url()


def _fail(message: str) -> typer.Exit:
    """One line on stderr and exit code 2, as every autocode command says bad input."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _open_store(db: str | None) -> ReviewStore:
    """The queue, or exit 2 with one line saying why not (an old schema: what to run)."""
    from autocode.review.store import QueueUnavailableError, open_queue

    try:
        return open_queue(_url(db), option="--db")
    except QueueUnavailableError as error:
        raise _fail(str(error)) from None


@review_app.command("migrate")
def migrate(db: DbOption = None) -> None:
    """Upgrade the queue's schema in place (creating the queue if it does not exist)."""
    from autocode.review.store import migrate_queue

    try:
        migration = migrate_queue(_url(db))
    except Exception as error:  # one line, never a traceback with SQL in it
        raise _fail(f"cannot migrate the queue: {type(error).__name__}: {error}") from None
    before = migration.before or "none (new queue)"
    typer.echo(f"queue schema: {before} -> {migration.after}")


@review_app.command("add-user")
def add_user_command(
    name: str,
    role: Annotated[str, typer.Option("--role", help="reviewer or admin")] = "reviewer",
    db: DbOption = None,
) -> None:
    """Create an account. The password comes from $AUTOCODE_REVIEW_PASSWORD or stdin, never
    the command line (where other users could read it)."""
    from autocode.review.auth import add_user

    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        if sys.stdin.isatty():
            import getpass

            password = getpass.getpass(f"password for {name}: ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise _fail(f"no password given for {name}: set {PASSWORD_ENV} or write it on stdin")
    try:
        with _open_store(db) as store:
            user = add_user(store, name, role, password, actor="cli")
    except ValueError as error:
        raise _fail(str(error)) from None
    typer.echo(f"added {user.role} {user.name}")


@review_app.command("serve")
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    target_precision: Annotated[
        float | None,
        typer.Option("--target-precision", help="Precision the routing policy was tuned for."),
    ] = None,
    lease_minutes: Annotated[int, typer.Option("--lease-minutes", min=1)] = 30,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile")] = None,
    hcpcs: Annotated[
        Path | None,
        typer.Option("--hcpcs", help="CMS HCPCS release zip (default: the shared data's)."),
    ] = None,
    cpt: Annotated[
        Path | None, typer.Option("--cpt", help="Licensed CPT `code,description` CSV.")
    ] = None,
) -> None:
    """Run the reviewer app. Sessions are signed with $AUTOCODE_REVIEW_SECRET, or with a
    random key for this process (everyone logs in again after a restart)."""
    import secrets
    from datetime import timedelta

    import uvicorn

    from autocode.review.app import AppSettings, create_app

    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(48)
    store = _open_store(db)
    from autocode.codes.hcpcs import HCPCS_ZIP
    from autocode.config import CodesConfig, shared_data_dir
    from autocode.knowledge import CodeKnowledge

    codes = CodesConfig(hcpcs=str(hcpcs) if hcpcs else None, cpt=str(cpt) if cpt else None)
    try:
        # No mentions are named here, so no terms are mined: the language is moot.
        knowledge = CodeKnowledge(codes.sources(language="en"))
    except FileNotFoundError as error:
        raise _fail(str(error)) from None
    if knowledge.hcpcs is None:
        typer.echo(
            f"warning: no HCPCS release at {shared_data_dir() / HCPCS_ZIP}: code "
            "search and descriptions leave HCPCS out; pass --hcpcs or set "
            "AUTOCODE_SHARED_DATA",
            err=True,
        )
    if not os.environ.get(SECRET_ENV):
        typer.echo(
            f"warning: {SECRET_ENV} is not set: sessions end when this server stops, and "
            "servers of one queue count wrong passwords apart",
            err=True,
        )
    elif len(os.environ[SECRET_ENV]) < MIN_SECRET_CHARS:
        typer.echo(
            f"warning: {SECRET_ENV} has {len(os.environ[SECRET_ENV])} characters: session "
            f"cookies signed with it can be forged; use {MIN_SECRET_CHARS} or more "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')",
            err=True,
        )
    settings = AppSettings(
        secret=secret,
        lease=timedelta(minutes=lease_minutes),
        target_precision=target_precision,
        knowledge=knowledge,
    )
    scheme = "https" if ssl_certfile else "http"
    typer.echo(f"reviewer app on {scheme}://{host}:{port}/login", err=True)
    try:
        uvicorn.run(
            create_app(store, settings),
            host=host,
            port=port,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            log_level="info",
            server_header=False,
        )
    finally:
        store.close()


@review_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", "--output", help="Parquet file to write.")],
    db: DbOption = None,
) -> None:
    """Write the reviewed notes (final codes after review) as a canonical Parquet dataset."""
    from autocode.review.export import export_reviewed

    with _open_store(db) as store:
        summary = export_reviewed(store, out)
    typer.echo(f"exported {summary.notes} reviewed notes to {out} (sha256 {summary.digest[:12]})")
