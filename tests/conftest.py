"""Shared fixtures: tiny generated clips (PyAV), tiny models, and the shared real data."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"
SAMPLE_CLIP = REPO / "docs" / "media" / "bbb_sample.mp4"


def shared_path(*parts: str) -> Path:
    """A file under ../shared/data; the test skips (with the reason) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


def moving_frames(n: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` uint8 RGB frames of a smooth textured pattern panning one pixel per frame."""
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, size=(height // 4 + 8, (width + n) // 4 + 8, 3)).astype(np.float32)
    big = np.kron(big, np.ones((4, 4, 1), np.float32))  # blocky texture, survives compression
    return [np.ascontiguousarray(big[:height, i : i + width].astype(np.uint8)) for i in range(n)]


def make_clip(
    path: Path,
    n: int = 6,
    width: int = 64,
    height: int = 48,
    fps: int = 25,
    audio: bool = True,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    audio_language: str | None = None,
) -> Path:
    """Write a small test clip with PyAV: ``n`` moving frames (+ a sine AAC track)."""
    import av

    frames = moving_frames(n, width, height)
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        tb = time_base or Fraction(1, fps)
        video.time_base = tb
        video.codec_context.time_base = tb
        if codec == "libx264":
            video.options = {"crf": "10", "preset": "ultrafast"}
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=48000)
            astream.layout = "mono"
            if audio_language:
                astream.metadata["language"] = audio_language
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = pts[i] if pts is not None else i
            frame.time_base = tb
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if astream is not None:
            seconds = n / fps
            samples = int(48000 * seconds)
            t = np.arange(samples) / 48000
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, start : start + 1024]), format="fltp", layout="mono"
                )
                chunk.sample_rate = 48000
                chunk.pts = start
                out.mux(astream.encode(chunk))
            out.mux(astream.encode(None))
    return path


def tiny_config():
    from stvsr_cli.nets import DualStreamConfig, FusionConfig, RefineConfig

    return DualStreamConfig(
        spatial_config={"channels": 8, "blocks": 1},
        temporal_config={"channels": [8, 8, 8]},
        fusion=FusionConfig(channels=(8, 8, 8, 8, 8)),
        refine=RefineConfig(channels=8, blocks=1),
    )


def randomize(model, seed: int = 0, scale: float = 0.02):
    """Give the zero-initialised last layers small random values, so a model is not the identity."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model


@pytest.fixture
def tiny_model():
    import torch

    from stvsr_cli.nets import DualStream

    torch.manual_seed(0)
    return randomize(DualStream(tiny_config())).eval()


@pytest.fixture
def tiny_weights(tmp_path, tiny_model) -> Path:
    from stvsr_cli.weights import save_model

    path = tmp_path / "tiny.safetensors"
    save_model(tiny_model, path)
    return path


@pytest.fixture
def blend_weights(tmp_path) -> Path:
    """A tiny model whose MT is frame blending (it takes any t) and that writes S->T frames:
    the new frame at t is exactly ``(1 - t) key_i + t key_(i+1)``."""
    import dataclasses

    from stvsr_cli.nets import DualStream
    from stvsr_cli.weights import save_model

    config = dataclasses.replace(tiny_config(), temporal="blend", temporal_config={}, mid_from="st")
    path = tmp_path / "blend.safetensors"
    save_model(randomize(DualStream(config)), path)
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "clip.mp4")


def video_facts(path: Path) -> dict:
    """Frame count, size, video pts (seconds) and per-stream durations of a file."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = [float(f.pts * v.time_base) for f in c.decode(v)]
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return {
            "frames": len(times),
            "size": (v.codec_context.width, v.codec_context.height),
            "times": times,
            "duration": c.duration / 1e6 if c.duration else None,
            "audio": len(c.streams.audio),
            "streams": [(s.type, dict(s.metadata)) for s in c.streams],
        }
