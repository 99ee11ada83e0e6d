"""Training data: layout detection, sequence loading, triplet sampling and the LR degradation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stvsr_cli.data import (
    SampleConfig,
    Sequence,
    TripletSampler,
    degrade,
    detect_layout,
    frame_windows,
    load_sequences,
    looks_like_cut,
    share_memory,
    video_sequences,
)
from stvsr_cli.errors import StvsrError

from .conftest import make_clip, moving_frames, shared_path


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine two threads
    spinning against another job make every training step 20-40x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- fixture writers (also used by test_train)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """One uint8 RGB ``[H, W, 3]`` image as a PNG, written with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = rgb.shape[:2]
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = w, h, "rgb24"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_list(path: Path, entries: list[str]) -> None:
    """A Vimeo list file with the quirks of the real ones: CRLF, blank lines, trailing spaces."""
    lines = [""]
    for i, entry in enumerate(entries):
        lines += [f"{entry}  " if i % 2 else entry, ""]  # every other one with trailing spaces
    lines += ["   ", ""]
    path.write_bytes("\r\n".join(lines).encode())


def make_vimeo(
    root: Path,
    train: list[str],
    test: list[str] = (),
    frames: int = 3,
    size: tuple[int, int] = (64, 64),
    unlisted: list[str] = (),
) -> dict[str, list[np.ndarray]]:
    """A Vimeo-90K folder (``frames=3``: triplets, ``7``: septuplets) of moving textures.

    Returns the frames written, by entry name."""
    prefix = "tri" if frames == 3 else "sep"
    written = {}
    for i, entry in enumerate([*train, *test, *unlisted]):
        h, w = size
        seq = moving_frames(frames, w, h, seed=i)
        for k, rgb in enumerate(seq):
            write_png(root / "sequences" / entry / f"im{k + 1}.png", rgb)
        written[entry] = seq
    write_list(root / f"{prefix}_trainlist.txt", list(train))
    if test:
        write_list(root / f"{prefix}_testlist.txt", list(test))
    return written


def make_frame_folders(root: Path, folders: dict[str, int], size: tuple[int, int] = (48, 64)) -> Path:
    for i, (name, n) in enumerate(folders.items()):
        for k, rgb in enumerate(moving_frames(n, size[1], size[0], seed=10 + i)):
            write_png(root / name / f"frame_{k:03d}.png", rgb)
    return root


def noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- layouts


def test_vimeo_triplet_layout_with_list_quirks(tmp_path):
    written = make_vimeo(
        tmp_path, train=["00001/0001", "00001/0002", "00003/0007"], test=["00002/0001"], unlisted=["00009/0009"]
    )
    # a listed sequence that is not on disk (Vimeo downloads are often partial) is skipped
    (tmp_path / "tri_trainlist.txt").write_bytes(
        b"\xef\xbb\xbf00001/0001\r\n\r\n00001/0002   \r\n00005/0005\r\n  00003/0007\t\r\n\r\n"
    )
    assert detect_layout(tmp_path) == "vimeo_triplet"
    train = load_sequences(tmp_path)
    assert [s.name for s in train] == ["00001/0001", "00001/0002", "00003/0007"]
    assert all(len(s) == 3 for s in train)
    np.testing.assert_array_equal(train[2].frame(1), written["00003/0007"][1])
    test = load_sequences(tmp_path, split="test")
    assert [s.name for s in test] == ["00002/0001"]
    np.testing.assert_array_equal(test[0].frame(2), written["00002/0001"][2])


def test_vimeo_list_written_with_crlf_blank_lines_and_trailing_spaces(tmp_path):
    make_vimeo(tmp_path, train=["00001/0001", "00001/0002", "00002/0003"])
    raw = (tmp_path / "tri_trainlist.txt").read_bytes()
    assert b"\r\n" in raw and b"  \r\n" in raw and b"\r\n\r\n" in raw  # the quirks are really there
    assert [s.name for s in load_sequences(tmp_path)] == ["00001/0001", "00001/0002", "00002/0003"]
    assert load_sequences(tmp_path, split="test") == []  # no test list: nothing, not an error


def test_vimeo_septuplet_layout(tmp_path):
    written = make_vimeo(tmp_path, train=["00001/0001", "00002/0002"], test=["00003/0003"], frames=7, size=(32, 48))
    assert detect_layout(tmp_path) == "vimeo_septuplet"
    train = load_sequences(tmp_path)
    assert [s.name for s in train] == ["00001/0001", "00002/0002"] and all(len(s) == 7 for s in train)
    np.testing.assert_array_equal(train[1].frame(6), written["00002/0002"][6])
    assert [s.name for s in load_sequences(tmp_path, split="test")] == ["00003/0003"]
    # a septuplet folder read as triplets finds im1-3 in the same folders only with a tri list
    assert load_sequences(tmp_path, layout="vimeo_triplet") == []


