"""Everything PyAV: probing, decoding to RGB, encoding, stream copy, timestamps and colour.

Frames cross this module's boundary as RGB numpy arrays ``[H, W, 3]`` paired with an integer
``pts`` in the input video stream's ``time_base``: uint8 for 8-bit input, uint16 (full 16-bit
scale) for input of more than 8 bits per component when asked for (``deep=True``). Output
timestamps use a time base ``multi`` times as fine (``time_base / multi``, 2 by default) so that
a new frame at ``t = k / multi`` between two input frames has an integer pts: keyframe ``i`` gets
``multi * pts_i``, the new frame ``multi * pts_i + k * (pts_(i+1) - pts_i)`` (halfway:
``pts_i + pts_(i+1)``).

Colour: frames are decoded to RGB with the input's own matrix and range, and encoded with the
same matrix, range, primaries and transfer tags (and display matrix, i.e. rotation); 10-bit
input stays 10-bit where the output codec allows it.

Every error a damaged or hostile input can cause comes out as ``InputError`` (one line);
errors writing the output (disk full included) come out as ``OutputError``.
"""

from __future__ import annotations

import errno
import heapq
import io
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import InputError, OutputError

# colour tags we pass through; values follow FFmpeg's AVCOL_* enums (2 = unspecified)
_UNSPECIFIED = 2
_LIMITED, _FULL = 1, 2
# the container segments of a resumable job are written in: it keeps any time base exactly and
# (with negative timestamps allowed) stores every pts as given
SEGMENT_FORMAT = "nut"
# text subtitle codecs to convert to, in order, when the output cannot hold the input's own
_TEXT_SUBTITLE_TARGETS = ("mov_text", "ass", "subrip", "webvtt")
# what PyAV and FFmpeg raise on damaged or hostile input (besides FFmpegError itself)
_DAMAGE = (ValueError, OverflowError, UnicodeDecodeError, IndexError, EOFError)


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
    colorspace: int = _UNSPECIFIED
    color_range: int = 0
    color_primaries: int = _UNSPECIFIED
    color_trc: int = _UNSPECIFIED
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


def _describe_format(fmt) -> tuple[int, str, bool]:
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


def _display_matrix(frame) -> tuple[int, ...] | None:
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


def _check_input_file(path: Path) -> None:
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
def _reading(path: Path, what: str = "input is damaged or not a video PyAV can read"):
    """Turns whatever PyAV raises while reading ``path`` into one ``InputError``: the one
    place that decides that a hostile file never surfaces as a traceback."""
    import av

    try:
        yield
    except (av.error.FFmpegError, *_DAMAGE) as e:
        raise InputError(f"{what}: {path} ({_ffmpeg_reason(e)})") from None


def _open_input(path: Path):
    import av

    _check_input_file(path)
    with _reading(path, "not a video file PyAV can read"):
        return av.open(str(path), mode="r")


