"""Networks: shapes for every registry combination, untrained identities, warping, masks."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from stvsr_cli.nets import SPATIAL, TEMPORAL, DualStream, DualStreamConfig, FusionConfig, RefineConfig
from stvsr_cli.nets.blocks import PReLU, conv_silu, eager_cpu_inference, flow_warp, resize_flow

from .conftest import randomize, tiny_config

TINY_SPATIAL = {"bicubic": {}, "residual_sr": {"channels": 8, "blocks": 1}}
TINY_TEMPORAL = {"blend": {}, "flow": {"channels": [8, 8, 8]}}


def tiny(spatial: str, temporal: str, masks: int = 2) -> DualStream:
    torch.manual_seed(0)
    config = DualStreamConfig(
        spatial=spatial,
        spatial_config=TINY_SPATIAL[spatial],
        temporal=temporal,
        temporal_config=TINY_TEMPORAL[temporal],
        fusion=FusionConfig(masks=masks, channels=(8, 8, 8, 8, 8)),
        refine=RefineConfig(channels=8, blocks=1),
    )
    return DualStream(config)


def test_registry_holds_learned_and_classical_networks():
    assert {"bicubic", "residual_sr"} <= set(SPATIAL)
    assert {"blend", "flow"} <= set(TEMPORAL)


@pytest.mark.parametrize("spatial", sorted(TINY_SPATIAL))
@pytest.mark.parametrize("temporal", sorted(TINY_TEMPORAL))
def test_every_combination_has_the_documented_shapes(spatial, temporal):
    model = randomize(tiny(spatial, temporal))
    m = model.size_multiple
    l0, l1 = torch.rand(2, 3, m * 2, m * 3), torch.rand(2, 3, m * 2, m * 3)
    out = model(l0, l1)
    hr = (2, 3, m * 4, m * 6)
    for key in ("h0", "h1", "h_st", "h_ts", "h_fused", "h_refined"):
        assert out[key].shape == hr, key
    assert out["l_mid"].shape == l0.shape
    assert out["masks"].shape == (2, 2, m * 4, m * 6)
    assert torch.isfinite(out["h_refined"]).all()


@pytest.mark.parametrize("spatial", sorted(TINY_SPATIAL))
@pytest.mark.parametrize("temporal", sorted(TINY_TEMPORAL))
def test_untrained_model_is_exactly_bicubic_plus_blend(spatial, temporal):
    model = tiny(spatial, temporal).eval()
    l0, l1 = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        out = model(l0, l1)
    bicubic = F.interpolate(torch.cat((l0, l1)), scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(out["h0"], bicubic[:1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["h_refined"], bicubic.mean(0, keepdim=True), atol=1e-5, rtol=0)


def test_one_mask_fusion_gives_complementary_masks():
    model = randomize(tiny("bicubic", "blend", masks=1), scale=0.5)
    out = model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    masks = out["masks"]
    assert masks.min() >= 0 and masks.max() <= 1
    torch.testing.assert_close(masks[:, 0] + masks[:, 1], torch.ones_like(masks[:, 0]))
    assert not torch.allclose(masks[:, 0], torch.full_like(masks[:, 0], 0.5))


def test_two_mask_fusion_masks_are_independent_and_in_range():
    model = randomize(tiny("bicubic", "blend", masks=2), scale=0.5)
    masks = model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))["masks"]
    assert masks.min() >= 0 and masks.max() <= 1
    assert not torch.allclose(masks[:, 0] + masks[:, 1], torch.ones_like(masks[:, 0]), atol=1e-3)


def test_two_masks_have_one_more_output_channel_set_than_one():
    one = sum(p.numel() for p in tiny("bicubic", "blend", 1).fusion.parameters())
    two = sum(p.numel() for p in tiny("bicubic", "blend", 2).fusion.parameters())
    assert two - one == 4 * (8 * 9 + 1)  # only the last conv grows (4 sub-pixels per mask)


def test_flow_warp_zero_flow_is_identity_and_integer_flow_shifts():
    img = torch.rand(1, 3, 8, 10)
    torch.testing.assert_close(flow_warp(img, torch.zeros(1, 2, 8, 10)), img)
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0] = 2.0  # sample two pixels to the right
    warped = flow_warp(img, flow)
    torch.testing.assert_close(warped[..., :, :-2], img[..., :, 2:])


def test_flow_warp_keeps_the_layout_of_its_image():
    img = torch.rand(2, 16, 8, 10).contiguous(memory_format=torch.channels_last)
    flow = torch.randn(2, 2, 8, 10)
    warped = flow_warp(img, flow)
    assert warped.is_contiguous(memory_format=torch.channels_last)  # a channels-last net gets its layout back
    torch.testing.assert_close(warped, flow_warp(img.contiguous(), flow), rtol=0, atol=0)
    assert flow_warp(img.contiguous(), flow).is_contiguous()


@pytest.mark.parametrize("channels", [1, 3, 16, 32, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prelu_on_channels_last_is_bit_equal_to_torchs(channels, dtype):
    torch.manual_seed(0)
    act = PReLU(channels).to(dtype)
    torch.nn.init.uniform_(act.weight, -0.5, 0.5)
    reference = torch.nn.PReLU(channels).to(dtype)
    reference.load_state_dict(act.state_dict())  # same key, same parameter
    for h, w in ((8, 10), (7, 9)):  # an odd pixel count cannot fold pixels into rows
        x = torch.randn(2, channels, h, w, dtype=dtype).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            out = act(x)
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(out, reference(x)) and torch.equal(act(x.contiguous()), reference(x.contiguous()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_conv_silu_is_silu_of_the_convolution(dtype):
    """The fused CPU path (SiLU on the float32 sums) against conv then SiLU: the same to float32
    rounding, and in bf16 within one rounding step of the two-step result."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1).to(dtype).to(memory_format=torch.channels_last)
    x = torch.randn(2, 8, 9, 11, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fused, plain = conv_silu(conv, x), F.silu(conv(x))
    assert fused.dtype == dtype and fused.shape == plain.shape
    exact = F.silu(F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1))
    tol = 1e-5 if dtype == torch.float32 else 2 ** -8
    assert ((fused.double() - exact).abs() <= tol * (1 + exact.abs())).all()
    assert (fused.double() - exact).abs().mean() <= (plain.double() - exact).abs().mean() + 1e-7
    with torch.enable_grad():  # autograd takes the two-step path
        torch.testing.assert_close(conv_silu(conv, x.requires_grad_()), F.silu(conv(x)))


