"""Resumable jobs (``upscale --resume``): the input is processed in segments, each kept as a
finished file with a manifest beside the output, so that an interrupted run continues from its
last finished segment and gives the same frames as an uninterrupted one."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import StvsrError
from .jobs import Job, abort_run, partial_path, replace_output
from .overlap import BackgroundIterator, BackgroundWorker
from .video import SEGMENT_FORMAT, join_segments, write_error

SEGMENT_SECONDS = 10  # default segment length with --resume, in seconds of input


class _Lookahead:
    """Frames ``(rgb, pts)`` from an iterator, with a peek at the next one: a segment's last
    frame pair needs the first frame of the next segment."""

    _EMPTY = object()

    def __init__(self, iterable):
        self._it = iter(iterable)
        self._next: Any = self._EMPTY
        self.consumed = 0
        self.last_pts: int | None = None

    def peek(self):
        if self._next is self._EMPTY:
            self._next = next(self._it, None)
        return self._next

    def pop(self):
        item, self._next = self.peek(), self._EMPTY
        if item is not None:
            self.consumed += 1
            self.last_pts = item[1]
        return item

    def take(self, k: int):
        """The next ``k`` frames, then a look at the one after (left for the next segment)."""
        for _ in range(k):
            item = self.pop()
            if item is None:
                return
            yield item
        ahead = self.peek()
        if ahead is not None:
            yield ahead


class SegmentStore:
    """The hidden folder beside the output (``.OUT.stvsr-segments/``) where a resumable job
    keeps its finished segments and ``manifest.json``: what job they belong to (input path,
    size and mtime; model; every option that changes the pixels) and, in order, each finished
    segment (file, input frames, output frames, last pts and duration, whether it is the last).
    """

    def __init__(self, dst: Path, job_key: dict, warnings: list[str]):
        self.folder = dst.with_name(f".{dst.name}.stvsr-segments")
        self.manifest = self.folder / "manifest.json"
        self.job_key = job_key
        self.segments: list[dict] = []
        if self.manifest.exists():
            self._load(warnings)
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as e:
            raise write_error(self.folder, e) from None

    def _load(self, warnings: list[str]) -> None:
        try:
            saved = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            saved = {}
        if not isinstance(saved, dict):
            saved = {}
        segments = saved.get("segments")
        usable = isinstance(segments, list) and all(
            isinstance(s, dict) and isinstance(s.get("file"), str) and (self.folder / s["file"]).is_file()
            for s in segments
        )
        if saved.get("job") == self.job_key and usable:
            self.segments = segments
            return
        warnings.append(f"started over: the unfinished job in {self.folder} was for another input or other options")
        self.clear()

    def path(self, index: int) -> Path:
        return self.folder / f"segment-{index:05d}.{SEGMENT_FORMAT}"

    @property
    def complete(self) -> bool:
        return bool(self.segments) and self.segments[-1]["last"]

    def add(self, entry: dict) -> None:
        self.segments.append(entry)
        tmp = self.manifest.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"job": self.job_key, "segments": self.segments}, indent=1))
            os.replace(tmp, self.manifest)
        except OSError as e:
            raise write_error(self.manifest, e) from None

    def clear(self) -> None:
        """Delete what this store wrote (and nothing else)."""
        for path in self.folder.glob(f"segment-*.{SEGMENT_FORMAT}*"):
            path.unlink(missing_ok=True)
        for path in (self.manifest, self.manifest.with_suffix(".tmp")):
            path.unlink(missing_ok=True)
        self.segments = []

    def remove(self) -> None:
        self.clear()
        try:
            self.folder.rmdir()
        except OSError:
            pass  # something else was put there: leave it


def job_key(job: Job, segment_frames: int) -> dict:
    """What must not change between an interrupted run and the one that continues it."""
    from .weights import resolve_weights

    def file_key(path: Path) -> dict:
        st = path.stat()
        return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    o = job.options
    return {
        "version": 1,
        "input": file_key(job.src),
        "model": file_key(resolve_weights(o.model)),
        "options": {
            "mode": o.mode,
            "mid_from": job.upscaler.model.config.mid_from,
            "multi": job.upscaler.multi,
            "batch": o.batch,
            "tile": o.tile,
            "scene_threshold": o.scene_threshold,
            "device": job.upscaler.device.type,
            "dtype": str(job.upscaler.dtype),  # a segment made in another precision is not reused
            "encode": asdict(o.encode),
            "max_frames": o.max_frames,
            "segment_frames": segment_frames,
            "size": list(o.size) if o.size else None,
            "fps": str(o.fps) if o.fps is not None else None,
        },
    }


def run_in_segments(job: Job) -> tuple[int, int]:
    """A resumable job: the input is processed ``K`` input frames at a time, each segment
    written as a finished file into a ``SegmentStore``; at the end the segments are joined
    into the output (remuxed, not re-encoded) with the input's audio and subtitles, and the
    folder is removed. A rerun skips the finished segments (their frames are decoded but not
    upscaled) and gives the same frames an uninterrupted run would.

    Segment ``k`` holds the outputs of input frames ``kK .. kK+K-1``: each key and the mid
    frame after it. Its last mid frame needs frame ``kK+K`` too, so that frame is upscaled
    twice (here, and as the first key of segment ``k+1``); the model state carries over
    by recomputing that boundary pair.
    """
    info, options = job.info, job.options
    k = options.segment_frames or max(1, round(SEGMENT_SECONDS * info.rate))
    if options.fps is not None:  # every segment holds at least one output frame
        k = max(k, math.ceil(info.rate / options.fps) + 1)
    store = SegmentStore(job.dst, job_key(job, k), job.warnings)
    tmp = partial_path(job.dst)
    part = None
    source = reader = writer = worker = None
    skipped = sum(s["frames"] for s in store.segments)
    n_in = skipped
    try:
        if not store.complete:
            source = job.open_input(copy_other_streams=False, skip_frames=skipped)
            reader = BackgroundIterator(item for _, item in source)
            frames = _Lookahead(reader)
            job.start_progress()
            job.advance(sum(s["outputs"] for s in store.segments))
            for _ in range(skipped):
                if frames.pop() is None:
                    raise StvsrError(f"the input has fewer frames than the finished segments in {store.folder}")
            while frames.peek() is not None:
                index = len(store.segments)
                part = store.path(index).with_name(store.path(index).name + ".part")
                writer = job.writer(part, container_format=SEGMENT_FORMAT)
                worker = BackgroundWorker()
                last: dict = {}

                def write(frame, pts, duration, worker=worker, writer=writer, last=last):
                    last.update(pts=pts, duration=duration)
                    worker.submit(writer.write, frame, pts, duration)

                first = frames.consumed
                prev_pts = frames.last_pts
                n_out = job.upscale(frames.take(k), write, prev_pts, has_more=lambda: frames.peek() is not None)
                worker.finish()
                worker = None
                writer.close()
                writer = None
                replace_output(part, store.path(index))
                part = None
                n_in += frames.consumed - first
                store.add(
                    {
                        "file": store.path(index).name,
                        "frames": frames.consumed - first,
                        "outputs": n_out,
                        "last_pts": last["pts"],
                        "last_duration": last["duration"],
                        "last": frames.peek() is None,
                    }
                )
            reader.close()
            reader = None
            source.close()
            source = None
        if not store.segments:
            raise StvsrError(f"no video frame could be decoded from {job.src}")
        final = store.segments[-1]
        out_time_base = job.schedule.time_base
        end_time = None
        if options.max_frames:  # a preview: the audio stops where the video does
            end_time = (final["last_pts"] + final["last_duration"]) * out_time_base
        segments = [store.folder / s["file"] for s in store.segments]
        join_segments(segments, tmp, job.src, info, final["last_duration"] * out_time_base, job.warnings, end_time)
        replace_output(tmp, job.dst)
    except BaseException as e:
        abort_run(source, reader, worker, writer, part, tmp)
        if not store.segments:
            store.remove()
        elif isinstance(e, StvsrError):  # interrupted, disk full...: the finished work is kept
            # same class, so the same exit code; every StvsrError takes one message
            raise type(e)(
                f"{e}; {len(store.segments)} finished segment(s) are kept in {store.folder}: "
                "run the same command with --resume to continue"
            ) from None
        raise
    n_out = sum(s["outputs"] for s in store.segments)
    store.remove()
    return n_in, n_out
