"""stvsr bench: layout parsers, the protocol's clips, baselines, model rows, outputs and the CLI."""

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from stvsr_cli.baselines import bicubic_blend, mci_lanczos
from stvsr_cli.bench import (
    METHODS,
    BenchConfig,
    BenchError,
    clip_from_hr,
    find_clips,
    markdown_tables,
    model_outputs,
    parse_methods,
    run_bench,
    write_csv,
    write_json,
    ycbcr_to_rgb,
)
from stvsr_cli.bench.measure import measure
from stvsr_cli.cli import app
from stvsr_cli.data import degrade, read_image
from stvsr_cli.examples import write_png
from stvsr_cli.metrics import PSNR_CAP, psnr

from .conftest import make_clip, moving_frames, shared_path


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine spinning threads
    make them ~100x slower: run these tests on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


YCC_MATRIX = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """BT.601 studio range, the way FISR stores its PNGs (MATLAB rgb2ycbcr)."""
    ycc = rgb.astype(np.float64) / 255 @ YCC_MATRIX.T + np.array([16.0, 128.0, 128.0])
    return np.clip(np.round(ycc), 0, 255).astype(np.uint8)


def lr_of(hr: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255
    return (degrade(x) * 255).round().byte()[0].permute(1, 2, 0).numpy()


def write_triplets(root, names, files, size=(24, 20), seed=0):
    """``root/<name>/<files...>`` with moving frames; returns the frames per name."""
    out = {}
    for k, name in enumerate(names):
        frames = moving_frames(len(files), *size, seed=seed + k)
        (root / name).mkdir(parents=True)
        for f, rgb in zip(files, frames, strict=True):
            write_png(root / name / f, rgb)
        out[name] = frames
    return out


# ------------------------------------------------------------------------------ protocol clips


def test_clip_from_hr_crops_to_even_size_and_degrades_even_frames():
    hr = moving_frames(5, 21, 15)
    clip = clip_from_hr("c", hr)
    assert len(clip.lr) == 3 and clip.out_frames == 5 and sorted(clip.gt) == [0, 1, 2, 3, 4]
    assert clip.gt[3].shape == (14, 20, 3) and clip.lr[0].shape == (7, 10, 3)
    assert np.array_equal(clip.gt[3], hr[3][:14, :20])
    for i in range(3):
        assert np.array_equal(clip.lr[i], lr_of(np.ascontiguousarray(hr[2 * i][:14, :20])))
    paper = clip_from_hr("c", hr, antialias=False)
    assert not np.array_equal(paper.lr[0], clip.lr[0])
    with pytest.raises(BenchError):
        clip_from_hr("c", hr[:4])


# ------------------------------------------------------------------------------------ layouts


def test_vimeo_triplet_list_with_crlf_blank_lines_and_a_missing_entry(tmp_path):
    frames = write_triplets(tmp_path / "sequences", ["00001/0001", "00002/0002"], ["im1.png", "im2.png", "im3.png"])
    (tmp_path / "tri_testlist.txt").write_bytes(b"00001/0001\r\n\r\n  00002/0002 \r\n00003/0003\r\n\r\n")
    sources, warnings = find_clips("vimeo90k", tmp_path)
    assert [s.name for s in sources] == ["00001/0001", "00002/0002"]
    assert len(warnings) == 1 and "1 listed sequence" in warnings[0]
    clip = sources[1].load()
    assert len(clip.lr) == 2 and np.array_equal(clip.gt[1], frames["00002/0002"][1])
    assert np.array_equal(clip.lr[1], lr_of(frames["00002/0002"][2]))


def test_vimeo_septuplet_shared_sample():
    root = shared_path("frames", "vimeo90k_septuplet_lrx4")
    sources, _ = find_clips("vimeo90k", root)
    assert [s.name for s in sources] == ["00001/0266"] and sources[0].frames == 7
    clip = sources[0].load()
    ims = [read_image(root / "sequences" / "00001" / "0266" / f"im{k}.png") for k in range(1, 8)]
    h, w = ims[0].shape[0] // 2 * 2, ims[0].shape[1] // 2 * 2
    assert len(clip.lr) == 4 and sorted(clip.gt) == list(range(7))
    assert np.array_equal(clip.gt[3], ims[3][:h, :w])  # im4 is t=3
    assert np.array_equal(clip.lr[1], lr_of(np.ascontiguousarray(ims[2][:h, :w])))  # LR from im3


def test_ucf101_dvf_dain_layout_in_natural_order(tmp_path):
    names = ["10", "2", "1", "shot3", "Shot20"]  # letters without case, as upscale orders pictures
    frames = write_triplets(tmp_path, names, ["frame_00.png", "frame_01_gt.png", "frame_02.png"])
    (tmp_path / "notes").mkdir()  # a folder that is not a triplet is ignored
    sources, _ = find_clips("ucf101", tmp_path)
    assert [s.name for s in sources] == ["1", "2", "10", "shot3", "Shot20"]
    clip = sources[2].load()
    assert np.array_equal(clip.gt[1], frames["10"][1]) and np.array_equal(clip.lr[0], lr_of(frames["10"][0]))


def test_ucf101_frame0_1_2_shared_sample():
    root = shared_path("frames", "ucf101_triplets_adacof")
    sources, _ = find_clips("ucf101", root)
    names = [s.name for s in sources]
    assert names == sorted(names, key=int) and {"15", "21"} <= set(names)
    clip = sources[names.index("15")].load()
    mid = read_image(root / "15" / "frame1.png")
    assert np.array_equal(clip.gt[1], mid[: mid.shape[0] // 2 * 2, : mid.shape[1] // 2 * 2])
    assert len(clip.lr) == 2


def test_middlebury_shared_sample():
    root = shared_path("frames", "middlebury")
    sources, _ = find_clips("middlebury", root)
    assert len(sources) == 8 and [s.name for s in sources] == sorted(s.name for s in sources)
    clip = next(s for s in sources if s.name == "Dimetrodon").load()
    gt = read_image(root / "other-gt-interp" / "Dimetrodon" / "frame10i11.png")
    f11 = read_image(root / "other-data" / "Dimetrodon" / "frame11.png")
    h, w = gt.shape[0] // 2 * 2, gt.shape[1] // 2 * 2
    assert np.array_equal(clip.gt[1], gt[:h, :w])
    assert np.array_equal(clip.lr[1], lr_of(np.ascontiguousarray(f11[:h, :w])))


def test_fisr_shared_folder_with_only_lr_files_says_ground_truth_is_missing():
    root = shared_path("frames", "fisr_test_folder")
    with pytest.raises(BenchError, match="no HR ground truth"):
        find_clips("fisr", root)


def write_fisr(root, vid, fr, lr_size=(16, 12), with_hr=True, seed=0):
    """Tiny FISR-named files: YCbCr PNGs of moving frames; returns the RGB truth (seq 1..9)."""
    w, h = lr_size
    hr = moving_frames(9, 2 * w, 2 * h, seed=seed)
    (root / "LR_LFR").mkdir(parents=True, exist_ok=True)
    (root / "HR_HFR").mkdir(parents=True, exist_ok=True)
    for seq in (1, 3, 5, 7, 9):
        write_png(root / "LR_LFR" / f"LR_vid_{vid}_fr_{fr}_seq_{seq}.png", rgb_to_ycbcr(lr_of(hr[seq - 1])))
    if with_hr:
        for seq in range(2, 9):
            write_png(root / "HR_HFR" / f"HR_vid_{vid}_fr_{fr}_seq_{seq}.png", rgb_to_ycbcr(hr[seq - 1]))
    return hr


def test_fisr_layout_with_synthetic_files(tmp_path):
    hr = write_fisr(tmp_path, 1, "07171")
    write_fisr(tmp_path, 2, "00012", with_hr=False)
    sources, warnings = find_clips("fisr", tmp_path)
    assert [s.name for s in sources] == ["vid_1_fr_07171"]
    assert len(warnings) == 1 and "no HR ground truth" in warnings[0] and "vid_2_fr_00012" in warnings[0]
    clip = sources[0].load()
    assert len(clip.lr) == 5 and clip.lr[0].shape == (12, 16, 3)
    assert sorted(clip.gt) == [1, 2, 3, 4, 5, 6, 7]  # seq 2..8; seq 1 and 9 have no truth
    assert clip.gt[1].shape == (24, 32, 3)
    # YCbCr -> RGB loses at most a little to 8-bit rounding
    assert psnr(clip.gt[4], hr[4]) > 40 and psnr(clip.lr[2], lr_of(hr[4])) > 40


@pytest.mark.slow
def test_fisr_shared_lr_frames_with_synthetic_hr(tmp_path):
    shared = shared_path("frames", "fisr_test_folder", "scene1")
    (tmp_path / "LR_LFR").mkdir()
    (tmp_path / "HR_HFR").mkdir()
    for p in shared.glob("LR_*.png"):
        os.symlink(p, tmp_path / "LR_LFR" / p.name)
    flat = np.zeros((2160, 3840, 3), np.uint8)
    flat[...] = (81, 90, 240)  # studio-range YCbCr of pure red, rounded
    write_png(tmp_path / "flat.png", flat)
    for seq in range(2, 9):
        os.symlink(tmp_path / "flat.png", tmp_path / "HR_HFR" / f"HR_vid_1_fr_07171_seq_{seq}.png")
    sources, warnings = find_clips("fisr", tmp_path)
    assert [s.name for s in sources] == ["vid_1_fr_07171"] and not warnings
    clip = sources[0].load()
    assert [f.shape for f in clip.lr] == [(1080, 1920, 3)] * 5
    assert clip.gt[1].shape == (2160, 3840, 3)
    assert np.abs(clip.gt[7][0, 0].astype(int) - (255, 0, 0)).max() <= 1


def test_ycbcr_to_rgb_inverts_bt601_studio_range():
    assert tuple(ycbcr_to_rgb(np.array([[[16, 128, 128]]], np.uint8))[0, 0]) == (0, 0, 0)
    assert tuple(ycbcr_to_rgb(np.array([[[235, 128, 128]]], np.uint8))[0, 0]) == (255, 255, 255)
    rgb = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb))
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 2


def test_videos_layout_and_frame_cap(tmp_path):
    make_clip(tmp_path / "a.mp4", n=8, width=40, height=30, audio=False)
    (tmp_path / "sub").mkdir()
    make_clip(tmp_path / "sub" / "b.mkv", n=5, width=24, height=20, audio=False)
    (tmp_path / "readme.txt").write_text("not a video")
    sources, _ = find_clips("videos", tmp_path)
    assert [s.name for s in sources] == ["a.mp4", "sub/b.mkv"]
    assert sources[0].frames == 7  # an even count drops the last frame (mkv: count unknown until decoded)
    assert sources[1].load().out_frames == 5
    clip = sources[0].load()
    assert clip.out_frames == 7 and clip.gt[0].shape == (30, 40, 3) and clip.lr[0].shape == (15, 20, 3)
    capped, _ = find_clips("videos", tmp_path, max_frames=3)
    assert capped[0].load().out_frames == 3 and capped[0].frames == 3


@pytest.mark.parametrize("dataset", ["vimeo90k", "ucf101", "middlebury", "fisr", "videos"])
def test_an_empty_folder_is_a_one_line_error(tmp_path, dataset):
    with pytest.raises(BenchError, match=f"no {dataset}|vimeo90k: no tri_testlist"):
        find_clips(dataset, tmp_path)


def test_bad_dataset_folder_and_methods():
    with pytest.raises(BenchError, match="unknown dataset"):
        find_clips("kitti", "/")
    with pytest.raises(BenchError, match="not found"):
        find_clips("ucf101", "/nonexistent/folder")
    with pytest.raises(BenchError, match="unknown method"):
        parse_methods("bicubic_blend,sharpen")
    with pytest.raises(BenchError, match="empty"):
        parse_methods(" , ")
    assert parse_methods("model_refined, bicubic_blend") == ("bicubic_blend", "model_refined")
    assert parse_methods("all") == METHODS


# ---------------------------------------------------------------------------------- baselines


def test_bicubic_blend_keys_are_bicubic_and_mids_the_exact_average():
    lr = moving_frames(3, 20, 14)
    out = bicubic_blend(lr)
    assert len(out) == 5 and all(f.shape == (28, 40, 3) and f.dtype == np.uint8 for f in out)
    x = torch.from_numpy(np.stack(lr)).permute(0, 3, 1, 2).double() / 255
    up = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1) * 255
    to8 = lambda t: t.round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    for i in range(3):
        assert np.abs(out[2 * i].astype(int) - to8(up[i]).astype(int)).max() <= 1
    for i in range(2):
        exact = 0.5 * (up[i] + up[i + 1])
        assert np.abs(out[2 * i + 1].astype(float) - exact.permute(1, 2, 0).numpy()).max() <= 0.5 + 1e-4
    # the intermediate is the average of the two keyframes' unrounded values: within rounding of the uint8 mean
    mean8 = (out[0].astype(int) + out[2].astype(int)) / 2
    assert np.abs(out[1] - mean8).max() <= 1