def test_folder_of_videos(tmp_path):
    make_clip(tmp_path / "a.mp4", n=5, audio=False)
    (tmp_path / "sub").mkdir()
    make_clip(tmp_path / "sub" / "b.mkv", n=4, width=32, height=32, audio=False)
    (tmp_path / "notes.txt").write_text("not a video")
    assert detect_layout(tmp_path) == "videos"
    seqs = load_sequences(tmp_path)
    assert [s.name for s in seqs] == ["a.mp4", "sub/b.mkv"]
    assert [len(s) for s in seqs] == [5, 4]
    assert seqs[0].frame(0).shape == (48, 64, 3) and seqs[1].frame(3).shape == (32, 32, 3)
    assert seqs[0].frame(0).dtype == np.uint8
    assert len(load_sequences(tmp_path, max_frames=3)[0]) == 3
    assert load_sequences(tmp_path, split="test") == []


def test_share_memory_gives_small_clips_all_they_need_and_splits_the_rest():
    assert share_memory([10, 1000, 100], 300) == [10, 190, 100]
    assert share_memory([10, 1000, 1000], 300) == [10, 145, 145]
    assert share_memory([10, 20], 300) == [10, 20]
    assert sum(share_memory([500, 700, 900], 1000)) <= 1000


def test_frame_windows_spread_over_the_whole_clip():
    assert frame_windows(100, 100) == [(0, 100)]
    assert frame_windows(100, 50, window=24) == [(0, 24), (76, 100)]
    assert frame_windows(100, 80, window=24) == [(0, 24), (38, 62), (76, 100)]
    assert frame_windows(100, 5, window=24) == [(0, 5)]  # fewer frames than a window


def test_videos_beyond_the_memory_budget_are_held_as_windows_of_consecutive_frames(tmp_path):
    long = make_clip(tmp_path / "long.mkv", n=60, width=32, height=32, audio=False, codec="ffv1", pix_fmt="bgr0")
    short = make_clip(tmp_path / "short.mkv", n=6, width=32, height=32, audio=False, codec="ffv1", pix_fmt="bgr0")
    frame_bytes = 32 * 32 * 3
    ((everything,),), ((short_all,),) = video_sequences([long], 100), video_sequences([short], 100)
    assert len(everything) == 60 and len(short_all) == 6
    # room for 54 frames: the short clip keeps its 6, the long one 48 in two windows of 24
    held = video_sequences([long, short], 100, memory_gib=54 * frame_bytes / 2**30, names=["long", "short"])
    assert [[(s.name, len(s)) for s in seqs] for seqs in held] == [[("long@0", 24), ("long@36", 24)], [("short", 6)]]
    np.testing.assert_array_equal(held[0][0].frames, everything.frames[0:24])
    np.testing.assert_array_equal(held[0][1].frames, everything.frames[36:60])
    assert sum(s.frames.nbytes for seqs in held for s in seqs) <= 54 * frame_bytes


def test_folder_of_frame_folders(tmp_path):
    make_frame_folders(tmp_path, {"b_shot": 4, "a_shot": 3, "too_short": 2})
    assert detect_layout(tmp_path) == "frame_folders"
    seqs = load_sequences(tmp_path)
    assert [(s.name, len(s)) for s in seqs] == [("a_shot", 3), ("b_shot", 4)]
    np.testing.assert_array_equal(seqs[1].frame(3), moving_frames(4, 64, 48, seed=10)[3])
    # frames are in name order
    assert [p.name for p in seqs[1].paths] == [f"frame_{k:03d}.png" for k in range(4)]


def test_stills(tmp_path):
    write_png(tmp_path / "one.png", noise(40, 50, 1))
    write_png(tmp_path / "more" / "two.png", noise(30, 30, 2))
    assert detect_layout(tmp_path) == "stills"  # no folder has 3 images: photos, not sequences
    seqs = load_sequences(tmp_path)
    assert [(s.name, len(s)) for s in seqs] == [("one", 1), ("two", 1)]
    np.testing.assert_array_equal(seqs[1].frame(0), noise(30, 30, 2))
    # forcing the layout reads a folder of many photos as stills too
    for i in range(3):
        write_png(tmp_path / "more" / f"p{i}.png", noise(30, 30, 3 + i))
    assert detect_layout(tmp_path) == "frame_folders"
    assert len(load_sequences(tmp_path, layout="stills")) == 5


