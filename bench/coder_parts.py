"""Notes as they are, coded part by part: where a Coder's time goes per note.

The parts are `bench/long_notes.py`'s, timed over CodiEsp dev notes (English) as they
are (all 250 by default; repeated beyond, where caches of words make the repeats cheaper),
each in one call after a warm-up on five training notes:
- `model`: the Coder's calibrated model (the peer: every Coder pays it);
- `open_part`: the open part's proposals (names found, contexts, sides, calibration);
- `term_rules`: the term rules' and backing terms' accepts;
- `unaffirmed`: the codes named only negated or inside longer names.

Each part's time is reported as notes/s and as a ratio to the model's in the same run.

    python bench/coder_parts.py --model DIR_OR_URI [--tracking-uri URI] [--notes 250]
        [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from codiesp_common import codiesp_notes  # bench/ is on the path
from long_notes import add_coder_arguments, coder_of, time_parts

WARM_UP_NOTES = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_coder_arguments(parser)
    parser.add_argument("--notes", type=int, default=250, help="dev notes, repeated as needed")
    args = parser.parse_args()
    coder = coder_of(args)
    warm_up = codiesp_notes(Path(args.data), "train", "en").texts[:WARM_UP_NOTES]
    time_parts(coder, warm_up)  # indexes and caches built once, on notes not timed
    dev = codiesp_notes(Path(args.data), "dev", "en").texts
    texts = [dev[k % len(dev)] for k in range(args.notes)]
    seconds = time_parts(coder, texts)
    report = {
        "notes": len(texts),
        "seconds": seconds,
        "notes_per_s": {part: len(texts) / s for part, s in seconds.items()},
        "over_model": {part: s / seconds["model"] for part, s in seconds.items()},
        "all_parts_notes_per_s": len(texts) / sum(seconds.values()),
    }
    print(json.dumps(report, indent=2) if args.json else table(len(texts), seconds))


def table(notes: int, seconds: dict[str, float]) -> str:
    model = seconds["model"]
    lines = [f"{notes} CodiEsp dev notes (English)"]
    lines += [
        f"{part:<11} {s:>7.2f}s {notes / s:>8.0f} notes/s {s / model:>5.2f}x the model"
        for part, s in seconds.items()
    ]
    lines.append(f"all parts {notes / sum(seconds.values()):>18.0f} notes/s")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