def test_hand_fused_paths_step_aside_for_autograd_and_the_compiler(monkeypatch):
    x = torch.rand(1, 2, 3, 3)
    with torch.inference_mode():
        assert eager_cpu_inference(x)
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # inductor fuses by itself
        assert not eager_cpu_inference(x)
    monkeypatch.undo()
    assert not eager_cpu_inference(x)  # autograd on: the plain ops, which it can differentiate


def test_resize_flow_rescales_vectors():
    flow = torch.ones(1, 2, 4, 4)
    big = resize_flow(flow, (8, 16))
    assert big.shape == (1, 2, 8, 16)
    torch.testing.assert_close(big[:, 0], torch.full((1, 8, 16), 4.0))
    torch.testing.assert_close(big[:, 1], torch.full((1, 8, 16), 2.0))


def test_learned_flow_can_represent_a_shift():
    """On a 2-px pan, flow t->a = +1 px and t->b = -1 px (backward warping) give the middle frame."""
    model = tiny("bicubic", "flow")
    base = torch.rand(1, 3, 16, 24)
    a, mid, b = base[..., 2:18], base[..., 3:19], base[..., 4:20]
    motion = torch.zeros(1, 5, 16, 16)
    motion[:, 0] = 1.0
    motion[:, 2] = -1.0
    out = model.temporal.synthesize(a, b, motion)
    torch.testing.assert_close(out[..., 1:-1], mid[..., 1:-1])


