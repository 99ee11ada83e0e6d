"""Nothing lost, counted the way a user would: every audio packet and the audio's end, the
video's length as players read it, in every container we write, whole runs, previews, the
three modes and resumable jobs; a wheel that carries its weights; no litter after a failure."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from stvsr_cli.cli import app
from stvsr_cli.pipeline import UpscaleOptions, upscale_video
from stvsr_cli.video import EncodeSettings

from .conftest import REPO, SAMPLE_CLIP, make_clip, shared_path
from .media_facts import of_kind, stream_facts, video_length

# x264 "veryfast" still uses B-frames: the case where MP4's last packet in decode order is
# not the last frame shown
WITH_B_FRAMES = EncodeSettings(preset="veryfast")
CONTAINERS = ["mp4", "mov", "mkv", "webm"]


def assert_nothing_lost(src, dst, preview_end: float | None = None):
    """Every audio packet (same count where copied, not converted) ending when the input's
    did within one audio frame, and a video as long as the input's within 1 ms; for a preview,
    audio that ends with the video (``preview_end`` s) within one audio frame."""
    facts_in, facts_out = stream_facts(src), stream_facts(dst)
    audio_in, audio_out = of_kind(facts_in, "audio"), of_kind(facts_out, "audio")
    assert len(audio_out) == len(audio_in)
    if preview_end is None:
        assert video_length(facts_out) == pytest.approx(video_length(facts_in), abs=1e-3)
    else:
        assert video_length(facts_out) == pytest.approx(preview_end, abs=1e-3)
    for a_in, a_out in zip(audio_in, audio_out):
        frame = max(a_in.frame, a_out.frame)
        if a_out.codec == a_in.codec and preview_end is None:
            assert a_out.packets == a_in.packets
        end = a_in.end if preview_end is None else preview_end
        assert a_out.end == pytest.approx(end, abs=frame + 1e-6), f"audio ends at {a_out.end}, not {end}"


@pytest.mark.parametrize("ext", CONTAINERS)
def test_bundled_sample_keeps_every_audio_packet_and_its_length(tmp_path, tiny_weights, ext):
    dst = tmp_path / f"out.{ext}"
    upscale_video(SAMPLE_CLIP, dst, UpscaleOptions(model=tiny_weights, encode=WITH_B_FRAMES))
    assert_nothing_lost(SAMPLE_CLIP, dst)


@pytest.mark.slow
@pytest.mark.parametrize("ext", CONTAINERS)
def test_real_clip_with_audio_keeps_every_audio_packet_and_its_length(tmp_path, tiny_weights, ext):
    src = shared_path("clips", "realshort.mp4")
    dst = tmp_path / f"out.{ext}"
    upscale_video(src, dst, UpscaleOptions(model=tiny_weights, encode=WITH_B_FRAMES))
    assert_nothing_lost(src, dst)


@pytest.mark.parametrize("mode", ["space", "time"])
def test_other_modes_keep_every_audio_packet(tmp_path, tiny_weights, mode):
    dst = tmp_path / "out.mp4"
    upscale_video(SAMPLE_CLIP, dst, UpscaleOptions(model=tiny_weights, encode=WITH_B_FRAMES, mode=mode))
    assert_nothing_lost(SAMPLE_CLIP, dst)


@pytest.mark.parametrize("ext", ["mp4", "mkv", "webm"])
def test_resume_keeps_every_audio_packet_and_its_length(tmp_path, tiny_weights, ext):
    dst = tmp_path / f"out.{ext}"
    options = UpscaleOptions(model=tiny_weights, encode=WITH_B_FRAMES, resume=True, segment_frames=7)
    upscale_video(SAMPLE_CLIP, dst, options)
    assert_nothing_lost(SAMPLE_CLIP, dst)


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
@pytest.mark.parametrize("resume", [False, True])
def test_preview_audio_ends_with_the_video(tmp_path, tiny_weights, ext, resume):
    """``--frames 10`` of a 25 fps clip: the video lasts 0.4 s, and so does the audio."""
    dst = tmp_path / f"out.{ext}"
    options = UpscaleOptions(model=tiny_weights, encode=WITH_B_FRAMES, max_frames=10, resume=resume)
    upscale_video(SAMPLE_CLIP, dst, options)
    assert_nothing_lost(SAMPLE_CLIP, dst, preview_end=0.4)


@pytest.mark.slow
def test_hd_preview_audio_ends_with_the_video(tmp_path, tiny_weights):
    src = shared_path("clips", "bigbuckbunny.mp4")
    dst = tmp_path / "out.mp4"
    upscale_video(src, dst, UpscaleOptions(model=tiny_weights, encode=WITH_B_FRAMES, max_frames=12))
    assert_nothing_lost(src, dst, preview_end=12 / 25)


def test_webm_gets_a_codec_it_holds_and_its_audio_converted(tmp_path, tiny_weights):
    dst = tmp_path / "out.webm"
    summary = upscale_video(SAMPLE_CLIP, dst, UpscaleOptions(model=tiny_weights))
    facts = stream_facts(dst)
    assert [f.codec for f in facts] == ["vp9", "opus"]
    assert any("converted audio stream #1 (aac) to libopus" in w for w in summary.warnings)


def test_a_second_video_stream_is_dropped_with_a_warning(tmp_path, tiny_weights):
    src = tmp_path / "two.mkv"
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(4)]
    with av.open(str(src), "w") as out:
        streams = []
        for _ in range(2):
            s = out.add_stream("ffv1", rate=25)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            streams.append(s)
        for i, rgb in enumerate(frames):
            for s in streams:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts = i
                out.mux(s.encode(frame))
        for s in streams:
            out.mux(s.encode(None))
    summary = upscale_video(src, tmp_path / "out.mkv", UpscaleOptions(model=tiny_weights))
    assert any("dropped video stream #1 (ffv1)" in w for w in summary.warnings), summary.warnings


def test_a_still_image_named_like_a_video_is_refused(tmp_path, tiny_weights):
    still = tmp_path / "photo.mp4"
    with av.open(str(still), "w", format="image2") as out:
        s = out.add_stream("mjpeg", rate=1)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        out.mux(s.encode(frame.reformat(format="yuvj420p")))
        out.mux(s.encode(None))
    result = CliRunner().invoke(app, ["upscale", str(still), str(tmp_path / "o.mp4"), "--model", str(tiny_weights)])
    assert result.exit_code == 1
    assert "still image" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.mp4").exists()


def test_a_failure_after_the_output_started_leaves_nothing(tmp_path, tiny_weights, monkeypatch):
    """The encoder dies mid-run: no output, no hidden file, for every container."""
    import stvsr_cli.video as video
    from stvsr_cli.errors import OutputError

    calls = {"n": 0}
    real = video.VideoWriter.write

    def failing(self, *args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OutputError("simulated encoder failure")
        return real(self, *args)

    monkeypatch.setattr(video.VideoWriter, "write", failing)
    for ext in CONTAINERS:
        calls["n"] = 0
        src = make_clip(tmp_path / f"in-{ext}.mp4", n=8)
        with pytest.raises(OutputError):
            upscale_video(src, tmp_path / f"out.{ext}", UpscaleOptions(model=tiny_weights))
        assert sorted(p.name for p in tmp_path.iterdir() if "out" in p.name) == [], ext


@pytest.mark.slow
def test_the_wheel_carries_the_weights_and_runs_from_another_folder(tmp_path):
    """Built and installed as a user gets it (not editable): the bundled model is inside."""
    dist, target, elsewhere = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)]
    subprocess.run(build, check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = dist.glob("stvsr-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "stvsr_cli/bundled_weights/stvsr_default.safetensors" in names
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import stvsr_cli.cli as c; "
        "assert c.__file__.startswith(sys.argv[1]), c.__file__; sys.argv = sys.argv[1:]; "
        "sys.argv[0] = 'stvsr'; c.main()"
    )
    out = elsewhere / "sample_2x.mp4"
    run = subprocess.run(
        [sys.executable, "-c", script, str(target), "upscale", str(SAMPLE_CLIP), str(out), "--frames", "3", "-q"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert len(of_kind(stream_facts(out), "audio")) == 1


def test_the_writer_chooses_the_containers_codec_when_none_is_given(tmp_path, clip):
    """The library API: ``EncodeSettings()`` leaves the codec to the container."""
    from stvsr_cli.video import VideoWriter, probe

    for ext, codec in (("mp4", "h264"), ("webm", "vp9")):
        writer = VideoWriter(tmp_path / f"o.{ext}", probe(clip), 64, 48, EncodeSettings())
        writer.write(np.zeros((48, 64, 3), np.uint8), 0, 2)
        writer.close()
        assert of_kind(stream_facts(tmp_path / f"o.{ext}"), "video")[0].codec == codec
