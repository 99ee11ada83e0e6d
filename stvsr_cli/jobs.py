"""One ``upscale_video`` run on files: the ``Job`` its steps share, and the plain (not
resumable) run, where decoding, the model and encoding overlap in threads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StvsrError
from .images import PictureReader, PictureWriter, is_pattern
from .overlap import BackgroundIterator, BackgroundWorker
from .schedule import ConstantRate, EveryInterval
from .video import Demuxer, VideoInfo, VideoWriter, frame_step, last_frame_end, write_error
from .video.reading import PACKET

if TYPE_CHECKING:
    from .options import UpscaleOptions
    from .upscaler import Upscaler


@dataclass
class Job:
    """One ``upscale_video`` run: what its steps share."""

    src: Path
    dst: Path
    info: VideoInfo
    options: UpscaleOptions
    upscaler: Upscaler
    progress: Any = None
    warnings: list[str] = field(default_factory=list)
    segments: dict | None = None  # a segmented run: {"total": segments, "reused": finished by an earlier run}

    @property
    def out_size(self) -> tuple[int, int]:
        """The output's ``(width, height)``: ``--size`` where given (the writer resizes the
        model's frames to it), else the model's."""
        return self.options.size or self.upscaler.output_size(self.info.width, self.info.height)

    @cached_property
    def schedule(self) -> EveryInterval | ConstantRate:
        """When the output frames are (``--fps``, else ``multi`` per input interval)."""
        if self.options.fps is not None:
            return ConstantRate(self.options.fps, self.info.time_base, self.info.start_pts)
        return EveryInterval(self.upscaler.multi, self.info.time_base)

    @property
    def output_rate(self) -> Fraction:
        """The output's nominal frame rate: the input's in ``--mode space``, else the schedule's."""
        return Fraction(self.info.rate) if self.options.mode == "space" else self.schedule.rate(self.info.rate)

    @property
    def pictures_out(self) -> bool:
        """Whether the output is an image sequence (``out/%05d.png``)."""
        return is_pattern(self.dst)

    def writer(self, path: Path | None, container_format: str | None = None) -> VideoWriter | PictureWriter:
        """The output writer: numbered pictures for an image-sequence output (``path`` unused:
        they appear beside each other when done), else a video file at ``path``; the final
        video output (no ``container_format``) also copies the input's audio/subtitle streams
        and tags."""
        if self.pictures_out:
            return PictureWriter(self.dst, *self.out_size, deep=self.info.deep, overwrite=self.options.overwrite)
        args = (path, self.info, *self.out_size, self.options.encode)
        kwargs = {"warnings": self.warnings, "rate": self.output_rate, "time_base": self.schedule.time_base}
        if container_format is None:
            return VideoWriter.for_input(*args, **kwargs)
        return VideoWriter(*args, container_format=container_format, **kwargs)

    def open_input(self, copy_other_streams: bool, skip_frames: int = 0) -> Demuxer | PictureReader:
        """The input's frames (and packets): the caller closes it once the output is done."""
        if self.info.pictures:
            return PictureReader(self.info, max_frames=self.options.max_frames, skip_frames=skip_frames)
        return Demuxer(
            self.src,
            copy_other_streams=copy_other_streams,
            max_frames=self.options.max_frames,
            warnings=self.warnings,
            deep=self.info.deep,
            skip_frames=skip_frames,
        )

    def start_progress(self) -> None:
        if self.progress is not None:
            n = min(self.info.frames, self.options.max_frames) if self.options.max_frames else self.info.frames
            duration = n / self.info.rate if self.options.max_frames and self.info.rate else self.info.duration
            self.progress.start(n if self.options.mode == "space" else self.schedule.count(n, duration))

    def advance(self, n: int = 1) -> None:
        if self.progress is not None and n:
            self.progress.advance(n)

    def nominal_step(self) -> int:
        """One input frame's duration in the input time base (for a clip of one frame)."""
        return frame_step(self.info.rate, self.info.time_base)

    def upscale(self, frames, write, prev_pts: int | None = None, has_more=lambda: False) -> int:
        """Run the model over ``frames`` (``(rgb, pts)``, pts in the input time base) and call
        ``write(frame, pts, duration)`` for every output frame in display order, in the
        schedule's time base (``stvsr_cli.schedule``: every output time is an exact integer
        pts there). Returns the number of frames written.

        Each frame is written when the next one arrives, so that it knows its duration; the
        last lasts until the input's last frame ends (that frame's gap from the one before,
        or from ``prev_pts``, the frame before ``frames``, when it is the only one). When
        ``has_more()`` is true at the end, the key of the last frame (which starts the next
        segment) is not written.
        """
        schedule = self.schedule
        held = None
        n_out = 0
        prev_key_pts, last_key_pts, last_key = None, prev_pts, None

        def emit(frame, pts: int) -> None:
            nonlocal held, n_out
            if held is not None:
                write(held[0], held[1], pts - held[1])
                n_out += 1
                self.advance()
            held = (frame, pts)

        for out in self.upscaler.process(frames, schedule.times):
            if out.is_key:
                prev_key_pts, last_key_pts, last_key = last_key_pts, out.a, out.frame
                if schedule.key_at(out.a):
                    emit(out.frame, schedule.pts(out.a, out.a, 0))
            else:
                emit(out.frame, schedule.pts(out.a, out.b, out.t))
        if last_key is None:
            return n_out
        if has_more():
            if held is None or held[1] == schedule.pts(last_key_pts, last_key_pts, 0):
                return n_out  # the next segment starts with that key
            end_pts = held[1] + schedule.step_after(held[1])
        else:
            end = last_frame_end(last_key_pts, prev_key_pts, self.nominal_step())
            for pts in schedule.tail(last_key_pts, end):
                if held is None or pts > held[1]:
                    emit(last_key, pts)
            end_pts = schedule.pts(last_key_pts, end, 1)
        if held is not None:
            write(held[0], held[1], end_pts - held[1])
            n_out += 1
            self.advance()
        return n_out


