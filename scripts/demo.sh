#!/usr/bin/env bash
# The demo on embedded defaults: synthesise an archive, inspect it, prepare splits,
# train and register the TF-IDF Coder in MLflow, evaluate the registered model, then
# batch-code the archive with routing to a review queue.
set -euo pipefail
OUT="${1:-demo-output}"
BIN=.venv/bin
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== 1. synthetic archive (3,000 notes, 5% bad rows to show the quarantine)"
$BIN/autocode data synth --out "$OUT/archive" --notes 3000 --seed 7 --bad-row-rate 0.05

echo "== 2. statistics"
$BIN/autocode data stats "$OUT/archive"

echo "== 3. canonical dataset with stratified, patient-grouped splits"
$BIN/autocode data prepare "$OUT/archive" --out "$OUT/prepared" --seed 7

echo "== 4. train, calibrate, tune thresholds, evaluate on test, log and register in MLflow"
$BIN/autocode train --config configs/demo.yaml --set "data.source=$OUT/prepared/notes.parquet" --json \
    > "$OUT/train.json"
MODEL_URI=$($BIN/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_uri"])' \
    "$OUT/train.json")
echo "registered: $MODEL_URI"

echo "== 5. evaluate the registered model on the prepared test split"
$BIN/autocode evaluate --model "$MODEL_URI" --data "$OUT/prepared/notes.parquet" --split test

echo "== 6. batch-code the whole archive: Parquet parts, routing, review queue (resumable)"
$BIN/autocode predict --model "$MODEL_URI" --input "$OUT/archive" --output "$OUT/coded" \
    --queue "sqlite:///$OUT/review-queue.db"

echo "== 7. reviewer app: a demo reviewer with a generated password"
$BIN/autocode review migrate --db "sqlite:///$OUT/review-queue.db"
DEMO_PASSWORD=$($BIN/python -c 'import secrets; print(secrets.token_urlsafe(12))')
# The password goes through the environment, never the command line.
AUTOCODE_REVIEW_PASSWORD="$DEMO_PASSWORD" $BIN/autocode review add-user demo --role admin \
    --db "sqlite:///$OUT/review-queue.db"
(umask 077 && printf '%s\n' "$DEMO_PASSWORD" > "$OUT/demo-password.txt")

echo
echo "MLflow UI: $BIN/mlflow ui --backend-store-uri sqlite:///$(pwd)/mlflow.db  (then open http://127.0.0.1:5000)"
echo "Reviewer app: $BIN/autocode review serve --db sqlite:///$OUT/review-queue.db"
echo "  then open http://127.0.0.1:8000/login as user 'demo', password: $DEMO_PASSWORD"
echo "  (also in $OUT/demo-password.txt; export reviewed labels with"
echo "   $BIN/autocode review export --db sqlite:///$OUT/review-queue.db --out $OUT/reviewed.parquet)"