def _ffmpeg_reason(e: Exception) -> str:
    reason = getattr(e, "strerror", None) or str(e).split(":")[0] or type(e).__name__
    return reason.strip().splitlines()[0] if reason.strip() else type(e).__name__


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open ``path``, check it holds a decodable video stream, and describe it.

    Raises ``InputError`` (one line) for a missing/empty/unreadable file, a non-video file,
    an audio-only file, or a video stream that yields no frame.
    """
    path = Path(path)
    with _open_input(path) as container, _reading(path, "input video cannot be decoded"):
        return _probe_open(path, container)


def _probe_open(path: Path, container) -> VideoInfo:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise InputError(f"input has no video stream ({', '.join(kinds)} only): {path}")
    stream = container.streams.video[0]
    cc = stream.codec_context
    if _is_still_image(container):
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
    bit_depth, chroma, has_alpha = _describe_format(first.format)
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
        color_primaries=int(getattr(first, "color_primaries", _UNSPECIFIED)),
        color_trc=int(getattr(first, "color_trc", _UNSPECIFIED)),
        audio_streams=len(container.streams.audio),
        subtitle_streams=len(container.streams.subtitles),
        uncopied_streams=[
            f"{s.type} stream #{s.index} ({_codec_name(s)})"
            for s in container.streams
            if s.type not in ("audio", "subtitle") and s.index != stream.index
        ],
        bit_depth=bit_depth,
        chroma=chroma,
        has_alpha=has_alpha,
        display_matrix=_display_matrix(first),
        start_pts=first.pts if first.pts is not None else 0,
    )


def _is_still_image(container) -> bool:
    """Whether FFmpeg opened the file as a single picture (JPEG, PNG, ... whatever its name)."""
    name = container.format.name
    return name == "image2" or name.endswith("_pipe")


def frame_to_rgb(frame, deep: bool = False) -> np.ndarray:
    """Decoded ``av.VideoFrame`` -> RGB ``[H, W, 3]``: uint8, or uint16 when ``deep`` (for
    input of more than 8 bits). Uses the frame's own colour matrix and range tags
    (unspecified ones take FFmpeg's defaults, as ffmpeg itself does); alpha is dropped."""
    target = "rgb48le" if deep else "rgb24"
    kwargs = {}
    if int(frame.color_range) in (_LIMITED, _FULL):
        kwargs["src_color_range"] = int(frame.color_range)
    if frame.format.name != target:
        frame = frame.reformat(format=target, **kwargs)
    return frame.to_ndarray()


def read_frames(path: str | os.PathLike, max_frames: int = 0, deep: bool = False) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(rgb, pts)`` for every frame of the first video stream, in presentation order
    (uint8 RGB, or uint16 with ``deep``)."""
    with Demuxer(Path(path), copy_other_streams=False, max_frames=max_frames, deep=deep) as source:
        for kind, item in source:
            if kind == "frame":
                yield item


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


class FrameTimer:
    """Gives every decoded frame an integer pts, strictly increasing: the decoder's pts when
    it has one, otherwise the previous pts plus one nominal frame duration."""

    def __init__(self, time_base: Fraction, rate: Fraction):
        self.step = frame_step(rate, time_base) if rate else 1
        self.last: int | None = None

    def __call__(self, pts: int | None) -> int:
        if pts is None or (self.last is not None and pts <= self.last):
            pts = 0 if self.last is None else self.last + self.step
        self.last = pts
        return pts


# with a frame limit (a preview), how far past the last frame's end packets are still read for
# a sparse (subtitle) stream that has none after it, in seconds
_PREVIEW_READ_AHEAD = 10


class Demuxer:
    """The open input: iterating it yields ``("frame", (rgb, pts))`` for decoded video frames
    and ``("packet", packet)`` for packets of the other (audio/subtitle) streams, in file
    order.

    The packets belong to the input container, so the ``Demuxer`` lives until they are all
    muxed: whoever opens it closes it (``close()`` or a ``with`` block), after the output is
    done, never when iteration ends (a packet whose container is closed points to a freed
    stream). Iterating is one pass, and may run in another thread than the one that closes.

    ``max_frames`` (a preview): only the first frames; packets of the other streams are still
    yielded until the last frame's end, so that audio and subtitles end with the video.
    ``skip_frames``: the first frames are decoded but not converted: they come as
    ``(None, pts)`` (a resumed job skips what it has done). Damage is survived where it can
    be: corrupt video packets are skipped, and a file that cannot be read past some point ends
    there; both are counted in ``warnings``. Raises ``InputError``
    when the file cannot be opened, and while iterating only when not a single frame comes out.
    """

    def __init__(
        self,
        path: Path,
        copy_other_streams: bool = True,
        max_frames: int = 0,
        warnings: list[str] | None = None,
        deep: bool = False,
        skip_frames: int = 0,
    ):
        self.path = Path(path)
        self.max_frames = max_frames
        self.warnings = warnings
        self.deep = deep
        self.skip_frames = skip_frames
        self.container = _open_input(self.path)
        try:
            with _reading(self.path):
                if not self.container.streams.video:
                    raise InputError(f"input has no video stream: {self.path}")
                self.video = self.container.streams.video[0]
                if self.video.codec_context is None:
                    raise InputError(f"input video stream uses a codec PyAV cannot decode: {self.path}")
                self.video.thread_type = "AUTO"
                kinds = ("audio", "subtitle")
                self.others = [s for s in self.container.streams if s.type in kinds] if copy_other_streams else []
                self.time_base = self.video.time_base or Fraction(1, 90000)
                self.rate = nominal_rate(self.video)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Demuxer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def __iter__(self):
        import av

        path, vindex = self.path, self.video.index
        timer = FrameTimer(self.time_base, self.rate)
        with _reading(path):
            packets = self.container.demux(self.video, *self.others)
        count = bad_packets = damaged_frames = sent = 0
        interlaced = False
        stopped = None
        prev_pts = None
        # a preview holds the others' packets until a frame at or after their time is decoded,
        # then drops those at or after the last frame's end (the decoder delays frames)
        held: list = []
        end_time = None  # a preview, once its frames are done: the last frame's end in seconds
        passed: set[int] = set()  # the other streams that have reached end_time
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.error.FFmpegError, *_DAMAGE) as e:  # unreadable from here on: end here
                stopped = _ffmpeg_reason(e)
                break
            index = packet.stream.index
            time = _packet_time(packet)
            if end_time is not None:  # a finished preview: the others' packets up to its end
                if index == vindex:
                    if time is not None and time > end_time + _PREVIEW_READ_AHEAD:
                        break
                elif time is not None and time >= end_time:
                    passed.add(index)
                    if len(passed) == len(self.others):
                        break
                elif packet.dts is not None:
                    yield "packet", packet
                continue
            if index != vindex:
                if packet.dts is None:
                    continue
                if self.max_frames and time is not None:
                    held.append((time, packet))
                else:
                    yield "packet", packet
                continue
            sent += packet.size > 0
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, *_DAMAGE):  # a corrupt packet: skip it, keep going
                bad_packets += 1
                continue
            for frame in frames:
                damaged_frames += frame.is_corrupt
                interlaced = interlaced or frame.interlaced_frame
                try:
                    rgb = None if count < self.skip_frames else frame_to_rgb(frame, self.deep)
                except (av.error.FFmpegError, *_DAMAGE):
                    bad_packets += 1
                    continue
                pts = timer(frame.pts)
                yield "frame", (rgb, pts)
                count += 1
                if self.max_frames and count >= self.max_frames:
                    end_time = last_frame_end(pts, prev_pts, timer.step) * self.time_base
                    passed.update(p.stream.index for t, p in held if t >= end_time)
                    yield from (("packet", p) for t, p in held if t < end_time)
                    held = []
                    break
                prev_pts = pts
                if held:
                    now = pts * self.time_base
                    yield from (("packet", p) for t, p in held if t < now)
                    held = [(t, p) for t, p in held if t >= now]
            if end_time is not None and len(passed) == len(self.others):
                break
        yield from (("packet", p) for _, p in held)  # fewer frames than the limit: all of them
        if count == 0:
            reason = f" ({stopped})" if stopped else ""
            raise InputError(f"input video stream holds no decodable frame (truncated or corrupt?): {path}{reason}")
        if end_time is not None:
            return  # a preview: what follows its frames was never decoded
        # one frame per packet (but for field-coded interlaced video, two): packets that gave
        # no frame were lost to damage (the decoder drops what it cannot conceal, e.g. frames
        # whose reference is gone)
        lost = bad_packets if interlaced else max(bad_packets, sent - count)
        warnings = self.warnings if self.warnings is not None else []
        if lost:
            warnings.append(f"skipped {lost} corrupt or undecodable video packet(s) in {path.name}")
        if damaged_frames:
            warnings.append(f"{damaged_frames} damaged frame(s) of {path.name} were decoded with errors concealed")
        if stopped:
            warnings.append(f"{path.name} cannot be read past frame {count} ({stopped}): the output ends there")


def _packet_time(packet) -> Fraction | None:
    """A packet's presentation (else decode) time in seconds, or None when it has neither."""
    ts = packet.pts if packet.pts is not None else packet.dts
    return None if ts is None or packet.time_base is None else ts * packet.time_base


# the video codec an output gets when none is asked for: by container, else H.264
DEFAULT_CODEC = "libx264"
_CONTAINER_CODECS = {".webm": "libvpx-vp9"}


@dataclass(frozen=True)
class EncodeSettings:
    """How to encode the output video stream."""

    codec: str | None = None  # None: the output container's usual codec (see ``for_output``)
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None  # None: follow the input (bit depth, 4:4:4) where the codec can, else yuv420p
    lossless: bool = False  # RGB FFV1: output pixels are exactly the model's frames

    @classmethod
    def lossless_rgb(cls) -> EncodeSettings:
        """8-bit input: ``bgr0``; input of more than 8 bits: 16-bit RGB (``gbrp16le``)."""
        return cls(codec="ffv1", crf=None, preset=None, pix_fmt="bgr0", lossless=True)

    def for_output(self, path: Path) -> EncodeSettings:
        """These settings with the codec decided: the one asked for, else the container's
        usual one (VP9 for ``.webm``, H.264 elsewhere)."""
        if self.codec is not None:
            return self
        return replace(self, codec=_CONTAINER_CODECS.get(Path(path).suffix.lower(), DEFAULT_CODEC))


def choose_pix_fmt(formats: list[str], info: VideoInfo, settings: EncodeSettings) -> str:
    """The output pixel format: the one asked for, else the input's bit depth and chroma
    layout (4:4:4, 4:2:2) where the codec supports them, else 8-bit 4:2:0."""
    if settings.lossless:
        if info.deep:
            for deep_rgb in ("gbrp16le", "rgb48le"):
                if deep_rgb in formats:
                    return deep_rgb
        return settings.pix_fmt or "bgr0"
    if settings.pix_fmt:
        return settings.pix_fmt
    depths = [""]
    if info.deep:
        depths = [f"{d}le" for d in (info.bit_depth, 12, 10) if d <= info.bit_depth] + [""]
    layouts = [info.chroma, "420"] if info.chroma in ("444", "422") else ["420"]
    for layout in layouts:
        for depth in depths:
            if f"yuv{layout}p{depth}" in formats:
                return f"yuv{layout}p{depth}"
    for preferred in ("yuv420p", "gbrp", "bgr0", "rgb24"):
        if preferred in formats:
            return preferred
    return formats[0] if formats else "yuv420p"


def write_error(path: Path, e: BaseException) -> OutputError:
    """One line for a failed write: says so plainly when the disk is full."""
    code = getattr(e, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"disk full: cannot write the output into {path.parent} (no space left on the device)")
    reason = getattr(e, "strerror", None) or _ffmpeg_reason(e)
    return OutputError(f"cannot write the output into {path.parent}: {reason}")


class _Output:
    """An output container: the audio/subtitle streams copied from the input (converted or
    dropped, with a warning, where the container cannot hold them), tags, and muxing that
    turns write failures into ``OutputError``."""

    def __init__(self, path: Path, warnings: list[str] | None, container_format: str | None = None):
        import av

        self.path = path
        self.warnings = warnings if warnings is not None else []
        options = {"avoid_negative_ts": "disabled"} if container_format == SEGMENT_FORMAT else {}
        try:
            self.container = av.open(str(path), mode="w", format=container_format, container_options=options)
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"cannot create output {path}: {_ffmpeg_reason(e)}") from None
        self.routes: dict[int, _CopyRoute] = {}

    def add_copies(self, sources) -> None:
        """Output streams for the input's audio/subtitle ``sources`` (see ``_CopyRoute``)."""
        for src in sources:
            route = _CopyRoute.create(self.container, src, self.warnings)
            if route is not None:
                self.routes[src.index] = route

    def copy_tags(self, video_source, video_out) -> None:
        _copy_stream_tags(video_source, video_out)
        self.container.metadata.update(
            {k: v for k, v in video_source.container.metadata.items() if k not in _CONTAINER_KEYS_NOT_COPIED}
        )

    def copied_packets(self, packet) -> list:
        """The packets to mux for an input audio/subtitle packet (none for a dropped stream)."""
        route = self.routes.get(packet.stream.index)
        return [] if route is None else route.packets(packet)

    def flush_routes(self) -> None:
        """Mux what the copy routes still hold (a transcoder's delay): once, at the end."""
        for route in self.routes.values():
            self._mux(route.flush())

    def _mux(self, packets) -> None:
        try:
            _mux_packets(self.container, packets)
        except (OSError, ValueError) as e:  # every av.error.FFmpegError is one of these
            raise write_error(self.path, e) from None

    def _close(self) -> None:
        try:
            self.container.close()
        except (OSError, ValueError) as e:
            raise write_error(self.path, e) from None

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken file must not mask the real error
            pass