@pytest.mark.parametrize("layout", [None, "frame_folders", "stills", "videos", "vimeo_triplet"])
def test_missing_folder_is_a_clean_error(tmp_path, layout):
    with pytest.raises(StvsrError, match="not found"):
        load_sequences(tmp_path / "nope", layout)


def test_empty_folder_and_unknown_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StvsrError, match="no training data"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(StvsrError, match="unknown data layout"):
        load_sequences(tmp_path / "empty", "vimeo")


def test_shared_vimeo_septuplet_fixture():
    root = shared_path("frames", "vimeo90k_septuplet_lrx4")
    assert detect_layout(root) == "vimeo_septuplet"
    assert load_sequences(root) == []  # only a test list ships
    (seq,) = load_sequences(root, split="test")
    assert seq.name == "00001/0266" and len(seq) == 7
    shapes = {seq.frame(k).shape for k in range(7)}
    assert len(shapes) == 1 and shapes.pop()[2] == 3


def test_shared_ucf101_triplets_fixture():
    root = shared_path("frames", "ucf101_triplets_adacof")
    assert detect_layout(root) == "frame_folders"
    seqs = load_sequences(root)
    assert len(seqs) == 21 and all(len(s) == 3 for s in seqs)
    assert [p.name for p in seqs[0].paths] == ["frame0.png", "frame1.png", "frame2.png"]
    assert seqs[0].frame(1).shape == (240, 320, 3)


# ---------------------------------------------------------------- sampling


def _memory_sequences(n_seq: int = 2, frames: int = 9, size: tuple[int, int] = (48, 80)) -> list[Sequence]:
    return [Sequence(f"s{i}", frames=np.stack(moving_frames(frames, size[1], size[0], seed=i))) for i in range(n_seq)]


def test_sampler_is_deterministic_per_seed_and_index():
    seqs = _memory_sequences()
    stills = [Sequence("still", frames=noise(70, 90, 5)[None])]
    config = SampleConfig(crop=32, strides=(1, 2, 3))
    a = TripletSampler(seqs, stills, config, seed=3, still_fraction=0.3)
    b = TripletSampler(seqs, stills, config, seed=3, still_fraction=0.3)
    forward = [a.sample(i) for i in range(12)]
    backward = [b.sample(i) for i in reversed(range(12))][::-1]  # order of calls does not matter
    for x, y in zip(forward, backward):
        assert x.shape == (3, 3, 32, 32) and x.dtype == torch.uint8
        assert torch.equal(x, y)
    assert len({x.numpy().tobytes() for x in forward}) == 12  # every index is a different sample
    other = TripletSampler(seqs, stills, config, seed=4, still_fraction=0.3)
    assert not all(torch.equal(x, other.sample(i)) for i, x in enumerate(forward))
    batch, times = a.batch([5, 0, 7])
    assert batch.shape == (3, 3, 3, 32, 32) and batch.dtype == torch.uint8
    assert torch.equal(batch[0], forward[5]) and torch.equal(batch[2], forward[7])
    assert times.tolist() == [0.5, 0.5, 0.5]  # spans (2,): always the frame halfway


def test_spans_sample_the_truth_at_k_over_n_between_the_outer_frames():
    """With spans (2, 3, 4) the middle frame of a sample lies k/n of the way from the first frame
    to the last, and that t is returned: frames whose brightness counts their index show it
    (reversed samples too)."""
    ramp = np.stack([np.full((40, 40, 3), 10 * i, dtype=np.uint8) for i in range(20)])
    seqs = [Sequence("count", frames=ramp)]
    sampler = TripletSampler(seqs, config=SampleConfig(crop=32, strides=(1, 2), spans=(2, 3, 4)), seed=5)
    seen = set()
    for i in range(60):
        frames, t = sampler.sample_timed(i)
        first, mid, last = (float(f.float().mean()) for f in frames)
        assert mid - first == pytest.approx(t * (last - first))
        assert torch.equal(frames, sampler.sample(i))
        seen.add(round(t, 4))
    assert {0.25, 0.3333, 0.5, 0.6667, 0.75} <= seen
    still = TripletSampler([], [Sequence("p", frames=noise(90, 90, 1)[None])], SampleConfig(crop=32, spans=(4,)))
    for i in range(8):  # a synthetic pan moves evenly: the middle frame is t of the way
        frames, t = still.sample_timed(i)
        assert t in (0.25, 0.5, 0.75)
    with pytest.raises(StvsrError, match="5 frames a span of 4"):
        TripletSampler([Sequence("short", frames=ramp[:4])], config=SampleConfig(crop=32, spans=(4,)))


