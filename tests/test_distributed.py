"""``torchrun`` upscaling on the CPU (gloo): a real clip with audio split into segments between
two processes gives exactly the frames and audio of one process; a process killed mid-run
leaves its finished segments and the same command redoes only what is missing; a folder's
videos are spread across the processes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stvsr_cli.pipeline import UpscaleOptions, upscale_video
from stvsr_cli.video import EncodeSettings, read_frames

from .conftest import make_clip, shared_path
from .media_facts import of_kind, stream_facts

pytestmark = pytest.mark.slow
LOSSLESS = EncodeSettings.lossless_rgb()


def torchrun(*args, tag: str = "", wait: bool = True):
    """``torchrun --standalone --nproc-per-node 2 -m stvsr_cli upscale ...`` (one thread each)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "stvsr_cli", "upscale", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STVSR_TEST_TAG": tag}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def frame_hashes(path: Path) -> list[tuple[int, str]]:
    return [(pts, hashlib.sha256(rgb.tobytes()).hexdigest()) for rgb, pts in read_frames(path)]


def one_process(src: Path, dst: Path, model) -> None:
    """The reference: one process with the threads each torchrun process has (one). Results
    are identical for the same thread count; across thread counts, bf16 convolutions may
    round differently (oneDNN's reduction order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        upscale_video(src, dst, UpscaleOptions(model=model, encode=LOSSLESS))
    finally:
        torch.set_num_threads(threads)


def test_two_processes_give_the_frames_and_audio_of_one(tmp_path, tiny_weights):
    src = shared_path("clips", "realshort.mp4")  # 36 frames, AAC audio
    single, split = tmp_path / "single.mkv", tmp_path / "split.mkv"
    one_process(src, single, tiny_weights)
    report = tmp_path / "r.json"
    done = torchrun(src, split, "--model", tiny_weights, "--lossless", "--segment-frames", "5", "--json", report, "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert frame_hashes(split) == frame_hashes(single)
    audio_split, audio_single = of_kind(stream_facts(split), "audio"), of_kind(stream_facts(src), "audio")
    assert [a.packets for a in audio_split] == [a.packets for a in audio_single]
    r = json.loads(report.read_text())
    assert r["frames_out"] == 71 and r["segments"] == {"total": 8, "reused": 0}
    assert not list(tmp_path.glob(".split.mkv*"))  # no segment folder, no partial file


def _worker_pid(tag: str, rank: int) -> int | None:
    """The process of ``rank`` started by the torchrun tagged ``tag`` (found through /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"STVSR_TEST_TAG={tag}".encode() in env and f"RANK={rank}".encode() in env:
            cmdline = (proc / "cmdline").read_bytes()
            if b"stvsr_cli" in cmdline and b"torch.distributed.run" not in cmdline:
                return int(proc.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker through /proc")
def test_a_killed_process_leaves_its_segments_and_the_rerun_redoes_only_the_missing(tmp_path):
    src = shared_path("clips", "realshort.mp4")
    dst = tmp_path / "out.mkv"
    segments = tmp_path / ".out.mkv.stvsr-segments"
    args = (src, dst, "--model", "fast", "--lossless", "--segment-frames", "3", "-q")
    tag = f"kill-{os.getpid()}-{time.time_ns()}"
    run = torchrun(*args, tag=tag, wait=False)
    try:
        deadline = time.monotonic() + 300
        # both have finished a segment (rank 0 makes 0, 2, ...; rank 1 makes 1, 3, ...)
        while not all((segments / f"segment-0000{j}.json").exists() for j in (0, 1)):
            assert run.poll() is None and time.monotonic() < deadline, run.stdout.read().decode()
            time.sleep(0.05)
        pid = _worker_pid(tag, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert run.wait(timeout=120) != 0  # one clear failure, no hang
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    entries = {p.name: json.loads(p.read_text()) for p in segments.glob("segment-*.json")}
    assert {e["rank"] for e in entries.values()} == {0, 1}  # both were making segments
    assert 2 <= len(entries) < 12 and not dst.exists()

    report = tmp_path / "r.json"
    done = torchrun(*args, "--json", report)
    assert done.returncode == 0, done.stdout + done.stderr
    r = json.loads(report.read_text())
    assert r["segments"] == {"total": 12, "reused": len(entries)}  # the finished ones were not made again
    single = tmp_path / "single.mkv"
    one_process(src, single, "fast")
    assert frame_hashes(dst) == frame_hashes(single)


def test_a_folder_is_spread_across_the_processes(tmp_path, tiny_weights):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, n in (("a.mp4", 4), ("b.mp4", 5), ("c.mkv", 6)):
        make_clip(src / name, n=n)
    report = tmp_path / "r.json"
    done = torchrun(src, dst, "--model", tiny_weights, "--json", report, "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    r = json.loads(report.read_text())
    assert (r["done"], r["failed"], r["skipped"]) == (3, 0, 0)
    assert [f["frames_out"] for f in r["files"]] == [7, 9, 11]
    assert sorted(p.name for p in dst.iterdir()) == ["a.mp4", "b.mp4", "c.mkv"]