@pytest.mark.parametrize("size", [(40, 36), (10, 8)])
def test_mci_lanczos_gives_2n_minus_1_frames_at_twice_the_size(size):
    w, h = size
    lr = moving_frames(3, w, h)
    out = mci_lanczos(lr)
    assert len(out) == 5 and all(f.shape == (2 * h, 2 * w, 3) and f.dtype == np.uint8 for f in out)
    keys = bicubic_blend(lr)[0::2]
    for got, ref in zip(out[0::2], keys, strict=True):  # lanczos and bicubic keyframes nearly agree
        assert psnr(got, ref) > 30


# --------------------------------------------------------------------------------- model rows


def test_model_rows_match_the_model_and_the_pipeline(tiny_model):
    from stvsr_cli.pipeline import Upscaler

    lr = moving_frames(3, 20, 12)
    upscaler = Upscaler(tiny_model, "cpu", "fp32")
    rows = model_outputs(upscaler, lr, ("model_st", "model_refined"))
    assert set(rows) == {"model_st", "model_refined"}
    assert all(len(v) == 5 and v[0].shape == (24, 40, 3) for v in rows.values())
    assert all(np.array_equal(a, b) for a, b in zip(rows["model_st"][0::2], rows["model_refined"][0::2], strict=True))
    pipeline = list(Upscaler(tiny_model, "cpu", "fp32").run(lr))
    for got, want in zip(rows["model_refined"], pipeline, strict=True):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    # what the pipeline does: keyframes from MS at its own size multiple, then the LR pair and
    # the keyframes padded (edge replicated) to the whole model's multiple
    x = torch.from_numpy(np.stack(lr[:2])).permute(0, 3, 1, 2).float() / 255
    m, ms = tiny_model.size_multiple, tiny_model.spatial.size_multiple

    def pad(t, k):
        return F.pad(t, (0, -t.shape[-1] % k, 0, -t.shape[-2] % k), mode="replicate")

    with torch.no_grad():
        hr = pad(tiny_model.upscale(pad(x, ms))[..., :24, :40], 2 * m)
        lo = pad(x, m)
        out = tiny_model.streams(lo[:1], lo[1:], hr[:1], hr[1:])
    st = (out["h_st"][..., :24, :40].clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).numpy()
    assert np.abs(rows["model_st"][1].astype(int) - st.astype(int)).max() <= 1


