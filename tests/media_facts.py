"""What a user checks in an output file: per stream, how many packets, when it ends; and how
long the video lasts as players read it. Used by the tests that promise nothing is lost."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass
class StreamFacts:
    kind: str
    codec: str
    packets: int
    end: float  # seconds: the latest pts + duration of its packets
    frame: float  # seconds: the duration of its first packet (one audio frame)
    length: float | None  # seconds, as the container states it (stream duration or DURATION tag)


def stream_facts(path: Path) -> list[StreamFacts]:
    import av

    with av.open(str(path)) as c:
        streams = list(c.streams)
        counts = {s.index: 0 for s in streams}
        ends: dict[int, Fraction] = {}
        firsts: dict[int, Fraction] = {}
        for p in c.demux():
            if p.size == 0 or p.pts is None:
                continue
            i = p.stream.index
            counts[i] += 1
            end = (p.pts + (p.duration or 0)) * p.time_base
            ends[i] = max(ends.get(i, end), end)
            firsts.setdefault(i, (p.duration or 0) * p.time_base)
        return [
            StreamFacts(
                s.type,
                s.codec_context.name if s.codec_context else "?",
                counts[s.index],
                float(ends.get(s.index, 0)),
                float(firsts.get(s.index, 0)),
                _stated_length(s),
            )
            for s in streams
        ]


def _stated_length(stream) -> float | None:
    """The stream's length as a player reads it: MP4/MOV store it, Matroska a DURATION tag."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag and ":" in tag:
        h, m, s = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return None


def of_kind(facts: list[StreamFacts], kind: str) -> list[StreamFacts]:
    return [f for f in facts if f.kind == kind]


def video_length(facts: list[StreamFacts]) -> float:
    """How long the (first) video stream lasts as players read it."""
    video = of_kind(facts, "video")[0]
    return video.length if video.length is not None else video.end
