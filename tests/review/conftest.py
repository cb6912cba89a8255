"""Queue URLs for the store tests: a SQLite file, and a database on a throwaway PostgreSQL.

The PostgreSQL cluster lives in a temporary directory, listens on a free loopback port
and is stopped at the end of the session. PostgreSQL refuses to run as root, so as root
the server runs as the `postgres` user. Without server binaries the PostgreSQL tests
skip, unless `AUTOCODE_REQUIRE_POSTGRESQL=1` (set by `.ci/run`) makes that a failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

DEBIAN_SERVERS = "/usr/lib/postgresql/*/bin/postgres"
SERVER_USER = "postgres"


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL, else the one on PATH."""
    found = sorted(glob.glob(DEBIAN_SERVERS), key=lambda path: int(Path(path).parts[-3]))
    server = found[-1] if found else shutil.which("postgres")
    return Path(server).parent if server else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def run(command: list[str]) -> None:
    result = subprocess.run(as_server_user(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def start_server(bindir: Path, root: Path) -> int:
    """initdb into `root`, then start the server on a free port; the port."""
    data, log = root / "data", root / "server.log"
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    run([*initdb, "-E", "UTF8", "--no-locale", "--no-sync"])
    port = free_port()
    # Durability off: the cluster is thrown away, and tests should not wait on fsync.
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
    try:
        run([*pg_ctl, "-w", "-t", "60", "start"])
    except RuntimeError as error:
        raise RuntimeError(f"{error}\nserver log:\n{log.read_text()}") from None
    return port


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    """The URL of the throwaway server's `postgres` database, without the database name."""
    bindir = postgres_bindir()
    if bindir is None:
        reason = f"PostgreSQL server binaries not found ({DEBIAN_SERVERS} or postgres on PATH)"
        if os.environ.get("AUTOCODE_REQUIRE_POSTGRESQL") == "1":
            pytest.fail(f"{reason}; AUTOCODE_REQUIRE_POSTGRESQL=1 requires them")
        pytest.skip(reason)
    # Not pytest's tmp_path: its parent is private to the current user, and the socket
    # path must stay short.
    root = Path(tempfile.mkdtemp(prefix="autocode-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=SERVER_USER)
    try:
        port = start_server(bindir, root)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        run([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


_database_numbers = itertools.count()


@pytest.fixture
def postgresql_url(postgresql_server: str) -> str:
    """A fresh, empty database on the throwaway server."""
    name = f"queue_{next(_database_numbers)}"
    admin = create_engine(f"{postgresql_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"{postgresql_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty queue on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    return str(request.getfixturevalue("postgresql_url"))