def test_sampler_pads_frames_smaller_than_the_crop():
    seqs = [Sequence("small", frames=np.stack(moving_frames(3, 24, 20)))]
    sample = TripletSampler(seqs, config=SampleConfig(crop=32)).sample(0)
    assert sample.shape == (3, 3, 32, 32)


def test_sampler_needs_three_frames():
    with pytest.raises(StvsrError, match="at least 3 frames"):
        TripletSampler([Sequence("pair", frames=np.stack(moving_frames(2, 32, 32)))])


def _find_shift(a: np.ndarray, b: np.ndarray, m: int) -> list[tuple[int, int]]:
    """Every integer (dx, dy), |d| <= m, with b[y, x] == a[y + dy, x + dx] wherever both exist."""
    h, w = a.shape[:2]
    found = []
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            ya, yb = max(dy, 0), max(-dy, 0)
            xa, xb = max(dx, 0), max(-dx, 0)
            if np.array_equal(b[yb : h - ya, xb : w - xa], a[ya : h - yb, xa : w - xb]):
                found.append((dx, dy))
    return found


def test_still_pans_are_exact_shifts():
    m = 5
    stills = [Sequence("photo", frames=noise(80, 100, 7)[None])]
    sampler = TripletSampler([], stills, SampleConfig(crop=32, max_still_shift=m), seed=1)
    moved = 0
    for i in range(12):
        f = sampler.sample(i).permute(0, 2, 3, 1).numpy()  # [3, H, W, 3]
        # noise matches itself at one offset only: frame t sits at t * (dx, dy) from frame 0
        (d,) = _find_shift(f[0], f[1], m)
        assert _find_shift(f[0], f[2], 2 * m) == [(2 * d[0], 2 * d[1])]
        moved += d != (0, 0)
    assert moved >= 8  # really pans, in most samples


def _ramp_slopes(sampler: TripletSampler, n: int) -> list[float]:
    """Mean horizontal step (grey levels per pixel) of samples of a horizontal-ramp video."""
    slopes = []
    for i in range(n):
        f = sampler.sample(i).float()  # [3, 3, c, c]
        slopes.append(float(f[..., 8:-8, 8:-8].diff(dim=-1).abs().mean()))
    return slopes


def test_min_scale_shows_the_content_zoomed_out_by_a_random_factor():
    # a ramp one grey level per pixel: zoomed out by s, a sample steps by 1/s per pixel
    ramp = np.broadcast_to(np.arange(200, dtype=np.uint8)[None, :, None], (200, 200, 3))
    seqs = [Sequence("ramp", frames=np.stack([ramp] * 5))]
    plain = TripletSampler(seqs, config=SampleConfig(crop=32, strides=(1,)), seed=2)
    assert all(s == pytest.approx(1.0) for s in _ramp_slopes(plain, 8))
    zoomed = TripletSampler(seqs, config=SampleConfig(crop=32, strides=(1,), min_scale=0.5), seed=2)
    slopes = _ramp_slopes(zoomed, 16)
    assert all(0.99 < s < 2.05 for s in slopes)  # s in [0.5, 1]
    assert max(slopes) > 1.5 and min(slopes) < 1.5  # a random factor, not a fixed one
    sample = zoomed.sample(0)
    assert sample.shape == (3, 3, 32, 32) and sample.dtype == torch.uint8
    assert torch.equal(sample, zoomed.sample(0))  # still deterministic per index


def test_min_scale_on_a_small_source_zooms_out_only_as_far_as_it_allows():
    """A source not much larger than the crop is never mirror-padded to make room for a
    larger crop: the crop is capped at its shorter side (40 px here: at most 40/32 per pixel)."""
    ramp = np.broadcast_to((np.arange(48, dtype=np.uint8) * 5)[None, :, None], (40, 48, 3))
    seqs = [Sequence("ramp", frames=np.stack([ramp] * 5))]
    stills = [Sequence("photo", frames=ramp[None])]
    config = SampleConfig(crop=32, strides=(1,), max_still_shift=0, min_scale=0.5)
    for sampler in (TripletSampler(seqs, config=config, seed=3), TripletSampler([], stills, config, seed=3)):
        zoomed = 0
        for i in range(16):
            steps = sampler.sample(i).float().diff(dim=-1)  # [3, 3, 32, 31], 5 grey levels per source pixel
            assert bool((steps >= 0).all()) or bool((steps <= 0).all())  # one way: no mirrored seam
            slope = float(steps.abs().mean()) / 5
            assert 0.99 < slope < 40 / 32 + 0.02
            zoomed += slope > 1.1
        assert zoomed >= 4  # the cap still lets it zoom out as far as the source allows


