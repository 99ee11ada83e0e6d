"""Real clips from ../shared/data (and the bundled sample) end to end."""

import pytest

from stvsr_cli.pipeline import UpscaleOptions, upscale_video
from stvsr_cli.video import EncodeSettings

from .conftest import SAMPLE_CLIP, shared_path, video_facts

FAST = EncodeSettings(preset="ultrafast")
pytestmark = pytest.mark.slow  # real clips: the full suite (CI) runs them, the quick tier does not


@pytest.mark.parametrize("name", ["realshort.mp4", "carphone_pristine.mp4"])
def test_real_clip_end_to_end(tmp_path, tiny_weights, name):
    src = shared_path("clips", name)
    dst = tmp_path / ("out.mkv" if name.startswith("carphone") else "out.mp4")
    facts_in = video_facts(src)
    upscale_video(src, dst, UpscaleOptions(model=tiny_weights, encode=FAST))
    facts_out = video_facts(dst)
    n = facts_in["frames"]
    assert facts_out["frames"] == 2 * n - 1
    assert facts_out["size"] == (2 * facts_in["size"][0], 2 * facts_in["size"][1])
    assert facts_out["audio"] == facts_in["audio"]
    assert facts_out["times"][0] == pytest.approx(facts_in["times"][0], abs=1e-3)
    assert facts_out["times"][-1] == pytest.approx(facts_in["times"][-1], abs=1e-3)
    assert facts_out["duration"] == pytest.approx(facts_in["duration"], abs=0.05)


def test_hd_clip_preview_keeps_audio_up_to_the_cut(tmp_path, tiny_weights):
    src = shared_path("clips", "bigbuckbunny.mp4")
    dst = tmp_path / "preview.mp4"
    summary = upscale_video(src, dst, UpscaleOptions(model=tiny_weights, encode=FAST, max_frames=6))
    facts = video_facts(dst)
    assert summary.input_frames == 6 and facts["frames"] == 11
    assert facts["size"] == (2560, 1440) and facts["audio"] == 1
    assert facts["times"][-1] == pytest.approx(5 / 25, abs=1e-3)


def test_bundled_sample_with_bundled_weights(tmp_path):
    """The README's quickstart job: the sample clip through the default model."""
    dst = tmp_path / "sample_2x.mp4"
    summary = upscale_video(SAMPLE_CLIP, dst, UpscaleOptions())
    facts = video_facts(dst)
    assert summary.input_frames == 24 and facts["frames"] == 47
    assert facts["size"] == (640, 360) and facts["audio"] == 1
    assert facts["duration"] == pytest.approx(video_facts(SAMPLE_CLIP)["duration"], abs=0.03)
