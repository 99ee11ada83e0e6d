"""stvsr: space-time video super-resolution (2× size, 2× frame rate) with dual-stream fusion.

Python API (the CLI is a thin layer over it)::

    from stvsr_cli import load_model, Upscaler, upscale_video
    upscale_video("in.mp4", "out.mp4")                   # the CLI's main job
    up = Upscaler(load_model(), device="cpu")
    for frame in up.run(frames): ...                     # uint8 RGB [H, W, 3] in, 2N-1 out
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "Upscaler", "upscale_video", "StvsrError"]


def __getattr__(name):  # keep `import stvsr_cli` (and `stvsr --help`) free of torch imports
    if name == "load_model":
        from .weights import load_model

        return load_model
    if name in ("Upscaler", "upscale_video"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "StvsrError":
        from .errors import StvsrError

        return StvsrError
    raise AttributeError(name)
