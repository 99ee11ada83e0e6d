"""One ``upscale_video`` run on files: the ``Job`` its steps share, and the plain (not
resumable) run, where decoding, the model and encoding overlap in threads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StvsrError
from .overlap import BackgroundIterator, BackgroundWorker
from .video import Demuxer, VideoInfo, VideoWriter, frame_step, last_frame_end, write_error

if TYPE_CHECKING:
    from .pipeline import UpscaleOptions, Upscaler


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

    @property
    def out_size(self) -> tuple[int, int]:
        """The output's ``(width, height)``: ``--size`` where given (the writer resizes the
        model's frames to it), else the model's."""
        return self.options.size or self.upscaler.output_size(self.info.width, self.info.height)

    @property
    def output_rate(self) -> Fraction:
        """The output's nominal frame rate: the input's, times ``multi`` where frames are made."""
        return Fraction(self.info.rate) * (1 if self.options.mode == "space" else self.upscaler.multi)

    def writer(self, path: Path, container_format: str | None = None) -> VideoWriter:
        """The output video writer; the final output (no ``container_format``) also copies
        the input's audio/subtitle streams and tags."""
        args = (path, self.info, *self.out_size, self.options.encode)
        kwargs = {"warnings": self.warnings, "rate": self.output_rate, "time_scale": self.upscaler.multi}
        if container_format is None:
            return VideoWriter.for_input(*args, **kwargs)
        return VideoWriter(*args, container_format=container_format, **kwargs)

    def open_input(self, copy_other_streams: bool, skip_frames: int = 0) -> Demuxer:
        """The input's frames (and packets): the caller closes it once the output is done."""
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
            self.progress.start(n and (n if self.options.mode == "space" else self.upscaler.multi * (n - 1) + 1))

    def advance(self, n: int = 1) -> None:
        if self.progress is not None and n:
            self.progress.advance(n)

    def nominal_step(self) -> int:
        """One input frame's duration in the input time base (for a clip of one frame)."""
        return frame_step(self.info.rate, self.info.time_base)

    def upscale(self, frames, write, prev_pts: int | None = None, has_more=lambda: False) -> int:
        """Run the model over ``frames`` (``(rgb, pts)``, pts in the input time base) and call
        ``write(frame, pts, duration)`` for every output frame in display order, in the input
        time base divided by ``multi`` (so that the new frame at ``t = k / multi`` between two
        inputs has an exact integer pts). Returns the number of frames written.

        Each frame is written when the next one arrives, so that it knows its duration; the
        last lasts as long as the input's last frame did (its gap from ``prev_pts``, the
        frame before ``frames``, when it is the only one). When ``has_more()`` is true at the
        end, the last output (the key of a frame that starts the next segment) is not written.
        """
        held = None
        prev_key_pts, last_key_pts = None, prev_pts
        n_out = 0
        multi = self.upscaler.multi
        for frame, kind, tag in self.upscaler.process(frames):
            pts = multi * tag if kind == "key" else multi * tag[0] + tag[2] * (tag[1] - tag[0])
            if held is not None:
                write(held[0], held[1], pts - held[1])
                n_out += 1
                self.advance()
            if kind == "key":
                prev_key_pts, last_key_pts = last_key_pts, tag
            held = (frame, pts)
        if held is not None and not has_more():
            end = last_frame_end(last_key_pts, prev_key_pts, self.nominal_step())
            write(held[0], held[1], multi * (end - last_key_pts))
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
    tmp = partial_path(dst)
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
                if kind == "packet":
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
        replace_output(tmp, dst)
    except BaseException:
        abort_run(source, reader, worker, writer, tmp)
        raise
    reader.close()
    source.close()
    return n_in, n_out
