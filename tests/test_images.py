"""Image sequences in (a folder of pictures, a numbered pattern; 16-bit kept) and out
(``out/%05d.png``, ``.tif``, ``.jpg``; appearing only when complete; not overwritten unasked)."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from stvsr_cli.images import list_pictures, read_picture
from stvsr_cli.pipeline import UpscaleOptions, Upscaler, upscale_video
from stvsr_cli.video import EncodeSettings, read_frames

from .conftest import make_clip, moving_frames
from .test_cli import assert_clean_error, run
from .test_multi import frame_times


def write_png(path, rgb: np.ndarray) -> None:
    """An 8-bit (uint8) or 16-bit (uint16) RGB PNG, written with PyAV alone."""
    deep = rgb.dtype == np.uint16
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if deep else "rgb24")
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png", rate=25)
        stream.width, stream.height = rgb.shape[1], rgb.shape[0]
        stream.pix_fmt = "rgb48be" if deep else "rgb24"
        out.mux(stream.encode(frame.reformat(format=stream.pix_fmt)))
        out.mux(stream.encode(None))


@pytest.fixture
def picture_folder(tmp_path):
    """Five 48x32 pictures named so that only natural order is right: 1, 2, 3, 10, 20."""
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = moving_frames(5, 48, 32)
    for name, rgb in zip((1, 2, 3, 10, 20), frames):
        write_png(folder / f"f{name}.png", rgb)
    (folder / "notes.txt").write_text("not a picture")
    return folder, frames


def test_a_folder_of_pictures_is_read_in_natural_order_at_the_input_fps(
    tmp_path, picture_folder, tiny_model, tiny_weights
):
    folder, frames = picture_folder
    assert [p.name for p in list_pictures(folder)] == ["f1.png", "f2.png", "f3.png", "f10.png", "f20.png"]
    dst = tmp_path / "out.nut"
    options = UpscaleOptions(model=tiny_weights, encode=EncodeSettings.lossless_rgb(), input_fps=Fraction(24))
    summary = upscale_video(folder, dst, options)
    assert summary.output_frames == 9 and summary.output_rate == 48
    written = [rgb for rgb, _ in read_frames(dst)]
    for got, want in zip(written, Upscaler(tiny_model).run(frames), strict=True):
        np.testing.assert_array_equal(got, want)
    assert frame_times(dst) == [Fraction(k, 48) for k in range(9)]


def test_a_numbered_pattern_with_an_ntsc_rate(tmp_path, picture_folder, tiny_weights):
    folder, _ = picture_folder
    report = tmp_path / "r.json"
    args = ("--model", tiny_weights, "--input-fps", "23.976", "--json", report, "-q")
    result = run("upscale", folder / "f%d.png", tmp_path / "o.mp4", *args)
    assert result.exit_code == 0, result.output
    r = json.loads(report.read_text())
    assert r["frames_in"] == 5 and r["frames_out"] == 9 and r["rate_out"]["exact"] == "48000/1001"


def test_pictures_out_are_the_models_frames_numbered_from_one(tmp_path, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n=4, width=40, height=24, codec="ffv1", pix_fmt="bgr0")  # with audio
    video, out = tmp_path / "v.mkv", tmp_path / "out"
    out.mkdir()
    upscale_video(src, video, UpscaleOptions(model=tiny_weights, encode=EncodeSettings.lossless_rgb()))
    result = run("upscale", src, out / "%05d.png", "--model", tiny_weights)
    assert result.exit_code == 0, result.output
    assert "audio and subtitles are not written" in result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{k:05d}.png" for k in range(1, 8)]  # nothing else: no staging folder left
    for name, (want, _) in zip(names, read_frames(video), strict=True):
        np.testing.assert_array_equal(read_picture(out / name), want)


def test_16_bit_pictures_stay_16_bit(tmp_path, tiny_model, tiny_weights):
    folder, out = tmp_path / "deep", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    frames = [(f.astype(np.uint16) * 257 + k) for k, f in enumerate(moving_frames(3, 32, 32))]
    for i, rgb in enumerate(frames):
        write_png(folder / f"{i:03d}.png", rgb)
    assert run("upscale", folder, out / "%04d.png", "--model", tiny_weights, "-q").exit_code == 0
    written = [read_picture(p) for p in sorted(out.iterdir())]
    assert len(written) == 5 and all(w.dtype == np.uint16 for w in written)
    for got, want in zip(written, Upscaler(tiny_model).run(frames), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_tiff_and_jpeg_pictures(tmp_path, clip, tiny_weights, suffix):
    out = tmp_path / "out"
    out.mkdir()
    assert run("upscale", clip, out / f"f_%03d{suffix}", "--model", tiny_weights, "-q").exit_code == 0
    pictures = sorted(out.iterdir())
    assert [p.name for p in pictures] == [f"f_{k:03d}{suffix}" for k in range(1, 12)]
    assert read_picture(pictures[0]).shape == (96, 128, 3)


def test_existing_pictures_are_kept_unless_overwrite_and_then_replaced_whole(tmp_path, clip, tiny_weights):
    out = tmp_path / "out"
    out.mkdir()
    for k in range(1, 31):
        (out / f"{k:05d}.png").write_bytes(b"old")
    (out / "keep.txt").write_text("mine")
    result = run("upscale", clip, out / "%05d.png", "--model", tiny_weights)
    assert_clean_error(result, "exist", "--overwrite")
    assert all((out / f"{k:05d}.png").read_bytes() == b"old" for k in range(1, 31))
    assert run("upscale", clip, out / "%05d.png", "--model", tiny_weights, "--overwrite", "-q").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{k:05d}.png" for k in range(1, 12)] + ["keep.txt"]


def test_a_failed_run_leaves_no_pictures(tmp_path, picture_folder, tiny_weights):
    folder, _ = picture_folder
    (folder / "f15.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # between f10 and f20
    out = tmp_path / "out"
    out.mkdir()
    result = run("upscale", folder, out / "%05d.png", "--model", tiny_weights, "-q")
    assert_clean_error(result, "f15.png")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "case, words",
    [
        ("other size", ("f20.png", "48x32")),
        ("empty folder", ("no pictures",)),
        ("no match", ("no pictures match",)),
    ],
)
def test_bad_image_sequence_input_is_one_line(tmp_path, picture_folder, tiny_weights, case, words):
    folder, _ = picture_folder
    src = folder
    if case == "other size":
        write_png(folder / "f20.png", np.zeros((30, 40, 3), np.uint8))
    elif case == "empty folder":
        src = tmp_path / "empty"
        src.mkdir()
    else:
        src = folder / "g%04d.png"
    out = tmp_path / "o.mp4"
    assert_clean_error(run("upscale", src, out, "--model", tiny_weights, "-q"), *words)
    assert not out.exists()


@pytest.mark.parametrize(
    "output, extra, words",
    [("one.png", (), ("numbered", "%05d")), ("%05d.png", ("--resume",), ("--resume",)), ("%05d.gif", (), (".gif",))],
)
def test_bad_picture_output_is_refused_before_work(tmp_path, clip, tiny_weights, output, extra, words):
    out = tmp_path / "out"
    out.mkdir()
    result = run("upscale", clip, out / output, "--model", tiny_weights, *extra)
    assert_clean_error(result, *words)
    assert list(out.iterdir()) == []
