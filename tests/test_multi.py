"""``--multi N``: N-1 new frames between each pair of input frames, at exact times, audio kept;
refused in one line where the temporal net makes only the midpoint."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from stvsr_cli.cli import app
from stvsr_cli.pipeline import UpscaleOptions, upscale_video
from stvsr_cli.video import EncodeSettings, read_frames

from .conftest import SAMPLE_CLIP, make_clip
from .test_nothing_lost import WITH_B_FRAMES, assert_nothing_lost

LOSSLESS = EncodeSettings.lossless_rgb()


def frame_times(path) -> list[Fraction]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [f.pts * v.time_base for f in c.decode(v)]


@pytest.mark.parametrize("multi", [3, 4])
def test_multi_makes_n_frames_per_interval_at_exact_times_and_keeps_the_audio(tmp_path, blend_weights, multi):
    src = make_clip(tmp_path / "in.mp4", n=5, fps=25)
    dst = tmp_path / "out.nut"  # NUT keeps any time base: the times can be compared exactly
    summary = upscale_video(src, dst, UpscaleOptions(model=blend_weights, encode=LOSSLESS, multi=multi))
    assert summary.output_frames == multi * 4 + 1
    keys = frame_times(src)
    want = [keys[i] + Fraction(k, multi) * (keys[i + 1] - keys[i]) for i in range(4) for k in range(multi)]
    got = frame_times(dst)  # a muxer may shift every stream alike (AAC's priming): compare from the start
    assert [t - got[0] for t in got] == [t - keys[0] for t in [*want, keys[-1]]]
    frames = [rgb.astype(float) for rgb, _ in read_frames(dst)]
    for i in range(4):
        a, b = frames[multi * i], frames[multi * (i + 1)]
        inside = (a > 0) & (a < 255) & (b > 0) & (b < 255)  # keyframes not clipped to uint8's range
        for k in range(1, multi):
            t = k / multi
            assert np.abs(frames[multi * i + k] - ((1 - t) * a + t * b))[inside].max() <= 1.0
    # the length and the audio on the bundled sample (NUT stores no frame durations; MP4 does)
    mp4 = tmp_path / "out.mp4"
    upscale_video(SAMPLE_CLIP, mp4, UpscaleOptions(model=blend_weights, encode=WITH_B_FRAMES, multi=multi))
    assert_nothing_lost(SAMPLE_CLIP, mp4)


def test_multi_with_resume_gives_the_frames_of_a_plain_run(tmp_path, blend_weights):
    src = make_clip(tmp_path / "in.mp4", n=7)
    plain, resumed = tmp_path / "plain.mkv", tmp_path / "resumed.mkv"
    upscale_video(src, plain, UpscaleOptions(model=blend_weights, encode=LOSSLESS, multi=3))
    options = UpscaleOptions(model=blend_weights, encode=LOSSLESS, multi=3, resume=True, segment_frames=3)
    upscale_video(src, resumed, options)
    a, b = [rgb for rgb, _ in read_frames(plain)], [rgb for rgb, _ in read_frames(resumed)]
    assert len(a) == len(b) == 19 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert frame_times(plain) == frame_times(resumed)


def test_multi_with_a_midpoint_only_model_is_refused_in_one_line(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mp4", n=3)
    result = CliRunner().invoke(
        app, ["upscale", str(src), str(tmp_path / "o.mp4"), "--model", str(tiny_weights), "--multi", "3"]
    )
    assert result.exit_code == 2
    assert "halfway" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.mp4").exists()
