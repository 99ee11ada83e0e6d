"""``stvsr train``: the paper's staged training (§3.4-3.5), checkpoints, exact resume, DDP.

Stages, in order (``stage="all"``):

* ``ms``     pre-train MS alone: L1 of MS(L) against H on all three frames of a triplet;
* ``mt``     pre-train MT alone: L_MT (L̂(t) against L(t)) plus the L1 of the HR pair warped
             with the same (LR-estimated) motion against H(t) (the S->T stream's MT);
* ``fusion`` MS, MT frozen; F and R trained on L_F + L_R;
* ``joint``  everything trained on all losses of eq. 11-17 at equal weights.

A run folder holds ``last.safetensors`` (the model, loadable by ``stvsr upscale --model``),
``last_state.safetensors`` (optimizer tensors, step, RNG; JSON in its metadata),
``log.jsonl`` and, when the run ends, ``model.safetensors``. With ``ema`` > 0 it also holds
``last_ema.safetensors``, an exponential moving average of the weights, and that average (not
the last step's weights) becomes ``model.safetensors``. Sample ``i`` of the data depends
only on ``(seed, i)`` and the learning rate only on the step, so ``resume`` continues exactly
(a new run refuses a folder that already holds one: ``resume`` it or choose another).
Under ``torchrun`` each process takes its own slice of every step's samples (DDP, gloo on CPU).

Modules: ``config`` (``TrainConfig``, stage and part names), ``stages`` (plan, rates, losses),
``building`` (model and data), ``validation``, ``checkpoints`` (state and EMA), ``loop`` (``train``).
"""

from ..lazy import lazy_attributes
from .config import MODEL_PARTS, STAGES, TrainConfig  # torch-free: the command line reads these

# the rest needs torch, so it is imported on first use (``stvsr --help`` stays quick)
_LAZY = {
    "build_model": "building",
    "build_sampler": "building",
    "WeightEMA": "checkpoints",
    "load_state": "checkpoints",
    "save_state": "checkpoints",
    "check_config": "loop",
    "train": "loop",
    "learning_rate": "stages",
    "stage_losses": "stages",
    "stage_plan": "stages",
    "psnr": "validation",
    "validate": "validation",
}

__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = ["MODEL_PARTS", "STAGES", "TrainConfig", *_LAZY]
