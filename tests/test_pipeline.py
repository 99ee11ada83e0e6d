"""The upscaling pipeline: frame counts, sizes, order, timestamps, audio, lossless output."""

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from stvsr_cli.errors import StvsrError
from stvsr_cli.pipeline import UpscaleOptions, Upscaler, upscale_video
from stvsr_cli.video import EncodeSettings, read_frames

from .conftest import make_clip, moving_frames, video_facts


@pytest.mark.parametrize("n,width,height", [(1, 16, 16), (2, 33, 17), (5, 21, 40)])
def test_upscaler_gives_2n_minus_1_frames_at_twice_the_size(tiny_model, n, width, height):
    frames = moving_frames(n, width, height)
    out = list(Upscaler(tiny_model).run(frames))
    assert len(out) == 2 * n - 1
    assert all(f.shape == (2 * height, 2 * width, 3) and f.dtype == np.uint8 for f in out)


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_batching_does_not_change_the_output(tiny_model, batch):
    frames = moving_frames(5, 24, 16)
    ref = list(Upscaler(tiny_model, batch=1).run(frames))
    out = list(Upscaler(tiny_model, batch=batch).run(frames))
    assert len(out) == len(ref)
    for a, b in zip(out, ref):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_keyframes_are_the_spatial_net_and_mids_the_interpolation(tiny_model):
    frames = moving_frames(3, 32, 32)
    out = list(Upscaler(tiny_model).run(frames))
    lr = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        hr = tiny_model.upscale(lr)
        mid = tiny_model.interpolate(lr[:2], lr[1:], hr[:2], hr[1:])
    to8 = lambda x: (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()  # noqa: E731
    for got, want in zip(out[0::2], to8(hr)):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    for got, want in zip(out[1::2], to8(mid)):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_modes_space_and_time(tiny_model):
    frames = moving_frames(4, 16, 16)
    space = list(Upscaler(tiny_model, mode="space").run(frames))
    assert len(space) == 4 and space[0].shape == (32, 32, 3)
    time_only = list(Upscaler(tiny_model, mode="time").run(frames))
    assert len(time_only) == 7 and time_only[0].shape == (16, 16, 3)
    np.testing.assert_array_equal(time_only[0], frames[0])


def test_scene_cut_mid_frame_is_the_earlier_side_not_a_blend(tiny_model):
    a = moving_frames(2, 32, 32, seed=1)
    dark = np.full((32, 32, 3), 10, np.uint8)
    frames = [a[0], a[1], dark, dark]
    up = Upscaler(tiny_model, scene_threshold=0.3)
    out = list(up.run(frames))
    assert len(out) == 7
    np.testing.assert_array_equal(out[3], out[2])  # mid between frame 1 and the cut = key 1
    assert up.scene_cuts == 1
    off = list(Upscaler(tiny_model, scene_threshold=0).run(frames))
    assert not np.array_equal(off[3], off[2])


def test_changing_frame_size_is_an_error(tiny_model):
    with pytest.raises(StvsrError, match="frame size changed"):
        list(Upscaler(tiny_model).run([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)]))


def test_twelve_frames_with_aac_give_23_frames_audio_kept_same_end(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mp4", n=12, width=48, height=32, audio=True)
    dst = tmp_path / "out.mp4"
    summary = upscale_video(src, dst, UpscaleOptions(model=tiny_weights))
    facts_in, facts_out = video_facts(src), video_facts(dst)
    assert summary.output_frames == 23 and facts_out["frames"] == 23
    assert facts_out["size"] == (96, 64)
    assert facts_out["audio"] == 1
    assert facts_out["times"][-1] == pytest.approx(facts_in["times"][-1], abs=1e-3)
    assert facts_out["duration"] == pytest.approx(facts_in["duration"], abs=0.03)


def test_timestamps_keys_keep_input_times_and_mids_sit_halfway(tmp_path, tiny_weights):
    # variable frame rate: gaps of 1, 3, 2, 5 ticks of 1/30 s
    pts = [0, 1, 4, 6, 11]
    src = make_clip(tmp_path / "vfr.mkv", n=5, audio=False, pts=pts, time_base=Fraction(1, 30))
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, UpscaleOptions(model=tiny_weights))
    times = video_facts(dst)["times"]
    keys = [p / 30 for p in pts]
    mids = [(a + b) / 60 for a, b in zip(pts, pts[1:])]
    expected = [t for pair in zip(keys, mids + [None]) for t in pair if t is not None]
    assert times == pytest.approx(expected, abs=2e-3)


