"""``stvsr bench``: evaluation datasets, methods, timing and scores (returns data; never prints).

A clip is LR input frames ``L(0..N-1)`` (uint8 RGB ``[h, w, 3]``) and ground truth ``H(t)``
(uint8 RGB ``[2h, 2w, 3]``) for some of ``t = 0..2N-2``: keyframes at even ``t`` (``H(2i)``
is the truth for ``L(i)`` upscaled), intermediates at odd ``t``. Every method outputs all
``2N-1`` frames; each output frame that has a truth is scored.

Datasets (``--dataset``), read in their native layouts:

* ``vimeo90k``: ``tri_testlist.txt`` + ``sequences/XXXXX/YYYY/im1..im3.png`` (N=2), or
  ``sep_testlist.txt`` + ``im1..im7.png`` (N=4: LR from im1, im3, im5, im7; truth all 7).
* ``ucf101``: ``<id>/frame_00.png, frame_01_gt.png, frame_02.png`` (DVF/DAIN) or
  ``<id>/frame0.png, frame1.png, frame2.png`` (frame1 = middle truth), N=2.
* ``middlebury``: ``other-data/<S>/frame10.png, frame11.png`` + ``other-gt-interp/<S>/frame10i11.png``.
* ``fisr``: ``LR_vid_<v>_fr_<n>_seq_{1,3,5,7,9}.png`` (input, used as given) and
  ``HR_vid_<v>_fr_<n>_seq_{2..8}.png`` (truth at 2× size), anywhere under the folder (the
  dataset keeps them in ``LR_LFR/`` and ``HR_HFR/``); the PNG channels hold BT.601 studio-range
  Y, Cb, Cr and are converted to RGB. Output ``t = seq - 1``: keyframes seq 3, 5, 7 (t=2, 4, 6),
  intermediates seq 2, 4, 6, 8 (t=1, 3, 5, 7); seq 1 and 9 have no truth.
* ``videos``: every video file under the folder, first ``max_frames`` frames (odd count).

Except for FISR, the LR frames are made by the protocol (``PROTOCOL``): truth cropped to even
size, even-``t`` frames downscaled ×0.5 by ``stvsr_cli.data.degrade`` and rounded to 8 bits.

Modules: ``protocol`` (names, the protocol text, ``BenchConfig``, errors), ``datasets`` (clips), ``methods``
(baselines and model rows as engines), ``measure`` (time, memory, scores), ``runner``
(``run_bench``), ``report`` (JSON, CSV, Markdown).
"""

from ..lazy import lazy_attributes

# torch-free: the command line reads these
from .protocol import DATASETS, DEGRADATIONS, METHODS, METRICS, MODEL_ROWS, BenchConfig, BenchError

# the rest needs torch, so it is imported on first use (``stvsr --help`` stays quick);
# ``measure`` (a function of the module of that name) is imported from ``bench.measure``
_LAZY = {
    "Clip": "datasets",
    "clip_from_hr": "datasets",
    "find_clips": "datasets",
    "ycbcr_to_rgb": "datasets",
    "model_outputs": "methods",
    "parse_methods": "methods",
    "format_value": "report",
    "markdown_tables": "report",
    "summary_columns": "report",
    "write_csv": "report",
    "write_json": "report",
    "write_markdown": "report",
    "BenchResult": "runner",
    "run_bench": "runner",
}

__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = ["DATASETS", "DEGRADATIONS", "METHODS", "METRICS", "MODEL_ROWS", "BenchConfig", "BenchError", *_LAZY]
