"""A folder at once: every video of IN_DIR into OUT_DIR under the same names; non-videos
skipped, damaged videos failed without stopping the others, finished outputs skipped on a rerun,
a table and a JSON report, exit 1 if any failed, 130 when interrupted."""

from __future__ import annotations

import json

import pytest

from stvsr_cli import pipeline
from stvsr_cli.batch import upscale_folder
from stvsr_cli.errors import Interrupted
from stvsr_cli.pipeline import UpscaleOptions

from .conftest import make_clip, video_facts
from .media_facts import of_kind, stream_facts
from .test_cli import assert_clean_error, run


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "b.mp4", n=6)  # with audio
    make_clip(src / "a 2.mkv", n=4, audio=False)
    (src / "notes.txt").write_text("not a video")
    return src


def test_every_video_of_a_folder_with_a_table_and_a_report(tmp_path, folder, tiny_weights):
    (folder / "broken.mp4").write_bytes((folder / "b.mp4").read_bytes()[:3000])  # damaged: fails, alone
    dst, report = tmp_path / "out" / "x2", tmp_path / "r.json"
    result = run("upscale", folder, dst, "--model", tiny_weights, "--json", report)
    assert result.exit_code == 1
    assert "1 of 4 file(s) failed" in result.output
    for name in ("a 2.mkv", "b.mp4", "broken.mp4", "notes.txt"):
        assert name in result.output
    assert sorted(p.name for p in dst.iterdir()) == ["a 2.mkv", "b.mp4"]
    assert video_facts(dst / "b.mp4")["frames"] == 11 and video_facts(dst / "a 2.mkv")["frames"] == 7
    assert (
        of_kind(stream_facts(dst / "b.mp4"), "audio")[0].packets
        == of_kind(stream_facts(folder / "b.mp4"), "audio")[0].packets
    )
    r = json.loads(report.read_text())
    assert (r["ok"], r["done"], r["failed"], r["skipped"]) == (False, 2, 1, 1)
    by_name = {f["input"].rsplit("/", 1)[-1]: f for f in r["files"]}
    assert by_name["b.mp4"]["frames_out"] == 11 and by_name["broken.mp4"]["ok"] is False
    assert by_name["notes.txt"]["status"] == "skipped"


def test_a_rerun_skips_finished_outputs(tmp_path, folder, tiny_weights):
    dst = tmp_path / "out"
    assert run("upscale", folder, dst, "--model", tiny_weights, "-q").exit_code == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in dst.iterdir()}
    result = run("upscale", folder, dst, "--model", tiny_weights)
    assert result.exit_code == 0 and "output exists" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in dst.iterdir()} == stamps


def test_resume_inside_a_folder_job(tmp_path, folder, tiny_weights):
    dst = tmp_path / "out"
    args = ("--model", tiny_weights, "--resume", "--segment-frames", "2", "-q")
    assert run("upscale", folder, dst, *args).exit_code == 0
    assert video_facts(dst / "b.mp4")["frames"] == 11
    assert sorted(p.name for p in dst.iterdir()) == ["a 2.mkv", "b.mp4"]  # no segment folders left


def test_an_interruption_stops_the_batch(tmp_path, folder, tiny_weights, monkeypatch):
    calls = []
    real = pipeline.upscale_video

    def second_one_interrupted(src, dst, options, progress=None):
        calls.append(src.name)
        if len(calls) == 2:
            raise Interrupted("stopped by SIGINT; no output was written")
        return real(src, dst, options, progress=progress)

    monkeypatch.setattr(pipeline, "upscale_video", second_one_interrupted)
    result = run("upscale", folder, tmp_path / "out", "--model", tiny_weights, "-q")
    assert result.exit_code == 130 and "SIGINT" in result.output
    assert calls == ["a 2.mkv", "b.mp4"] and [p.name for p in (tmp_path / "out").iterdir()] == ["a 2.mkv"]


def test_the_output_folder_cannot_be_the_input_folder(folder, tiny_weights):
    assert_clean_error(run("upscale", folder, folder, "--model", tiny_weights), "input folder")


def test_library_api(tmp_path, folder, tiny_weights):
    result = upscale_folder(folder, tmp_path / "o", UpscaleOptions(model=tiny_weights))
    assert [f.status for f in result.files] == ["done", "done", "skipped"]
