"""Batch prediction end to end against the bare model: notes/s, evidence cost, peak memory.

The peer is `Coder.predict_proba` of the same TF-IDF Coder over the same texts, already
in memory (`bare`). Against it, `autocode predict`'s work end to end: read Parquet,
canonicalise, predict, route, write Parquet parts and the manifest (model load included).

Variants, each run in its own fresh process so that its peak RSS (`VmHWM`) is its own:

- `bare`: `predict_proba` over every text of the archive in one call (the peer).
- `local`: `predict_archive`, one process, no evidence spans.
- `local-evidence`: the same with evidence spans; measured on the small archive only,
  since spans cost several times the prediction itself.
- `local-2-workers`: `predict_archive` with `workers=2`, no evidence.
- `spark`: `predict_archive_spark` in Spark local mode (every core), no evidence. Its JVM
  and Python workers are other processes: its peak RSS is the driver's alone. Skipped
  when `java` is not on PATH.

Targets on 2 cores: `local` ≥ 1,000 notes/s and ≤ 1.3× the `bare` time on the large
archive; `local` peak RSS within 1.2× from the small archive to the large one.

Archives are `bench/load.py`'s (synthetic, seed 0, 200 codes, 10k-row files), cached in
`bench/out/`. The Coder is trained once with `fit_coder` on other synthetic notes (seed
1: the 130 most frequent codes are shared, the tail differs) and cached there too.

`--coder codiesp` times the recommended model instead: `configs/tfidf.yaml`'s
tfidf-lexicon Coder trained on CodiEsp (`bench/codiesp_coder.py`, cached), over an archive
of the CodiEsp notes (English, every split) repeated to the requested size.

Parts are the CLI's 1,000 notes, or fewer where the large archive would have under 20
(every variant and archive of a run uses the same size): with 5 parts, 2 workers could
never beat the 3 parts one of them codes. Each variant also reports its CPU seconds (its
pool workers' included). On a busy machine the wall-clock speed-up of `--workers 2`
says little (Linux's autogroup scheduling gives one session's processes one share of
the CPU, however many they are); CPU seconds near `local`'s say that the workers add no
work, so that on idle cores they scale.

Per Coder, a `serve` child also measures what a served model pays: the Coder's size on
disk, the seconds of the pyfunc's load (`Coder.load` and its warm-up), its first one-note
request (`predict_frame` with evidence, as the pyfunc answers it), the steady state after
it (p50 and p95 of 50 one-note requests, with evidence and without), and notes/s for
requests of 100 notes, with evidence and without.

    .venv/bin/python bench/predict.py [--coder demo|codiesp|all] [--notes 100000]
        [--small 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# bench/load.py: the same cached archives and the same peak-RSS reading.
from codiesp_coder import codiesp_coder_dir
from load import OUT_DIR, archive_of, peak_rss_mib, print_ratios

if TYPE_CHECKING:
    from autocode.decisions.coder import Coder

ROWS_PER_FILE = 10_000
BATCH_SIZE = 1_000  # the CLI's default part size
MIN_PARTS = 20  # a smaller archive is cut into smaller parts (not under MIN_BATCH_SIZE)
MIN_BATCH_SIZE = 100
TRAIN_NOTES, VALIDATION_NOTES, TRAIN_SEED = 4_000, 1_000, 1
CODER_DIR = OUT_DIR / f"predict-coder-{TRAIN_NOTES}-seed{TRAIN_SEED}"
RUNS_DIR = OUT_DIR / "predict-runs"
PEER = "bare"
VARIANTS = (PEER, "local", "local-evidence", "local-2-workers", "spark")
CODERS = ("demo", "codiesp")
SERVE_REQUESTS = 50
SERVE_BATCH, SERVE_BATCHES = 100, 5


@dataclass(frozen=True)
class Measurement:
    variant: str
    notes: int
    seconds: float
    import_rss_mib: float  # interpreter, libraries and (for bare) the texts, before the clock
    peak_rss_mib: float
    # User + system CPU of the process and its pool workers while the clock ran: what a
    # variant costs whatever else the machine runs (Spark's JVM and workers not counted).
    cpu_seconds: float

    @property
    def notes_per_second(self) -> float:
        return self.notes / self.seconds


# ----------------------------------------------------------------------------- the model

# Which Coder the variants load: set from `--coder` in this process and its children.
CHOSEN: dict[str, Any] = {"coder": "demo", "dir": "", "part_size": BATCH_SIZE}


def coder_dir() -> Path:
    """The Coder `--coder` names (the demo one, or the CodiEsp tfidf-lexicon one), or the
    one `--coder-dir` gives."""
    if CHOSEN["dir"]:
        return Path(CHOSEN["dir"])
    return codiesp_coder_dir() if CHOSEN["coder"] == "codiesp" else demo_coder_dir()


def demo_coder_dir() -> Path:
    """The cached demo Coder, trained on first use (about a minute)."""
    if CODER_DIR.is_dir():
        return CODER_DIR
    from autocode.config import TrainConfig
    from autocode.corpus.schema import NoteSet
    from autocode.corpus.synth import generate_notes
    from autocode.train.fitting import fit_coder

    print(f"training the benchmark Coder into {CODER_DIR} ...", file=sys.stderr)
    notes = list(generate_notes(TRAIN_NOTES + VALIDATION_NOTES, TRAIN_SEED))
    train, validation = notes[:TRAIN_NOTES], notes[TRAIN_NOTES:]
    config = TrainConfig.model_validate(
        {
            "name": "bench-predict",
            "data": {"source": "synthetic"},
            "labels": {"min_count": 3},
            "model": {"name": "tfidf", "params": {"min_df": 2, "epochs": 5}},
            "routing": {"target_precision": 0.95, "target_recall": 0.8},
        }
    )
    fitted = fit_coder(
        config,
        NoteSet([n.text for n in train], [n.codes for n in train]),
        NoteSet([n.text for n in validation], [n.codes for n in validation]),
    )
    # Saved beside the target, then renamed: an interrupted run leaves no half Coder.
    partial = CODER_DIR.with_name(f"{CODER_DIR.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    fitted.coder.save(partial)
    partial.rename(CODER_DIR)
    return CODER_DIR


def codiesp_archive_of(n_notes: int) -> Path:
    """CodiEsp's notes (English, every split) repeated to `n_notes`, cached as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from autocode.config import shared_data_dir
    from autocode.corpus.load import LoadOptions, load_notes
    from autocode.corpus.schema import NOTE_SCHEMA

    target = OUT_DIR / f"codiesp-{n_notes}-parts{ROWS_PER_FILE}"
    if target.is_dir():
        return target
    source = shared_data_dir() / "codiesp"
    texts = load_notes(source, LoadOptions(format="codiesp")).table.column("text").to_pylist()
    partial = target.with_name(f"{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for part, start in enumerate(range(0, n_notes, ROWS_PER_FILE)):
        rows = range(start, min(start + ROWS_PER_FILE, n_notes))
        columns = {
            "note_id": [f"codiesp-{i}" for i in rows],
            "text": [texts[i % len(texts)] for i in rows],
            "codes": [[] for _ in rows],
        }
        table = pa.Table.from_pydict(columns, schema=pa.schema(list(NOTE_SCHEMA)[:3]))
        pq.write_table(table, partial / f"notes-{part:05d}.parquet")
    partial.rename(target)
    return target


def notes_archive(n_notes: int) -> Path:
    if CHOSEN["coder"] == "codiesp":
        return codiesp_archive_of(n_notes)
    return archive_of(n_notes, ROWS_PER_FILE)


# ----------------------------------------------------------------------------- variants


def part_size(large: int) -> int:
    """The CLI's part size, or less when the large archive would have under `MIN_PARTS`:
    with 5 parts, 2 workers could not go faster than the 3 parts one of them codes.
    Every variant and archive of a run uses it, so that their time and memory compare."""
    return max(MIN_BATCH_SIZE, min(BATCH_SIZE, large // MIN_PARTS))


def bare(archive: Path, output: Path) -> Callable[[], int]:
    """Load the Coder and the texts now; the clock covers `predict_proba` alone."""
    import pyarrow.parquet as pq

    from autocode.decisions.coder import Coder

    coder = Coder.load(coder_dir())
    texts = pq.read_table(archive, columns=["text"])["text"].to_pylist()
    return lambda: coder.predict_proba(texts).shape[0]


def batch(workers: int, evidence: bool) -> Callable[[Path, Path], Callable[[], int]]:
    def prepare(archive: Path, output: Path) -> Callable[[], int]:
        from autocode.corpus.load import LoadOptions
        from autocode.infer.batch import BatchSettings, predict_archive

        settings = BatchSettings(CHOSEN["part_size"], workers, evidence, queue_url=None)
        model = str(coder_dir())
        return lambda: predict_archive(model, archive, output, LoadOptions(), settings).coded

    return prepare


def spark(archive: Path, output: Path) -> Callable[[], int]:
    from autocode.corpus.load import LoadOptions
    from autocode.infer.batch import BatchSettings
    from autocode.infer.spark import predict_archive_spark

    settings = BatchSettings(CHOSEN["part_size"], evidence=False, queue_url=None)
    model = str(coder_dir())
    return lambda: predict_archive_spark(model, archive, output, LoadOptions(), settings).coded


PREPARE: dict[str, Callable[[Path, Path], Callable[[], int]]] = {
    PEER: bare,
    "local": batch(workers=1, evidence=False),
    "local-evidence": batch(workers=1, evidence=True),
    "local-2-workers": batch(workers=2, evidence=False),
    "spark": spark,
}


# ----------------------------------------------------------------------------- measuring


def measure_here(variant: str, archive: Path, output: Path) -> Measurement:
    """Run one variant in this process; meaningful only in a fresh process."""
    run = PREPARE[variant](archive, output)
    import_rss = peak_rss_mib()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    notes = run()
    seconds = time.perf_counter() - started
    used = cpu_seconds() - cpu_before
    return Measurement(variant, notes, seconds, import_rss, peak_rss_mib(), used)


def cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have ended."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(variant: str, n_notes: int) -> Measurement:
    """Run one variant in a fresh interpreter on the archive of `n_notes` notes."""
    archive = notes_archive(n_notes)
    output = RUNS_DIR / f"{variant}-{n_notes}"
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, __file__, *coder_args(), "--measure", variant]
    command += ["--archive", str(archive), "--output", str(output)]
    print(f"{variant} on {n_notes} notes ...", file=sys.stderr)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    shutil.rmtree(output, ignore_errors=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} on {archive} failed:\n{completed.stderr[-5000:]}")
    measurement = Measurement(**json.loads(completed.stdout.strip().splitlines()[-1]))
    if measurement.notes != n_notes:
        raise RuntimeError(f"{variant} coded {measurement.notes} notes, expected {n_notes}")
    return measurement


def coder_args() -> list[str]:
    """The Coder choice and the part size, for a child process."""
    choice = ["--coder", CHOSEN["coder"], "--coder-dir", CHOSEN["dir"]]
    return [*choice, "--part-size", str(CHOSEN["part_size"])]


@dataclass(frozen=True)
class Serving:
    """What a served Coder pays: on disk, to load, for its first request and after.

    One-note requests with evidence (the pyfunc's default) and without; then requests of
    `SERVE_BATCH` notes, as notes per second.
    """

    size_mib: float
    load_seconds: float
    first_request_seconds: float
    steady_p50_seconds: float
    steady_p95_seconds: float
    plain_p50_seconds: float
    plain_p95_seconds: float
    batch_notes_per_second: float
    plain_batch_notes_per_second: float


def serve_here() -> Serving:
    """Load the Coder and answer requests as the pyfunc does; in a fresh process."""
    import pyarrow.parquet as pq

    from autocode.infer.pyfunc import load_for_serving

    directory = coder_dir()
    texts = pq.read_table(notes_archive(1_000), columns=["text"])["text"].to_pylist()
    size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 2**20
    started = time.perf_counter()
    coder = load_for_serving(directory)  # as the pyfunc's load_context loads it
    loaded = time.perf_counter()
    one_note = [texts[k % len(texts) : k % len(texts) + 1] for k in range(SERVE_REQUESTS + 1)]
    first, *steady = request_seconds(coder, one_note, evidence=True)
    plain = request_seconds(coder, one_note[1:], evidence=False)
    starts = range(0, SERVE_BATCH * SERVE_BATCHES, SERVE_BATCH)
    batches = [texts[k : k + SERVE_BATCH] for k in starts]
    notes = sum(len(batch) for batch in batches)
    return Serving(
        size,
        loaded - started,
        first,
        *percentiles(steady),
        *percentiles(plain),
        notes / sum(request_seconds(coder, batches, evidence=True)),
        notes / sum(request_seconds(coder, batches, evidence=False)),
    )


def request_seconds(coder: Coder, requests: list[list[str]], *, evidence: bool) -> list[float]:
    """Seconds of each request, answered by `predict_frame` as the pyfunc answers it."""
    import pandas as pd

    from autocode.infer.pyfunc import predict_frame

    seconds = []
    for k, texts in enumerate(requests):
        frame = pd.DataFrame({"note_id": [f"{k}-{i}" for i in range(len(texts))], "text": texts})
        before = time.perf_counter()
        predict_frame(coder, frame, evidence=evidence)
        seconds.append(time.perf_counter() - before)
    return seconds


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95."""
    import numpy as np

    return float(np.percentile(seconds, 50)), float(np.percentile(seconds, 95))


def measure_serving() -> Serving:
    command = [sys.executable, __file__, *coder_args(), "--serve"]
    print("serve ...", file=sys.stderr)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"serve failed:\n{completed.stderr[-5000:]}")
    return Serving(**json.loads(completed.stdout.strip().splitlines()[-1]))


def plan(small: int, large: int) -> list[tuple[str, int]]:
    runs = [(PEER, small), (PEER, large), ("local", small), ("local", large)]
    runs += [("local-evidence", small), ("local-2-workers", large)]
    if shutil.which("java") is None:
        print("java not found: the spark variant is skipped", file=sys.stderr)
    else:
        runs.append(("spark", large))
    return runs


# ----------------------------------------------------------------------------- report


def ratios(
    results: list[Measurement], small: int, large: int, serving: Serving
) -> dict[str, float]:
    at = {(m.variant, m.notes): m for m in results}
    local, peer = at["local", large], at[PEER, large]
    summary = {
        f"local notes/s ({large} notes; target >= 1000)": local.notes_per_second,
        f"local s ÷ bare s ({large} notes; target <= 1.3)": local.seconds / peer.seconds,
        f"local s ÷ bare s ({small} notes)": at["local", small].seconds / at[PEER, small].seconds,
        f"local-evidence s ÷ bare s ({small} notes)": (
            at["local-evidence", small].seconds / at[PEER, small].seconds
        ),
        f"local-evidence notes/s ÷ local notes/s ({small} notes; target >= 0.6)": (
            at["local", small].seconds / at["local-evidence", small].seconds
        ),
        f"local peak RSS {large} ÷ {small} notes (target <= 1.2)": (
            local.peak_rss_mib / at["local", small].peak_rss_mib
        ),
        f"local s ÷ local-2-workers s ({large} notes): speed-up (target >= 1.6)": (
            local.seconds / at["local-2-workers", large].seconds
        ),
        # Near 1 when the workers add no work (no second load, no copies): then on idle
        # cores the speed-up approaches the number of workers.
        f"local-2-workers CPU s ÷ local CPU s ({large} notes)": (
            at["local-2-workers", large].cpu_seconds / local.cpu_seconds
        ),
    }
    if ("spark", large) in at:
        summary[f"spark s ÷ local s ({large} notes)"] = at["spark", large].seconds / local.seconds
    summary["serve: first request s ÷ steady p50 s (target <= 2)"] = (
        serving.first_request_seconds / serving.steady_p50_seconds
    )
    summary[f"serve {SERVE_BATCH}-note requests: evidence notes/s ÷ plain notes/s"] = (
        serving.batch_notes_per_second / serving.plain_batch_notes_per_second
    )
    return summary


def print_report(results: list[Measurement], summary: dict[str, float], serving: Serving) -> None:
    ms = 1000
    print(
        f"Coder {CHOSEN['coder']}: {serving.size_mib:.0f} MiB on disk, loads in "
        f"{serving.load_seconds:.2f} s; one-note request with evidence: first "
        f"{serving.first_request_seconds * ms:.0f} ms, then p50 "
        f"{serving.steady_p50_seconds * ms:.0f} ms, p95 {serving.steady_p95_seconds * ms:.0f} ms; "
        f"without evidence: p50 {serving.plain_p50_seconds * ms:.0f} ms, p95 "
        f"{serving.plain_p95_seconds * ms:.0f} ms; {SERVE_BATCH}-note requests: "
        f"{serving.batch_notes_per_second:.0f} notes/s with evidence, "
        f"{serving.plain_batch_notes_per_second:.0f} without"
    )
    print(
        f"{'variant':<16} {'notes':>7} {'seconds':>8} {'notes/s':>8} {'CPU s':>7} "
        f"{'import MiB':>10} {'peak RSS MiB':>12}"
    )
    for m in results:
        print(
            f"{m.variant:<16} {m.notes:>7} {m.seconds:>8.2f} {m.notes_per_second:>8.0f} "
            f"{m.cpu_seconds:>7.2f} {m.import_rss_mib:>10.0f} {m.peak_rss_mib:>12.0f}"
        )
    print_ratios(summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notes", type=int, default=100_000, help="The large archive.")
    parser.add_argument("--small", type=int, default=10_000, help="The small archive.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument(
        "--coder", choices=(*CODERS, "all"), default="demo", help="The Coder to time, or all."
    )
    parser.add_argument(
        "--coder-dir", default="", help="A saved Coder to time instead, on --coder's notes."
    )
    parser.add_argument("--part-size", type=int, help=argparse.SUPPRESS)  # child
    parser.add_argument("--measure", choices=VARIANTS, help=argparse.SUPPRESS)  # child
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # child
    parser.add_argument("--archive", type=Path, help=argparse.SUPPRESS)  # child
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)  # child
    args = parser.parse_args()
    if args.coder == "all" and args.coder_dir:
        parser.error("--coder-dir names one Coder: give --coder demo or codiesp with it")
    CHOSEN["coder"], CHOSEN["dir"] = args.coder, args.coder_dir
    CHOSEN["part_size"] = args.part_size or part_size(args.notes)
    if args.measure:
        print(json.dumps(asdict(measure_here(args.measure, args.archive, args.output))))
        return
    if args.serve:
        print(json.dumps(asdict(serve_here())))
        return

    payloads = {}
    for coder in CODERS if args.coder == "all" else (args.coder,):
        CHOSEN["coder"] = coder
        payloads[coder] = time_coder(args.small, args.notes, report=not args.json)
    if args.json:
        only = payloads if args.coder == "all" else payloads[args.coder]
        print(json.dumps(only, ensure_ascii=False))


def time_coder(small: int, large: int, *, report: bool) -> dict[str, Any]:
    """Every variant and the serving figures of the chosen Coder; printed if `report`."""
    coder_dir()  # trained once, before any clock
    serving = measure_serving()
    results = [measure(variant, n_notes) for variant, n_notes in plan(small, large)]
    summary = ratios(results, small, large, serving)
    if report:
        print_report(results, summary, serving)
        print()
    rows = [{**asdict(m), "notes_per_second": m.notes_per_second} for m in results]
    return {"results": rows, "serving": asdict(serving), "ratios": summary}


if __name__ == "__main__":
    main()
