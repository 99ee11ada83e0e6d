"""Resumable jobs (``upscale --resume``): the input is processed in segments, each kept as a
finished file with a manifest beside the output, so that an interrupted run continues from its
last finished segment and gives the same frames as an uninterrupted one."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .distributed import Ranks, barrier
from .errors import StvsrError
from .files import write_atomically
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
    """The hidden folder beside the output (``.OUT.stvsr-segments/``) where a segmented job keeps
    its finished segments: ``manifest.json`` says what job they belong to (input path, size and
    mtime; model; every option that changes the pixels), and each finished segment ``j`` is
    ``segment-j.nut`` with ``segment-j.json`` beside it (input frames, output frames, last pts and
    duration, whether it is the last), the entry written once the segment file is in place. One
    file per segment, so that several processes (``torchrun``) can add segments at once.

    ``fresh``: check the manifest, starting over (with a warning) when it is for another job;
    ``False`` trusts that another process has just done so.
    """

    def __init__(self, dst: Path, job_key: dict, warnings: list[str], fresh: bool = True):
        self.folder = dst.with_name(f".{dst.name}.stvsr-segments")
        self.manifest = self.folder / "manifest.json"
        self.job_key = job_key
        if not fresh:
            return
        if self.manifest.exists() and self._saved_key() != job_key:
            warnings.append(f"started over: the unfinished job in {self.folder} was for another input or other options")
            self.clear()
        try:
            self.folder.mkdir(exist_ok=True)
            if not self.manifest.exists():
                write_atomically(self.manifest, json.dumps({"job": job_key}, indent=1).encode())
        except OSError as e:
            raise write_error(self.folder, e) from None

    def _saved_key(self) -> Any:
        try:
            saved = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return None
        return saved.get("job") if isinstance(saved, dict) else None

    def path(self, index: int) -> Path:
        return self.folder / f"segment-{index:05d}.{SEGMENT_FORMAT}"

    def indices(self) -> set[int]:
        """The indices of the segments with an entry (names only: nothing is read)."""
        found = set()
        for path in self.folder.glob("segment-*.json"):
            try:
                found.add(int(path.stem.split("-")[1]))
            except (ValueError, IndexError):
                continue
        return found

    def entry(self, index: int) -> dict | None:
        """Segment ``index``'s entry, or ``None`` where it is not finished (or unreadable)."""
        try:
            entry = json.loads(self.path(index).with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and self.path(index).is_file() else None

    def entries(self) -> dict[int, dict]:
        """The finished segments: ``{index: entry}``."""
        found = {index: self.entry(index) for index in self.indices()}
        return {index: entry for index, entry in found.items() if entry is not None}

    def add(self, index: int, entry: dict) -> None:
        try:
            write_atomically(self.path(index).with_suffix(".json"), json.dumps(entry).encode())
        except OSError as e:
            raise write_error(self.folder, e) from None

    def clear(self) -> None:
        """Delete what this store wrote (and nothing else)."""
        for pattern in (f"segment-*.{SEGMENT_FORMAT}*", "segment-*.json", "manifest.json"):
            for path in self.folder.glob(pattern):
                path.unlink(missing_ok=True)

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
        "version": 2,
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


def run_in_segments(job: Job, ranks: Ranks | None = None) -> tuple[int, int]:
    """A segmented job: the input is processed ``K`` input frames at a time, each segment
    written as a finished file into a ``SegmentStore``; at the end the segments are joined
    into the output (remuxed, not re-encoded) with the input's audio and subtitles, and the
    folder is removed. A rerun skips the finished segments (their frames are decoded but not
    upscaled) and gives the same frames an uninterrupted run would.

    Segment ``j`` holds the outputs of input frames ``jK .. jK+K-1``: each key and the frames
    after it up to the next key. Its last new frames need frame ``jK+K`` too, so that frame is
    upscaled twice (here, and as the first key of segment ``j+1``): segments depend on nothing
    but their frames. Under ``torchrun`` (``ranks``) process ``r`` makes the segments with
    ``j % world == r`` (every process reads the whole input), and rank 0 joins them once all
    have finished. Returns (input frames, output frames) of the whole job.
    """
    info, options = job.info, job.options
    k = options.segment_frames or max(1, round(SEGMENT_SECONDS * info.rate))
    if options.fps is not None:  # every segment holds at least one output frame
        k = max(k, math.ceil(info.rate / options.fps) + 1)
    main = ranks is None or ranks.main
    if main:
        store = SegmentStore(job.dst, job_key(job, k), job.warnings)
    if ranks is not None:
        barrier()  # rank 0 has checked (or cleared) the store
        if not main:
            store = SegmentStore(job.dst, job_key(job, k), job.warnings, fresh=False)
    tmp = partial_path(job.dst) if main else None
    part = None
    source = reader = writer = worker = None
    done = store.entries()
    reused = set(done)  # finished by an earlier run
    counted: set[int] = set()  # segments whose outputs the progress bar has counted

    def count_finished() -> None:
        """Advance the progress by the segments finished (here or elsewhere) not counted yet."""
        for index in sorted(store.indices() - counted):
            entry = store.entry(index)
            if entry is not None:
                counted.add(index)
                job.advance(entry["outputs"])

    prefix = 0  # finished segments at the start: skipped without converting their frames
    while prefix in done:
        prefix += 1
    skipped = sum(done[j]["frames"] for j in range(prefix))
    last_done = any(entry["last"] for entry in done.values())
    try:
        segments = prefix
        if not (last_done and len(done) == max(done) + 1):
            source = job.open_input(copy_other_streams=False, skip_frames=skipped)
            reader = BackgroundIterator(item for _, item in source)
            frames = _Lookahead(reader)
            if main:
                job.start_progress()
                count_finished()
            for _ in range(skipped):
                if frames.pop() is None:
                    raise StvsrError(f"the input has fewer frames than the finished segments in {store.folder}")
            while frames.peek() is not None:
                index = segments
                segments += 1
                if index in done or (ranks is not None and index % ranks.world != ranks.rank):
                    for _ in range(k):  # another's, or finished before: its frames pass
                        frames.pop()
                    continue
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
                entry = {
                    "frames": frames.consumed - first,
                    "outputs": n_out,
                    "last_pts": last["pts"],
                    "last_duration": last["duration"],
                    "last": frames.peek() is None,
                    "rank": ranks.rank if ranks is not None else 0,  # which process made it
                }
                store.add(index, entry)
                if main:
                    count_finished()  # this one, and what the other processes have finished meanwhile
            reader.close()
            reader = None
            source.close()
            source = None
        if ranks is not None:
            barrier()  # every process has made its segments
            if not main:
                return 0, 0
            count_finished()
        done = store.entries()
        missing = [j for j in range(segments) if j not in done]
        if not done or missing:
            if not done:
                raise StvsrError(f"no video frame could be decoded from {job.src}")
            raise StvsrError(f"segment(s) {', '.join(map(str, missing))} missing in {store.folder}")
        order = [done[j] for j in range(segments)]
        final = order[-1]
        out_time_base = job.schedule.time_base
        end_time = None
        if options.max_frames:  # a preview: the audio stops where the video does
            end_time = (final["last_pts"] + final["last_duration"]) * out_time_base
        paths = [store.path(j) for j in range(segments)]
        join_segments(paths, tmp, job.src, info, final["last_duration"] * out_time_base, job.warnings, end_time)
        replace_output(tmp, job.dst)
    except BaseException as e:
        abort_run(source, reader, worker, writer, part, tmp)
        finished = len(store.entries())
        if not finished and ranks is None:
            store.remove()
        elif isinstance(e, StvsrError):  # interrupted, disk full...: the finished work is kept
            again = "the same command" if ranks is not None else "the same command with --resume"
            # same class, so the same exit code; every StvsrError takes one message
            raise type(e)(
                f"{e}; {finished} finished segment(s) are kept in {store.folder}: run {again} to continue"
            ) from None
        raise
    n_in = sum(entry["frames"] for entry in order)
    n_out = sum(entry["outputs"] for entry in order)
    job.segments = {"total": segments, "reused": len(reused)}
    store.remove()
    return n_in, n_out
