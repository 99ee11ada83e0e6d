"""PSNR, SSIM and luma PSNR against hand-computed values and an independent SSIM loop."""

import math

import numpy as np
import pytest

from stvsr_cli.metrics import PSNR_CAP, gaussian_window, luma, psnr, psnr_y, ssim

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def rand_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_psnr_of_identical_images_is_the_documented_cap():
    a = rand_image(16, 16)
    assert psnr(a, a.copy()) == PSNR_CAP == 100.0
    assert psnr_y(a, a.copy()) == PSNR_CAP


def test_psnr_of_a_known_mse():
    a = np.zeros((8, 8, 3), np.uint8)
    assert psnr(a, a + 1) == pytest.approx(20 * math.log10(255))  # MSE 1: 48.1308 dB
    assert psnr(a, a + 1) == pytest.approx(48.1308, abs=1e-4)
    b = a.copy()
    b[:, :4] = 10  # half the values off by 10: MSE 50
    assert psnr(b, a) == pytest.approx(10 * math.log10(255**2 / 50))
    assert psnr(a, np.full_like(a, 255)) == pytest.approx(0.0)


def test_psnr_is_symmetric_and_checks_shapes():
    a, b = rand_image(10, 12, 1), rand_image(10, 12, 2)
    assert psnr(a, b) == psnr(b, a)
    with pytest.raises(ValueError):
        psnr(a, b[:, :11])
    with pytest.raises(ValueError):
        ssim(a[..., 0], b[..., 0])


def test_luma_is_bt601_studio_range():
    assert luma(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert luma(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)
    # grey images: a difference of d in R=G=B is a difference of d*219/255 in Y
    a = np.full((4, 4, 3), 100, np.uint8)
    assert psnr_y(a, a + 3) == pytest.approx(10 * math.log10(255**2 / (3 * 219 / 255) ** 2))


def test_ssim_of_identical_images_is_one():
    a = rand_image(24, 20)
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_constant_images_has_a_closed_form():
    # flat images: no variance, so SSIM = (2 m1 m2 + C1) / (m1² + m2² + C1) everywhere
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 150, np.uint8)
    want = (2 * 100 * 150 + C1) / (100**2 + 150**2 + C1)
    assert ssim(a, b) == pytest.approx(want, rel=1e-9)


def ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. written out: every valid 11×11 window, weighted by the 2-D Gaussian, per channel."""
    g = gaussian_window(11, 1.5)
    w2 = np.outer(g, g)
    values = []
    for c in range(3):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
                mx, my = (w2 * px).sum(), (w2 * py).sum()
                vx = (w2 * (px - mx) ** 2).sum()
                vy = (w2 * (py - my) ** 2).sum()
                cxy = (w2 * (px - mx) * (py - my)).sum()
                values.append(((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx**2 + my**2 + C1) * (vx + vy + C2)))
    return float(np.mean(values))


@pytest.mark.parametrize("h,w", [(11, 11), (14, 19), (17, 13)])
def test_ssim_matches_a_straightforward_loop(h, w):
    a = rand_image(h, w, 3)
    noise = np.random.default_rng(4).integers(-30, 31, size=a.shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(ssim_reference(a, b), abs=1e-10)


def test_ssim_stripes_do_not_change_the_result(monkeypatch):
    import stvsr_cli.metrics as metrics

    a, b = rand_image(40, 23, 5), rand_image(40, 23, 6)
    full = ssim(a, b)
    monkeypatch.setattr(metrics, "_ROWS", 7)  # many stripes, one partial
    assert ssim(a, b) == pytest.approx(full, abs=1e-12)


def test_gaussian_window_is_normalised_and_symmetric():
    g = gaussian_window()
    assert g.shape == (11,) and g.sum() == pytest.approx(1.0)
    assert np.allclose(g, g[::-1]) and g.argmax() == 5


def test_fusion_oracle_bounds_are_ordered_and_exact_where_known():
    """benchmarks/fusion_oracle.py: picking the better stream per block is at least as good as
    either stream, the free two-mask blend at least as good as picking, and on two streams with
    independent noise the per-frame blend finds the known optimum (inverse-variance weights)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "fusion_oracle.py"
    spec = importlib.util.spec_from_file_location("fusion_oracle", path)
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    rng = np.random.default_rng(0)
    gt = rng.uniform(60, 190, (67, 45, 3))
    st, ts = gt + rng.normal(0, 4, gt.shape), gt + rng.normal(0, 8, gt.shape)
    st[:20] += 30  # S->T is far off at the top: picking per block must see it
    scores = oracle.frame_scores(st, ts, st, gt)
    for b in oracle.BLOCKS:
        assert scores[f"pick_{b}"] >= max(scores["st"], scores["ts"]) - 1e-9
        assert scores[f"blend_{b}"] >= scores[f"pick_{b}"] - 1e-9
    assert scores["pick_8"] > scores["st"] + 1  # the bad rows are replaced by T->S
    st, ts = gt + rng.normal(0, 4, gt.shape), gt + rng.normal(0, 8, gt.shape)
    best = 1 / (1 / 16 + 1 / 64)  # variance of the inverse-variance blend
    assert abs(oracle.frame_scores(st, ts, st, gt)["blend_frame"] - 10 * np.log10(255**2 / best)) < 0.1


def _benchmark_script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speed_counts_the_fused_convolutions_flops_and_floor(monkeypatch):
    """benchmarks/speed.py: SPAN's conv + SiLU calls (one oneDNN op on the CPU) count their
    convolution's FLOPs, and the conv floor times them as plain convolutions: the same count of
    FLOPs and of convolutions as with the fused path off."""
    from stvsr_cli.nets import blocks

    speed = _benchmark_script("speed")
    fused = speed.model_flops_per_input_frame(48, 32, None)
    calls = speed.conv_floor(48, 32, None, min_seconds=0)["convolutions"]
    monkeypatch.setattr(blocks, "_has_fused_conv", lambda: False)
    assert fused == speed.model_flops_per_input_frame(48, 32, None)
    assert calls == speed.conv_floor(48, 32, None, min_seconds=0)["convolutions"]
