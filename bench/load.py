"""Loading a synthetic Parquet note archive: autocode streaming against plain pandas.

Measures rows/s and peak memory for two archive sizes (default 20k and 200k notes).
Streaming should keep memory bounded: autocode's peak RSS should barely grow from the
small archive to the large one, while `pandas.read_parquet` holds the whole archive.

Variants, each run in its own fresh process so that its peak RSS (`VmHWM`) is its own:

- `autocode-tables`: `stream_note_tables`, canonical Arrow batches, as batch prediction
  reads an archive; each batch is dropped once counted.
- `autocode-notes`: `stream_notes`, one canonical note at a time, as `data stats` does.
- `pandas` (the peer): `pandas.read_parquet` of the whole archive directory.

The autocode variants validate every row (ids, text, code normalisation, duplicate ids);
pandas only decodes. Archives are written once with `write_synthetic_archive` and cached
under `bench/out/` (gitignored). Both sizes use the same part-file size, so the 20k/200k
comparison changes only the number of notes: a streaming reader's peak is set by one
Parquet row group (one part file here), which `--rows-per-file` varies.

Wall seconds give rows/s; CPU seconds (all threads of the process) are printed too,
since wall time is noisy on a shared machine.

    .venv/bin/python bench/load.py [--notes-small 20000] [--notes-large 200000] [--json]
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

OUT_DIR = Path(__file__).resolve().parent / "out"
SEED = 0
PEER = "pandas"
VARIANTS = ("autocode-tables", "autocode-notes", PEER)


@dataclass(frozen=True)
class Measurement:
    variant: str
    notes: int
    seconds: float
    cpu_seconds: float
    import_rss_mib: float  # interpreter and libraries, before any note is read
    peak_rss_mib: float

    @property
    def rows_per_second(self) -> float:
        return self.notes / self.seconds


# ----------------------------------------------------------------------------- readers


def autocode_tables(archive: Path) -> int:
    from autocode.corpus.load import LoadOptions, stream_note_tables
    from autocode.corpus.quarantine import LoadReport, Quarantine

    batches = stream_note_tables(archive, LoadOptions(), Quarantine(None), LoadReport())
    return sum(batch.num_rows for batch in batches)


def autocode_notes(archive: Path) -> int:
    from autocode.corpus.load import LoadOptions, stream_notes
    from autocode.corpus.quarantine import LoadReport, Quarantine

    notes = stream_notes(archive, LoadOptions(), Quarantine(None), LoadReport())
    return sum(1 for _ in notes)


def pandas_read_parquet(archive: Path) -> int:
    import pandas as pd

    return len(pd.read_parquet(archive))


READERS: dict[str, Callable[[Path], int]] = {
    "autocode-tables": autocode_tables,
    "autocode-notes": autocode_notes,
    PEER: pandas_read_parquet,
}
# Imported before the clock starts: import time is not loading time.
IMPORTS: dict[str, tuple[str, ...]] = {
    "autocode-tables": ("autocode.corpus.load",),
    "autocode-notes": ("autocode.corpus.load",),
    PEER: ("pandas", "pyarrow.parquet"),
}


# ----------------------------------------------------------------------------- measuring


def peak_rss_mib() -> float:
    """This process's peak resident memory, Linux `VmHWM`.

    Not `ru_maxrss`: Linux carries it across `exec`, so a child process would report
    its parent's peak whenever that is higher.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def measure_here(variant: str, archive: Path) -> Measurement:
    """Run one reader in this process; meaningful only in a fresh process."""
    for module in IMPORTS[variant]:
        __import__(module)
    import_rss = peak_rss_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    rows = READERS[variant](archive)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Measurement(variant, rows, wall, cpu, import_rss, peak_rss_mib())


def measure(variant: str, archive: Path, expected_rows: int) -> Measurement:
    """Run one reader in a fresh interpreter and read back its measurement."""
    command = [sys.executable, __file__, "--measure", variant, "--archive", str(archive)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} on {archive} failed:\n{completed.stderr}")
    measurement = Measurement(**json.loads(completed.stdout))
    if measurement.notes != expected_rows:
        raise RuntimeError(f"{variant} read {measurement.notes} rows, expected {expected_rows}")
    return measurement


def archive_of(n_notes: int, rows_per_file: int) -> Path:
    """The cached archive of `n_notes` synthetic notes, written on first use."""
    from autocode.corpus.synth import write_synthetic_archive

    target = OUT_DIR / f"synth-{n_notes}-seed{SEED}-parts{rows_per_file}"
    if target.is_dir():
        return target
    # Written beside the target, then renamed: an interrupted run leaves no half archive.
    partial = target.with_name(f"{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"writing {n_notes} synthetic notes to {target} ...", file=sys.stderr)
    write_synthetic_archive(partial, n_notes, SEED, rows_per_file=rows_per_file)
    partial.rename(target)
    return target


# ----------------------------------------------------------------------------- report


def ratios(results: list[Measurement], small: int, large: int) -> dict[str, float]:
    """Each autocode variant against pandas on the large archive, and large ÷ small."""
    at = {(m.variant, m.notes): m for m in results}
    peer = at[PEER, large]
    summary: dict[str, float] = {}
    for variant in VARIANTS:
        ours = at[variant, large]
        if variant != PEER:
            speed = ours.rows_per_second / peer.rows_per_second
            summary[f"{variant} rows/s ÷ pandas rows/s ({large} notes)"] = speed
            memory = ours.peak_rss_mib / peer.peak_rss_mib
            summary[f"{variant} peak RSS ÷ pandas peak RSS ({large} notes)"] = memory
        growth = ours.peak_rss_mib / at[variant, small].peak_rss_mib
        summary[f"{variant} peak RSS {large} ÷ {small} notes"] = growth
    return summary


def print_report(results: list[Measurement], summary: dict[str, float]) -> None:
    print(
        f"{'variant':<16} {'notes':>7} {'seconds':>8} {'CPU s':>6} {'rows/s':>8} "
        f"{'import MiB':>10} {'peak RSS MiB':>12}"
    )
    for m in results:
        print(
            f"{m.variant:<16} {m.notes:>7} {m.seconds:>8.2f} {m.cpu_seconds:>6.2f} "
            f"{m.rows_per_second:>8.0f} {m.import_rss_mib:>10.0f} {m.peak_rss_mib:>12.0f}"
        )
    print_ratios(summary)


def print_ratios(summary: dict[str, float]) -> None:
    print()
    width = max(len(name) for name in summary)
    for name, value in summary.items():
        print(f"{name:<{width}}  {value:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notes-small", type=int, default=20_000)
    parser.add_argument("--notes-large", type=int, default=200_000)
    parser.add_argument("--rows-per-file", type=int, default=10_000, help="Archive part size.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--measure", choices=VARIANTS, help=argparse.SUPPRESS)  # child
    parser.add_argument("--archive", type=Path, help=argparse.SUPPRESS)  # child
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asdict(measure_here(args.measure, args.archive))))
        return

    sizes = (args.notes_small, args.notes_large)
    archives = {n_notes: archive_of(n_notes, args.rows_per_file) for n_notes in sizes}
    results = [
        measure(variant, archives[n_notes], n_notes) for n_notes in sizes for variant in VARIANTS
    ]
    summary = ratios(results, *sizes)
    if args.json:
        rows = [{**asdict(m), "rows_per_second": m.rows_per_second} for m in results]
        print(json.dumps({"results": rows, "ratios": summary}, ensure_ascii=False))
    else:
        print_report(results, summary)


if __name__ == "__main__":
    main()