# muxers (ISO BMFF / QuickTime) that take a track's length from its last packet in *decode*
# order: its dts plus its duration
_TRACK_ENDS_AT_LAST_DECODED = {"mov", "mp4", "ipod", "ismv", "3gp", "3g2", "psp", "f4v"}


class _VideoTail:
    """Muxes an output's video packets, one behind for MP4/MOV, so that the last can be given
    the duration that makes the stream end when its last frame shown does.

    Matroska, NUT and most others take the end from the packets' presentation times and
    durations, which are right as they are. The MP4/MOV muxers take the track's length from
    its last packet in *decode* order (its dts plus its duration, from the first dts), less
    the smallest composition offset (pts - dts), which the edit list skips: with B-frames
    that last packet is not the last shown, so its duration is set to reach the end.
    """

    def __init__(self, output: _Output):
        self.output = output
        self.mov = output.container.format.name in _TRACK_ENDS_AT_LAST_DECODED
        self.held = None
        self.first_dts: int | None = None
        self.start: int | None = None  # the first pts shown
        self.min_offset: int | None = None

    def push(self, packet) -> None:
        if packet.dts is not None and packet.pts is not None:
            if self.first_dts is None:
                self.first_dts = packet.dts
            self.start = packet.pts if self.start is None else min(self.start, packet.pts)
            offset = packet.pts - packet.dts
            self.min_offset = offset if self.min_offset is None else min(self.min_offset, offset)
        if not self.mov:
            self.output._mux(packet)
            return
        if self.held is not None:
            self.output._mux(self.held)
        self.held = packet

    def finish(self, end: int | None) -> None:
        """Mux the held packet; ``end``: when the last frame shown ends (stream time base)."""
        packet, self.held = self.held, None
        if packet is None:
            return
        if end and packet.dts is not None and self.first_dts is not None:
            length = end - self.start  # what the track must last
            packet.duration = max(1, length - (packet.dts - self.first_dts) + self.min_offset)
        self.output._mux(packet)


