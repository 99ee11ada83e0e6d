"""``stvsr bench --save-examples``: side-by-side crops and per-frame PSNR plots as PNG files.

Images are uint8 RGB numpy arrays ``[H, W, 3]``, drawn with numpy alone (a 3×5 pixel font, no
plotting library) and written by a small zlib PNG encoder. For each clip:

* ``<clip>_t<t>_crops.png``: one crop of output frame ``t`` (an intermediate near the middle of
  the clip), left to right: the LR frame at or before ``t`` (nearest-neighbour ×2), ``bicubic_blend``,
  ``mci_lanczos``, ours (the row ``stvsr upscale`` writes, else ``model_refined``, else the last
  model row run), the ground truth;
  each labelled with the method and its PSNR on the whole frame. The crop is where
  ``bicubic_blend`` (else the first row) errs most.
* ``<clip>_psnr.png``: PSNR of every scored frame against ``t``, one line per method.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np

CROP = 128  # HR crop side (smaller frames: the whole frame)
PANEL_MIN = 192  # crops are enlarged (nearest) to at least this size
COLORS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
]

_FONT = {
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": (".##", "#..", "#..", "#..", ".##"),
    "D": ("##.", "#.#", "#.#", "#.#", "##."),
    "E": ("###", "#..", "##.", "#..", "###"),
    "F": ("###", "#..", "##.", "#..", "#.."),
    "G": (".##", "#..", "#.#", "#.#", ".##"),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "J": ("..#", "..#", "..#", "#.#", ".#."),
    "K": ("#.#", "#.#", "##.", "#.#", "#.#"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#.#", "###", "###", "#.#", "#.#"),
    "N": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "O": (".#.", "#.#", "#.#", "#.#", ".#."),
    "P": ("##.", "#.#", "##.", "#..", "#.."),
    "Q": (".#.", "#.#", "#.#", "##.", ".##"),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": (".##", "#..", ".#.", "..#", "##."),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
    "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "W": ("#.#", "#.#", "###", "###", "#.#"),
    "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    "Z": ("###", "..#", ".#.", "#..", "###"),
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("##.", "..#", ".#.", "#..", "###"),
    "3": ("##.", "..#", ".#.", "..#", "##."),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "##.", "..#", "##."),
    "6": (".##", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "##."),
    ".": ("...", "...", "...", "...", ".#."),
    "-": ("...", "...", "###", "...", "..."),
    "_": ("...", "...", "...", "...", "###"),
    ":": ("...", ".#.", "...", ".#.", "..."),
    " ": ("...", "...", "...", "...", "..."),
    "(": (".#.", "#..", "#..", "#..", ".#."),
    ")": (".#.", "..#", "..#", "..#", ".#."),
    "/": ("..#", "..#", ".#.", "#..", "#.."),
}


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 4 * scale


def draw_text(img: np.ndarray, x: int, y: int, text: str, color=(0, 0, 0), scale: int = 2) -> None:
    """Draw ``text`` (upper-cased) into ``img [H, W, 3]`` with its top-left corner at ``(x, y)``;
    each glyph is 3×5 pixels times ``scale``, 1 pixel times ``scale`` apart. Clipped at the edges."""
    for i, char in enumerate(text):
        pattern = _FONT.get(char.upper(), _FONT[" "])
        mask = np.kron(np.array([[c == "#" for c in row] for row in pattern]), np.ones((scale, scale), bool))
        x0 = x + i * 4 * scale
        h = max(0, min(mask.shape[0], img.shape[0] - y))
        w = max(0, min(mask.shape[1], img.shape[1] - x0))
        if x0 < 0 or y < 0 or h == 0 or w == 0:
            continue
        img[y : y + h, x0 : x0 + w][mask[:h, :w]] = color


def draw_line(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color, thickness: int = 2) -> None:
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.rint(np.linspace(x0, x1, n)).astype(int)
    ys = np.rint(np.linspace(y0, y1, n)).astype(int)
    for d in range(thickness):
        yy = np.clip(ys + d, 0, img.shape[0] - 1)
        xx = np.clip(xs, 0, img.shape[1] - 1)
        img[yy, xx] = color


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write uint8 RGB ``[H, W, 3]`` as an 8-bit truecolour PNG (zlib, filter type 0)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    )


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "clip"


def _worst_window(a: np.ndarray, b: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left ``(y, x)`` (even) of the ``size``-square window where ``a`` and ``b`` differ most."""
    err = np.abs(a.astype(np.float64) - b.astype(np.float64)).mean(axis=2)
    s = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]  # [H-size+1, W-size+1]
    y, x = np.unravel_index(int(np.argmax(sums[::2, ::2])), sums[::2, ::2].shape)
    return 2 * int(y), 2 * int(x)


