"""Everything PyAV: probing, decoding to RGB, encoding, stream copy, timestamps and colour.

Frames cross this module's boundary as uint8 RGB numpy arrays ``[H, W, 3]`` paired with an
integer ``pts`` in the input video stream's ``time_base``. Output timestamps use a time base
twice as fine (``time_base / 2``) so that a frame exactly halfway between two input frames has
an integer pts: keyframe ``i`` gets ``2 * pts_i``, the intermediate ``pts_i + pts_(i+1)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import InputError, OutputError

# colour tags we pass through; values follow FFmpeg's AVCOL_* enums (2 = unspecified)
_UNSPECIFIED = 2


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
    other_streams: list[str] = field(default_factory=list)


def _open_input(path: Path):
    import av

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
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as e:
        raise InputError(f"not a video file PyAV can read: {path} ({_ffmpeg_reason(e)})") from None


def _ffmpeg_reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).split(":")[0] or type(e).__name__


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open ``path``, check it holds a decodable video stream, and describe it.

    Raises ``InputError`` (one line) for a missing/empty/unreadable file, a non-video file,
    an audio-only file, or a video stream that yields no frame.
    """
    import av

    path = Path(path)
    with _open_input(path) as container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise InputError(f"input has no video stream ({', '.join(kinds)} only): {path}")
        stream = container.streams.video[0]
        cc = stream.codec_context
        if not cc.width or not cc.height:
            raise InputError(f"input video stream has no frame size (corrupt header?): {path}")
        try:
            first = next(container.decode(stream), None)
        except (av.error.FFmpegError, ValueError) as e:
            raise InputError(f"input video cannot be decoded: {path} ({_ffmpeg_reason(e)})") from None
        if first is None:
            raise InputError(f"input video stream holds no decodable frame (truncated or corrupt?): {path}")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        return VideoInfo(
            path=path,
            width=first.width,
            height=first.height,
            time_base=stream.time_base or Fraction(1, 90000),
            rate=Fraction(rate),
            frames=stream.frames or 0,
            duration=duration,
            codec=cc.name,
            pix_fmt=first.format.name,
            colorspace=int(first.colorspace),
            color_range=int(first.color_range),
            color_primaries=int(getattr(first, "color_primaries", _UNSPECIFIED)),
            color_trc=int(getattr(first, "color_trc", _UNSPECIFIED)),
            audio_streams=len(container.streams.audio),
            subtitle_streams=len(container.streams.subtitles),
            other_streams=[s.type for s in container.streams if s.type not in ("video", "audio", "subtitle")],
        )


def frame_to_rgb(frame) -> np.ndarray:
    """Decoded ``av.VideoFrame`` -> uint8 RGB ``[H, W, 3]``, using the frame's own colour
    matrix and range tags (unspecified ones take FFmpeg's defaults, as ffmpeg itself does)."""
    kwargs = {}
    if int(frame.color_range) in (1, 2):
        kwargs["src_color_range"] = int(frame.color_range)
    if frame.format.name not in ("rgb24",):
        frame = frame.reformat(format="rgb24", **kwargs)
    return frame.to_ndarray()


def decode_all_frames(path: str | os.PathLike, max_frames: int = 0) -> np.ndarray:
    """Every frame of a (short) clip as ``[T, H, W, 3]`` uint8; for training data, not videos."""
    frames = [rgb for rgb, _ in read_frames(path, max_frames=max_frames)]
    if not frames:
        raise InputError(f"no frames decoded from {path}")
    return np.stack(frames)


