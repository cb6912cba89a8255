"""The CodiEsp Coder of `configs/tfidf.yaml` (tfidf-lexicon), trained once and cached.

Trained as `autocode train` trains it (`fit_coder` with the config's code knowledge, on
CodiEsp train, decisions cross-fitted), saved under `bench/out/` (gitignored), for the
benchmarks that time the recommended model (`bench/predict.py --coder codiesp`). The
Spanish one (`data.language=es`, the originals whose character offsets CodiEsp-X gives)
is what `bench/evidence.py` scores.

    .venv/bin/python bench/codiesp_coder.py [es]  # trains it if it is not cached yet
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = Path(__file__).resolve().parent / "out"
CODIESP_CODER_DIRS = {"en": OUT_DIR / "codiesp-coder", "es": OUT_DIR / "codiesp-coder-es"}
CONFIG = REPO / "configs" / "tfidf.yaml"


def codiesp_coder_dir(
    language: str = "en",
    overrides: Sequence[str] = (),
    target: Path | None = None,
    config_file: Path = CONFIG,
) -> Path:
    """The cached CodiEsp Coder of notes in `language` (en, es), trained on first use
    (several minutes on 2 cores). `overrides` (`key=value`, as `--set`) or another
    `config_file` change the config; a Coder trained so is cached in `target`, which
    they then require."""
    if language not in CODIESP_CODER_DIRS:
        raise ValueError(f"language {language!r} not one of {sorted(CODIESP_CODER_DIRS)}")
    if (overrides or config_file != CONFIG) and target is None:
        raise ValueError("a Coder of another config needs its own cache directory")
    target = target or CODIESP_CODER_DIRS[language]
    if target.is_dir():
        return target
    from autocode.config import load_config
    from autocode.knowledge import CodeKnowledge
    from autocode.train.data import load_experiment_data
    from autocode.train.fitting import fit_coder

    print(f"training the CodiEsp Coder into {target} ...", file=sys.stderr)
    config = load_config(config_file, [f"data.language={language}", *overrides])
    data = load_experiment_data(config.data, config.seed)
    knowledge = CodeKnowledge(config.codes.sources(language=config.data.language))
    coder = fit_coder(config, data.train, data.validation, knowledge=knowledge).coder
    # Saved beside the target, then renamed: an interrupted run leaves no half Coder.
    partial = target.with_name(f"{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    coder.save(partial)
    partial.rename(target)
    return target


if __name__ == "__main__":
    print(codiesp_coder_dir(*sys.argv[1:2]))
