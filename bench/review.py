"""The reviewer app under load, on SQLite and PostgreSQL, measured through HTTP.

1. Throughput: 8 simulated reviewers, each logged in through the API, loop
   claim-next -> read case -> submit verdicts, until the queue is empty. Reports cases/s and
   code decisions/s, errors, and checks no decision was lost (every 200 submit is one done
   case whose decisions are all stored).
2. Case page: p95 of GET /cases/{id} (HTML) on a 5,000-word note with 30 predictions.
3. Queue page: p95 of GET /queue with 100,000 open cases: first page, deep keyset pages,
   and a code filter.

Peer: the issue's targets (100 ms p95) and, for pages, the same SQL run directly, so the
ratio shows what HTTP + templating add.

    python bench/review.py [--backend sqlite|postgresql|both] [--cases 100000]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from autocode.review import NewCase, ReviewStore, queries
from autocode.review.app import AppSettings, create_app
from autocode.review.auth import add_user

PASSWORD = "bench password 123"
REVIEWERS = 8
TARGET_MS = 100.0
CODES = [
    f"ICD10CM:{c}"
    for c in (
        "E11.9",
        "I10",
        "D64.9",
        "M10.9",
        "J45.909",
        "G43.909",
        "N18.3",
        "E78.5",
        "K21.9",
        "F32.9",
        "I25.10",
        "J44.9",
    )
]
WORDS = (
    "patient",
    "history",
    "denies",
    "pain",
    "chest",
    "diabetes",
    "mellitus",
    "reports",
    "blood",
    "pressure",
    "elevated",
    "noted",
    "exam",
    "normal",
    "follow",
    "up",
)


def note(words: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def predictions(text: str, n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for k in range(n):
        p = rng.random()
        spans = []
        for _ in range(3):
            start = rng.randrange(0, max(1, len(text) - 40))
            spans.append({"start": start, "end": start + 30, "weight": 0.5})
        code = CODES[k] if k < len(CODES) else f"ICD10CM:S{k:02d}.0XXA"
        out.append({"code": code, "probability": p, "accepted": p > 0.5, "evidence": spans})
    return out


def cases(n: int, words: int, n_predictions: int, seed: int, prefix: str) -> Iterator[NewCase]:
    rng = random.Random(seed)
    text = note(words, rng)
    for i in range(n):
        yield NewCase(
            f"{prefix}-{i}",
            "models:/bench/1",
            "1",
            text,
            ["uncertain"],
            predictions(text, n_predictions, rng),
        )


def fill(store: ReviewStore, source: Iterator[NewCase], batch: int = 5000) -> None:
    chunk: list[NewCase] = []
    for case in source:
        chunk.append(case)
        if len(chunk) == batch:
            store.enqueue(chunk)
            chunk = []
    if chunk:
        store.enqueue(chunk)


@contextmanager
def serving(store: ReviewStore) -> Iterator[str]:
    app = create_app(store, AppSettings(secret="bench-" + "x" * 40, lease=timedelta(minutes=5)))
    app.state.limiter.max_failures = 10**9
    sock_port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=sock_port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def login(base: str, name: str) -> tuple[httpx.Client, dict[str, str]]:
    client = httpx.Client(base_url=base, timeout=60)
    answer = client.post("/api/login", json={"name": name, "password": PASSWORD})
    answer.raise_for_status()
    return client, {"X-CSRF-Token": answer.json()["csrf_token"]}


def throughput(url: str, n_cases: int) -> dict[str, Any]:
    with ReviewStore(url) as store:
        for k in range(REVIEWERS):
            add_user(store, f"coder-{k}", "reviewer", PASSWORD, actor="bench")
        fill(store, cases(n_cases, 300, 10, seed=1, prefix="t"))
        submitted = [0] * REVIEWERS
        errors: list[str] = []
        with serving(store) as base:

            def work(k: int) -> None:
                client, headers = login(base, f"coder-{k}")
                while True:
                    lease = client.post("/api/cases/next", headers=headers)
                    if lease.status_code != 200:
                        errors.append(f"next {lease.status_code}")
                        return
                    if lease.json() is None:
                        return
                    case_id, token = lease.json()["case_id"], lease.json()["token"]
                    case = client.get(f"/api/cases/{case_id}").json()
                    verdicts = {
                        p["code"]: random.choice(["accept", "reject"]) for p in case["predictions"]
                    }
                    body = {"token": token, "verdicts": verdicts, "added": ["ICD10CM:R51.9"]}
                    answer = client.post(f"/api/cases/{case_id}/submit", json=body, headers=headers)
                    if answer.status_code == 200:
                        submitted[k] += 1
                    else:
                        errors.append(f"submit {answer.status_code}")

            threads = [threading.Thread(target=work, args=(k,)) for k in range(REVIEWERS)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
        done = store.count("done")
        with store.engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT count(*) FROM review_decisions").scalar()
    total = sum(submitted)
    return {
        "cases": total,
        "cases_per_s": total / elapsed,
        "decisions_per_s": (stored or 0) / elapsed,
        "errors": len(errors),
        "lost": (total != done) or (stored != total * 11),
    }


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def timed(call: Callable[[], Any], repeat: int) -> list[float]:
    call()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def case_page(url: str) -> dict[str, float]:
    with ReviewStore(url) as store:
        add_user(store, "reader", "reviewer", PASSWORD, actor="bench")
        store.enqueue(cases(1, 5000, 30, seed=2, prefix="big"))
        case_id = store.cases()[0].id
        with serving(store) as base:
            client, headers = login(base, "reader")
            client.post(f"/api/cases/{case_id}/claim", headers=headers).raise_for_status()

            def get() -> None:
                client.get(f"/cases/{case_id}").raise_for_status()

            http = timed(get, 100)
        db = timed(lambda: store.get(case_id), 100)
    return {"http_p95_ms": p95(http), "db_p95_ms": p95(db)}


def queue_page(url: str, n_cases: int) -> dict[str, float]:
    with ReviewStore(url) as store:
        add_user(store, "reader", "reviewer", PASSWORD, actor="bench")
        start = time.perf_counter()
        fill(store, cases(n_cases, 40, 4, seed=3, prefix="q"))
        fill_s = time.perf_counter() - start
        rng = random.Random(4)
        cursors = [None] + [f"{rng.random():.6f}:{rng.randrange(n_cases)}" for _ in range(20)]
        with serving(store) as base:
            client, _ = login(base, "reader")
            paths = [f"/queue?after={c}" if c else "/queue" for c in cursors]
            paths += ["/queue?code=ICD10CM:I10", "/queue?system=ICD10CM&reason=uncertain"]
            index = iter(range(10**9))

            def get() -> None:
                client.get(paths[next(index) % len(paths)]).raise_for_status()

            http = timed(get, 150)
        filt = queries.QueueFilter()
        db = timed(lambda: queries.queue_page(store, filt, cursors[1]), 150)
    return {"http_p95_ms": p95(http), "db_p95_ms": p95(db), "fill_s": fill_s}


def postgresql_url() -> Iterator[str]:
    path = Path(__file__).resolve().parents[1] / "tests" / "review" / "conftest.py"
    spec = importlib.util.spec_from_file_location("review_conftest", path)
    assert spec and spec.loader
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    bindir = helpers.postgres_bindir()
    if bindir is None:
        sys.exit("no PostgreSQL server binaries found")
    root = Path(tempfile.mkdtemp(prefix="autocode-pg-"))
    import os
    import shutil

    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    port = helpers.start_server(bindir, root)
    try:
        counter = iter(range(100))
        from sqlalchemy import create_engine, text

        def fresh() -> str:
            name = f"bench_{next(counter)}"
            admin = create_engine(
                f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))
            admin.dispose()
            return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"

        yield from iter(fresh, None)
    finally:
        helpers.run([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cases", type=int, default=100_000, help="queue size for the queue page")
    parser.add_argument("--throughput-cases", type=int, default=400)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                urls = iter(f"sqlite:///{tmp}/q{k}.db" for k in range(3))
                run(backend, urls, args)
            else:
                generator = postgresql_url()
                try:
                    run(backend, generator, args)
                finally:
                    generator.close()


def run(backend: str, urls: Iterator[str], args: argparse.Namespace) -> None:
    result = throughput(next(urls), args.throughput_cases)
    print(
        f"[{backend}] {REVIEWERS} reviewers: {result['cases_per_s']:.1f} cases/s, "
        f"{result['decisions_per_s']:.0f} code decisions/s over {result['cases']} cases; "
        f"errors {result['errors']}, lost decisions: {'YES' if result['lost'] else 'none'}"
    )
    page = case_page(next(urls))
    print(
        f"[{backend}] case page (5,000 words, 30 predictions): p95 {page['http_p95_ms']:.1f} ms "
        f"(target {TARGET_MS:.0f} ms: ratio {page['http_p95_ms'] / TARGET_MS:.2f}); "
        f"direct store read p95 {page['db_p95_ms']:.1f} ms"
    )
    queue = queue_page(next(urls), args.cases)
    print(
        f"[{backend}] queue page ({args.cases:,} open cases, filled in {queue['fill_s']:.0f} s): "
        f"p95 {queue['http_p95_ms']:.1f} ms (target {TARGET_MS:.0f} ms: ratio "
        f"{queue['http_p95_ms'] / TARGET_MS:.2f}); direct query p95 {queue['db_p95_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
