#!/usr/bin/env bash
# Generates the evaluation sets with fusediff (1,000 tiles per setting: 200 per class, the
# same seeds in every setting) and scores them with evaluate.py. Needs the built package
# (npm run build), the dataset and the classifier (classifier.py).
#   bash training/eval_models.sh [OUT_DIR]     (default /work/fusediff-train/eval)
# Extra settings can be appended as NAME=ARGS pairs through EXTRA, e.g. the int8 student:
#   EXTRA='student 1-step int8=--model ../models/tiles32 --sampler consistency --steps 1 --dtype int8'
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-/work/fusediff-train/eval}
mkdir -p "$out"
teacher=../models/tiles32-teacher
student=../models/tiles32
settings=(
  "teacher DDIM-50|--model $teacher --sampler ddim --steps 50 --guidance 2"
  "teacher DDIM-10|--model $teacher --sampler ddim --steps 10 --guidance 2"
  "student 1-step|--model $student --sampler consistency --steps 1"
  "student 2-step|--model $student --sampler consistency --steps 2"
)
if [ -n "${EXTRA:-}" ]; then settings+=("${EXTRA/=/|}"); fi
specs=()
for s in "${settings[@]}"; do
  name=${s%%|*}
  args=${s#*|}
  file=$out/$(echo "$name" | tr ' ' '_' | tr -cd 'A-Za-z0-9_-')
  # shellcheck disable=SC2086  # args is a flag list
  node generate_tiles.mjs $args --per-class 200 --seed 1000 --out "$file"
  specs+=("$name=$file")
done
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} /usr/bin/python3 evaluate.py --json "$out/results.json" "${specs[@]}"
