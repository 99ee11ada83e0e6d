"""Decoding an input: ``Demuxer`` (frames with exact pts, and the other streams' packets)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from .common import DAMAGE, ffmpeg_reason
from .probing import frame_step, frame_to_rgb, last_frame_end, nominal_rate, open_input, reading_errors

# what a demuxer yields: a decoded video frame ``(rgb, pts)``, or a packet of another stream
FRAME, PACKET = "frame", "packet"


def read_frames(path: str | os.PathLike, max_frames: int = 0, deep: bool = False) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(rgb, pts)`` for every frame of the first video stream, in presentation order
    (uint8 RGB, or uint16 with ``deep``)."""
    with Demuxer(Path(path), copy_other_streams=False, max_frames=max_frames, deep=deep) as source:
        for kind, item in source:
            if kind == FRAME:
                yield item


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
PREVIEW_READ_AHEAD = 10


class Demuxer:
    """The open input: iterating it yields ``(FRAME, (rgb, pts))`` for decoded video frames
    and ``(PACKET, packet)`` for packets of the other (audio/subtitle) streams, in file
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
        self.container = open_input(self.path)
        try:
            with reading_errors(self.path):
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
        with reading_errors(path):
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
            except (av.error.FFmpegError, *DAMAGE) as e:  # unreadable from here on: end here
                stopped = ffmpeg_reason(e)
                break
            index = packet.stream.index
            time = packet_time(packet)
            if end_time is not None:  # a finished preview: the others' packets up to its end
                if index == vindex:
                    if time is not None and time > end_time + PREVIEW_READ_AHEAD:
                        break
                elif time is not None and time >= end_time:
                    passed.add(index)
                    if len(passed) == len(self.others):
                        break
                elif packet.dts is not None:
                    yield PACKET, packet
                continue
            if index != vindex:
                if packet.dts is None:
                    continue
                if self.max_frames and time is not None:
                    held.append((time, packet))
                else:
                    yield PACKET, packet
                continue
            sent += packet.size > 0
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, *DAMAGE):  # a corrupt packet: skip it, keep going
                bad_packets += 1
                continue
            for frame in frames:
                damaged_frames += frame.is_corrupt
                interlaced = interlaced or frame.interlaced_frame
                try:
                    rgb = None if count < self.skip_frames else frame_to_rgb(frame, self.deep)
                except (av.error.FFmpegError, *DAMAGE):
                    bad_packets += 1
                    continue
                pts = timer(frame.pts)
                yield FRAME, (rgb, pts)
                count += 1
                if self.max_frames and count >= self.max_frames:
                    end_time = last_frame_end(pts, prev_pts, timer.step) * self.time_base
                    passed.update(p.stream.index for t, p in held if t >= end_time)
                    yield from ((PACKET, p) for t, p in held if t < end_time)
                    held = []
                    break
                prev_pts = pts
                if held:
                    now = pts * self.time_base
                    yield from ((PACKET, p) for t, p in held if t < now)
                    held = [(t, p) for t, p in held if t >= now]
            if end_time is not None and len(passed) == len(self.others):
                break
        yield from ((PACKET, p) for _, p in held)  # fewer frames than the limit: all of them
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


def packet_time(packet) -> Fraction | None:
    """A packet's presentation (else decode) time in seconds, or None when it has neither."""
    ts = packet.pts if packet.pts is not None else packet.dts
    return None if ts is None or packet.time_base is None else ts * packet.time_base


# the video codec an output gets when none is asked for: by container, else H.264
