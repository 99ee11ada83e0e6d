"""Real-world video, each case generated here with PyAV: exact timing (VFR, 30000/1001),
odd sizes, 10-bit and colour tags, rotation, alpha/gray/4:4:4, every audio and subtitle
track, scene cuts in an encoded clip, damaged files, a full disk, and resumable jobs."""

from __future__ import annotations

import errno
import json
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.subtitles.subtitle import SubtitleSet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stvsr_cli.cli import app
from stvsr_cli.errors import Interrupted, StvsrError
from stvsr_cli.pipeline import UpscaleOptions, Upscaler, upscale_video
from stvsr_cli.video import EncodeSettings, probe, read_frames, segment_timestamps

from .conftest import moving_frames, video_facts

FAST = EncodeSettings(preset="ultrafast")
LOSSLESS = EncodeSettings.lossless_rgb()
BT709 = {"colorspace": 1, "color_primaries": 1, "color_trc": 1, "color_range": 1}
ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
    b"Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    b"MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


def write_clip(
    path: Path,
    frames: list[np.ndarray] | None = None,
    n: int = 6,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rate: Fraction | int = 25,
    time_base: Fraction | None = None,
    pts: list[int] | None = None,
    options: dict | None = None,
    colour: dict | None = None,
    rotation: int | None = None,
    audio: tuple[dict, ...] = (),
    subtitles: tuple[dict, ...] = (),
) -> Path:
    """A test clip: ``frames`` (uint8 or uint16 RGB; default ``n`` moving frames) encoded with
    ``codec``/``pix_fmt``, optional colour tags, rotation, audio tracks (``language``,
    ``title``, ``default``) and subtitle tracks (``codec``, ``language``, ``cues`` in s)."""
    frames = frames if frames is not None else moving_frames(n, width, height)
    height, width = frames[0].shape[:2]
    rate = Fraction(rate)
    tb = time_base or 1 / rate
    colour = colour or {}
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = video.codec_context.time_base = tb
        default = {"crf": "10", "preset": "ultrafast"} if "x26" in codec else {}
        video.options = {**(default if options is None else options)}
        if codec == "libx265":
            video.options = {**video.options, "x265-params": "log-level=error"}
        for key, value in colour.items():
            setattr(video.codec_context, key, value)
        if rotation is not None:
            video.set_display_rotation(rotation)
        tracks = []
        for spec in audio:
            a = out.add_stream(spec.get("codec", "aac"), rate=48000)
            a.layout = "mono"
            a.metadata.update({k: spec[k] for k in ("language", "title") if k in spec})
            a.disposition = av.stream.Disposition.default if spec.get("default") else av.stream.Disposition(0)
            tracks.append(a)
        subs = []
        for spec in subtitles:
            s = out.add_stream(spec["codec"])
            s.codec_context.subtitle_header = ASS_HEADER
            s.time_base = s.codec_context.time_base = Fraction(1, 1000)
            s.metadata["language"] = spec["language"]
            subs.append((s, spec["cues"]))
        kwargs = {k: colour[k] for k in ("colorspace", "color_range") if k in colour}
        kwargs = {("dst_" + k): v for k, v in kwargs.items()}
        for i, rgb in enumerate(frames):
            fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
            frame = av.VideoFrame.from_ndarray(rgb, format=fmt).reformat(format=pix_fmt, **kwargs)
            frame.pts = pts[i] if pts is not None else i
            frame.time_base = tb
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for s, cues in subs:
            for start, end, text in cues:
                cue = SubtitleSet.create(b"0,0,Default,,0,0,0,," + text.encode(), 0, int((end - start) * 1000))
                packet = s.codec_context.encode_subtitle(cue)
                packet.stream = s
                packet.pts = packet.dts = int(start * 1000)
                packet.duration = int((end - start) * 1000)
                packet.time_base = Fraction(1, 1000)
                out.mux(packet)
        seconds = float(len(frames) / rate)
        for a in tracks:
            samples = int(48000 * seconds)
            wave = 0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)[None, :]
            fmt = a.codec_context.format.name  # fltp for AAC, s16 for FLAC
            wave = wave.astype(np.float32) if fmt.startswith("flt") else (wave * 32767).astype(np.int16)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, start : start + 1024]), format=fmt, layout="mono"
                )
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(a.encode(chunk))
            out.mux(a.encode(None))
    return path


def exact_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [f.pts * v.time_base for f in c.decode(v)]


