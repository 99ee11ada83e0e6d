"""``--fps RATE``: a constant-rate output spanning the input, each frame at its exact time
(made at its fractional position between its two input neighbours), audio kept, resumable;
refused in one line where it cannot work."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from stvsr_cli.errors import UsageError
from stvsr_cli.pipeline import UpscaleOptions, upscale_video
from stvsr_cli.schedule import ConstantRate, parse_rate
from stvsr_cli.video import read_frames

from .conftest import SAMPLE_CLIP, make_clip
from .test_cli import assert_clean_error, run
from .test_multi import LOSSLESS, frame_times
from .test_nothing_lost import WITH_B_FRAMES, assert_nothing_lost


def expected_frames(keys: list[np.ndarray], key_times: list[Fraction], out_times: list[Fraction]) -> list:
    """What the blending model gives at each output time, ``(1 - t) key_i + t key_(i+1)`` (the last
    key after the last input frame), with where that holds to rounding: neither key clipped to
    uint8's range (the model blends the unclipped keys)."""
    out = []
    for time in out_times:
        i = max(j for j, k in enumerate(key_times) if k <= time)
        a = keys[i].astype(float)
        b = keys[min(i + 1, len(keys) - 1)].astype(float)
        t = float((time - key_times[i]) / (key_times[i + 1] - key_times[i])) if i + 1 < len(keys) else 0.0
        out.append(((1 - t) * a + t * b, (a > 0) & (a < 255) & (b > 0) & (b < 255)))
    return out


def assert_blends(got: list[np.ndarray], want: list) -> None:
    assert len(got) == len(want)
    for g, (w, inside) in zip(got, want):
        assert np.abs(g.astype(float) - w)[inside].max() <= 1.0


@pytest.mark.parametrize("rate, count", [("60", 15), ("30", 8), ("59.94", 15), ("12.5", 3)])
def test_fps_gives_frames_at_exact_times_spanning_the_input(tmp_path, blend_weights, rate, count):
    src = make_clip(tmp_path / "in.mp4", n=6, fps=25, audio=False)  # 0.24 s
    plain, dst = tmp_path / "plain.nut", tmp_path / "out.nut"  # NUT keeps any time base: exact times
    upscale_video(src, plain, UpscaleOptions(model=blend_weights, encode=LOSSLESS))
    fps = parse_rate(rate)
    summary = upscale_video(src, dst, UpscaleOptions(model=blend_weights, encode=LOSSLESS, fps=fps))
    got = frame_times(dst)
    want = [k / fps for k in range(math.ceil(Fraction(6, 25) * fps))]
    assert summary.output_frames == len(got) == len(want) == count
    assert [t - got[0] for t in got] == want
    keys = [rgb for rgb, _ in read_frames(plain)][0::2]
    assert_blends(
        [rgb for rgb, _ in read_frames(dst)], expected_frames(keys, [Fraction(i, 25) for i in range(6)], want)
    )


def test_fps_of_a_variable_rate_input_is_constant(tmp_path, blend_weights):
    pts = [0, 1, 4, 6, 11]  # gaps of 1, 3, 2, 5 ticks of 1/30 s; ends at 16/30 s
    src = make_clip(tmp_path / "vfr.mkv", n=5, audio=False, pts=pts, time_base=Fraction(1, 30))
    dst = tmp_path / "out.nut"
    plain = tmp_path / "plain.nut"
    upscale_video(src, plain, UpscaleOptions(model=blend_weights, encode=LOSSLESS))
    upscale_video(src, dst, UpscaleOptions(model=blend_weights, encode=LOSSLESS, fps=Fraction(24)))
    got = frame_times(dst)
    key_times = frame_times(src)  # Matroska keeps milliseconds: 0, 33, 133, 200, 367 ms
    end = 2 * key_times[-1] - key_times[-2]  # the last frame lasts as long as the gap before it
    want = [Fraction(k, 24) for k in range(math.ceil(end * 24))]
    assert [t - got[0] for t in got] == want and len(want) == 13
    keys = [rgb for rgb, _ in read_frames(plain)][0::2]
    assert_blends([rgb for rgb, _ in read_frames(dst)], expected_frames(keys, key_times, want))


def test_fps_keeps_the_audio_and_the_length(tmp_path, blend_weights):
    dst = tmp_path / "out.mp4"
    summary = upscale_video(
        SAMPLE_CLIP, dst, UpscaleOptions(model=blend_weights, encode=WITH_B_FRAMES, fps=Fraction(30))
    )
    assert summary.output_frames == 29  # 0.96 s at 30 frames/s
    assert_nothing_lost(SAMPLE_CLIP, dst)


def test_fps_with_resume_gives_the_frames_of_a_plain_run(tmp_path, blend_weights):
    src = make_clip(tmp_path / "in.mp4", n=7, audio=False)
    plain, resumed = tmp_path / "plain.mkv", tmp_path / "resumed.mkv"
    upscale_video(src, plain, UpscaleOptions(model=blend_weights, encode=LOSSLESS, fps=Fraction(60)))
    options = UpscaleOptions(model=blend_weights, encode=LOSSLESS, fps=Fraction(60), resume=True, segment_frames=3)
    upscale_video(src, resumed, options)
    a, b = [rgb for rgb, _ in read_frames(plain)], [rgb for rgb, _ in read_frames(resumed)]
    assert len(a) == len(b) == 17 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert frame_times(plain) == frame_times(resumed)


def test_fps_in_time_mode_and_its_report(tmp_path, blend_weights):
    src = make_clip(tmp_path / "in.mp4", n=6, fps=25)
    report = tmp_path / "r.json"
    args = ("--model", blend_weights, "--mode", "time", "--fps", "59.94", "--json", report, "-q")
    result = run("upscale", src, tmp_path / "o.mp4", *args)
    assert result.exit_code == 0, result.output
    r = json.loads(report.read_text())
    assert r["rate_out"]["exact"] == "60000/1001" and r["size_out"] == [64, 48] and r["frames_out"] == 15


@pytest.mark.parametrize(
    "extra, words",
    [
        (("--fps", "abc"), ("--fps", "number")),
        (("--fps", "0"), ("--fps", "above 0")),
        (("--fps", "60", "--mode", "space"), ("--fps", "space")),
        (("--fps", "60", "--multi", "3"), ("--fps", "--multi")),
    ],
)
def test_bad_fps_is_refused_in_one_line(tmp_path, blend_weights, extra, words):
    src = make_clip(tmp_path / "in.mp4", n=3)
    out = tmp_path / "o.mp4"
    result = run("upscale", src, out, "--model", blend_weights, *extra)
    assert_clean_error(result, *words)
    assert result.exit_code == 2 and not out.exists()


def test_fps_with_a_midpoint_only_model_is_refused(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mp4", n=3)
    result = run("upscale", src, tmp_path / "o.mp4", "--model", tiny_weights, "--fps", "60")
    assert_clean_error(result, "halfway")
    assert result.exit_code == 2 and not (tmp_path / "o.mp4").exists()


def test_rate_parsing_and_the_common_time_base():
    assert parse_rate("59.94") == Fraction(60000, 1001) and parse_rate("60000/1001") == Fraction(60000, 1001)
    assert parse_rate("12.5") == Fraction(25, 2)
    with pytest.raises(UsageError):
        parse_rate("1e3")
    grid = ConstantRate(Fraction(60000, 1001), Fraction(1, 12800), start=0)
    assert grid.scale * grid.time_base == Fraction(1, 12800) and grid.step * grid.time_base == Fraction(1001, 60000)
