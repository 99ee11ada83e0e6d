"""Writing a bench result: JSON, CSV and paper-style Markdown tables."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .measure import position_key
from .runner import BenchResult


def finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def write_json(result: BenchResult, path: str | os.PathLike) -> None:
    """``{"protocol": {...}, "sequences": [...], "summary": [...]}`` (strict JSON: no NaN/inf)."""
    Path(path).write_text(json.dumps(finite(result.to_dict()), indent=2, allow_nan=False) + "\n", encoding="utf-8")


CSV_FIELDS = (
    "sequence",
    "method",
    "key_psnr",
    "mid_psnr",
    "key_ssim",
    "mid_ssim",
    "key_psnr_y",
    "mid_psnr_y",
    "fps",
    "ms_per_frame",
    "peak_mem_mb",
)


def csv_rows(result: BenchResult) -> Iterator[dict[str, Any]]:
    """One row per (sequence, method), then one per method with ``sequence = "ALL"`` (the summary)."""
    for seq in result.sequences:
        for r in seq["results"]:
            ms = 1000 * r["seconds"] / seq["frames"]
            yield {"sequence": seq["name"], **{k: r.get(k) for k in CSV_FIELDS[1:]}, "ms_per_frame": ms}
    for s in result.summary:
        yield {"sequence": "ALL", **{k: s.get(k) for k in CSV_FIELDS[1:]}}


def summary_columns(luma: bool, multi: int = 2) -> list[tuple[str, str, int]]:
    """The quality columns of a summary table: ``(header, summary key, decimals)``; with
    ``multi`` > 2 also the new frames' PSNR at each ``t = k / multi``."""
    cols = [("key PSNR", "key_psnr", 2), ("mid PSNR", "mid_psnr", 2), ("key SSIM", "key_ssim", 4)]
    cols += [("mid SSIM", "mid_ssim", 4)]
    cols += [("key PSNR-Y", "key_psnr_y", 2), ("mid PSNR-Y", "mid_psnr_y", 2)] if luma else []
    if multi > 2:
        cols += [(f"PSNR t={k}/{multi}", position_key(k, multi), 2) for k in range(1, multi)]
    return cols


def format_value(value: float | None, digits: int) -> str:
    """A table cell: ``value`` to ``digits`` decimals, ``-`` where there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_tables(result: BenchResult) -> str:
    """Paper-style Markdown: the summary (PSNR in dB to 2 decimals, SSIM to 4, output frames/s),
    then mid-frame PSNR per sequence and method, the table behind per-scene claims."""
    multi = result.protocol.get("multi", 2)
    cols = summary_columns(result.protocol.get("metric") == "y", multi) + [("frames/s", "fps", 2)]

    def table(header: list[str], rows: list[list[str]]) -> list[str]:
        align = ["---"] + ["---:"] * (len(header) - 1)
        return ["| " + " | ".join(r) + " |" for r in (header, align, *rows)]

    summary = [[s["method"], *(format_value(s.get(key), digits) for _, key, digits in cols)] for s in result.summary]
    lines = table(["method", *(c[0] for c in cols)], summary)
    methods = [s["method"] for s in result.summary]
    per_seq = []
    for seq in result.sequences:
        mids = {r["method"]: r.get("mid_psnr") for r in seq["results"]}
        per_seq.append([seq["name"], *(format_value(mids.get(m), 2) for m in methods)])
    lines += ["", "Mid-frame PSNR per sequence:", "", *table(["sequence", *methods], per_seq)]
    return "\n".join(lines) + "\n"


def write_markdown(result: BenchResult, path: str | os.PathLike) -> None:
    Path(path).write_text(markdown_tables(result), encoding="utf-8")


def write_csv(result: BenchResult, path: str | os.PathLike) -> None:
    luma = result.protocol.get("metric") == "y"
    fields = [f for f in CSV_FIELDS if luma or not f.endswith("_y")]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in csv_rows(result):
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fields})
