"""What the video modules share: FFmpeg's colour-tag values, the segment container, what
damaged input raises, and the one-line errors."""

from __future__ import annotations

import errno
from pathlib import Path

from ..errors import OutputError

# colour tags we pass through; values follow FFmpeg's AVCOL_* enums (2 = unspecified)
UNSPECIFIED = 2
LIMITED, FULL = 1, 2
# the container segments of a resumable job are written in: it keeps any time base exactly and
# (with negative timestamps allowed) stores every pts as given
SEGMENT_FORMAT = "nut"
# text subtitle codecs to convert to, in order, when the output cannot hold the input's own
TEXT_SUBTITLE_TARGETS = ("mov_text", "ass", "subrip", "webvtt")
# what PyAV and FFmpeg raise on damaged or hostile input (besides FFmpegError itself)
DAMAGE = (ValueError, OverflowError, UnicodeDecodeError, IndexError, EOFError)


def ffmpeg_reason(e: Exception) -> str:
    reason = getattr(e, "strerror", None) or str(e).split(":")[0] or type(e).__name__
    return reason.strip().splitlines()[0] if reason.strip() else type(e).__name__


def write_error(path: Path, e: BaseException) -> OutputError:
    """One line for a failed write: says so plainly when the disk is full."""
    code = getattr(e, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"disk full: cannot write the output into {path.parent} (no space left on the device)")
    reason = getattr(e, "strerror", None) or ffmpeg_reason(e)
    return OutputError(f"cannot write the output into {path.parent}: {reason}")
