#!/usr/bin/env bash
# The model card's ablation tables (paper Tables 1/2 and 4) on the val split: every ablation model
# that weights/train_recipe.sh leaves (round 2's and each mask_ablation round's), through benchmarks/val_bench.sh, then one
# markdown table of mid-frame PSNR per val set (S->T, T->S, fused, refined).
# Usage: bash benchmarks/ablation_bench.sh [SHARED_DATA] [RUN_DIR] [OUT_DIR]
set -euo pipefail
here=$(dirname "$0")
data=${1:-../shared/data}
run=${2:-runs/default}
out=${3:-runs/ablation_bench}
rows=model_st,model_ts,model_fused,model_refined
models=(fusion_hr fusion_hr_1mask fusion_bicubic_blend joint_hr)
# the rounds with a mask_ablation stage in the recipe (read from it, so a new one needs no edit
# here): two masks, then one
for round in $(sed -n 's/^mask_ablation //p' "$here/../weights/train_recipe.sh"); do
  models+=("fusion_${round}_2mask" "fusion_${round}_1mask")
done
for name in "${models[@]}"; do
  [ -f "$out/$name/middlebury.json" ] && continue  # finished earlier
  bash "$here/val_bench.sh" "$data" "$out/$name" --model "$run/$name/model.safetensors" --methods "$rows"
done
python - "$out" "${models[@]}" <<'PY'
import json, sys
out, models = sys.argv[1], sys.argv[2:]
sets = ("videos", "ucf101", "middlebury")
print("| model | " + " | ".join(f"{s}: S→T / T→S / fused / refined" for s in sets) + " |")
print("|---|" + "---|" * len(sets))
for name in models:
    cells = []
    for s in sets:
        summary = {r["method"]: r for r in json.load(open(f"{out}/{name}/{s}.json"))["summary"]}
        cells.append(" / ".join(f"{summary[m]['mid_psnr']:.2f}" for m in ("model_st", "model_ts", "model_fused", "model_refined")))
    print(f"| {name} | " + " | ".join(cells) + " |")
PY
