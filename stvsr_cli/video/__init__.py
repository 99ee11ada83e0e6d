"""Everything PyAV: probing, decoding to RGB, encoding, stream copy, timestamps and colour.

Frames cross this package's boundary as RGB numpy arrays ``[H, W, 3]`` paired with an integer
``pts`` in the input video stream's ``time_base``: uint8 for 8-bit input, uint16 (full 16-bit
scale) for input of more than 8 bits per component when asked for (``deep=True``). Output
frames are written at integer pts in the time base their schedule gives (``stvsr_cli.schedule``:
by default half the input's, so that the frame halfway between inputs at ``a`` and ``b`` is at
``a + b``).

Colour: frames are decoded to RGB with the input's own matrix and range, and encoded with the
same matrix, range, primaries and transfer tags (and display matrix, i.e. rotation); 10-bit
input stays 10-bit where the output codec allows it.

Every error a damaged or hostile input can cause comes out as ``InputError`` (one line);
errors writing the output (disk full included) come out as ``OutputError``.

Modules: ``probing`` (opening, ``VideoInfo``, frames to RGB), ``reading`` (``Demuxer``),
``writing`` (``EncodeSettings``, ``VideoWriter``), ``streams`` (copying audio and subtitles),
``segments`` (the pieces of a resumable job, and joining them), ``common`` (shared constants
and errors). What the rest of the package uses is importable from here.
"""

from .common import SEGMENT_FORMAT, write_error
from .probing import VideoInfo, describe_format, frame_step, frame_to_rgb, last_frame_end, probe
from .reading import Demuxer, read_frames
from .segments import join_segments, segment_format_holds, segment_timestamps
from .writing import EncodeSettings, VideoWriter

__all__ = [
    "SEGMENT_FORMAT",
    "Demuxer",
    "EncodeSettings",
    "VideoInfo",
    "VideoWriter",
    "describe_format",
    "frame_step",
    "frame_to_rgb",
    "join_segments",
    "last_frame_end",
    "probe",
    "read_frames",
    "segment_format_holds",
    "segment_timestamps",
    "write_error",
]
