#!/usr/bin/env bash
# The demo on embedded defaults: synthesise an archive, inspect it, prepare splits.
set -euo pipefail
OUT="${1:-demo-output}"
BIN=.venv/bin
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== 1. synthetic archive (2,000 notes, 5% bad rows to show the quarantine)"
$BIN/autocode data synth --out "$OUT/archive" --notes 2000 --seed 7 --bad-row-rate 0.05

echo "== 2. statistics"
$BIN/autocode data stats "$OUT/archive"

echo "== 3. canonical dataset with stratified, patient-grouped splits"
$BIN/autocode data prepare "$OUT/archive" --out "$OUT/prepared" --seed 7