def test_default_model_size_multiple_is_what_its_parts_need():
    model = DualStream(tiny_config())
    for part in (model.fusion.size_multiple // 2, model.temporal.size_multiple, model.spatial.size_multiple):
        assert model.size_multiple % part == 0
    m = model.size_multiple
    model(torch.rand(1, 3, m, m), torch.rand(1, 3, m, m))


def test_st_motion_says_where_the_s_to_t_stream_gets_its_motion():
    torch.manual_seed(0)
    l0, l1 = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    h0, h1 = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    hr_model = randomize(DualStream(tiny_config()), scale=0.05).eval()
    lr_model = DualStream(dataclasses.replace(tiny_config(), st_motion="lr")).eval()
    lr_model.load_state_dict(hr_model.state_dict())
    with torch.no_grad():
        s_hr = hr_model.streams(l0, l1, h0, h1)
        s_lr = lr_model.streams(l0, l1, h0, h1)
        torch.testing.assert_close(s_hr["h_st"], hr_model.temporal(h0, h1))
        lr_motion = hr_model.temporal.estimate(l0, l1)
        torch.testing.assert_close(s_lr["h_st"], hr_model.temporal.synthesize(h0, h1, lr_motion))
        torch.testing.assert_close(s_hr["h_ts"], s_lr["h_ts"])  # T->S is the same either way
    assert not torch.allclose(s_hr["h_st"], s_lr["h_st"])


def test_st_motion_defaults_new_models_to_hr_and_version_1_files_to_lr():
    assert DualStreamConfig().st_motion == "hr"
    assert DualStreamConfig.from_dict(json.loads(DualStreamConfig().to_json())).st_motion == "hr"
    old = json.loads(DualStreamConfig().to_json())
    del old["st_motion"]
    assert DualStreamConfig.from_dict(old, format_version=1).st_motion == "lr"
    assert DualStreamConfig.from_dict(old).st_motion == "hr"
    with pytest.raises(ValueError, match="st_motion"):
        DualStreamConfig(st_motion="both")


def test_two_masks_come_from_a_choice_map_and_a_gain_map():
    """``m_st = sigmoid(c + a)``, ``m_ts = sigmoid(c - a)``: the out layer's first channels
    (before the pixel shuffle) are the choice ``a``, the next ones the gain ``c``."""
    fusion = DualStream(tiny_config()).fusion
    h = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        fusion.out.bias[:4] = 1.5  # a: trust S->T
        fusion.out.bias[4:] = -0.5  # c: take less of both
        masks = fusion(h, h.flip(-1))
    torch.testing.assert_close(masks[:, 0], torch.full((1, 32, 32), torch.sigmoid(torch.tensor(1.0)).item()))
    torch.testing.assert_close(masks[:, 1], torch.full((1, 32, 32), torch.sigmoid(torch.tensor(-2.0)).item()))


# ------------------------------------------------------ every registry entry keeps the protocol

ENTRIES = [("spatial", n) for n in sorted(SPATIAL)] + [("temporal", n) for n in sorted(TEMPORAL)]


def tiny_entry(role: str, name: str):
    from stvsr_cli.nets import registry

    table = SPATIAL if role == "spatial" else TEMPORAL
    torch.manual_seed(0)
    return randomize(registry.build(table, name, table[name].tiny), scale=0.05).eval()


@pytest.mark.parametrize(("role", "name"), ENTRIES)
def test_every_registry_entry_keeps_its_protocol(role, name):
    """Shapes, finite output near [0, 1] for inputs in [0, 1], the size multiple, bfloat16 runs, and
    (temporal) the timestep: honoured where ``takes_timestep``, refused in one line elsewhere."""
    from stvsr_cli.nets.protocols import SpatialNet, TemporalNet

    net = tiny_entry(role, name)
    m = net.size_multiple
    a, b = torch.rand(2, 3, 2 * m, 3 * m), torch.rand(2, 3, 2 * m, 3 * m)
    with torch.no_grad():
        if role == "spatial":
            assert isinstance(net, SpatialNet)
            out = net(a)
            assert out.shape == (2, 3, 4 * m, 6 * m)
            low = net.to(torch.bfloat16)(a.bfloat16()).float()
        else:
            assert isinstance(net, TemporalNet)
            out = net.synthesize(a, b, net.estimate(a, b))
            assert out.shape == a.shape
            torch.testing.assert_close(out, net(a, b))
            if net.takes_timestep:
                early = net.synthesize(a, b, net.estimate(a, b, 0.25), 0.25)
                assert not torch.allclose(early, out)
            else:
                with pytest.raises(ValueError, match="halfway"):
                    net.estimate(a, b, 0.25)
            low = net.to(torch.bfloat16)(a.bfloat16(), b.bfloat16()).float()
    assert torch.isfinite(out).all() and out.min() > -0.5 and out.max() < 1.5
    assert low.shape == out.shape and torch.isfinite(low).all()  # runs in bfloat16 (its quality: benchmarks)


@pytest.mark.parametrize("name", sorted(TEMPORAL))
def test_every_temporal_entry_stands_in_the_dual_stream(name):
    config = dataclasses.replace(tiny_config(), temporal=name, temporal_config=TEMPORAL[name].tiny)
    model = randomize(DualStream(config)).eval()
    m = model.size_multiple
    with torch.no_grad():
        out = model(torch.rand(1, 3, m, 2 * m), torch.rand(1, 3, m, 2 * m))
    assert out["h_refined"].shape == (1, 3, 2 * m, 4 * m)


def test_mid_from_st_returns_the_st_stream_alone_and_refined_the_whole_model():
    model = randomize(tiny("residual_sr", "flow")).eval()
    l0, l1 = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        out = model(l0, l1)
        refined = model.interpolate(l0, l1, out["h0"], out["h1"])
        model.config = dataclasses.replace(model.config, mid_from="st")
        st = model.interpolate(l0, l1, out["h0"], out["h1"])
    torch.testing.assert_close(refined, out["h_refined"])
    torch.testing.assert_close(st, out["h_st"])
    assert not torch.allclose(st, refined)
    with pytest.raises(ValueError, match="mid_from"):
        dataclasses.replace(model.config, mid_from="fused")
    assert DualStreamConfig.from_dict(json.loads(DualStreamConfig().to_json())).mid_from == "refined"