def stream_facts(path: Path) -> list[dict]:
    with av.open(str(path)) as c:
        return [
            {
                "type": s.type,
                "codec": s.codec_context.codec.canonical_name if s.codec_context is not None else None,
                "language": s.metadata.get("language"),
                "title": s.metadata.get("title"),
                "default": bool(s.disposition & av.stream.Disposition.default),
            }
            for s in c.streams
        ]


def first_frame(path: Path):
    with av.open(str(path)) as c:
        return next(c.decode(video=0))


def upscale(src, dst, weights, **kwargs):
    kwargs.setdefault("encode", FAST)
    return upscale_video(src, dst, UpscaleOptions(model=weights, **kwargs))


# --- 1. timing ---------------------------------------------------------------------------


@pytest.mark.parametrize("resume", [False, True])
def test_ntsc_rate_mp4_times_are_exact_and_duration_matches(tmp_path, tiny_weights, resume):
    tb = Fraction(1001, 30000)
    src = write_clip(tmp_path / "ntsc.mp4", n=6, rate=Fraction(30000, 1001), time_base=tb, audio=({},))
    dst = tmp_path / "out.mp4"
    upscale(src, dst, tiny_weights, resume=resume, segment_frames=4)
    step = Fraction(1001, 60000)
    assert exact_times(dst) == [i * step for i in range(11)]
    assert video_facts(dst)["duration"] == pytest.approx(video_facts(src)["duration"], abs=0.005)


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_variable_frame_rate_keys_keep_times_mids_halfway(tmp_path, tiny_weights, ext):
    pts = [0, 1, 4, 6, 11]  # gaps of 1, 3, 2, 5 ticks of 1/30 s
    src = write_clip(tmp_path / f"vfr.{ext}", n=5, time_base=Fraction(1, 30), pts=pts, rate=30)
    dst = tmp_path / f"out.{ext}"
    upscale(src, dst, tiny_weights)
    expected = sorted([p / 30 for p in pts] + [(a + b) / 60 for a, b in zip(pts, pts[1:])])
    assert [float(t) for t in exact_times(dst)] == pytest.approx(expected, abs=2e-3)


# --- 2. streams --------------------------------------------------------------------------


def test_two_audio_tracks_keep_languages_titles_and_default(tmp_path, tiny_weights):
    tracks = ({"language": "eng", "title": "English", "default": True}, {"language": "fra", "title": "Français"})
    src = write_clip(tmp_path / "in.mkv", n=4, audio=tracks)
    dst = tmp_path / "out.mkv"
    upscale(src, dst, tiny_weights)
    audio = [s for s in stream_facts(dst) if s["type"] == "audio"]
    assert [(a["language"], a["title"], a["default"]) for a in audio] == [
        ("eng", "English", True),
        ("fra", "Français", False),
    ]


SUBTITLES = ({"codec": "subrip", "language": "deu", "cues": [(0.04, 0.12, "Hallo Welt")]},)