def _mux_packets(container, packets) -> None:
    """The one call that writes packets to any output (a seam for simulating a full disk)."""
    container.mux(packets)


class _CopyRoute:
    """How one input audio/subtitle stream reaches the output: packets remuxed as they are,
    or (text subtitles the container cannot hold, e.g. SRT into MP4) decoded and re-encoded
    as a text format it can hold."""

    def __init__(self, out, decoder=None):
        self.out = out
        self.decoder = decoder  # a decoder for the input stream when converting

    @classmethod
    def create(cls, container, src, warnings: list[str]) -> _CopyRoute | None:
        import av

        fmt = container.format.name
        name = _codec_name(src)
        what = f"{src.type} stream #{src.index} ({name})"
        if _muxer_accepts(fmt, template=src):
            try:
                out = container.add_stream_from_template(src)
            except (av.error.FFmpegError, ValueError) as e:
                warnings.append(f"dropped {what}: the output container cannot hold it ({_ffmpeg_reason(e)})")
                return None
            _copy_stream_tags(src, out)
            return cls(out)
        decoder = _text_subtitle_decoder(src)
        if decoder is not None:
            header = decoder.subtitle_header
            for target in _TEXT_SUBTITLE_TARGETS:
                if _muxer_accepts(fmt, codec=target, subtitle_header=header):
                    out = container.add_stream(target)
                    out.codec_context.subtitle_header = header
                    out.codec_context.time_base = src.time_base
                    out.time_base = src.time_base
                    _copy_stream_tags(src, out)
                    warnings.append(f"converted {what} to {target}: the {fmt} container cannot hold {name}")
                    return cls(out, decoder=decoder)
        transcoded = _AudioTranscode.create(container, src)
        if transcoded is not None:
            target = transcoded.out.codec_context.name
            warnings.append(f"converted {what} to {target}: the {fmt} container cannot hold {name}")
            return transcoded
        warnings.append(f"dropped {what}: the {fmt} container cannot hold it")
        return None

    def packets(self, packet) -> list:
        if self.decoder is None:
            packet.stream = self.out
            return [packet]
        import av

        try:
            subtitle = self.decoder.decode2(packet)
            if subtitle is None or len(subtitle) == 0:
                return []
            new = self.out.codec_context.encode_subtitle(subtitle)
        except (av.error.FFmpegError, *_DAMAGE):
            return []  # one damaged cue is not worth the run
        new.stream = self.out
        new.pts, new.dts = packet.pts, packet.dts
        new.duration = packet.duration or subtitle.end_display_time
        new.time_base = packet.time_base
        return [new]

    def flush(self) -> list:
        """The packets still held inside (a transcoder's delay) once the input has ended."""
        return []


