"""The segments of a resumable or distributed job: their container, timestamps, and joining
them into the output with the input's other streams."""

from __future__ import annotations

import heapq
import io
from fractions import Fraction
from pathlib import Path

from .common import SEGMENT_FORMAT
from .probing import VideoInfo, open_input, reading_errors
from .writing import OutputFile, VideoTail


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

    with reading_errors(segments[0], "a finished segment cannot be read (delete the segments folder)"):
        pts: list[int] = []
        for segment in segments:
            with av.open(str(segment)) as c:
                time_base = c.streams.video[0].time_base
                pts.extend(p.pts for p in c.demux(c.streams.video[0]) if p.size and p.pts is not None)
    last_ticks = max(1, round(last_duration / time_base))
    dts, durations = segment_timestamps(pts, last_ticks)
    out = OutputFile(path, warnings)
    tail = VideoTail(out)
    try:
        with open_input(source) as src, av.open(str(segments[0])) as first:
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
                    with reading_errors(segment, "a finished segment cannot be read"), av.open(str(segment)) as c:
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
                with reading_errors(source):
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
                        out.mux(converted)
            tail.finish(max(pts) + last_ticks if pts else None)
            out.flush_routes()
    except BaseException:
        out.abort()
        raise
    out.close_container()


# tags that describe the old file's encoding rather than its content
