"""Image sequences, the interchange format of restoration work: read as a video (a folder of
images or a printf pattern such as ``frames/%06d.png``), written as numbered pictures
(``out/%05d.png``, ``.tif``, ``.jpg``) that appear only when the whole sequence is done.

Timing: input pictures are frames ``0, 1, 2, ...`` at ``--input-fps`` (time base ``1 / fps``).
Output pictures are numbered from 1, as ``ffmpeg`` numbers them. Depth: a picture of more than
8 bits per channel (16-bit PNG or TIFF) is read as 16-bit RGB, and 16-bit output is written for
such input (PNG and TIFF; JPEG is 8-bit).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import InputError, OutputError, UsageError
from .files import natural_key
from .video.reading import FRAME

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
# what each output suffix is written with: (encoder, 8-bit pixel format, 16-bit pixel format)
_ENCODERS = {
    ".png": ("png", "rgb24", "rgb48be"),
    ".tif": ("tiff", "rgb24", "rgb48le"),
    ".tiff": ("tiff", "rgb24", "rgb48le"),
    ".jpg": ("mjpeg", "yuvj444p", "yuvj444p"),
    ".jpeg": ("mjpeg", "yuvj444p", "yuvj444p"),
}
_PATTERN = re.compile(r"%(0?\d*)d")
FIRST_NUMBER = 1  # as ffmpeg's image2 muxer


def is_pattern(path: Path) -> bool:
    """A printf-style numbered name: ``%d`` or ``%05d`` in the file name."""
    return bool(_PATTERN.search(path.name))


def is_image_sequence_input(path: Path) -> bool:
    return path.is_dir() or is_pattern(path)


def _pattern_regex(pattern: Path) -> re.Pattern:
    """The file names a pattern names: ``%05d`` is five or more digits, ``%d`` any digits."""
    match = _PATTERN.search(pattern.name)
    width = match[1].lstrip("0")
    digits = rf"\d{{{width},}}" if width else r"\d+"
    head, tail = pattern.name[: match.start()], pattern.name[match.end() :]
    return re.compile(re.escape(head) + f"({digits})" + re.escape(tail) + "$")


def matching_files(pattern: Path) -> list[Path]:
    """Existing files that ``pattern`` names, by number."""
    if len(_PATTERN.findall(pattern.name)) != 1 or _PATTERN.search(str(pattern.parent)):
        raise UsageError(f"an image sequence pattern needs exactly one %d (or %05d) in the file name: {pattern}")
    if not pattern.parent.is_dir():
        return []
    regex = _pattern_regex(pattern)
    found = [(int(m[1]), p) for p in pattern.parent.iterdir() if (m := regex.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def list_pictures(path: Path) -> list[Path]:
    """The pictures of an image-sequence input, in order: a folder's pictures in natural order
    (``2.png`` before ``10.png``), or the files a pattern names by number."""
    if path.is_dir():
        pictures = sorted(
            (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES),
            key=lambda p: natural_key(p.name),
        )
        if not pictures:
            raise InputError(f"input folder holds no pictures ({', '.join(PICTURE_SUFFIXES)}): {path}")
        return pictures
    pictures = matching_files(path)
    if not pictures:
        raise InputError(f"no pictures match {path}")
    return pictures


def read_picture(path: Path, deep: bool | None = None) -> np.ndarray:
    """One picture as RGB ``[H, W, 3]``: uint16 where ``deep`` (None: where it has more than 8
    bits per channel), else uint8."""
    import av

    from .video import describe_format, frame_to_rgb

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.error.FFmpegError, StopIteration, IndexError, ValueError) as e:
        raise InputError(f"picture cannot be read: {path} ({type(e).__name__})") from None
    if deep is None:
        deep = describe_format(frame.format)[0] > 8
    return frame_to_rgb(frame, deep=deep)


def probe_pictures(path: Path, fps: Fraction):
    """A ``VideoInfo`` for an image-sequence input at ``fps`` frames per second."""
    import av

    from .video import VideoInfo, describe_format

    pictures = list_pictures(path)
    try:
        with av.open(str(pictures[0])) as container:
            first = next(container.decode(video=0))
            codec = container.streams.video[0].codec_context.name
    except (av.error.FFmpegError, StopIteration, IndexError, ValueError) as e:
        raise InputError(f"picture cannot be read: {pictures[0]} ({type(e).__name__})") from None
    bit_depth, chroma, has_alpha = describe_format(first.format)
    return VideoInfo(
        path=path,
        width=first.width,
        height=first.height,
        time_base=1 / Fraction(fps),
        rate=Fraction(fps),
        frames=len(pictures),
        duration=float(len(pictures) / Fraction(fps)),
        codec=codec,
        pix_fmt=first.format.name,
        bit_depth=bit_depth,
        chroma=chroma,
        has_alpha=has_alpha,
        pictures=tuple(pictures),
    )


class PictureReader:
    """The ``Demuxer`` of an image sequence: ``(FRAME, (rgb, index))`` per picture (no other
    streams). Every picture must have the first one's size."""

    def __init__(self, info, max_frames: int = 0, skip_frames: int = 0, **_):
        self.info = info
        self.max_frames = max_frames
        self.skip_frames = skip_frames

    def __iter__(self) -> Iterator[tuple[str, tuple[np.ndarray | None, int]]]:
        pictures = self.info.pictures[: self.max_frames or None]
        for index, path in enumerate(pictures):
            if index < self.skip_frames:
                yield FRAME, (None, index)
                continue
            rgb = read_picture(path, deep=self.info.deep)
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise InputError(
                    f"picture {path.name} is {rgb.shape[1]}x{rgb.shape[0]}, "
                    f"not {self.info.width}x{self.info.height} like the first"
                )
            yield FRAME, (rgb, index)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_picture_output(pattern: Path, overwrite: bool) -> None:
    """Refuse an image-sequence output that cannot work or would replace frames unasked."""
    if pattern.suffix.lower() not in _ENCODERS:
        raise OutputError(f"image sequence output must be .png, .tif or .jpg, not {pattern.suffix or 'no suffix'}")
    existing = matching_files(pattern)
    if existing and not overwrite:
        raise OutputError(
            f"output frames exist: {existing[0]} and {len(existing) - 1} more (use --overwrite to replace them)"
        )
    if not pattern.parent.is_dir():
        raise OutputError(f"output folder does not exist: {pattern.parent}")
    if not os.access(pattern.parent, os.W_OK):
        raise OutputError(f"output folder is not writable: {pattern.parent}")