def crops_image(
    lr: np.ndarray, panels: list[tuple[str, np.ndarray]], reference: np.ndarray | None, lr_label: str = "LR (NEAREST)"
) -> np.ndarray:
    """Side-by-side labelled crops. ``lr`` ``[h, w, 3]`` (shown first, nearest ×2); ``panels``
    ``(label, [2h, 2w, 3])``, the truth last; the crop is where ``reference`` differs most from it."""
    H, W = panels[-1][1].shape[:2]
    size = min(CROP, H - H % 2, W - W % 2)
    y, x = (
        _worst_window(reference, panels[-1][1], size)
        if reference is not None
        else ((H - size) // 2 // 2 * 2, (W - size) // 2 // 2 * 2)
    )
    lr_crop = lr[y // 2 : (y + size) // 2, x // 2 : (x + size) // 2].repeat(2, axis=0).repeat(2, axis=1)
    crops = [(lr_label, lr_crop)] + [(label, img[y : y + size, x : x + size]) for label, img in panels]
    zoom = max(1, -(-PANEL_MIN // size))
    side, gap, label_h = size * zoom, 6, 24
    out = np.full((label_h + side, len(crops) * (side + gap) - gap, 3), 255, np.uint8)
    for i, (label, crop) in enumerate(crops):
        x0 = i * (side + gap)
        out[label_h:, x0 : x0 + side] = crop.repeat(zoom, axis=0).repeat(zoom, axis=1)
        draw_text(out, x0 + 2, 6, label[: side // 8])
    return out


def psnr_plot(series: list[tuple[str, list[tuple[int, float]]]], width: int = 720, height: int = 360) -> np.ndarray:
    """Line plot of PSNR (dB) against output frame ``t``, one ``(name, [(t, psnr), ...])`` per line."""
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 56, 200, 24, 36
    values = [v for _, pts in series for _, v in pts]
    ts = [t for _, pts in series for t, _ in pts]
    if not values:
        return img
    lo, hi = min(values), max(values)
    step = next((s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if (hi - lo) / s <= 6), 20)
    lo, hi = np.floor(lo / step) * step, np.ceil(hi / step) * step
    if hi <= lo:
        lo, hi = lo - step, hi + step
    t0, t1 = min(ts), max(max(ts), min(ts) + 1)
    pw, ph = width - left - right, height - top - bottom

    def px(t: float, v: float) -> tuple[float, float]:
        return left + (t - t0) / (t1 - t0) * pw, top + (hi - v) / (hi - lo) * ph

    grey, black = (220, 220, 220), (0, 0, 0)
    for k in range(int(round((hi - lo) / step)) + 1):
        v = lo + k * step
        _, yv = px(t0, v)
        draw_line(img, left, yv, left + pw, yv, grey, 1)
        label = f"{v:.1f}" if step < 1 else f"{v:.0f}"
        draw_text(img, left - text_width(label) - 6, int(yv) - 5, label)
    t_step = max(1, -(-(t1 - t0) // 12))
    for t in range(t0, t1 + 1, t_step):
        xt, _ = px(t, lo)
        draw_line(img, xt, top + ph, xt, top + ph + 4, black, 1)
        draw_text(img, int(xt) - text_width(str(t)) // 2, top + ph + 8, str(t))
    draw_line(img, left, top, left, top + ph, black, 1)
    draw_line(img, left, top + ph, left + pw, top + ph, black, 1)
    draw_text(img, left, 6, "PSNR (DB) PER OUTPUT FRAME T")
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        for (ta, va), (tb, vb) in zip(pts, pts[1:], strict=False):
            draw_line(img, *px(ta, va), *px(tb, vb), color)
        for t, v in pts:
            xv, yv = px(t, v)
            img[max(int(yv) - 2, 0) : int(yv) + 3, max(int(xv) - 2, 0) : int(xv) + 3] = color
        ly = top + 4 + 16 * i
        img[ly : ly + 10, left + pw + 12 : left + pw + 22] = color
        draw_text(img, left + pw + 28, ly, name)
    return img


def save_examples(
    folder: str | Path, clip, t: int, picked: dict[str, np.ndarray], results: list[dict], ours: str | None = None
) -> list[Path]:
    """Write the crops and the PSNR plot of one clip (see the module doc); returns the paths.

    ``clip`` is a ``stvsr_cli.bench.Clip``; ``picked`` maps each method to its output frame
    ``t``; ``results`` are the clip's per-method results (with per-frame ``frames`` scores);
    ``ours`` is the model row shown as OURS (what ``stvsr upscale`` writes), when it was run."""
    folder = Path(folder)
    psnr_of = {r["method"]: next((f["psnr"] for f in r["frames"] if f["t"] == t), None) for r in results}
    model_rows = [m for m in picked if m.startswith("model_")]
    if ours not in picked:
        ours = "model_refined" if "model_refined" in picked else (model_rows[-1] if model_rows else None)
    panels = []
    for method, label in (("bicubic_blend", "BICUBIC"), ("mci_lanczos", "MCI"), (ours, "OURS")):
        if method in picked:
            score = f" {psnr_of[method]:.2f}" if psnr_of.get(method) is not None else ""
            panels.append((label + score, picked[method]))
    panels.append(("GT", clip.gt[t]))
    reference = picked.get("bicubic_blend", next(iter(picked.values()), None))
    paths = [folder / f"{_safe(clip.name)}_t{t}_crops.png", folder / f"{_safe(clip.name)}_psnr.png"]
    # the LR frame at t (keyframe) or just before it (intermediate)
    write_png(paths[0], crops_image(clip.lr[t // 2], panels, reference, f"LR T={t - t % 2} (NEAREST)"))
    series = [(r["method"], [(f["t"], f["psnr"]) for f in r["frames"]]) for r in results]
    write_png(paths[1], psnr_plot(series))
    return paths