def test_lossless_output_pixels_are_exactly_the_models_frames(tmp_path, tiny_model, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n=4, width=40, height=24, audio=False, codec="ffv1", pix_fmt="bgr0")
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, UpscaleOptions(model=tiny_weights, encode=EncodeSettings.lossless_rgb()))
    written = [rgb for rgb, _ in read_frames(dst)]
    expected = list(Upscaler(tiny_model).run([rgb for rgb, _ in read_frames(src)]))
    assert len(written) == len(expected) == 7
    for a, b in zip(written, expected):
        np.testing.assert_array_equal(a, b)


def test_audio_track_language_is_kept(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n=4, audio=True, audio_language="fra")
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, UpscaleOptions(model=tiny_weights))
    audio = [meta for kind, meta in video_facts(dst)["streams"] if kind == "audio"]
    assert audio and audio[0].get("language") == "fra"


def test_odd_input_size_gives_exactly_double(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "odd.mkv", n=3, width=37, height=23, audio=False, codec="ffv1", pix_fmt="bgr0")
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, UpscaleOptions(model=tiny_weights, encode=EncodeSettings.lossless_rgb()))
    facts = video_facts(dst)
    assert facts["size"] == (74, 46) and facts["frames"] == 5


def test_failed_run_leaves_no_file_behind(tmp_path, tiny_weights, monkeypatch):
    src = make_clip(tmp_path / "in.mp4", n=6, audio=True)
    dst = tmp_path / "out.mp4"

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("stvsr_cli.video.writing.VideoWriter.write", boom)
    with pytest.raises(RuntimeError):
        upscale_video(src, dst, UpscaleOptions(model=tiny_weights))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "tiny.safetensors"]


def test_decoded_colours_round_trip_through_yuv_output(tmp_path):
    """Flat colours through yuv420p in and out stay within a few levels (no matrix mix-up)."""
    path = tmp_path / "flat.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.options = {"crf": "0"}
        for i, colour in enumerate([(200, 40, 40), (40, 200, 40)]):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), colour, np.uint8), format="rgb24").reformat(
                format="yuv420p"
            )
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    dst = tmp_path / "out.mp4"
    upscale_video(path, dst, UpscaleOptions(scene_threshold=0))  # bundled model: flat stays flat
    first = next(read_frames(dst))[0]
    assert np.abs(first[16:48, 16:48].astype(int) - np.array([200, 40, 40])).mean() < 4


def test_mid_from_chooses_the_new_frames_and_keeps_the_keyframes(tmp_path, clip, tiny_weights):
    """``--mid-from st`` writes the S->T stream's frames, ``refined`` the whole model's; the
    keyframes are the same."""
    frames = {}
    for mid_from in ("st", "refined"):
        dst = tmp_path / f"{mid_from}.mkv"
        options = UpscaleOptions(model=tiny_weights, encode=EncodeSettings.lossless_rgb(), mid_from=mid_from)
        upscale_video(clip, dst, options)
        frames[mid_from] = [rgb for rgb, _ in read_frames(dst)]
    st, refined = frames["st"], frames["refined"]
    assert all(np.array_equal(a, b) for a, b in zip(st[0::2], refined[0::2], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(st[1::2], refined[1::2], strict=True))