def test_measure_reports_time_and_memory():
    result, seconds, peak = measure(lambda: np.ones((64, 1024, 1024), np.uint8).sum(), torch.device("cpu"))
    assert result == 64 * 2**20 and seconds > 0
    if Path("/proc/self/clear_refs").exists():  # the peak is reset per run: it is this run's 64 MiB array
        assert 56 <= peak <= 96, peak


# ------------------------------------------------------------------------- end to end, outputs


@pytest.fixture
def dvf(tmp_path):
    root = tmp_path / "ucf"
    write_triplets(root, ["1", "2", "3"], ["frame_00.png", "frame_01_gt.png", "frame_02.png"], size=(36, 28))
    return root


def test_run_bench_json_schema(dvf, tiny_weights, tmp_path):
    config = BenchConfig("ucf101", dvf, methods=METHODS, model=tiny_weights, device="cpu", limit=2, metric="y")
    result = run_bench(config)
    write_json(result, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data) == {"protocol", "sequences", "summary"}
    protocol = data["protocol"]
    assert "antialiased bicubic" in protocol["text"] and "keyframes (even t)" in protocol["text"]
    assert protocol["dataset"] == "ucf101" and protocol["sequences"] == 2 and protocol["psnr_cap_db"] == PSNR_CAP
    assert protocol["model"] == str(tiny_weights) and protocol["device"].startswith("cpu")
    assert [s["name"] for s in data["sequences"]] == ["1", "2"]
    seq = data["sequences"][0]
    assert seq["frames"] == 3 and seq["scored_key"] == 2 and seq["scored_mid"] == 1
    assert [r["method"] for r in seq["results"]] == list(METHODS)
    assert [f["t"] for f in seq["results"][0]["frames"]] == [0, 1, 2]
    assert [s["method"] for s in data["summary"]] == list(METHODS)
    for s in data["summary"]:
        assert set(s) >= {
            "method",
            "key_psnr",
            "mid_psnr",
            "key_ssim",
            "mid_ssim",
            "fps",
            "ms_per_frame",
            "peak_mem_mb",
            "device",
            "key_psnr_y",
            "mid_psnr_y",
        }
        for key in ("key_psnr", "mid_psnr", "key_ssim", "mid_ssim", "fps", "key_psnr_y"):
            assert isinstance(s[key], float) and math.isfinite(s[key])
        assert 0 < s["key_ssim"] <= 1 and s["sequences"] == 2
    # averaged per frame, then per clip
    blend = [r for q in data["sequences"] for r in q["results"] if r["method"] == "bicubic_blend"]
    assert data["summary"][0]["mid_psnr"] == pytest.approx(np.mean([r["mid_psnr"] for r in blend]))
    assert blend[0]["key_psnr"] == pytest.approx(np.mean([f["psnr"] for f in blend[0]["frames"] if f["kind"] == "key"]))
    # the model rows share their keyframes
    keys = {s["method"]: s["key_psnr"] for s in data["summary"]}
    assert keys["model_st"] == keys["model_refined"]

    write_csv(result, tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(rows) == 2 * len(METHODS) + len(METHODS) and rows[-1]["sequence"] == "ALL"
    assert "mid_psnr_y" in rows[0]

    md = markdown_tables(result).splitlines()
    assert md[0] == "| method | key PSNR | mid PSNR | key SSIM | mid SSIM | key PSNR-Y | mid PSNR-Y | frames/s |"
    blend_row = md[2].split(" | ")
    assert blend_row[0] == "| bicubic_blend" and blend_row[2] == f"{data['summary'][0]['mid_psnr']:.2f}"
    assert md[2 + len(METHODS)] == "" and md[2 + len(METHODS) + 3] == "| sequence | " + " | ".join(METHODS) + " |"
    first = md[2 + len(METHODS) + 5].split(" | ")
    assert first[0] == "| 1" and first[1] == f"{blend[0]['mid_psnr']:.2f}" and len(md) == 2 + len(METHODS) + 7


def test_fisr_scores_seq_2_to_8(tmp_path):
    write_fisr(tmp_path, 1, "00001", lr_size=(20, 16))
    result = run_bench(BenchConfig("fisr", tmp_path, methods=("bicubic_blend",)))
    seq = result.sequences[0]
    assert seq["frames"] == 9 and seq["scored_key"] == 3 and seq["scored_mid"] == 4
    assert [f["t"] for f in seq["results"][0]["frames"]] == [1, 2, 3, 4, 5, 6, 7]
    assert "FISR's own split" in result.protocol["text"] and "antialiased" not in result.protocol["text"]


def run_cli(*args):
    return CliRunner().invoke(app, ["bench", *map(str, args)])


def test_cli_table_json_csv_and_examples(dvf, tiny_weights, tmp_path):
    ex = tmp_path / "ex"
    r = run_cli(
        "--dataset",
        "ucf101",
        "--data",
        dvf,
        "--model",
        tiny_weights,
        "--methods",
        "bicubic_blend,mci_lanczos,model_refined",
        "--json",
        tmp_path / "o.json",
        "--csv",
        tmp_path / "o.csv",
        "--markdown",
        tmp_path / "o.md",
        "--save-examples",
        ex,
        "--limit",
        1,
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert "Protocol" in r.output and "mci_lanczos" in r.output and "model_refined" in r.output
    assert json.loads((tmp_path / "o.json").read_text())["summary"][2]["method"] == "model_refined"
    assert (tmp_path / "o.csv").read_text().startswith("sequence,method,key_psnr")
    assert (tmp_path / "o.md").read_text().startswith("| method | key PSNR | mid PSNR | key SSIM | mid SSIM |")
    crops, plot = ex / "1_t1_crops.png", ex / "1_psnr.png"
    img = read_image(crops)
    assert img.shape[1] > 5 * 192 and img.shape[0] > 192  # LR, bicubic, MCI, ours, GT
    assert read_image(plot).shape == (360, 720, 3)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "ucf101", "--data", "/nonexistent/dir"], "not found"),
        (["--dataset", "kitti", "--data", "."], "unknown dataset"),
        (["--dataset", "ucf101", "--data", "{empty}"], "no ucf101 sequences"),
        (["--dataset", "ucf101", "--data", ".", "--methods", "bicubic,blend"], "unknown method"),
        (["--dataset", "ucf101", "--data", ".", "--degradation", "gauss"], "--degradation"),
        (["--dataset", "ucf101", "--data", "{fisr}"], "no ucf101 sequences"),
    ],
)
def test_cli_bad_input_is_a_one_line_error(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    write_fisr(tmp_path / "fisr", 1, "1")
    args = [a.format(empty=tmp_path / "empty", fisr=tmp_path / "fisr") for a in args]
    r = run_cli(*args)
    assert r.exit_code == 1
    assert r.output.startswith("error:") and message in r.output and len(r.output.strip().splitlines()) == 1
    assert "Traceback" not in r.output


def test_baselines_make_every_frame_at_multi_4():
    lr = moving_frames(3, 48, 32)
    blend, mci = bicubic_blend(lr, multi=4), mci_lanczos(lr, multi=4)
    assert len(blend) == len(mci) == 9 and all(f.shape == (64, 96, 3) for f in blend + mci)
    assert np.array_equal(blend[0], bicubic_blend(lr)[0]) and np.array_equal(blend[4], bicubic_blend(lr)[2])
    for k in (1, 2, 3):  # (1 - t) key_0 + t key_1 at t = k / 4, to rounding
        want = (1 - k / 4) * blend[0].astype(float) + k / 4 * blend[4].astype(float)
        assert np.abs(blend[k].astype(float) - want).max() <= 1.0
    assert np.array_equal(mci[0::4][1], mci_lanczos(lr)[2])  # keyframes as at multi 2


def test_bench_multi_scores_every_frame_between_inputs_apart(tmp_path, blend_weights):
    """--multi 3 on videos: inputs 3 frames apart, every method makes 3(N-1)+1 frames, keyframes
    are t = 0, 3, 6, ..., the new frames are scored together and at each k/3."""
    (tmp_path / "v").mkdir()
    make_clip(tmp_path / "v" / "a.mp4", n=11, width=40, height=32, audio=False)  # 10 frames used: 3*3+1
    config = BenchConfig(dataset="videos", data=tmp_path / "v", model=blend_weights, multi=3)
    result = run_bench(config)
    seq = result.sequences[0]
    assert (seq["frames"], seq["scored_key"], seq["scored_mid"]) == (10, 4, 6)
    assert "3" in result.protocol["text"] and result.protocol["multi"] == 3
    by = {s["method"]: s for s in result.summary}
    for method in ("bicubic_blend", "mci_lanczos", "model_st"):
        assert by[method]["mid_psnr_1_3"] is not None and by[method]["mid_psnr_2_3"] is not None
    assert "PSNR t=1/3" in markdown_tables(result)


def test_bench_multi_is_refused_where_it_cannot_work(tmp_path, dvf, tiny_weights, blend_weights):
    with pytest.raises(BenchError, match="--dataset videos"):
        run_bench(BenchConfig(dataset="ucf101", data=dvf, model=blend_weights, multi=4))
    (tmp_path / "v").mkdir()
    make_clip(tmp_path / "v" / "a.mp4", n=5, width=40, height=32, audio=False)
    with pytest.raises(BenchError, match="halfway"):
        run_bench(BenchConfig(dataset="videos", data=tmp_path / "v", model=tiny_weights, multi=4))
