"""``run_bench``: every method on every clip of a dataset, per-sequence rows and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import StvsrError
from ..metrics import PSNR_CAP
from ..names import DEFAULT_DEGRADATION
from .datasets import Clip, find_clips
from .measure import device_name, mean, measure, position_key, score
from .methods import build_engines
from .protocol import (
    DEGRADATION_TEXT,
    DEGRADATIONS,
    FISR_PROTOCOL,
    METHODS,
    METRICS,
    PROTOCOL,
    BenchConfig,
    BenchError,
    SkippedClip,
)


@dataclass
class BenchResult:
    protocol: dict[str, Any]
    sequences: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "sequences": self.sequences, "summary": self.summary}


def protocol_text(dataset: str, degradation: str, multi: int = 2) -> str:
    """The evaluation protocol in words (printed above the table and stored in the JSON)."""
    if dataset == "fisr":
        return FISR_PROTOCOL.format(cap=PSNR_CAP)
    text = PROTOCOL.format(degradation=DEGRADATION_TEXT[degradation], cap=PSNR_CAP)
    if multi == 2:
        return text
    return (
        f"As below with inputs {multi} frames apart (--multi {multi}): LR input = frames at t multiple of "
        f"{multi}, every method makes all {multi}(N-1)+1 frames, keyframes are those t, the others are scored "
        f"together (mid) and per position k/{multi}. " + text
    )


def check_config(config: BenchConfig) -> None:
    if config.degradation not in DEGRADATIONS:
        raise BenchError(f"--degradation must be {' or '.join(DEGRADATIONS)}, not {config.degradation!r}")
    if config.metric not in METRICS:
        raise BenchError(f"--metric must be {' or '.join(METRICS)}, not {config.metric!r}")
    if config.limit < 0 or config.max_frames < 0:
        raise BenchError("--limit and --max-frames must be 0 (all) or positive")
    if config.max_frames in (1, 2):
        raise BenchError("--max-frames must be at least 3 (a keyframe pair and its intermediate)")
    if config.multi < 2:
        raise BenchError(f"--multi must be at least 2, not {config.multi}")
    if not config.methods:
        raise BenchError(f"no method selected; choose from {', '.join(METHODS)}")
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise BenchError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")


def run_bench(config: BenchConfig, progress=None) -> BenchResult:
    """Score every method of ``config`` on every clip of its dataset.

    ``progress`` (optional) gets ``start(total_frames_or_None, description)`` and
    ``advance(n)`` for every output frame produced. Raises ``BenchError`` (or another
    ``StvsrError``) with a one-line message for anything the user can fix.
    """
    check_config(config)
    methods = tuple(m for m in METHODS if m in config.methods)
    sources, warnings = find_clips(
        config.dataset, config.data, config.degradation == DEFAULT_DEGRADATION, config.max_frames, config.multi
    )
    if config.limit:
        sources = sources[: config.limit]
    engines, facts = build_engines(methods, config.model, config.device, config.precision, config.multi)
    luma = config.metric == "y"
    examples_dir = Path(config.save_examples) if config.save_examples else None
    if examples_dir is not None:
        try:
            examples_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BenchError(f"cannot create the --save-examples folder {examples_dir}: {e.strerror or e}") from None
    if progress is not None:
        known = all(s.frames for s in sources)
        progress.start(sum(s.frames for s in sources) * len(engines) if known else None, "bench")

    totals = {m: {"frames": 0, "seconds": 0.0, "peak": 0.0} for m in methods}
    sequences = []
    for source in sources:
        try:
            clip = source.load()
        except SkippedClip as e:
            warnings.append(str(e))
            continue
        if not sequences:  # warm-up (allocations, kernels): not timed
            for engine in engines:
                engine.run(clip.lr[:2])
        entry = {
            "name": clip.name,
            "lr_size": [clip.lr[0].shape[1], clip.lr[0].shape[0]],
            "hr_size": [2 * clip.lr[0].shape[1], 2 * clip.lr[0].shape[0]],
            "frames": clip.out_frames,
            "scored_key": sum(1 for t in clip.gt if t % clip.multi == 0),
            "scored_mid": sum(1 for t in clip.gt if t % clip.multi),
            "results": [],
        }
        picked: dict[str, np.ndarray] = {}
        example_t = _example_t(clip)
        for engine in engines:
            outputs, seconds, peak = measure(lambda e=engine, lr=clip.lr: e.run(lr), engine.device)
            for row in engine.rows:
                frames = outputs[row]
                if len(frames) != clip.out_frames:
                    raise StvsrError(f"{row} produced {len(frames)} frames for {clip.name}, expected {clip.out_frames}")
                result = {
                    "method": row,
                    **score(frames, clip.gt, luma, clip.multi),
                    "seconds": seconds,
                    "fps": clip.out_frames / seconds if seconds > 0 else None,
                    "peak_mem_mb": peak,
                }
                entry["results"].append(result)
                totals[row]["frames"] += clip.out_frames
                totals[row]["seconds"] += seconds
                totals[row]["peak"] = max(totals[row]["peak"], peak)
                if examples_dir is not None:
                    picked[row] = frames[example_t]
            del outputs
            if progress is not None:
                progress.advance(clip.out_frames)
        entry["results"].sort(key=lambda r: methods.index(r["method"]))
        if examples_dir is not None:
            from ..examples import save_examples

            try:
                save_examples(examples_dir, clip, example_t, picked, entry["results"], facts.get("upscale_row"))
            except OSError as e:
                raise BenchError(f"cannot write examples into {examples_dir}: {e.strerror or e}") from None
        sequences.append(entry)

    if not sequences:
        raise BenchError(f"no {config.dataset} sequence in {config.data} could be scored: {'; '.join(warnings)}")
    device_of = {row: e.device for e in engines for row in e.rows}
    summary = []
    for m in methods:
        rows = [r for s in sequences for r in s["results"] if r["method"] == m]
        item: dict[str, Any] = {"method": m}
        positions = tuple(position_key(k, config.multi) for k in range(1, config.multi)) if config.multi > 2 else ()
        luma_keys = ("key_psnr_y", "mid_psnr_y") if luma else ()
        for key in ("key_psnr", "mid_psnr", "key_ssim", "mid_ssim", *luma_keys, *positions):
            item[key] = mean([r[key] for r in rows if r[key] is not None])
        t = totals[m]
        item["fps"] = t["frames"] / t["seconds"] if t["seconds"] > 0 else None
        item["ms_per_frame"] = 1000 * t["seconds"] / t["frames"] if t["frames"] else None
        item["peak_mem_mb"] = t["peak"]
        item["device"] = device_name(device_of[m])
        item["sequences"] = len(rows)
        summary.append(item)

    protocol = {
        "text": protocol_text(config.dataset, config.degradation, config.multi),
        "multi": config.multi,
        "dataset": config.dataset,
        "data": str(config.data),
        "degradation": config.degradation if config.dataset != "fisr" else "given (FISR LR frames)",
        "metric": config.metric,
        "psnr_cap_db": PSNR_CAP,
        "ssim": "Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, L 255, valid windows, per RGB channel, averaged",
        "methods": list(methods),
        "sequences": len(sequences),
        "limit": config.limit,
        "max_frames": config.max_frames,
        "device": device_name(next((e.device for e in engines if e.name == "model"), torch.device("cpu"))),
        "memory": "peak above the start of each method's run (CUDA: max_memory_allocated; CPU: peak RSS)",
        "threads": torch.get_num_threads(),
        "stvsr": __version__,
        "torch": torch.__version__,
        "warnings": warnings,
        **facts,
    }
    return BenchResult(protocol, sequences, summary, warnings)


def _example_t(clip: Clip) -> int:
    """The scored intermediate nearest the middle of the clip (a keyframe if none)."""
    scored = sorted(clip.gt, key=lambda t: (t % clip.multi == 0, abs(t - (clip.out_frames - 1) / 2), t))
    return scored[0]
