"""Does a batch job's memory grow with the archive? Resident memory by parts written.

`autocode predict`'s work (`predict_archive`, one process, no evidence) over synthetic
archives of `--notes` notes (`bench/load.py`'s, seed 0, 10,000-row files of one row group
each), with the benchmark demo Coder of `bench/predict.py` (or `--coder-dir`). A thread
samples this process's resident memory (`VmRSS`) every 0.25 s with the number of parts
written; the report holds the largest sample per part, for each archive size in one run:
memory that leaks climbs with the parts, memory that is bounded levels off.

    python bench/batch_memory.py [--notes 5000,40000] [--coder-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from load import OUT_DIR, archive_of  # bench/ is on the path
from predict import BATCH_SIZE, ROWS_PER_FILE, demo_coder_dir

SAMPLE_S = 0.25


def resident_mib() -> float:
    """This process's resident memory now, Linux `VmRSS` (`load.peak_rss_mib`: its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmRSS in /proc/self/status")


def rss_by_part(n_notes: int, coder_dir: Path) -> dict[int, float]:
    """Largest resident MiB seen while each number of parts was written (run it in a
    fresh process: what an earlier job left allocated would count)."""
    from autocode.corpus.load import LoadOptions
    from autocode.infer.batch import BatchSettings, predict_archive

    archive = archive_of(n_notes, ROWS_PER_FILE)
    output = OUT_DIR / f"batch-memory-{n_notes}"
    shutil.rmtree(output, ignore_errors=True)
    largest: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            parts = len(list(output.glob("part-*.parquet"))) if output.exists() else 0
            largest[parts] = max(largest.get(parts, 0.0), resident_mib())
            time.sleep(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    settings = BatchSettings(BATCH_SIZE, workers=1, evidence=False, queue_url=None)
    predict_archive(str(coder_dir), archive, output, LoadOptions(), settings)
    done.set()
    sampler.join()
    return dict(sorted(largest.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notes", default="5000,40000", help="archive sizes, comma-separated")
    parser.add_argument("--coder-dir", type=Path, help="a saved Coder (default: the demo's)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one size, this process
    args = parser.parse_args()
    coder_dir = args.coder_dir or demo_coder_dir()
    if args.child:
        print(json.dumps(rss_by_part(args.child, coder_dir)))
        return
    report = {}
    for size in (int(n) for n in args.notes.split(",")):
        command = [sys.executable, __file__, "--child", str(size), "--coder-dir", str(coder_dir)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        by_part = {int(k): v for k, v in json.loads(result.stdout).items()}
        report[size] = {
            "peak_mib": max(by_part.values()),
            "first_part_mib": by_part.get(1, 0.0),
            "last_part_mib": by_part[max(by_part)],
            "by_part": by_part,
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for size, result in report.items():
        print(
            f"{size:>7} notes: peak {result['peak_mib']:.0f} MiB, after part 1 "
            f"{result['first_part_mib']:.0f}, after the last {result['last_part_mib']:.0f}"
        )


if __name__ == "__main__":
    main()
