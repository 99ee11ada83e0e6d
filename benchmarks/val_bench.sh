#!/usr/bin/env bash
# Quality on the val split of shared/data (never used for training), as in docs/BENCHMARKS.md
# and weights/README.md. Usage: bash benchmarks/val_bench.sh [SHARED_DATA] [OUT_DIR] [extra bench options]
set -euo pipefail
data=$(realpath "${1:-../shared/data}")
out=${2:-runs/val_bench}
shift $(( $# < 2 ? $# : 2 ))
mkdir -p "$out/videos" "$out/ucf101"
for f in carphone_pristine realshort; do ln -sfn "$data/clips/$f.mp4" "$out/videos/$f.mp4"; done
for i in $(seq 15 21); do ln -sfn "$data/frames/ucf101_triplets_adacof/$i" "$out/ucf101/$i"; done
stvsr bench --dataset videos --data "$out/videos" --max-frames 21 --json "$out/videos.json" --markdown "$out/videos.md" -q "$@"
stvsr bench --dataset ucf101 --data "$out/ucf101" --json "$out/ucf101.json" --markdown "$out/ucf101.md" -q "$@"
stvsr bench --dataset middlebury --data "$data/frames/middlebury" --json "$out/middlebury.json" --markdown "$out/middlebury.md" -q "$@"
