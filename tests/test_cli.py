"""The command line: the main job and every bad input (one-line error, exit != 0, nothing left)."""

import os
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stvsr_cli.cli import app

from .conftest import make_clip, video_facts

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_error(result, *words):
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]


def test_version_and_help():
    assert run("--version").output.startswith("stvsr ")
    result = run("upscale", "--help")
    assert result.exit_code == 0 and "--overwrite" in result.output


def test_upscale_main_job(tmp_path, clip, tiny_weights):
    out = tmp_path / "out.mp4"
    result = run("upscale", clip, out, "--model", tiny_weights)
    assert result.exit_code == 0, result.output
    facts = video_facts(out)
    assert facts["frames"] == 11 and facts["size"] == (128, 96) and facts["audio"] == 1
    assert "11 frames" in result.output


def test_existing_output_is_not_overwritten_without_flag(tmp_path, clip, tiny_weights):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    result = run("upscale", clip, out, "--model", tiny_weights)
    assert_clean_error(result, "exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    result = run("upscale", clip, out, "--model", tiny_weights, "--overwrite", "-q")
    assert result.exit_code == 0 and video_facts(out)["frames"] == 11


def _audio_only(path):
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=48000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        frame.pts = 0
        out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return path


def _file(path, content: bytes):
    path.write_bytes(content)
    return path


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.mp4", "not found"),
    "folder": (lambda d: d, "folder"),
    "empty": (lambda d: _file(d / "empty.mp4", b""), "empty"),
    "text": (lambda d: _file(d / "notes.mp4", b"hello, not a video\n" * 50), "not a video"),
    "audio_only": (lambda d: _audio_only(d / "sound.m4a"), "no video stream"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_fail_cleanly_and_write_nothing(tmp_path, tiny_weights, case):
    src_dir = tmp_path / "in"
    src_dir.mkdir()
    make_src, word = BAD_INPUTS[case]
    src = make_src(src_dir)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run("upscale", src, out_dir / "out.mp4", "--model", tiny_weights)
    assert_clean_error(result, word)
    assert list(out_dir.iterdir()) == []


def test_truncated_file_fails_cleanly(tmp_path, tiny_weights):
    good = make_clip(tmp_path / "good.mp4", n=8)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[:300])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run("upscale", cut, out_dir / "o.mp4", "--model", tiny_weights)
    assert_clean_error(result)
    assert list(out_dir.iterdir()) == []


def test_output_equal_to_input_is_refused(clip, tiny_weights):
    before = clip.read_bytes()
    assert_clean_error(run("upscale", clip, clip, "--model", tiny_weights, "--overwrite"), "same file")
    assert clip.read_bytes() == before


def test_missing_output_folder(tmp_path, clip, tiny_weights):
    assert_clean_error(
        run("upscale", clip, tmp_path / "no" / "such" / "o.mp4", "--model", tiny_weights), "does not exist"
    )


def test_unknown_output_extension(tmp_path, clip, tiny_weights):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    assert_clean_error(run("upscale", clip, out_dir / "out.notacontainer", "--model", tiny_weights), "extension")
    assert list(out_dir.iterdir()) == []


def test_lossless_needs_a_container_that_holds_ffv1(tmp_path, clip, tiny_weights):
    assert_clean_error(run("upscale", clip, tmp_path / "o.mp4", "--lossless", "--model", tiny_weights), ".mkv")


@pytest.mark.parametrize("kind", ["missing", "garbage", "pickle", "foreign"])
def test_bad_weights(tmp_path, clip, kind):
    path = tmp_path / "w.safetensors"
    if kind == "garbage":
        path.write_bytes(os.urandom(200))
    elif kind == "pickle":
        torch.save({"a": torch.zeros(1)}, path)
    elif kind == "foreign":
        from safetensors.torch import save_file

        save_file({"a": torch.zeros(1)}, str(path))
    out = tmp_path / "o.mp4"
    assert_clean_error(run("upscale", clip, out, "--model", path), "weights" if kind != "pickle" else "pickle")
    assert not out.exists()


def test_unreadable_weights(tmp_path, clip, tiny_weights):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    tiny_weights.chmod(0)
    assert_clean_error(run("upscale", clip, tmp_path / "o.mp4", "--model", tiny_weights), "weights")


@pytest.mark.parametrize(
    "option",
    [
        ("--batch", "0"),
        ("--crf", "99"),
        ("--device", "tpu"),
        ("--precision", "fp8"),
        ("--mode", "sideways"),
        ("--scene-threshold", "2"),
        ("--tile", "7"),
    ],
)
def test_invalid_option_values(tmp_path, clip, option):
    result = run("upscale", clip, tmp_path / "o.mp4", *option)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.mp4").exists()


def test_unknown_codec_is_a_clean_error(tmp_path, clip, tiny_weights):
    out = tmp_path / "o.mp4"
    assert_clean_error(run("upscale", clip, out, "--codec", "nosuchcodec", "--model", tiny_weights), "codec")
    assert list(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_half_precision_on_cpu_is_refused(tmp_path, clip, tiny_weights):
    assert_clean_error(
        run("upscale", clip, tmp_path / "o.mp4", "--device", "cpu", "--precision", "fp16", "--model", tiny_weights),
        "fp16",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_but_absent(tmp_path, clip, tiny_weights):
    out = tmp_path / "o.mp4"
    assert_clean_error(run("upscale", clip, out, "--device", "cuda", "--model", tiny_weights), "cuda")
    assert not out.exists()


def _signal_mid_run(tmp_path, weights, sig, n: int, extra=(), started=lambda d: False):
    """Start a real ``stvsr upscale`` process, send it ``sig`` once ``started(folder)`` is
    true (default: its hidden partial output exists), and return (exit code, stderr)."""
    import signal
    import time

    src = make_clip(tmp_path / "long.mp4", n=n, width=64, height=48)
    out = tmp_path / "o.mp4"
    args = [sys.executable, "-m", "stvsr_cli", "upscale", str(src), str(out), "--model", str(weights), "-q", *extra]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and not (
        started(tmp_path) or any(p.name.startswith(".o.mp4.stvsr-partial") for p in tmp_path.iterdir())
    ):
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_with_no_output(tmp_path, tiny_weights, sig):
    """A real process: SIGTERM or SIGINT (Ctrl-C) mid-run gives exit 143 or 130 (128 + the
    signal, as shells report it), a one-line message and no output."""
    # 1000 frames: seconds of work left when the signal comes, however fast the machine
    code, err = _signal_mid_run(tmp_path, tiny_weights, sig, n=1000)
    assert code == {"SIGTERM": 143, "SIGINT": 130}[sig], err
    assert "Traceback" not in err
    assert f"stopped by {sig}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.mp4")]


def test_resume_after_sigint_finishes_the_job(tmp_path, tiny_weights):
    """Ctrl-C after the first segment keeps it; the same command with --resume finishes."""
    segments = tmp_path / ".o.mp4.stvsr-segments"
    extra = ("--resume", "--segment-frames", "4")
    code, err = _signal_mid_run(
        tmp_path,
        tiny_weights,
        "SIGINT",
        n=200,  # 50 segments: the signal comes long before the last
        extra=extra,
        started=lambda d: (segments / "segment-00000.json").exists(),
    )
    assert code == 130 and "Traceback" not in err
    assert "--resume" in err and "finished segment" in err
    assert not (tmp_path / "o.mp4").exists()
    assert (segments / "segment-00000.nut").exists()
    src, out = tmp_path / "long.mp4", tmp_path / "o.mp4"
    result = run("upscale", src, out, "--model", tiny_weights, "-q", *extra)
    assert result.exit_code == 0, result.output
    assert video_facts(out)["frames"] == 399 and video_facts(out)["audio"] == 1
    assert not segments.exists()


def test_models_lists_the_bundled_models():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "default" in result.output and "fast" in result.output and "RIFE" in result.output
    assert "SPAN" in result.output
    assert "9.51 M" in result.output and "1.54 M" in result.output