# audio encoders to convert to, in order, when the output cannot hold the input's audio codec
# (e.g. AAC into WebM becomes Opus)
_AUDIO_TARGETS = ("libopus", "aac", "libvorbis", "flac")


class _AudioTranscode(_CopyRoute):
    """Audio the container cannot hold as it is: decoded and encoded again (same rate and
    channel layout), its samples keeping their times."""

    @classmethod
    def create(cls, container, src) -> _AudioTranscode | None:
        import av

        if src.type != "audio" or src.codec_context is None:
            return None
        fmt = container.format.name
        for target in _AUDIO_TARGETS:
            if target not in av.codecs_available or not _muxer_accepts(fmt, codec=target, audio_like=src):
                continue
            try:
                decoder = av.CodecContext.create(src.codec_context.name, "r")
                if src.codec_context.extradata:
                    decoder.extradata = src.codec_context.extradata
                out = container.add_stream(target, rate=_audio_rate(target, src))
                out.layout = src.layout.name
            except (av.error.FFmpegError, *_DAMAGE):
                continue
            _copy_stream_tags(src, out)
            return cls(out, decoder=decoder)
        return None

    def packets(self, packet) -> list:
        import av

        try:
            frames = self.decoder.decode(packet)
        except (av.error.FFmpegError, *_DAMAGE):
            return []  # a damaged audio packet: a moment of silence, not a failed run
        return self._encode(frames)

    def flush(self) -> list:
        import av

        try:
            frames = self.decoder.decode(None)
        except (av.error.FFmpegError, *_DAMAGE):
            frames = []
        return self._encode(frames) + list(self.out.encode(None))

    def _encode(self, frames) -> list:
        packets = []
        for frame in frames:
            packets.extend(self.out.encode(frame))
        return packets


