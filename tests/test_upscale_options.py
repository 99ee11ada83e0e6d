"""`stvsr upscale` options for scripts and delivery: --json reports and --size."""

import json

import av
import numpy as np
import pytest

from stvsr_cli.pipeline import Upscaler
from stvsr_cli.video import read_frames

from .conftest import make_clip, video_facts
from .test_cli import assert_clean_error, run


def test_json_report_of_a_finished_run(tmp_path, clip, tiny_weights):
    out, report = tmp_path / "out.mp4", tmp_path / "run.json"
    result = run("upscale", clip, out, "--model", tiny_weights, "--json", report, "-q")
    assert result.exit_code == 0, result.output
    r = json.loads(report.read_text())
    assert r["ok"] is True and r["input"] == str(clip) and r["output"] == str(out)
    assert (r["frames_in"], r["frames_out"]) == (6, 11) == (6, video_facts(out)["frames"])
    assert (r["size_in"], r["size_out"]) == ([64, 48], [128, 96])
    assert r["rate_in"] == {"exact": "25/1", "fps": 25.0} and r["rate_out"] == {"exact": "50/1", "fps": 50.0}
    assert r["model"] == str(tiny_weights) and r["device"] == "cpu" and r["precision"] in ("fp32", "bf16")
    assert r["mode"] == "spacetime" and r["warnings"] == [] and r["seconds"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["clip.mp4", "out.mp4", "run.json", "tiny.safetensors"])


def test_json_report_with_multi_and_time_mode(tmp_path, clip, tiny_weights):
    report = tmp_path / "run.json"
    args = ("--model", tiny_weights, "--json", report, "-q", "--mode", "time")
    assert run("upscale", clip, tmp_path / "o.mp4", *args).exit_code == 0
    r = json.loads(report.read_text())
    assert r["size_out"] == [64, 48] and r["rate_out"]["exact"] == "50/1" and r["mode"] == "time"


def test_json_report_of_a_failed_run(tmp_path, tiny_weights):
    report = tmp_path / "run.json"
    result = run("upscale", tmp_path / "missing.mp4", tmp_path / "o.mp4", "--model", tiny_weights, "--json", report)
    assert_clean_error(result, "not found")
    r = json.loads(report.read_text())
    assert r["ok"] is False and "not found" in r["error"] and r["exit_code"] == result.exit_code == 1


def test_json_report_into_a_missing_folder_is_refused_before_work(tmp_path, clip, tiny_weights):
    out = tmp_path / "o.mp4"
    result = run("upscale", clip, out, "--model", tiny_weights, "--json", tmp_path / "nope" / "r.json")
    assert_clean_error(result, "--json", "nope")
    assert result.exit_code == 2 and not out.exists()


def test_size_gives_exactly_that_size_with_frames_and_audio_kept(tmp_path, clip, tiny_weights):
    out = tmp_path / "o.mp4"
    assert run("upscale", clip, out, "--model", tiny_weights, "--size", "100x76", "-q").exit_code == 0
    facts = video_facts(out)
    assert facts["size"] == (100, 76) and facts["frames"] == 11 and facts["audio"] == 1


def test_size_is_a_lanczos_resize_of_the_models_frames(tmp_path, tiny_model, tiny_weights):
    src = make_clip(tmp_path / "in.mkv", n=3, width=40, height=24, audio=False, codec="ffv1", pix_fmt="bgr0")
    out = tmp_path / "o.mkv"
    assert run("upscale", src, out, "--model", tiny_weights, "--lossless", "--size", "60x30", "-q").exit_code == 0
    written = [rgb for rgb, _ in read_frames(out)]
    model_frames = list(Upscaler(tiny_model).run([rgb for rgb, _ in read_frames(src)]))
    assert len(written) == len(model_frames) == 5
    for got, frame in zip(written, model_frames):
        resized = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
            width=60, height=30, interpolation="LANCZOS"
        )
        np.testing.assert_array_equal(got, resized.to_ndarray(format="rgb24"))


@pytest.mark.parametrize("size, word", [("100", "WIDTHxHEIGHT"), ("101x100", "even"), ("0x0", "even")])
def test_bad_size_is_refused_in_one_line(tmp_path, clip, tiny_weights, size, word):
    out = tmp_path / "o.mp4"
    result = run("upscale", clip, out, "--model", tiny_weights, "--size", size)
    assert_clean_error(result, word)
    assert result.exit_code == 2 and not out.exists()
