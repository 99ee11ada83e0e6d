"""Reading the weights of an ncnn model (``.param`` layer graph + ``.bin`` blob): numbers only,
nothing is executed. Only what our imports need: ``Convolution`` and ``MemoryData`` layers.

The ``.param`` text is a magic line (7767517), ``layer_count blob_count``, then one line per
layer: ``type name n_inputs n_outputs inputs... outputs... key=value...``. For a convolution
``0`` is the output channels, ``1`` the kernel size, ``5`` whether it has a bias and ``6`` the
weight count; for ``MemoryData``, ``0, 1, 2`` are its width, height and channels.

The ``.bin`` holds the layers' data in the order of the ``.param``: a convolution's weights
(``[out, in, k, k]``) after a 4-byte storage tag (``FP16_TAG``: float16 follows; ``0``: float32),
then its bias as plain float32; a ``MemoryData`` layer's values as plain float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import WeightsError

MAGIC = "7767517"
FP16_TAG = 0x01306B47


@dataclass
class Layer:
    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, str]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # "weight", "bias", "data" (float32)


def parse_param(text: str, what: str) -> list[Layer]:
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != [MAGIC] or len(lines) < 2:
        raise WeightsError(f"{what} is not an ncnn .param file (no magic number {MAGIC})")
    layers = []
    for words in lines[2:]:
        try:
            kind, name, n_in, n_out = words[0], words[1], int(words[2]), int(words[3])
            inputs, outputs = words[4 : 4 + n_in], words[4 + n_in : 4 + n_in + n_out]
            params = dict((int(k), v) for k, v in (w.split("=", 1) for w in words[4 + n_in + n_out :]))
        except (IndexError, ValueError):
            raise WeightsError(f"{what}: unreadable layer line {' '.join(words)[:80]!r}") from None
        layers.append(Layer(kind, name, inputs, outputs, params))
    return layers


def read_weights(layers: list[Layer], blob: bytes, what: str) -> list[Layer]:
    """Fill each layer's ``arrays`` from the ``.bin`` bytes; every byte must be accounted for."""
    offset = 0

    def take(count: int, dtype: str) -> np.ndarray:
        nonlocal offset
        size = count * np.dtype(dtype).itemsize
        if offset + size > len(blob):
            raise WeightsError(f"{what}: the .bin ends early (layer data past byte {len(blob)})")
        array = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=offset)
        offset += size
        return array.astype(np.float32)

    for layer in layers:
        if layer.kind == "Convolution":
            out, k = int(layer.params[0]), int(layer.params.get(1, "1"))
            count = int(layer.params[6])
            if offset + 4 > len(blob):
                raise WeightsError(f"{what}: the .bin ends early (layer data past byte {len(blob)})")
            tag = int.from_bytes(blob[offset : offset + 4], "little")
            offset += 4
            if tag not in (FP16_TAG, 0):
                raise WeightsError(f"{what}: layer {layer.name} stores weights in a format we do not read ({tag:#x})")
            weight = take(count, "<f2" if tag == FP16_TAG else "<f4")
            layer.arrays["weight"] = weight.reshape(out, count // (out * k * k), k, k)
            if int(layer.params.get(5, "0")):
                layer.arrays["bias"] = take(out, "<f4")
        elif layer.kind == "MemoryData":
            shape = [int(layer.params.get(i, "0")) for i in (0, 1, 2)]
            layer.arrays["data"] = take(int(np.prod([s for s in shape if s])), "<f4")
        elif layer.kind not in PARAMETER_FREE:
            raise WeightsError(f"{what}: layer type {layer.kind} is not supported")
    if offset != len(blob):
        raise WeightsError(f"{what}: {len(blob) - offset} bytes of the .bin are not described by the .param")
    return layers


# layer types that hold no data in the .bin
PARAMETER_FREE = {"Input", "Split", "BinaryOp", "Swish", "Sigmoid", "Concat", "PixelShuffle", "ReLU", "Eltwise"}