def _audio_rate(codec: str, src) -> int:
    """The output sample rate: the input's, where the encoder takes it (Opus: 48 kHz only)."""
    import av

    rates = av.codec.Codec(codec, "w").audio_rates
    if not rates or src.rate in rates:
        return src.rate
    return min(rates, key=lambda r: (r < src.rate, abs(r - src.rate)))


def _codec_name(stream) -> str:
    """The codec's canonical name (``subrip``, not the decoder's ``srt``)."""
    cc = stream.codec_context
    if cc is None:
        return "unknown codec"
    return getattr(cc.codec, "canonical_name", None) or cc.name


def _text_subtitle_decoder(src):
    """An opened decoder of its own for a text subtitle stream (its ASS header is what a text
    encoder needs), or None for anything that cannot be converted (audio, bitmap subtitles)."""
    import av

    if src.type != "subtitle" or src.codec_context is None:
        return None
    try:
        if not av.codec.Codec(src.codec_context.name, "r").text_sub:
            return None
        decoder = av.CodecContext.create(src.codec_context.name, "r")
        if src.codec_context.extradata:
            decoder.extradata = src.codec_context.extradata
        decoder.open(strict=False)
    except (av.error.FFmpegError, *_DAMAGE):
        return None
    return decoder if decoder.subtitle_header else None


def _muxer_accepts(
    format_name: str, template=None, codec: str | None = None, subtitle_header=None, audio_like=None
) -> bool:
    """Whether the ``format_name`` muxer accepts a stream (a copy of ``template``, or a new
    ``codec`` stream: a text subtitle one with ``subtitle_header``, or an audio one with the
    rate and layout of the stream ``audio_like``) up to and including writing its header:
    some muxers refuse a stream only there. Tried on a throwaway in-memory file."""
    import av

    try:
        with av.open(io.BytesIO(), "w", format=format_name) as trial:
            if template is not None:
                trial.add_stream_from_template(template)
            elif audio_like is not None:
                stream = trial.add_stream(codec, rate=_audio_rate(codec, audio_like))
                stream.layout = audio_like.layout.name
            else:
                stream = trial.add_stream(codec)
                stream.codec_context.subtitle_header = subtitle_header
                stream.codec_context.time_base = Fraction(1, 1000)
            trial.start_encoding()
        return True
    except (av.error.FFmpegError, *_DAMAGE, NotImplementedError, TypeError, AttributeError):
        return False


