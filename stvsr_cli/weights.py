"""Weights files: safetensors with the architecture and its config in the metadata.

A file describes itself, so ``load_model(path)`` rebuilds the exact network from the file
alone and loads it strictly (every tensor present, no extra ones, same shapes). Metadata
keys: ``format = "stvsr"``, ``format_version``, ``architecture = "dual_stream"``,
``config`` (JSON of ``DualStreamConfig``) and free-form ``info`` (JSON: data, steps, ...).
Only safetensors are read: a pickle checkpoint could run code, so it is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .errors import WeightsError
from .nets import DualStream, DualStreamConfig
from .nets.blocks import ResBlock

FORMAT = "stvsr"
FORMAT_VERSION = "2"  # 2: every part's config stated in full; 1 (still read): code defaults implied
READABLE_VERSIONS = ("1", "2")
ARCHITECTURE = "dual_stream"
# the repo's weights/ folder: what a source checkout (and an editable install) reads; a wheel
# or sdist installs the same folder as the package data stvsr_cli/bundled_weights/ (pyproject.toml)
WEIGHTS_DIRS = (Path(__file__).resolve().parent.parent / "weights", Path(__file__).resolve().parent / "bundled_weights")
DEFAULT_WEIGHTS_NAME = "stvsr_default.safetensors"
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_TENSOR_ELEMENTS = 256 * 1024 * 1024


def bundled_path(name: str) -> Path:
    """A file shipped in weights/, wherever this stvsr was installed from."""
    for folder in WEIGHTS_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise WeightsError(f"the bundled file {name} is missing (looked in {' and '.join(map(str, WEIGHTS_DIRS))})")


def default_weights_path() -> Path:
    return bundled_path(DEFAULT_WEIGHTS_NAME)


def bundled_models() -> list[str]:
    """The names of the bundled models (``stvsr_NAME.safetensors`` in weights/), e.g. ``default``."""
    names = {p.name[len("stvsr_") : -len(".safetensors")] for d in WEIGHTS_DIRS for p in d.glob("stvsr_*.safetensors")}
    return sorted(names)


def describe_model(path: str | os.PathLike) -> dict[str, Any]:
    """What a weights file holds, from its header alone (no tensor is read): its networks,
    parameter count, size on disk and how it makes new frames."""
    header = read_header(path)
    meta = read_metadata(path)
    config = json.loads(meta["config"])
    parameters = sum(_numel(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    return {
        "spatial": config.get("spatial"),
        "temporal": config.get("temporal"),
        "mid_from": config.get("mid_from", "refined"),
        "parameters": parameters,
        "bytes": Path(path).stat().st_size,
    }


def resolve_weights(model: str | os.PathLike | None) -> Path:
    """A weights file from what a user gives: None (the bundled default), a path, or the name
    of a bundled model (``fast``: ``weights/stvsr_fast.safetensors``)."""
    if model is None:
        return default_weights_path()
    path = Path(model)
    if path.exists() or path.suffix or os.sep in str(model):
        return path
    if str(model) in bundled_models():
        return bundled_path(f"stvsr_{model}.safetensors")
    raise WeightsError(f"no weights file or bundled model named {model!r} (bundled: {', '.join(bundled_models())})")


def save_model(model: DualStream, path: str | os.PathLike, info: dict[str, Any] | None = None) -> None:
    """Write ``model`` to ``path`` atomically (a temporary file renamed into place)."""
    from safetensors.torch import save_file

    path = Path(path)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "config": model.config.to_json(),
        "info": json.dumps(info or {}, sort_keys=True),
    }
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and validate the safetensors header (before any tensor is allocated)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file not found: {path}")
    if path.is_dir():
        raise WeightsError(f"weights path is a folder, not a file: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise WeightsError(f"not a safetensors weights file (too short): {path}")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > MAX_HEADER_BYTES:
                raise WeightsError(_not_safetensors(path, head))
            raw = f.read(n)
            if len(raw) != n:
                raise WeightsError(f"weights file is truncated: {path}")
            size = path.stat().st_size
    except OSError as e:
        raise WeightsError(f"cannot read weights file {path}: {e.strerror or e}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightsError(_not_safetensors(path, head)) from None
    if not isinstance(header, dict):
        raise WeightsError(_not_safetensors(path, head))
    data_bytes = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            shape = [int(d) for d in entry["shape"]]
            start, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise WeightsError(f"weights file has a malformed tensor entry {name!r}: {path}") from None
        if any(d < 0 for d in shape) or _numel(shape) > MAX_TENSOR_ELEMENTS or not 0 <= start <= end <= data_bytes:
            raise WeightsError(f"weights file has an invalid tensor {name!r} (shape {shape}): {path}")
    return header


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _not_safetensors(path: Path, head: bytes) -> str:
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return f"refusing to load {path}: it is a pickle/PyTorch checkpoint; only .safetensors weights are loaded"
    return f"not a safetensors weights file: {path}"


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    meta = read_header(path).get("__metadata__") or {}
    if meta.get("format") != FORMAT or meta.get("architecture") != ARCHITECTURE:
        raise WeightsError(f"{path} is a safetensors file but not stvsr weights (no stvsr metadata)")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise WeightsError(
            f"{path} has weights format version {meta.get('format_version')!r}; "
            f"this stvsr reads {' and '.join(READABLE_VERSIONS)}"
        )
    return meta


def load_model(path: str | os.PathLike | None = None, config: DualStreamConfig | None = None) -> DualStream:
    """Build the model described by a weights file and load its tensors strictly.

    ``path=None`` loads the bundled default, a bundled model's name (``"fast"``) that model.
    ``config`` builds that architecture instead of the file's own (e.g. another
    ``st_motion``); its tensors must still match exactly.
    Returns a CPU model in eval mode.
    Raises ``WeightsError`` with a one-line reason for anything that is not our weights.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_weights(path)
    meta = read_metadata(path)
    try:
        if config is None:
            config = DualStreamConfig.from_dict(json.loads(meta["config"]), int(meta["format_version"]))
        model = DualStream(config)
    except (KeyError, ValueError, TypeError) as e:
        raise WeightsError(f"{path} describes a model this stvsr cannot build: {e}") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"cannot read tensors from {path}: {e}") from None
    check_tensors(path, tensors, model.state_dict())
    model.load_state_dict(tensors, strict=True)
    model.info = json.loads(meta.get("info") or "{}")
    return model.eval()


