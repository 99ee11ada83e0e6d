"""What a training run is asked (``TrainConfig``) and the names of its stages and parts.
No torch here: the command line takes its defaults from these."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..names import DEFAULT_DEGRADATION, VIDEO_MEMORY_GIB

STAGES = ("ms", "mt", "fusion", "joint")
# share of the total steps each stage gets when all stages run
STAGE_SHARES = {"ms": 0.3, "mt": 0.3, "fusion": 0.1, "joint": 0.3}
MODEL_PARTS = ("spatial", "temporal", "fusion", "refine")  # DualStream's children, for --init-modules


@dataclass
class TrainConfig:
    data: list[str]
    out: str
    steps: int = 1000
    stage: str = "all"
    layout: str | None = None
    stills: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    batch: int = 24  # the paper's
    lr: float = 5e-5  # the paper's, for fusion and joint stages
    pretrain_lr: float = 5e-4  # MS/MT pre-training from scratch learns faster with more
    crop: int = 128
    strides: tuple[int, ...] = (1, 2, 3)
    spans: tuple[int, ...] = (2,)  # strides from a sample's first frame to its last (SampleConfig.spans)
    still_fraction: float = 0.15
    min_scale: float = 1.0  # samples' content at a random scale in [min_scale, 1] (SampleConfig)
    min_scale_cap: bool = True  # the enlarged crop capped at a small source's side (SampleConfig.cap_to_source)
    degradation: str = DEFAULT_DEGRADATION  # stvsr_cli.names.DEGRADATIONS
    seed: int = 0
    val_every: int = 500
    save_every: int = 100
    log_every: int = 10
    init: str | None = None  # start from these weights (fine-tuning)
    init_modules: tuple[str, ...] | None = None  # take only these parts from `init`, the rest fresh
    freeze: tuple[str, ...] = ()  # parts kept as they are in every stage (e.g. a pretrained temporal net)
    model_config: str | None = None  # JSON of DualStreamConfig: a fresh model, or the architecture for `init`
    grow: bool = False  # `model_config` is `init`'s, larger (weights.load_grown): the new parts start neutral
    backbones: tuple[str, ...] = ()  # backbone files (import-weights): each replaces the part of its role
    max_frames: int = 300  # per training clip
    video_memory: float = VIDEO_MEMORY_GIB  # decoded training video held in memory, all clips together
    val_triplets: int = 4  # per validation sequence
    workers: int | None = None  # processes preparing batches ahead; None: 0 on CPU, several on a GPU
    ema: float = 0.0  # decay of a moving average of the weights, per step (e.g. 0.999); 0: off