class VideoWriter(_Output):
    """Writes RGB frames as the output video and remuxes the input's audio/subtitle packets.

    ``copy_from``: the input's streams to copy (their packets arrive through ``copy_packet``);
    ``video_source``: the input video stream, whose tags (language, title) the output keeps.
    ``rate``: nominal output frame rate (default twice the input's). Frame pts are in
    ``time_base`` (default: half the input's; ``stvsr_cli.schedule`` gives the others).
    ``container_format``: force a container (the segments of a resumable job) instead of the
    one the file extension names. ``close()`` flushes the encoder and writes the trailer;
    ``abort()`` closes without caring about the result (the caller deletes the file).
    """

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        width: int,
        height: int,
        settings: EncodeSettings,
        copy_from=None,
        warnings: list[str] | None = None,
        rate: Fraction | None = None,
        video_source=None,
        container_format: str | None = None,
        time_base: Fraction | None = None,
    ):
        import av

        super().__init__(path, warnings, container_format)
        settings = settings.for_output(path)
        self.settings = settings
        self.time_base = Fraction(time_base or Fraction(info.time_base) / 2)
        try:
            stream = self.container.add_stream(settings.codec, rate=rate or info.rate * 2)
        except (av.error.FFmpegError, ValueError) as e:
            self.container.close()
            raise OutputError(f"unknown or unavailable video codec {settings.codec!r} ({_ffmpeg_reason(e)})") from None
        stream.width, stream.height = width, height
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        formats = [f.name for f in (stream.codec_context.codec.video_formats or [])]
        pix_fmt = choose_pix_fmt(formats, info, settings)
        if formats and pix_fmt not in formats:
            self.container.close()
            raise OutputError(
                f"{settings.codec} cannot encode the pixel format {pix_fmt!r}; it can: {', '.join(formats)}"
            )
        stream.pix_fmt = pix_fmt
        stream.options = _encoder_options(settings)
        self.rgb_output = av.VideoFormat(stream.pix_fmt).is_rgb
        self.colorspace = info.colorspace
        # the input's range where it says, else limited (TV) range, as players expect
        self.color_range = info.color_range if info.color_range in (_LIMITED, _FULL) else _LIMITED
        if not self.rgb_output:
            cc = stream.codec_context
            if info.colorspace != _UNSPECIFIED:
                cc.colorspace = info.colorspace
            if info.color_primaries != _UNSPECIFIED:
                cc.color_primaries = info.color_primaries
            if info.color_trc != _UNSPECIFIED:
                cc.color_trc = info.color_trc
            cc.color_range = self.color_range
        if info.display_matrix:
            stream.set_display_matrix(info.display_matrix)
        self.video = stream
        # how each RGB frame becomes the encoder's pixel format (fixed for the writer)
        self._reformat: dict[str, object] = {"format": stream.pix_fmt}
        if not self.rgb_output:
            self._reformat["dst_color_range"] = self.color_range
            if self.colorspace != _UNSPECIFIED:
                self._reformat["dst_colorspace"] = self.colorspace
        self._durations: dict[int, int] = {}
        self._end = 0  # the end of the last frame shown, in time_base
        self._tail = _VideoTail(self)
        self._pending: list | None = []
        self.add_copies(copy_from or [])
        if video_source is not None:
            self.copy_tags(video_source, stream)

    @classmethod
    def for_input(cls, path: Path, info: VideoInfo, width: int, height: int, settings: EncodeSettings, **kwargs):
        """A writer that copies every audio/subtitle stream of the input ``info.path`` and
        keeps its video stream's and container's tags."""
        if info.pictures:  # an image sequence: no other streams, no tags
            return cls(path, info, width, height, settings, **kwargs)
        with _open_input(info.path) as source:
            with _reading(info.path):
                copy_from = [s for s in source.streams if s.type in ("audio", "subtitle")]
                video_source = source.streams.video[0]
            return cls(path, info, width, height, settings, copy_from, video_source=video_source, **kwargs)

    def write(self, rgb: np.ndarray, pts: int, duration: int | None = None) -> None:
        """Encode one RGB frame (uint8, or uint16 on the full 16-bit scale) at ``pts``,
        lasting ``duration`` (both in ``self.time_base``).

        Encoders drop frame durations, so they are put back on the packets by pts: that is
        what lets the last frame last as long as the input's last frame did.
        """
        import av

        if duration is not None:
            self._durations[pts] = duration
            self._end = max(self._end, pts + duration)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if rgb.dtype == np.uint16 else "rgb24")
        if (frame.width, frame.height) != (self.video.width, self.video.height):  # --size: lanczos resize
            frame = frame.reformat(width=self.video.width, height=self.video.height, interpolation="LANCZOS")
        frame = frame.reformat(**self._reformat)
        frame.pts = pts
        frame.time_base = self.time_base
        try:
            packets = self.video.encode(frame)
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"the {self.settings.codec} encoder failed: {_ffmpeg_reason(e)}") from None
        self._mux_video(packets)

    def _mux_video(self, packets) -> None:
        for packet in packets:
            duration = self._durations.pop(packet.pts, None) if packet.pts is not None else None
            if duration is not None:
                packet.duration = duration
            self._tail.push(packet)
            if self._pending is not None:
                # copied packets wait for the first video packet: some muxers (Matroska with
                # FFV1) need the opened video encoder's header data before anything is written
                pending, self._pending = self._pending, None
                for p in pending:
                    self._mux(p)

    def copy_packet(self, packet) -> None:
        for out in self.copied_packets(packet):
            if self._pending is not None:  # header not written yet: see _mux_video
                self._pending.append(out)
            else:
                self._mux(out)

    def close(self) -> None:
        import av

        try:
            try:
                packets = self.video.encode(None)
            except (av.error.FFmpegError, ValueError) as e:
                raise OutputError(f"the {self.settings.codec} encoder failed: {_ffmpeg_reason(e)}") from None
            self._mux_video(packets)
            self._tail.finish(self._end)
            self.flush_routes()
            for p in self._pending or []:
                self._mux(p)
        except BaseException:
            self.abort()
            raise
        self._close()


def _encoder_options(settings: EncodeSettings) -> dict[str, str]:
    options = {}
    if settings.crf is not None and settings.codec in ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1"):
        options["crf"] = str(settings.crf)
    if settings.preset and settings.codec in ("libx264", "libx265", "libsvtav1"):
        options["preset"] = settings.preset
    if settings.codec == "libx265":
        options["x265-params"] = "log-level=error"
    if settings.codec == "libvpx-vp9":  # constant quality at a usable speed, on every core
        options.update({"b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"})
    return options


def segment_format_holds(codec: str) -> bool:
    """Whether the segment container can hold video encoded with ``codec`` (for ``--resume``)."""
    import av

    try:
        name = av.codec.Codec(codec, "w").name
        with av.open(io.BytesIO(), "w", format=SEGMENT_FORMAT) as trial:
            trial.add_stream(name)
        return True
    except (av.error.FFmpegError, ValueError):
        return False


