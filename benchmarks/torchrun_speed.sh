#!/usr/bin/env bash
# torchrun on the CPU (docs/BENCHMARKS.md): 2 processes of 1 thread against 1 process of 1 thread
# and 1 process of 2 threads, on the first 24 frames of bigbuckbunny at 640x360, default model.
# Usage: bash benchmarks/torchrun_speed.sh   (stvsr installed; an otherwise idle machine)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$(mktemp -d)"
python -c "
import sys; sys.path.insert(0, '$repo/benchmarks'); import speed; from pathlib import Path
speed.make_clip(speed.DEFAULT_SOURCE, Path('clip.mp4'), 24, 640, 360)"
timed() { local label=$1; shift; local t0; t0=$(date +%s%N); "$@"; echo "$label: $(( ($(date +%s%N) - t0) / 1000000 )) ms"; }
timed "1 process x 1 thread (segments)" env OMP_NUM_THREADS=1 stvsr upscale clip.mp4 one.mkv --lossless --resume --segment-frames 6 -q
timed "2 processes x 1 thread (torchrun)" torchrun --standalone --nproc-per-node 2 -m stvsr_cli upscale clip.mp4 two.mkv --lossless --segment-frames 6 -q 2>/dev/null
timed "1 process x 2 threads (plain)" stvsr upscale clip.mp4 plain.mkv --lossless -q
python -c "
from stvsr_cli.video import read_frames
import hashlib
h = lambda p: [hashlib.sha256(f.tobytes()).hexdigest() for f, _ in read_frames(p)]
print('torchrun frames == one process of one thread:', h('one.mkv') == h('two.mkv'))"