def replace_output(tmp: Path, dst: Path) -> None:
    try:
        os.replace(tmp, dst)
    except OSError as e:
        raise write_error(dst, e) from None


def abort_run(source, reader, worker, writer, *paths: Path | None) -> None:
    """Clean up after a failed or interrupted run: stop the threads, close the output without
    caring about it, close the input (last: the writer may still hold its packets), and
    delete the temporary files (never the user's output)."""
    reader_stopped = reader.close() if reader is not None else True
    if worker is not None:
        worker.abandon()
    if writer is not None:
        writer.abort()
    if source is not None and reader_stopped:  # a reader thread still running keeps it open
        source.close()
    for path in paths:
        if path is not None:
            path.unlink(missing_ok=True)


def partial_path(dst: Path) -> Path:
    """The hidden file beside ``dst`` that a run writes, renamed to ``dst`` only when complete."""
    return dst.with_name(f".{dst.name}.stvsr-partial-{os.getpid()}{dst.suffix}")


def run_whole(job: Job) -> tuple[int, int]:
    """The whole video in one go: decode, model and encode overlap in threads."""
    dst = job.dst
    tmp = None if job.pictures_out else partial_path(dst)  # pictures are staged by their writer
    n_in = 0
    source = writer = reader = worker = None
    try:
        source = job.open_input(copy_other_streams=True)
        writer = job.writer(tmp)
        # decode and encode run in their own threads, overlapping the model
        reader = BackgroundIterator(source)
        worker = BackgroundWorker()
        job.start_progress()

        def frames():
            nonlocal n_in
            for kind, item in reader:
                if kind == PACKET:
                    worker.submit(writer.copy_packet, item)
                else:
                    n_in += 1
                    yield item

        n_out = job.upscale(frames(), lambda *args: worker.submit(writer.write, *args))
        if n_out == 0:
            raise StvsrError(f"no video frame could be decoded from {job.src}")
        worker.finish()
        worker = None
        writer.close()
        writer = None
        if tmp is not None:
            replace_output(tmp, dst)
    except BaseException:
        abort_run(source, reader, worker, writer, tmp)
        raise
    reader.close()
    source.close()
    return n_in, n_out
