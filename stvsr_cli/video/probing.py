"""Opening an input: checks, ``probe`` (a ``VideoInfo``), and a decoded frame to RGB."""

from __future__ import annotations

import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from .common import DAMAGE, FULL, LIMITED, UNSPECIFIED, ffmpeg_reason
from .streams import codec_name


@dataclass
class VideoInfo:
    """What ``probe`` learned about an input file."""

    path: Path
    width: int
    height: int
    time_base: Fraction
    rate: Fraction  # nominal frames per second (average rate; VFR clips still have one)
    frames: int  # container's frame count, 0 when unknown
    duration: float  # seconds, 0.0 when unknown
    codec: str
    pix_fmt: str
    colorspace: int = UNSPECIFIED
    color_range: int = 0
    color_primaries: int = UNSPECIFIED
    color_trc: int = UNSPECIFIED
    audio_streams: int = 0
    subtitle_streams: int = 0
    # what the output cannot carry: video streams after the first, data and attachment streams
    uncopied_streams: list[str] = field(default_factory=list)  # e.g. "video stream #2 (h264)"
    bit_depth: int = 8  # bits per colour component of the decoded format
    chroma: str = "420"  # "420", "422", "444" (YUV subsampling), "rgb", "gray" or "other"
    has_alpha: bool = False
    display_matrix: tuple[int, ...] | None = None  # rotation/flip as FFmpeg stores it (9 ints)
    start_pts: int = 0  # the first frame's pts (time_base), as the demuxer gives it
    pictures: tuple[Path, ...] = ()  # an image-sequence input: its pictures in order (stvsr_cli.images)

    @property
    def deep(self) -> bool:
        """More than 8 bits per component: frames travel as uint16."""
        return self.bit_depth > 8