class PictureWriter:
    """Writes frames as numbered pictures: into a hidden folder beside them, moved into place
    by ``close()`` once all are written (with ``overwrite``, the old sequence's pictures go);
    ``abort()`` removes the hidden folder. The ``VideoWriter`` interface: other streams'
    packets are dropped (a picture has no audio)."""

    def __init__(self, pattern: Path, width: int, height: int, deep: bool, overwrite: bool):
        import av

        self.pattern = pattern
        self.width, self.height = width, height
        self.overwrite = overwrite
        codec, fmt8, fmt16 = _ENCODERS[pattern.suffix.lower()]
        self.codec, self.pix_fmt = codec, (fmt16 if deep else fmt8)
        av.codec.Codec(codec, "w")  # fails early if this FFmpeg lacks the encoder
        self.staging = pattern.parent / f".{pattern.stem.replace('%', '_')}.stvsr-partial-{os.getpid()}"
        self.staging.mkdir()
        self.written: list[Path] = []

    def _name(self, number: int) -> str:
        return self.pattern.name % number

    def write(self, rgb: np.ndarray, pts: int, duration: int | None = None) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if rgb.dtype == np.uint16 else "rgb24")
        if (frame.width, frame.height) != (self.width, self.height):  # --size: lanczos resize
            frame = frame.reformat(width=self.width, height=self.height, interpolation="LANCZOS")
        frame = frame.reformat(format=self.pix_fmt)
        encoder = av.CodecContext.create(self.codec, "w")
        encoder.width, encoder.height, encoder.pix_fmt = self.width, self.height, self.pix_fmt
        encoder.time_base = Fraction(1, 25)
        if self.codec == "mjpeg":
            encoder.options = {"qmin": "1", "qmax": "2"}  # near-lossless: a delivery master, not a preview
            encoder.color_range = 2  # full range (yuvj)
        path = self.staging / self._name(FIRST_NUMBER + len(self.written))
        try:
            data = b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])
            path.write_bytes(data)
        except OSError as e:
            from .video import write_error

            raise write_error(path, e) from None
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"the {self.codec} encoder failed on {path.name}: {e}") from None
        self.written.append(path)

    def copy_packet(self, packet) -> None:
        pass

    def close(self) -> None:
        """Move the pictures into place (replacing same-named ones), then, with ``overwrite``,
        remove the old sequence's pictures beyond the new one's."""
        try:
            old = matching_files(self.pattern) if self.overwrite else []
            for path in self.written:
                os.replace(path, self.pattern.parent / path.name)
            new = {path.name for path in self.written}
            for path in old:
                if path.name not in new:
                    path.unlink()
        except OSError as e:
            from .video import write_error

            self.abort()
            raise write_error(self.pattern.parent, e) from None
        shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