def _cues(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        s = c.streams.subtitles[0]
        texts = []
        for p in c.demux(s):
            if p.size:
                subs = s.codec_context.decode2(p)
                texts += [r.ass for r in subs or []]
        return texts


@pytest.mark.parametrize("codec", ["subrip", "ass"])
def test_text_subtitles_are_copied_into_mkv_with_language(tmp_path, tiny_weights, codec):
    src = write_clip(tmp_path / "in.mkv", n=4, subtitles=({**SUBTITLES[0], "codec": codec},))
    dst = tmp_path / "out.mkv"
    summary = upscale(src, dst, tiny_weights)
    subs = [s for s in stream_facts(dst) if s["type"] == "subtitle"]
    assert [(s["codec"], s["language"]) for s in subs] == [(codec, "deu")]
    assert any(b"Hallo Welt" in cue for cue in _cues(dst))
    assert not summary.warnings


def test_srt_into_mp4_is_converted_to_mov_text_with_a_warning(tmp_path, tiny_weights):
    src = write_clip(tmp_path / "in.mkv", n=4, subtitles=SUBTITLES, audio=({"language": "eng"},))
    dst = tmp_path / "out.mp4"
    result = CliRunner().invoke(app, ["upscale", str(src), str(dst), "--model", str(tiny_weights), "-q"])
    assert result.exit_code == 0, result.output
    assert "warning: converted subtitle stream #2 (subrip) to mov_text" in result.output
    subs = [s for s in stream_facts(dst) if s["type"] == "subtitle"]
    assert [(s["codec"], s["language"]) for s in subs] == [("mov_text", "deu")]
    assert any(b"Hallo Welt" in cue for cue in _cues(dst))


def test_a_stream_the_container_cannot_hold_is_dropped_with_a_warning(tmp_path, tiny_weights):
    # AVI holds no text subtitles at all: neither the SRT track nor any conversion of it
    src = write_clip(tmp_path / "in.mkv", n=3, subtitles=SUBTITLES, audio=({},))
    dst = tmp_path / "out.avi"
    summary = upscale(src, dst, tiny_weights)
    assert any("dropped subtitle stream #2 (subrip)" in w for w in summary.warnings)
    assert [s["type"] for s in stream_facts(dst)] == ["video", "audio"]


def test_audio_the_muxer_refuses_only_at_its_header_is_converted_with_a_warning(tmp_path, tiny_weights):
    # MOV accepts a FLAC stream when it is added, and refuses it only when writing the header:
    # the track is encoded again in a codec MOV holds, and keeps its language
    tracks = ({"language": "eng"}, {"language": "fra", "codec": "flac"})
    src = write_clip(tmp_path / "in.mkv", n=3, audio=tracks)
    dst = tmp_path / "out.mov"
    summary = upscale(src, dst, tiny_weights)
    assert any("converted audio stream #2 (flac) to " in w for w in summary.warnings), summary.warnings
    assert [(s["type"], s["language"]) for s in stream_facts(dst)][1:] == [("audio", "eng"), ("audio", "fra")]


# --- 3. colour and format ----------------------------------------------------------------


def test_odd_size_321x181_gives_642x362(tmp_path, tiny_weights):
    src = write_clip(tmp_path / "odd.mkv", n=2, width=321, height=181, codec="ffv1", pix_fmt="bgr0")
    dst = tmp_path / "out.mp4"
    upscale(src, dst, tiny_weights)
    facts = video_facts(dst)
    assert facts["size"] == (642, 362) and facts["frames"] == 3


def _ten_bit_frames(n=3, width=64, height=48):
    """Smooth 16-bit gradients with 10-bit detail that 8 bits cannot hold."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = []
    for i in range(n):
        base = 20000 + 300 * (x + i) + 100 * y
        rgb = np.stack([base, base * 0.8 + 4000, 60000 - base * 0.5], axis=-1)
        frames.append(np.clip(rgb, 0, 65535).astype(np.uint16))
    return frames


def test_ten_bit_bt709_x265_stays_ten_bit_and_tagged(tmp_path, tiny_weights):
    src = write_clip(
        tmp_path / "hdr.mkv", frames=_ten_bit_frames(), codec="libx265", pix_fmt="yuv420p10le", colour=BT709
    )
    info = probe(src)
    assert info.bit_depth == 10 and info.colorspace == 1
    dst = tmp_path / "out.mkv"
    upscale(src, dst, tiny_weights, encode=EncodeSettings(codec="libx265", preset="ultrafast"))
    frame = first_frame(dst)
    assert frame.format.name == "yuv420p10le"
    assert (int(frame.colorspace), int(frame.color_primaries), int(frame.color_trc)) == (1, 1, 1)
    assert int(frame.color_range) == 1
    rgb16 = frame.reformat(format="rgb48le").to_ndarray()
    assert np.any(rgb16 % 256 != rgb16 // 256)  # more than 8 bits of levels survive


def test_ten_bit_frames_flow_as_uint16_through_the_model(tmp_path, tiny_model, tiny_weights):
    """Lossless 16-bit RGB output holds exactly the model's uint16 frames."""
    src = write_clip(tmp_path / "deep.mkv", frames=_ten_bit_frames(), codec="ffv1", pix_fmt="yuv444p10le")
    dst = tmp_path / "out.mkv"
    upscale(src, dst, tiny_weights, encode=LOSSLESS)
    assert first_frame(dst).format.name == "gbrp16le"
    written = [rgb for rgb, _ in read_frames(dst, deep=True)]
    expected = list(Upscaler(tiny_model).run([rgb for rgb, _ in read_frames(src, deep=True)]))
    assert len(written) == 5 and written[0].dtype == np.uint16
    for a, b in zip(written, expected):
        np.testing.assert_array_equal(a, b)


def test_bt709_tags_are_read_and_written(tmp_path, tiny_weights):
    src = write_clip(tmp_path / "in.mp4", n=3, colour=BT709)
    dst = tmp_path / "out.mp4"
    upscale(src, dst, tiny_weights)
    frame = first_frame(dst)
    tags = (int(frame.colorspace), int(frame.color_primaries), int(frame.color_trc), int(frame.color_range))
    assert tags == (1, 1, 1, 1) and frame.format.name == "yuv420p"


def test_full_range_input_gives_full_range_output_and_right_colours(tmp_path):
    colour = (200, 40, 40)
    frames = [np.full((32, 32, 3), colour, np.uint8)] * 2
    src = write_clip(tmp_path / "full.mp4", frames=frames, colour={"color_range": 2}, options={"crf": "0"})
    dst = tmp_path / "out.mp4"
    upscale_video(src, dst, UpscaleOptions(scene_threshold=0, encode=FAST))  # bundled model: flat stays flat
    frame = first_frame(dst)
    assert int(frame.color_range) == 2
    rgb = frame.reformat(format="rgb24", src_color_range=2).to_ndarray()
    assert np.abs(rgb[16:48, 16:48].astype(int) - np.array(colour)).mean() < 4


@pytest.mark.parametrize("ext", ["mp4", "mov"])
def test_rotation_is_kept(tmp_path, tiny_weights, ext):
    src = write_clip(tmp_path / f"phone.{ext}", n=3, rotation=90)
    dst = tmp_path / f"out.{ext}"
    upscale(src, dst, tiny_weights)
    assert first_frame(dst).rotation == 90


def test_yuv444_input_gives_yuv444_output(tmp_path, tiny_weights):
    src = write_clip(tmp_path / "in.mkv", n=3, pix_fmt="yuv444p")
    dst = tmp_path / "out.mkv"
    upscale(src, dst, tiny_weights)
    assert first_frame(dst).format.name == "yuv444p"


def test_gray_input_converts(tmp_path, tiny_weights):
    src = write_clip(tmp_path / "gray.mkv", n=3, codec="ffv1", pix_fmt="gray")
    dst = tmp_path / "out.mp4"
    summary = upscale(src, dst, tiny_weights)
    assert video_facts(dst)["frames"] == 5 and not summary.warnings


def test_alpha_is_dropped_with_a_warning(tmp_path, tiny_weights):
    src = write_clip(tmp_path / "alpha.mkv", n=3, codec="ffv1", pix_fmt="yuva420p")
    dst = tmp_path / "out.mp4"
    summary = upscale(src, dst, tiny_weights)
    assert video_facts(dst)["frames"] == 5
    assert any("alpha" in w for w in summary.warnings)


# --- 4. scene cuts -----------------------------------------------------------------------


def test_hard_cut_in_an_encoded_clip_repeats_the_earlier_side(tmp_path, tiny_weights):
    a = moving_frames(3, 64, 48, seed=1)
    b = [np.full((48, 64, 3), (20, 90, 200), np.uint8) for _ in range(3)]
    src = write_clip(tmp_path / "cut.mp4", frames=a + b)
    dst = tmp_path / "out.mkv"
    summary = upscale(src, dst, tiny_weights, encode=LOSSLESS)
    out = [rgb for rgb, _ in read_frames(dst)]
    assert len(out) == 11 and summary.scene_cuts == 1
    np.testing.assert_array_equal(out[5], out[4])  # the frame between key 2 and the cut is key 2
    assert not np.array_equal(out[3], out[2])  # elsewhere: interpolated


# --- 5. faults ---------------------------------------------------------------------------


def _damage_a_video_packet(path: Path) -> Path:
    """Overwrite the middle of a large video packet halfway through the file."""
    with av.open(str(path)) as c:
        packets = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size > 600 and p.pos]
    pos, size = packets[len(packets) // 2]
    data = bytearray(path.read_bytes())
    noise = np.random.default_rng(1).integers(0, 256, min(size, 184) - 24, np.uint8)
    data[pos + 24 : pos + min(size, 184)] = noise.tobytes()
    bad = path.with_name("damaged" + path.suffix)
    bad.write_bytes(bytes(data))
    return bad


@pytest.mark.parametrize("ext", ["ts", "mkv"])
def test_damaged_middle_gives_a_warning_and_a_valid_output(tmp_path, tiny_weights, ext):
    src = write_clip(tmp_path / f"in.{ext}", n=16, audio=({},), options={"crf": "10", "preset": "ultrafast", "g": "4"})
    bad = _damage_a_video_packet(src)
    dst = tmp_path / "out.mp4"
    result = CliRunner().invoke(app, ["upscale", str(bad), str(dst), "--model", str(tiny_weights), "-q"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and ("corrupt" in result.output or "damaged" in result.output)
    facts = video_facts(dst)
    assert 11 <= facts["frames"] <= 31 and facts["frames"] % 2 == 1 and facts["audio"] == 1


def test_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, tiny_weights, monkeypatch):
    src = write_clip(tmp_path / "in.mp4", n=4, audio=({},))
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def full(container, packets):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("stvsr_cli.video.writing.mux_packets", full)
    result = CliRunner().invoke(app, ["upscale", str(src), str(out_dir / "o.mp4"), "--model", str(tiny_weights), "-q"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "disk full" in lines[0] and "Traceback" not in result.output
    assert list(out_dir.iterdir()) == []


# --- 5. resume ---------------------------------------------------------------------------


def _decoded(path: Path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [(f.pts * v.time_base, f.to_ndarray(format="rgb24")) for f in c.decode(v)]


def _interrupt_after(monkeypatch, segments: int):
    """Make the job stop (as on Ctrl-C) right after it finishes ``segments`` segments."""
    from stvsr_cli.resume import SegmentStore

    original = SegmentStore.add

    def add(self, index, entry):
        original(self, index, entry)
        if len(self.entries()) == segments:
            raise Interrupted("stopped by SIGINT; no output was written")

    monkeypatch.setattr(SegmentStore, "add", add)


@pytest.mark.parametrize("ext,encode", [("mkv", LOSSLESS), ("mp4", FAST)])
def test_resume_continues_and_gives_the_uninterrupted_result(tmp_path, tiny_weights, monkeypatch, ext, encode):
    pts = [0, 1, 2, 4, 5, 6, 9, 10, 11, 12, 14]  # variable frame rate
    src = write_clip(tmp_path / "in.mkv", n=11, pts=pts, time_base=Fraction(1, 30), rate=30, audio=({},))
    options = {"resume": True, "segment_frames": 3, "encode": encode}
    whole = tmp_path / f"whole.{ext}"
    upscale(src, whole, tiny_weights, **options)
    assert not (tmp_path / f".whole.{ext}.stvsr-segments").exists()

    dst = tmp_path / f"out.{ext}"
    folder = tmp_path / f".out.{ext}.stvsr-segments"
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(Interrupted, match="--resume"):
            upscale(src, dst, tiny_weights, **options)
    assert not dst.exists()
    entries = [json.loads(p.read_text()) for p in sorted(folder.glob("segment-*.json"))]
    assert [e["frames"] for e in entries] == [3, 3]

    calls = []
    original = Upscaler._upscale_chunk
    monkeypatch.setattr(Upscaler, "_upscale_chunk", lambda self, f, *a: calls.append(len(f)) or original(self, f, *a))
    summary = upscale(src, dst, tiny_weights, **options)
    assert sum(calls) == 5 + 1  # frames 6..10, plus frame 9 again as the head of the last segment
    assert summary.input_frames == 11 and summary.output_frames == 21
    assert not folder.exists()

    got, want = _decoded(dst), _decoded(whole)
    assert [t for t, _ in got] == [t for t, _ in want]
    for (_, a), (_, b) in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert video_facts(dst)["audio"] == 1
    expected = sorted([p / 30 for p in pts] + [(a + b) / 60 for a, b in zip(pts, pts[1:])])
    assert [float(t) for t, _ in got] == pytest.approx(expected, abs=2e-3)


def test_resume_gives_the_same_frames_as_a_plain_run(tmp_path, tiny_weights):
    src = write_clip(tmp_path / "in.mkv", n=7, codec="ffv1", pix_fmt="bgr0")
    plain, resumed = tmp_path / "plain.mkv", tmp_path / "resumed.mkv"
    upscale(src, plain, tiny_weights, encode=LOSSLESS)
    upscale(src, resumed, tiny_weights, encode=LOSSLESS, resume=True, segment_frames=2)
    got, want = _decoded(resumed), _decoded(plain)
    assert len(got) == len(want) == 13
    assert video_facts(resumed)["duration"] == pytest.approx(video_facts(plain)["duration"], abs=1e-3)
    for (ta, a), (tb, b) in zip(got, want):
        assert ta == tb
        np.testing.assert_array_equal(a, b)


def test_resume_with_other_options_starts_over_with_a_warning(tmp_path, tiny_weights, monkeypatch):
    src = write_clip(tmp_path / "in.mkv", n=6)
    dst = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        _interrupt_after(m, 1)
        with pytest.raises(Interrupted):
            upscale(src, dst, tiny_weights, resume=True, segment_frames=2)
    summary = upscale(src, dst, tiny_weights, resume=True, segment_frames=2, scene_threshold=0.5)
    assert any("started over" in w for w in summary.warnings)
    assert video_facts(dst)["frames"] == 11


@pytest.mark.parametrize("text", ["[1, 2]", '{"segments": [{"frames": 2}]}', '{"segments": "x"}', "{bad"])
def test_resume_with_a_damaged_manifest_starts_over(tmp_path, tiny_weights, text):
    src = write_clip(tmp_path / "in.mkv", n=4)
    dst = tmp_path / "out.mkv"
    folder = tmp_path / ".out.mkv.stvsr-segments"
    folder.mkdir()
    (folder / "manifest.json").write_text(text)
    summary = upscale(src, dst, tiny_weights, resume=True, segment_frames=2)
    assert any("started over" in w for w in summary.warnings)
    assert video_facts(dst)["frames"] == 7 and not folder.exists()


def test_segment_timestamps_make_increasing_dts_never_after_pts():
    # two segments of an encoder with B-frames (display order reordered within each)
    pts = [0, 6, 2, 4, 10, 8, 12, 18, 14, 16, 20]
    dts, durations = segment_timestamps(pts, last_duration=2)
    assert all(b > a for a, b in zip(dts, dts[1:]))
    assert all(d <= p for d, p in zip(dts, pts))
    assert durations == [2] * len(pts)


# --- 6. hostile files --------------------------------------------------------------------


def _bounded(fn, seconds: float = 60.0):
    """Run ``fn`` in a thread: it must finish within ``seconds`` and raise nothing but
    ``StvsrError``."""
    outcome: dict = {}

    def target():
        try:
            fn()
        except StvsrError:
            pass
        except BaseException as e:  # noqa: BLE001 - reported below
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "reading the file hung"
    if "error" in outcome:
        raise AssertionError(f"{type(outcome['error']).__name__}: {outcome['error']}") from outcome["error"]


def _consume(path: Path) -> None:
    probe(path)
    for _ in read_frames(path, max_frames=30):
        pass


FUZZ = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(data=st.binary(min_size=1, max_size=4096), ext=st.sampled_from(["mp4", "mkv", "ts", "avi"]))
def test_fuzz_random_bytes_never_hang_or_crash(tmp_path_factory, data, ext):
    path = tmp_path_factory.mktemp("fuzz") / f"random.{ext}"
    path.write_bytes(data)
    _bounded(lambda: _consume(path))


class _Clips(dict):
    def __repr__(self) -> str:  # hypothesis prints its arguments: not the bytes
        return "valid_clips"


@pytest.fixture(scope="module")
def valid_clips(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("valid")
    return _Clips(
        (ext, write_clip(folder / f"v.{ext}", n=4, width=32, height=24, audio=({},)).read_bytes())
        for ext in ("mp4", "mkv")
    )


@FUZZ
@given(
    ext=st.sampled_from(["mp4", "mkv"]),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 7)), max_size=8),
)
def test_fuzz_truncated_and_bit_flipped_clips_never_hang_or_crash(tmp_path_factory, valid_clips, ext, cut, flips):
    data = bytearray(valid_clips[ext])
    for where, bit in flips:
        data[int(where * (len(data) - 1))] ^= 1 << bit
    data = data[: max(1, int(cut * len(data)))] if cut < 0.95 else data
    path = tmp_path_factory.mktemp("fuzz") / f"damaged.{ext}"
    path.write_bytes(bytes(data))
    _bounded(lambda: _consume(path))


@settings(FUZZ, max_examples=8)
@given(ext=st.sampled_from(["mp4", "mkv"]), flips=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6))
def test_fuzz_upscale_of_damaged_clips_never_hangs_or_crashes(tmp_path_factory, valid_clips, tiny_weights, ext, flips):
    data = bytearray(valid_clips[ext])
    for where in flips:
        data[int(where * (len(data) - 1))] ^= 0xFF
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"damaged.{ext}"
    path.write_bytes(bytes(data))
    dst = folder / "out.mkv"
    _bounded(lambda: upscale(path, dst, tiny_weights, scene_threshold=0))
    assert sorted(p.name for p in folder.iterdir()) in ([path.name], sorted([path.name, dst.name]))
