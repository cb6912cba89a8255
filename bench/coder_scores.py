"""CodiEsp dev scores of one cached CodiEsp Coder (`codiesp_coder.py`), e.g. the Spanish one
with and without terms mined from CodiEsp-X: ICD-10-CM micro-F1 and MAP at its tuned
thresholds, micro recall per training-frequency bucket (`0`: codes never in training,
all systems; the label space alone) and the open part's ICD-10-CM proposals and recall
of unseen gold codes. Peers: run it once per Coder.

    .venv/bin/python bench/coder_scores.py [--language es] [--coder-dir DIR --config FILE
        --set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autocode.config import shared_data_dir
from autocode.corpus.load import LoadOptions, load_notes
from autocode.decisions.coder import Coder
from autocode.metrics import json_compatible
from autocode.train.evaluation import evaluate_coder
from codiesp_coder import CONFIG, codiesp_coder_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "codiesp")
    parser.add_argument("--language", default="es", choices=("en", "es"))
    parser.add_argument("--config", type=Path, default=CONFIG, help="default: configs/tfidf.yaml")
    parser.add_argument("--coder-dir", type=Path, help="cache of a Coder of --config/--set")
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    args = parser.parse_args()

    coder = Coder.load(codiesp_coder_dir(args.language, args.set, args.coder_dir, args.config))
    options = LoadOptions(format="codiesp", splits=("dev",), language=args.language)
    table = load_notes(args.data, options).table
    report = evaluate_coder(
        coder, table.column("text").to_pylist(), table.column("codes").to_pylist()
    ).report
    icd10cm = report["per_system"]["ICD10CM"]
    scores = {
        "ICD10CM": {name: icd10cm[name] for name in ("micro_f1", "micro_precision", "map")}
        | {"micro_recall": icd10cm["micro_recall"]},
        "open_part_ICD10CM": {
            name: report["open_part"]["per_system"].get("ICD10CM", {}).get(name)
            for name in ("proposals", "proposal_precision", "unseen_recall")
        },
        "recall_per_bucket": {
            bucket: row["micro_recall"] for bucket, row in report.get("per_bucket", {}).items()
        },
    }
    print(json.dumps(json_compatible(scores), indent=2))


if __name__ == "__main__":
    main()