def read_frames(path: str | os.PathLike, max_frames: int = 0) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(rgb, pts)`` for every frame of the first video stream, in presentation order."""
    for kind, item in demux(Path(path), copy_other_streams=False, max_frames=max_frames):
        if kind == "frame":
            yield item


class FrameTimer:
    """Gives every decoded frame an integer pts, strictly increasing: the decoder's pts when
    it has one, otherwise the previous pts plus one nominal frame duration."""

    def __init__(self, time_base: Fraction, rate: Fraction):
        self.step = max(1, round(1 / (Fraction(rate) * Fraction(time_base)))) if rate else 1
        self.last: int | None = None

    def __call__(self, pts: int | None) -> int:
        if pts is None or (self.last is not None and pts <= self.last):
            pts = 0 if self.last is None else self.last + self.step
        self.last = pts
        return pts


def demux(path: Path, copy_other_streams: bool = True, max_frames: int = 0, warnings: list[str] | None = None):
    """Yield ``("frame", (rgb, pts))`` for decoded video frames and ``("packet", packet)``
    for packets of the other (audio/subtitle) streams, in file order.

    Corrupt video packets are skipped (counted in ``warnings``); the stream keeps going.
    """
    import av

    with _open_input(path) as container:
        if not container.streams.video:
            raise InputError(f"input has no video stream: {path}")
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"
        others = [s for s in container.streams if s.type in ("audio", "subtitle")] if copy_other_streams else []
        rate = vstream.average_rate or vstream.guessed_rate or Fraction(25)
        timer = FrameTimer(vstream.time_base or Fraction(1, 90000), rate)
        count = 0
        bad_packets = 0
        for packet in container.demux(vstream, *others):
            if packet.stream.index != vstream.index:
                if packet.dts is not None:
                    yield "packet", packet
                continue
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError):  # a corrupt packet: skip it, keep going
                bad_packets += 1
                continue
            for frame in frames:
                yield "frame", (frame_to_rgb(frame), timer(frame.pts))
                count += 1
                if max_frames and count >= max_frames:
                    return
        if bad_packets and warnings is not None:
            warnings.append(f"skipped {bad_packets} corrupt video packet(s) in {path.name}")


@dataclass(frozen=True)
class EncodeSettings:
    """How to encode the output video stream."""

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None  # None: the codec's natural choice (yuv420p for x264/x265)
    lossless: bool = False  # RGB FFV1: output pixels are exactly the model's uint8 frames

    @classmethod
    def lossless_rgb(cls) -> EncodeSettings:
        return cls(codec="ffv1", crf=None, preset=None, pix_fmt="bgr0", lossless=True)


class VideoWriter:
    """Writes RGB frames as the output video and remuxes the input's audio/subtitle packets.

    ``copy_from``: the input's streams to copy (their packets arrive through ``copy_packet``);
    ``video_source``: the input video stream, whose tags (language, title) the output keeps.
    ``rate``: nominal output frame rate (default twice the input's). Frame pts are in
    ``time_base`` (half the input's). ``close()`` flushes the encoder and writes the trailer;
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
    ):
        import av

        self.path = path
        self.settings = settings
        self.warnings = warnings if warnings is not None else []
        try:
            self.container = av.open(str(path), mode="w")
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"cannot create output {path}: {_ffmpeg_reason(e)}") from None
        self.time_base = Fraction(info.time_base) / 2
        try:
            stream = self.container.add_stream(settings.codec, rate=rate or info.rate * 2)
        except (av.error.FFmpegError, ValueError) as e:
            self.container.close()
            raise OutputError(f"unknown or unavailable video codec {settings.codec!r} ({_ffmpeg_reason(e)})") from None
        stream.width, stream.height = width, height
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        stream.pix_fmt = settings.pix_fmt or _default_pix_fmt(stream)
        options = {}
        if settings.crf is not None and settings.codec in (
            "libx264",
            "libx265",
            "libvpx-vp9",
            "libaom-av1",
            "libsvtav1",
        ):
            options["crf"] = str(settings.crf)
        if settings.preset and settings.codec in ("libx264", "libx265", "libsvtav1"):
            options["preset"] = settings.preset
        if settings.codec == "libx265":
            options["x265-params"] = "log-level=error"
        stream.options = options
        self.rgb_output = stream.pix_fmt in ("gbrp", "rgb24", "bgr0", "bgra", "rgba", "gbrap")
        self.colorspace = info.colorspace
        self.color_range = 1  # limited (TV) range for YUV output, as players expect
        if not self.rgb_output:
            cc = stream.codec_context
            if info.colorspace != _UNSPECIFIED:
                cc.colorspace = info.colorspace
            if info.color_primaries != _UNSPECIFIED:
                cc.color_primaries = info.color_primaries
            if info.color_trc != _UNSPECIFIED:
                cc.color_trc = info.color_trc
            cc.color_range = self.color_range
        self.video = stream
        self._durations: dict[int, int] = {}
        self._pending: list | None = []
        self.copied = {}
        for src in copy_from or []:
            try:
                out = self.container.add_stream_from_template(src)
            except (av.error.FFmpegError, ValueError) as e:
                self.warnings.append(
                    f"dropped {src.type} stream #{src.index}: the output container cannot hold it ({_ffmpeg_reason(e)})"
                )
                continue
            _copy_stream_tags(src, out)
            self.copied[src.index] = out
        if video_source is not None:
            _copy_stream_tags(video_source, stream)
            self.container.metadata.update(
                {k: v for k, v in video_source.container.metadata.items() if k not in _CONTAINER_KEYS_NOT_COPIED}
            )

    def write(self, rgb: np.ndarray, pts: int, duration: int | None = None) -> None:
        """Encode one uint8 RGB frame at ``pts``, lasting ``duration`` (both in ``self.time_base``).

        Encoders drop frame durations, so they are put back on the packets by pts: that is
        what lets the last frame last as long as the input's last frame did.
        """
        import av

        if duration is not None:
            self._durations[pts] = duration
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self.rgb_output:
            frame = frame.reformat(format=self.video.pix_fmt)
        else:
            kwargs = {"format": self.video.pix_fmt, "dst_color_range": self.color_range}
            if self.colorspace != _UNSPECIFIED:
                kwargs["dst_colorspace"] = self.colorspace
            frame = frame.reformat(**kwargs)
        frame.pts = pts
        frame.time_base = self.time_base
        self._mux_video(self.video.encode(frame))

    def _mux_video(self, packets) -> None:
        for packet in packets:
            duration = self._durations.pop(packet.pts, None) if packet.pts is not None else None
            if duration is not None:
                packet.duration = duration
            self._mux(packet)
            if self._pending is not None:
                # copied packets wait for the first video packet: some muxers (Matroska with
                # FFV1) need the opened video encoder's header data before anything is written
                pending, self._pending = self._pending, None
                for p in pending:
                    self._mux(p)

    def copy_packet(self, packet) -> None:
        out = self.copied.get(packet.stream.index)
        if out is None:
            return
        packet.stream = out
        if self._pending is not None:  # header not written yet: see _mux_video
            self._pending.append(packet)
        else:
            self._mux(packet)

    def _mux(self, packets) -> None:
        import av

        try:
            self.container.mux(packets)
        except OSError as e:
            raise OutputError(f"cannot write output {self.path}: {e.strerror or e}") from None
        except av.error.FFmpegError as e:
            raise OutputError(f"cannot write output {self.path}: {_ffmpeg_reason(e)}") from None

    def close(self) -> None:
        try:
            self._mux_video(self.video.encode(None))
            for p in self._pending or []:
                self._mux(p)
        finally:
            self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken file must not mask the real error
            pass


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


def _default_pix_fmt(stream) -> str:
    formats = [f.name for f in (stream.codec_context.codec.video_formats or [])]
    for preferred in ("yuv420p", "gbrp", "bgr0", "rgb24"):
        if preferred in formats:
            return preferred
    return formats[0] if formats else "yuv420p"