def segment_timestamps(pts: list[int], last_duration: int) -> tuple[list[int], list[int]]:
    """Decode timestamps and durations for video packets joined from separately encoded
    segments, given their ``pts`` in decode order.

    The segment container stores only pts, and each segment's encoder started its own dts
    below its first pts, so dts are made afresh: ``dts_j = sorted_pts[j - D]`` where D is the
    stream's reorder depth (the most any packet is decoded ahead of its display rank), which
    keeps dts strictly increasing and never after pts. A frame lasts until the next one is
    shown; the last lasts ``last_duration``.
    """
    order = sorted(range(len(pts)), key=pts.__getitem__)
    rank = [0] * len(pts)
    for r, j in enumerate(order):
        rank[j] = r
    shown = [pts[j] for j in order]
    depth = max((j - rank[j] for j in range(len(pts))), default=0)
    dts = [shown[j - depth] if j >= depth else shown[0] - (depth - j) for j in range(len(pts))]
    following = {shown[r]: shown[r + 1] - shown[r] for r in range(len(shown) - 1)}
    durations = [following.get(p, last_duration) for p in pts]
    return dts, durations


def join_segments(
    segments: list[Path],
    path: Path,
    source: Path,
    info: VideoInfo,
    last_duration: Fraction,
    warnings: list[str] | None = None,
    end_time: Fraction | None = None,
) -> None:
    """Remux (no re-encoding) the video of ``segments`` (``SEGMENT_FORMAT`` files written by
    ``VideoWriter`` in display order) into ``path``, with the audio/subtitle streams of the
    input ``source`` copied as ``VideoWriter`` would (packets starting at or after
    ``end_time`` seconds, when given, are left out). The last frame lasts ``last_duration``
    seconds. Packets of all streams are interleaved by time here, so memory stays small
    whatever the length.
    """
    import av

    with _reading(segments[0], "a finished segment cannot be read (delete the segments folder)"):
        pts: list[int] = []
        for segment in segments:
            with av.open(str(segment)) as c:
                time_base = c.streams.video[0].time_base
                pts.extend(p.pts for p in c.demux(c.streams.video[0]) if p.size and p.pts is not None)
    last_ticks = max(1, round(last_duration / time_base))
    dts, durations = segment_timestamps(pts, last_ticks)
    out = _Output(path, warnings)
    tail = _VideoTail(out)
    try:
        with _open_input(source) as src, av.open(str(segments[0])) as first:
            template = first.streams.video[0]
            video = out.container.add_stream_from_template(template)
            video.time_base = template.time_base
            if info.display_matrix:
                video.set_display_matrix(info.display_matrix)
            out.copy_tags(src.streams.video[0], video)
            copies = [s for s in src.streams if s.type in ("audio", "subtitle")]
            out.add_copies(copies)

            def video_packets():
                j = 0
                for segment in segments:
                    with _reading(segment, "a finished segment cannot be read"), av.open(str(segment)) as c:
                        for p in c.demux(c.streams.video[0]):
                            if not p.size or p.pts is None:
                                continue
                            p.dts, p.duration = dts[j], durations[j]
                            p.stream = video
                            yield (p.dts * p.time_base, 0, j), p
                            j += 1

            def other_packets():
                if not out.routes:
                    return
                with _reading(source):
                    for n, p in enumerate(src.demux(*[s for s in copies if s.index in out.routes])):
                        if p.dts is None:
                            continue
                        if end_time is not None and p.pts is not None and p.pts * p.time_base >= end_time:
                            continue
                        yield (p.dts * p.time_base, 1, n), p

            for _, packet in heapq.merge(video_packets(), other_packets(), key=lambda item: item[0]):
                if packet.stream is video:
                    tail.push(packet)
                else:
                    for converted in out.copied_packets(packet):
                        out._mux(converted)
            tail.finish(max(pts) + last_ticks if pts else None)
            out.flush_routes()
    except BaseException:
        out.abort()
        raise
    out._close()


# tags that describe the old file's encoding rather than its content
_CONTAINER_KEYS_NOT_COPIED = {"major_brand", "minor_version", "compatible_brands", "encoder"}
_STREAM_KEYS_NOT_COPIED = {"encoder", "handler_name", "vendor_id", "duration", "DURATION"}


def _copy_stream_tags(src, dst) -> None:
    """Language, title and the other descriptive tags, plus disposition (default, forced...)."""
    dst.metadata.update({k: v for k, v in src.metadata.items() if k not in _STREAM_KEYS_NOT_COPIED})
    try:
        dst.disposition = src.disposition
    except (AttributeError, TypeError, ValueError):
        pass