def test_min_scale_without_the_cap_mirror_pads_a_small_source():
    """``cap_to_source=False`` (the recipe's round-13b stage) draws the enlarged crop from the
    mirror-padded source, as before the cap: some samples show the mirrored seam."""
    ramp = np.broadcast_to((np.arange(48, dtype=np.uint8) * 5)[None, :, None], (40, 48, 3))
    seqs = [Sequence("ramp", frames=np.stack([ramp] * 5))]
    config = SampleConfig(crop=32, strides=(1,), min_scale=0.5, cap_to_source=False)
    sampler = TripletSampler(seqs, config=config, seed=3)
    seams = 0
    for i in range(16):
        steps = sampler.sample(i).float().diff(dim=-1)
        seams += not (bool((steps >= 0).all()) or bool((steps <= 0).all()))
    assert seams >= 4


def test_min_scale_resamples_the_three_frames_alike():
    """A still with no pan stays three identical frames when zoomed out (no motion is invented)."""
    stills = [Sequence("photo", frames=noise(160, 160, 3)[None])]
    config = SampleConfig(crop=32, max_still_shift=0, min_scale=0.5)
    sampler = TripletSampler([], stills, config, seed=1)
    for i in range(4):
        f = sampler.sample(i)
        assert torch.equal(f[0], f[1]) and torch.equal(f[1], f[2])  # no pan: three equal frames


def test_looks_like_cut():
    ramp = np.linspace(0, 255, 64).astype(np.uint8)
    across = np.repeat(np.broadcast_to(ramp[None, :], (64, 64))[..., None], 3, axis=2)  # dark left, light right
    down = across.transpose(1, 0, 2)  # dark top, light bottom: another shot
    assert looks_like_cut(across, down)
    smooth = np.stack(moving_frames(4, 64, 64))
    assert looks_like_cut(smooth[0] // 3, 170 + smooth[0] // 3)  # a dark shot, then a bright one
    assert not looks_like_cut(smooth[0], smooth[3])  # motion, not a cut
    assert not looks_like_cut(across, np.roll(across, 3, axis=1))
    # fine detail alone does not count: two pictures of noise look alike at 1/8 size
    assert not looks_like_cut(noise(64, 64, 1), noise(64, 64, 2))


def test_sampler_rejects_triplets_across_a_cut(monkeypatch):
    """Two shots of different content, back to back: no sample may mix them."""
    shot_a = [f // 3 for f in moving_frames(10, 48, 48, seed=1)]  # dark
    shot_b = [170 + f // 3 for f in moving_frames(10, 48, 48, seed=2)]  # bright
    seqs = [Sequence("cut", frames=np.stack(shot_a + shot_b))]

    def mixes(sample: torch.Tensor) -> bool:
        f = sample.permute(0, 2, 3, 1).numpy()
        return looks_like_cut(f[0], f[2])

    sampler = TripletSampler(seqs, config=SampleConfig(crop=32, strides=(1, 2)), seed=0)
    assert not any(mixes(sampler.sample(i)) for i in range(60))
    # the check is what keeps them out: without it, some samples do cross the cut
    monkeypatch.setattr("stvsr_cli.data.looks_like_cut", lambda a, b: False)
    assert any(mixes(sampler.sample(i)) for i in range(60))


# ---------------------------------------------------------------- degradation


def test_degrade_halves_and_rounds_to_8_bits():
    hr = torch.from_numpy(np.stack(moving_frames(6, 32, 48))).permute(0, 3, 1, 2).float().div(255)
    hr = hr.reshape(2, 3, 3, 48, 32)
    for antialias in (True, False):
        lr = degrade(hr, antialias)
        assert lr.shape == (2, 3, 3, 24, 16)
        assert lr.min() >= 0 and lr.max() <= 1
        torch.testing.assert_close(lr * 255, (lr * 255).round(), atol=1e-4, rtol=0)
    assert not torch.equal(degrade(hr, True), degrade(hr, False))
    flat = torch.full((1, 3, 3, 32, 32), 100 / 255)
    torch.testing.assert_close(degrade(flat), torch.full((1, 3, 3, 16, 16), 100 / 255))


def test_degrade_antialias_is_torch_bicubic_antialias():
    hr = torch.rand(2, 3, 16, 16)
    want = torch.nn.functional.interpolate(hr, scale_factor=0.5, mode="bicubic", antialias=True)
    want = (want.clamp(0, 1) * 255).round() / 255
    assert torch.equal(degrade(hr), want)
