"""Speed and memory of `stvsr upscale`, against the classical pipeline, on this machine.

Usage: python benchmarks/speed.py [--source CLIP] [--frames 50] [--model NAME_OR_PATH ...] [--json OUT.json]
                                  [--skip-4k] [--compile]

Measures, each in a fresh process where memory matters:
* end to end: `stvsr upscale` with defaults (and each further `--model`) on a 640x360 clip vs the
  classical pipeline (PyAV decode -> ffmpeg minterpolate (MCI) -> lanczos 2x -> libx264 encode,
  same x264 settings), all in one run, so the ratios compare; where `--precision auto` is not
  fp32 on this machine (bf16 on a CPU with native bf16), each model also with `--precision fp32`;
* by stage: decode alone, model alone, encode alone (same clip);
* the model's FLOPs per input frame (torch's FlopCounterMode), its achieved GFLOP/s, and this
  machine's conv2d throughput (64->64 3x3, the model's dominant op) in the same dtype as the ceiling;
* a floor: the model's own convolutions (one keyframe + one pair), each timed alone on its shapes
  and dtype, summed, and the end-to-end ratio that floor alone would give (nothing is faster);
* with --compile: torch.compile's compile time and steady-state time per pair against eager;
* peak RSS for a 31- and a 91-frame 320x180 clip (must be flat in length);
* peak RSS and time for 1080p -> 4K on the CPU.
Everything but the end-to-end rows is for the first model (the bundled default unless given).
Prints a Markdown report (and writes JSON with --json). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "clips" / "bigbuckbunny.mp4"


def make_clip(source: Path, dst: Path, frames: int, width: int, height: int) -> Path:
    """The first ``frames`` frames of ``source`` scaled to ``width x height`` (x264 CRF 12)."""
    with av.open(str(source)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or Fraction(25)
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.options = {"crf": "12", "preset": "fast"}
        n = 0
        while n < frames:  # loop the source if it is shorter than asked
            inp.seek(0)
            for frame in inp.decode(vin):
                if n >= frames:
                    break
                small = frame.reformat(width=width, height=height, format="yuv420p", interpolation="LANCZOS")
                small.pts, small.time_base = n, 1 / rate
                out.mux(vout.encode(small))
                n += 1
        out.mux(vout.encode(None))
    return dst


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    """Native bfloat16 arithmetic: AVX-512 BF16 or AMX-BF16 (Linux flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# Runs a command and prints its own peak RSS in KiB. Started as a small process of its own, so
# that the peak it reads is the command's alone: on Linux a child's ru_maxrss also counts the
# memory of the process that forked it (at the fork), and this script grows to gigabytes.
_MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; returns (wall seconds, peak RSS MiB of ``cmd``'s process)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-500:]}")
    return wall, int(proc.stdout.split()[-1]) / 1024


def stvsr_cmd(src: Path, dst: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stvsr_cli", "upscale", str(src), str(dst), "--overwrite", "-q", *extra]


def classical_pipeline(src: Path, dst: Path, crf: int = 18, preset: str = "medium") -> None:
    """PyAV decode -> minterpolate (MCI) -> lanczos 2x -> libx264, as a user would chain ffmpeg."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate
        w, h = vin.codec_context.width, vin.codec_context.height
        graph = av.filter.Graph()
        chain = [
            graph.add_buffer(template=vin),
            graph.add("minterpolate", f"fps={2 * rate}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"),
            graph.add("scale", f"{2 * w}:{2 * h}:flags=lanczos"),
            graph.add("buffersink"),
        ]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        vout = out.add_stream("libx264", rate=2 * rate)
        vout.width, vout.height, vout.pix_fmt = 2 * w, 2 * h, "yuv420p"
        vout.options = {"crf": str(crf), "preset": preset}

        def drain():
            while True:
                try:
                    frame = graph.vpull()
                except (av.BlockingIOError, av.EOFError):
                    return
                frame.pict_type = av.video.frame.PictureType.NONE
                out.mux(vout.encode(frame))

        for frame in inp.decode(vin):
            graph.vpush(frame)
            drain()
        graph.vpush(None)
        drain()
        out.mux(vout.encode(None))


def auto_precision() -> str:
    from stvsr_cli.pipeline import precision_name, resolve_dtype

    return precision_name(resolve_dtype("auto", torch.device("cpu")))


def stage_times(clip: Path, model_name: str | None) -> dict:
    """Decode alone, model alone (frames preloaded) and encode alone, in this process."""
    from stvsr_cli.pipeline import Upscaler
    from stvsr_cli.video import EncodeSettings, VideoWriter, probe, read_frames
    from stvsr_cli.weights import load_model

    t = time.perf_counter()
    frames = [rgb for rgb, _ in read_frames(clip)]
    decode = time.perf_counter() - t
    upscaler = Upscaler(load_model(model_name), "cpu", "auto")
    list(upscaler.run(frames[:2]))  # warm-up
    t = time.perf_counter()
    outputs = list(upscaler.run(frames))
    model = time.perf_counter() - t
    info = probe(clip)
    h, w = outputs[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        writer = VideoWriter(Path(tmp) / "enc.mp4", info, w, h, EncodeSettings())
        t = time.perf_counter()
        for i, frame in enumerate(outputs):
            writer.write(frame, i)
        writer.close()
        encode = time.perf_counter() - t
    return {
        "decode_s": decode,
        "model_s": model,
        "encode_s": encode,
        "input_frames": len(frames),
        "output_frames": len(outputs),
        "lr_size": [frames[0].shape[1], frames[0].shape[0]],
        "precision": upscaler.precision,
    }


def model_flops_per_input_frame(width: int, height: int, model_name: str | None) -> float:
    """FLOPs of one keyframe upscale + one pair interpolation at this LR size (steady state)."""
    from torch.utils.flop_counter import FlopCounterMode

    from stvsr_cli.weights import load_model

    model = load_model(model_name)
    m, ms = model.size_multiple, int(getattr(model.spatial, "size_multiple", 1))
    h, w = -(-height // m) * m, -(-width // m) * m
    l0, l1 = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
    key = torch.rand(1, 3, -(-height // ms) * ms, -(-width // ms) * ms)  # as upscale pads a keyframe
    with torch.inference_mode():
        h0 = model.upscale(l0)
        h1 = model.upscale(l1)
        # the fused conv + SiLU (nets.blocks.conv_silu) does its convolution's FLOPs
        fused = {torch.ops.mkldnn._convolution_pointwise: _fused_conv_flops}
        counter = FlopCounterMode(display=False, custom_mapping=fused)
        with counter:
            model.upscale(key)
            model.interpolate(l0, l1, h0, h1)
    return float(counter.get_total_flops())


def _fused_conv_flops(x_shape, w_shape, *_, out_shape=None, **__) -> int:
    from torch.utils.flop_counter import conv_flop_count

    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def conv_throughput(dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of a 64->64 3x3 conv2d on a [1, 64, 256, 256] channels-last tensor of ``dtype``."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(dtype=dtype, memory_format=torch.channels_last)
    x = torch.rand(1, 64, 256, 256, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * 64 * 64 * 9 * 256 * 256
    with torch.inference_mode():
        for _ in range(3):
            conv(x)
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < 3.0:
            conv(x)
            n += 1
    return flops * n / (time.perf_counter() - t) / 1e9


def conv_floor(width: int, height: int, model_name: str | None, min_seconds: float = 0.5) -> dict:
    """A lower bound on the model's time per input frame: every convolution of one keyframe and
    one pair (as ``stvsr upscale`` runs them: automatic precision, channels-last) timed alone, on
    its own shapes and dtype, and summed, as if nothing else cost anything; and the part of it
    that is the keyframe's (MS) and the pair's."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from stvsr_cli.upscaler import Upscaler
    from stvsr_cli.weights import load_model

    calls: list[tuple] = []  # (op, its arguments with tensors as (shape, dtype, channels-last))

    def describe(a):
        if isinstance(a, torch.Tensor):
            channels_last = a.dim() == 4 and a.is_contiguous(memory_format=torch.channels_last)
            return ("tensor", tuple(a.shape), a.dtype, channels_last)
        return tuple(a) if isinstance(a, list) else a

    def make(a):
        if isinstance(a, tuple) and a and a[0] == "tensor":
            x = torch.rand(a[1], dtype=a[2])
            return x.contiguous(memory_format=torch.channels_last) if a[3] else x
        return list(a) if isinstance(a, tuple) else a

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func._overloadpacket is torch.ops.mkldnn._convolution_pointwise:
                # conv + SiLU in one call (nets.blocks.conv_silu): its convolution alone
                x, w, b, padding, stride, dilation, groups = args[:7]
                conv = (x, w, b, stride, padding, dilation, False, [0, 0], groups)
                calls.append((torch.ops.aten.convolution.default, *(describe(a) for a in conv)))
            elif "conv" in func.__name__:  # conv2d, conv_transpose2d, convolution (as dispatched)
                calls.append((func, *(describe(a) for a in args)))
            return func(*args, **(kwargs or {}))

    upscaler = Upscaler(load_model(model_name), "cpu", "auto")
    model = upscaler.model
    lr = torch.rand(2, 3, height, width).contiguous(memory_format=torch.channels_last)
    marks = {}
    with torch.inference_mode():
        x, hr = upscaler.pair_inputs(lr, upscaler.keyframes(lr))
        with Record():
            upscaler.keyframes(lr[:1])  # as upscale runs it: padded only to MS's own multiple
            marks["spatial"] = len(calls)
            with upscaler.arithmetic():
                model.interpolate(x[:1], x[1:], hr[:1], hr[1:])
    seconds: dict[tuple, float] = {}
    with torch.inference_mode():
        for call in set(calls):
            func, args = call[0], [make(a) for a in call[1:]]
            for _ in range(2):
                func(*args)
            n, t = 0, time.perf_counter()
            while n < 3 or time.perf_counter() - t < min_seconds:
                func(*args)
                n += 1
            seconds[call] = (time.perf_counter() - t) / n
    spatial = sum(seconds[c] for c in calls[: marks["spatial"]])
    total = sum(seconds[c] for c in calls)
    return {
        "conv_floor_s_per_input_frame": total,
        "conv_floor_spatial_s": spatial,
        "conv_floor_pair_s": total - spatial,
        "convolutions": len(calls),
    }


def compile_times(model_name: str | None, pairs: int = 4) -> dict:
    """torch.compile (inductor) on the model's networks against eager, one 640x360 pair at a time
    in the automatic precision: the first call (compile) and the mean of ``pairs`` more."""
    from stvsr_cli.compiling import compile_networks
    from stvsr_cli.tiling import pad_to_multiple
    from stvsr_cli.upscaler import Upscaler
    from stvsr_cli.weights import load_model

    upscaler = Upscaler(load_model(model_name), "cpu", "auto")
    model = upscaler.model
    lr = pad_to_multiple(torch.rand(2, 3, 360, 640), upscaler.multiple).contiguous(memory_format=torch.channels_last)

    def pair() -> None:
        with torch.inference_mode(), upscaler.arithmetic():
            h = model.upscale(lr)
            model.interpolate(lr[:1], lr[1:], h[:1], h[1:])

    def timed(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            pair()
        return (time.perf_counter() - t) / n

    pair()
    eager = timed(pairs)
    warnings: list[str] = []
    compile_networks(model, warnings.append)  # what --compile does
    first = timed(1)
    compiled = timed(pairs)
    return {
        "precision": upscaler.precision,
        "eager_s_per_pair": eager,
        "first_call_s": first,
        "compiled_s_per_pair": compiled,
        "speedup": eager / compiled,
        "warnings": warnings,  # a compiler failure: the "compiled" times are eager ones
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-4k", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (minutes on a small CPU)")
    parser.add_argument("--model", action="append", help="a bundled model's name or a weights file (repeatable)")
    args = parser.parse_args()
    from stvsr_cli.allocator import keep_freed_memory

    keep_freed_memory()  # as the `stvsr` command does, for the in-process measurements
    models = args.model or [None]
    results: dict = {
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, bf16 {'yes' if cpu_has_bf16() else 'no'}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    }

    def record(key: str, value: dict) -> None:
        """Keep and show each result as soon as it is measured (a later failure loses none)."""
        results[key] = value
        print(json.dumps({key: value}), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(args.source, tmp / "clip360.mp4", args.frames, 640, 360)
        t = time.perf_counter()
        classical_pipeline(clip, tmp / "classical.mp4")
        classical_s = time.perf_counter() - t
        auto = auto_precision()
        for name in models:
            for precision in ("auto", "fp32") if auto != "fp32" else ("auto",):
                model_args = ("--model", name) if name else ()
                ours_s, ours_mb = run_measured(stvsr_cmd(clip, tmp / "ours.mp4", *model_args, "--precision", precision))
                key = "end_to_end_640x360" + (f"_{Path(name).stem}" if name else "")
                record(
                    key + ("_fp32" if precision == "fp32" else ""),
                    {
                        "model": name or "default",
                        "precision": auto if precision == "auto" else precision,
                        "frames_in": args.frames,
                        "stvsr_s": ours_s,
                        "stvsr_peak_rss_mib": ours_mb,
                        "classical_s": classical_s,
                        "ratio": ours_s / classical_s,
                        "stvsr_output_fps": (2 * args.frames - 1) / ours_s,
                    },
                )
        model_args = ("--model", models[0]) if models[0] else ()
        stages = stage_times(clip, models[0])
        flops = model_flops_per_input_frame(640, 360, models[0])
        stages["gflop_per_input_frame"] = flops / 1e9
        stages["model_gflops_per_s"] = flops * stages["input_frames"] / stages["model_s"] / 1e9
        stages["conv_ceiling_gflops_per_s"] = conv_throughput(torch.bfloat16 if auto == "bf16" else torch.float32)
        stages.update(conv_floor(640, 360, models[0]))
        # the best end-to-end ratio this model could reach here: its convolutions alone, at their
        # own isolated speed, with decoding and encoding fully overlapped (free)
        stages["ratio_floor"] = stages["conv_floor_s_per_input_frame"] * stages["input_frames"] / classical_s
        record("stages_640x360", stages)
        if args.compile:
            record("compile_640x360", compile_times(models[0]))
        for n in (31, 91):
            small = make_clip(args.source, tmp / f"clip{n}.mp4", n, 320, 180)
            wall, mb = run_measured(stvsr_cmd(small, tmp / f"o{n}.mp4", *model_args))
            record(f"rss_320x180_{n}_frames", {"seconds": wall, "peak_rss_mib": mb})
        if not args.skip_4k:
            big = make_clip(args.source, tmp / "clip1080.mp4", 4, 1920, 1080)
            wall, mb = run_measured(stvsr_cmd(big, tmp / "o4k.mp4", *model_args))
            record("1080p_to_4k_cpu_4_frames", {"seconds": wall, "peak_rss_mib": mb})


if __name__ == "__main__":
    main()