def describe_format(fmt) -> tuple[int, str, bool]:
    """(bit depth, chroma layout, has alpha) of an ``av.VideoFormat``."""
    colour = [c for c in fmt.components if not c.is_alpha]
    has_alpha = len(colour) < len(fmt.components)
    depth = max((c.bits for c in colour), default=8)
    if fmt.has_palette:
        return 8, "rgb", has_alpha
    if fmt.is_rgb:
        return depth, "rgb", has_alpha
    if len(colour) == 1:
        return depth, "gray", has_alpha
    luma, chroma = colour[0], colour[1]
    if (chroma.width, chroma.height) == (luma.width, luma.height):
        return depth, "444", has_alpha
    if chroma.height == luma.height and chroma.width == (luma.width + 1) // 2:
        return depth, "422", has_alpha
    if (chroma.width, chroma.height) == ((luma.width + 1) // 2, (luma.height + 1) // 2):
        return depth, "420", has_alpha
    return depth, "other", has_alpha


def display_matrix(frame) -> tuple[int, ...] | None:
    """The frame's display matrix side data (rotation and flips) as 9 ints, if it has one."""
    import av

    try:
        raw = bytes(frame.side_data[av.sidedata.sidedata.Type.DISPLAYMATRIX])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if len(raw) != 36:
        return None
    matrix = struct.unpack("<9i", raw)
    identity = (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    return None if matrix == identity else matrix


def check_input_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        raise InputError(f"input is a folder, not a video file: {path}")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"cannot read input {path}: {e.strerror}") from None
    if size == 0:
        raise InputError(f"input is an empty file: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"input is not readable (permission denied): {path}")


@contextmanager
def reading_errors(path: Path, what: str = "input is damaged or not a video PyAV can read"):
    """Turns whatever PyAV raises while reading ``path`` into one ``InputError``: the one
    place that decides that a hostile file never surfaces as a traceback."""
    import av

    try:
        yield
    except (av.error.FFmpegError, *DAMAGE) as e:
        raise InputError(f"{what}: {path} ({ffmpeg_reason(e)})") from None


def open_input(path: Path):
    import av

    check_input_file(path)
    with reading_errors(path, "not a video file PyAV can read"):
        return av.open(str(path), mode="r")


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open ``path``, check it holds a decodable video stream, and describe it.

    Raises ``InputError`` (one line) for a missing/empty/unreadable file, a non-video file,
    an audio-only file, or a video stream that yields no frame.
    """
    path = Path(path)
    with open_input(path) as container, reading_errors(path, "input video cannot be decoded"):
        return probe_open(path, container)


def probe_open(path: Path, container) -> VideoInfo:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise InputError(f"input has no video stream ({', '.join(kinds)} only): {path}")
    stream = container.streams.video[0]
    cc = stream.codec_context
    if is_still_image(container):
        name = cc.name if cc is not None else container.format.name
        raise InputError(f"input is a still image ({name}), not a video: {path}")
    if cc is None:
        raise InputError(f"input video stream uses a codec PyAV cannot decode (unknown or corrupt header): {path}")
    if not cc.width or not cc.height:
        raise InputError(f"input video stream has no frame size (corrupt header?): {path}")
    first = next(container.decode(stream), None)
    if first is None:
        raise InputError(f"input video stream holds no decodable frame (truncated or corrupt?): {path}")
    rate = nominal_rate(stream)
    duration = 0.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    bit_depth, chroma, has_alpha = describe_format(first.format)
    return VideoInfo(
        path=path,
        width=first.width,
        height=first.height,
        time_base=stream.time_base or Fraction(1, 90000),
        rate=rate,
        frames=max(stream.frames or 0, 0),
        duration=duration,
        codec=cc.name,
        pix_fmt=first.format.name,
        colorspace=int(first.colorspace),
        color_range=int(first.color_range),
        color_primaries=int(getattr(first, "color_primaries", UNSPECIFIED)),
        color_trc=int(getattr(first, "color_trc", UNSPECIFIED)),
        audio_streams=len(container.streams.audio),
        subtitle_streams=len(container.streams.subtitles),
        uncopied_streams=[
            f"{s.type} stream #{s.index} ({codec_name(s)})"
            for s in container.streams
            if s.type not in ("audio", "subtitle") and s.index != stream.index
        ],
        bit_depth=bit_depth,
        chroma=chroma,
        has_alpha=has_alpha,
        display_matrix=display_matrix(first),
        start_pts=first.pts if first.pts is not None else 0,
    )


def is_still_image(container) -> bool:
    """Whether FFmpeg opened the file as a single picture (JPEG, PNG, ... whatever its name)."""
    name = container.format.name
    return name == "image2" or name.endswith("_pipe")


def frame_to_rgb(frame, deep: bool = False) -> np.ndarray:
    """Decoded ``av.VideoFrame`` -> RGB ``[H, W, 3]``: uint8, or uint16 when ``deep`` (for
    input of more than 8 bits). Uses the frame's own colour matrix and range tags
    (unspecified ones take FFmpeg's defaults, as ffmpeg itself does); alpha is dropped."""
    target = "rgb48le" if deep else "rgb24"
    kwargs = {}
    if int(frame.color_range) in (LIMITED, FULL):
        kwargs["src_color_range"] = int(frame.color_range)
    if frame.format.name != target:
        frame = frame.reformat(format=target, **kwargs)
    return frame.to_ndarray()


def nominal_rate(stream) -> Fraction:
    """A video stream's nominal frames per second: its average rate, else the guessed or the
    base rate, else 25; an absurd one (not in (0, 10000]) is taken as 25 too."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
    return Fraction(rate) if 0 < rate <= 10_000 else Fraction(25)


def frame_step(rate: Fraction, time_base: Fraction) -> int:
    """One frame's duration at ``rate`` frames per second, in ticks of ``time_base`` (at least 1)."""
    return max(1, round(1 / (Fraction(rate) * Fraction(time_base))))


def last_frame_end(last_pts: int, prev_pts: int | None, nominal_step: int) -> int:
    """When a clip's last frame ends (same ticks as the pts): it lasts as long as the gap
    before it, or one nominal frame when it is the only one. The output's last frame lasts
    exactly this long too, so that video and audio end together."""
    return last_pts + (last_pts - prev_pts if prev_pts is not None else nominal_step)