def load_parts(model: DualStream, source: DualStream, modules: tuple[str, ...], path: str | os.PathLike) -> DualStream:
    """Copy the tensors of some of ``model``'s parts (``"spatial"``, ``"temporal"``, ``"fusion"``,
    ``"refine"``) from ``source`` (loaded from ``path``, named in errors); the other parts keep
    their initialisation.

    The named parts must match exactly (every tensor, every shape): e.g. a fresh one-mask
    fusion on top of a two-mask model's trained MS and MT.
    """
    expected = {k: v for k, v in model.state_dict().items() if k.split(".")[0] in modules}
    tensors = {k: v for k, v in source.state_dict().items() if k.split(".")[0] in modules}
    check_tensors(Path(path), tensors, expected)
    model.load_state_dict(tensors, strict=False)
    return model


def load_grown(model: DualStream, source: DualStream, path: str | os.PathLike) -> DualStream:
    """Copy every tensor of ``source`` (loaded from ``path``, named in errors) into ``model``, a
    larger version of it that computes exactly what ``source`` does until it is trained:

    * new residual blocks (a deeper net) start as the identity;
    * convolutions that take more input channels (appended after the old ones, e.g. the time
      plane of ``time_input``) keep their weights for the old inputs, and the new inputs' weights
      start at zero.

    Anything else (a tensor ``model`` lacks, another change of shape, a new tensor outside a new
    residual block) is a ``WeightsError``.
    """
    tensors, expected = source.state_dict(), model.state_dict()
    dropped = sorted(set(tensors) - set(expected))
    reshaped = sorted(k for k in set(tensors) & set(expected) if tensors[k].shape != expected[k].shape)
    widened = [k for k in reshaped if _more_inputs(tensors[k].shape, expected[k].shape)]
    reshaped = [k for k in reshaped if k not in widened]
    if dropped or reshaped:
        changes = [f"{what} {names[:3]}" for what, names in (("it lacks", dropped), ("reshapes", reshaped)) if names]
        raise WeightsError(f"cannot grow {path} into this architecture: {', '.join(changes)}")
    new = set(expected) - set(tensors)
    new_blocks = [
        name
        for name, module in model.named_modules()
        if isinstance(module, ResBlock) and all(f"{name}.{k}" in new for k in module.state_dict())
    ]
    covered = {f"{name}.{k}" for name in new_blocks for k in model.get_submodule(name).state_dict()}
    if new - covered:
        raise WeightsError(
            f"cannot grow {path} into this architecture: {sorted(new - covered)[:3]} are new but not "
            "part of a new residual block (only adding residual blocks or conv inputs is supported)"
        )
    for name in widened:
        old = tensors[name]
        grown = torch.zeros(expected[name].shape, dtype=old.dtype)
        grown[:, : old.shape[1]] = old
        tensors[name] = grown
    model.load_state_dict(tensors, strict=False)
    for name in new_blocks:
        model.get_submodule(name).start_as_identity()
    return model


def _more_inputs(old: torch.Size, new: torch.Size) -> bool:
    """A conv weight ``[out, in, kh, kw]`` that gained input channels and nothing else."""
    return len(old) == len(new) == 4 and new[1] > old[1] and (new[0], *new[2:]) == (old[0], *old[2:])


def check_tensors(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Strict loading: exactly the ``expected`` names, each with its shape (``WeightsError``)."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{path} does not match its architecture: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise WeightsError(
                f"{path}: tensor {name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name].shape)}"
            )
