"""The CodiEsp Coder of `configs/tfidf.yaml` (tfidf-lexicon), trained once and cached.

Trained as `autocode train` trains it (`fit_coder` with the config's code knowledge, on
CodiEsp train, decisions cross-fitted), saved under `bench/out/` (gitignored), for the
benchmarks that time the recommended model (`bench/predict.py --coder codiesp`).

    .venv/bin/python bench/codiesp_coder.py   # trains it if it is not cached yet
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = Path(__file__).resolve().parent / "out"
CODIESP_CODER_DIR = OUT_DIR / "codiesp-coder"
CONFIG = REPO / "configs" / "tfidf.yaml"


def codiesp_coder_dir() -> Path:
    """The cached CodiEsp Coder, trained on first use (several minutes on 2 cores)."""
    if CODIESP_CODER_DIR.is_dir():
        return CODIESP_CODER_DIR
    from autocode.config import load_config
    from autocode.knowledge import CodeKnowledge
    from autocode.train.data import load_experiment_data
    from autocode.train.fitting import fit_coder

    print(f"training the CodiEsp Coder into {CODIESP_CODER_DIR} ...", file=sys.stderr)
    config = load_config(CONFIG)
    data = load_experiment_data(config.data, config.seed)
    knowledge = CodeKnowledge(config.codes.sources())
    coder = fit_coder(config, data.train, data.validation, knowledge=knowledge).coder
    # Saved beside the target, then renamed: an interrupted run leaves no half Coder.
    partial = CODIESP_CODER_DIR.with_name(f"{CODIESP_CODER_DIR.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    coder.save(partial)
    partial.rename(CODIESP_CODER_DIR)
    return CODIESP_CODER_DIR


if __name__ == "__main__":
    print(codiesp_coder_dir())
