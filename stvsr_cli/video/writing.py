"""Encoding the output: ``EncodeSettings``, the pixel format, and ``VideoWriter``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import OutputError
from .common import FULL, LIMITED, SEGMENT_FORMAT, UNSPECIFIED, ffmpeg_reason, write_error
from .probing import VideoInfo, open_input, reading_errors
from .streams import CONTAINER_KEYS_NOT_COPIED, CopyRoute, copy_stream_tags

DEFAULT_CODEC = "libx264"
CONTAINER_CODECS = {".webm": "libvpx-vp9"}


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
        return replace(self, codec=CONTAINER_CODECS.get(Path(path).suffix.lower(), DEFAULT_CODEC))


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


class OutputFile:
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
            raise OutputError(f"cannot create output {path}: {ffmpeg_reason(e)}") from None
        self.routes: dict[int, CopyRoute] = {}

    def add_copies(self, sources) -> None:
        """Output streams for the input's audio/subtitle ``sources`` (see ``CopyRoute``)."""
        for src in sources:
            route = CopyRoute.create(self.container, src, self.warnings)
            if route is not None:
                self.routes[src.index] = route

    def copy_tags(self, video_source, video_out) -> None:
        copy_stream_tags(video_source, video_out)
        self.container.metadata.update(
            {k: v for k, v in video_source.container.metadata.items() if k not in CONTAINER_KEYS_NOT_COPIED}
        )

    def copied_packets(self, packet) -> list:
        """The packets to mux for an input audio/subtitle packet (none for a dropped stream)."""
        route = self.routes.get(packet.stream.index)
        return [] if route is None else route.packets(packet)

    def flush_routes(self) -> None:
        """Mux what the copy routes still hold (a transcoder's delay): once, at the end."""
        for route in self.routes.values():
            self.mux(route.flush())

    def mux(self, packets) -> None:
        try:
            mux_packets(self.container, packets)
        except (OSError, ValueError) as e:  # every av.error.FFmpegError is one of these
            raise write_error(self.path, e) from None

    def close_container(self) -> None:
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
TRACK_ENDS_AT_LAST_DECODED = {"mov", "mp4", "ipod", "ismv", "3gp", "3g2", "psp", "f4v"}


class VideoTail:
    """Muxes an output's video packets, one behind for MP4/MOV, so that the last can be given
    the duration that makes the stream end when its last frame shown does.

    Matroska, NUT and most others take the end from the packets' presentation times and
    durations, which are right as they are. The MP4/MOV muxers take the track's length from
    its last packet in *decode* order (its dts plus its duration, from the first dts), less
    the smallest composition offset (pts - dts), which the edit list skips: with B-frames
    that last packet is not the last shown, so its duration is set to reach the end.
    """

    def __init__(self, output: OutputFile):
        self.output = output
        self.mov = output.container.format.name in TRACK_ENDS_AT_LAST_DECODED
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
            self.output.mux(packet)
            return
        if self.held is not None:
            self.output.mux(self.held)
        self.held = packet

    def finish(self, end: int | None) -> None:
        """Mux the held packet; ``end``: when the last frame shown ends (stream time base)."""
        packet, self.held = self.held, None
        if packet is None:
            return
        if end and packet.dts is not None and self.first_dts is not None:
            length = end - self.start  # what the track must last
            packet.duration = max(1, length - (packet.dts - self.first_dts) + self.min_offset)
        self.output.mux(packet)


def mux_packets(container, packets) -> None:
    """The one call that writes packets to any output (a seam for simulating a full disk)."""
    container.mux(packets)


class VideoWriter(OutputFile):
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
            raise OutputError(f"unknown or unavailable video codec {settings.codec!r} ({ffmpeg_reason(e)})") from None
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
        stream.options = encoder_options(settings)
        self.rgb_output = av.VideoFormat(stream.pix_fmt).is_rgb
        self.colorspace = info.colorspace
        # the input's range where it says, else limited (TV) range, as players expect
        self.color_range = info.color_range if info.color_range in (LIMITED, FULL) else LIMITED
        if not self.rgb_output:
            cc = stream.codec_context
            if info.colorspace != UNSPECIFIED:
                cc.colorspace = info.colorspace
            if info.color_primaries != UNSPECIFIED:
                cc.color_primaries = info.color_primaries
            if info.color_trc != UNSPECIFIED:
                cc.color_trc = info.color_trc
            cc.color_range = self.color_range
        if info.display_matrix:
            stream.set_display_matrix(info.display_matrix)
        self.video = stream
        # how each RGB frame becomes the encoder's pixel format (fixed for the writer)
        self._reformat: dict[str, object] = {"format": stream.pix_fmt}
        if not self.rgb_output:
            self._reformat["dst_color_range"] = self.color_range
            if self.colorspace != UNSPECIFIED:
                self._reformat["dst_colorspace"] = self.colorspace
        self._durations: dict[int, int] = {}
        self._end = 0  # the end of the last frame shown, in time_base
        self._tail = VideoTail(self)
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
        with open_input(info.path) as source:
            with reading_errors(info.path):
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
            raise OutputError(f"the {self.settings.codec} encoder failed: {ffmpeg_reason(e)}") from None
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
                    self.mux(p)

    def copy_packet(self, packet) -> None:
        for out in self.copied_packets(packet):
            if self._pending is not None:  # header not written yet: see _mux_video
                self._pending.append(out)
            else:
                self.mux(out)

    def close(self) -> None:
        import av

        try:
            try:
                packets = self.video.encode(None)
            except (av.error.FFmpegError, ValueError) as e:
                raise OutputError(f"the {self.settings.codec} encoder failed: {ffmpeg_reason(e)}") from None
            self._mux_video(packets)
            self._tail.finish(self._end)
            self.flush_routes()
            for p in self._pending or []:
                self.mux(p)
        except BaseException:
            self.abort()
            raise
        self.close_container()


def encoder_options(settings: EncodeSettings) -> dict[str, str]:
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
