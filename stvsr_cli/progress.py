"""Progress display for the CLI (tqdm on stderr): frames, fps and ETA."""

from __future__ import annotations


class ProgressReporter:
    """Receives ``start(total)``, ``advance(n)`` from the pipeline; draws a tqdm bar."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None

    def start(self, total: int | None, description: str = "upscaling") -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total or None, unit="frame", desc=description, dynamic_ncols=True, leave=False)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TrainProgress:
    """A tqdm bar over training steps that shows the loss (and the last validation)."""

    def __init__(self, total: int, enabled: bool = True):
        self.bar = None
        self.total = total
        self.enabled = enabled

    def update(self, record: dict) -> None:
        if not self.enabled:
            return
        if self.bar is None:  # drawn on the first step: a run that fails early prints one line
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="step", desc="training", dynamic_ncols=True)
        self.bar.n = record["step"]
        post = {"stage": record["stage"], "loss": f"{record['loss']:.4f}"}
        if "val" in record:
            post["val_mid"] = record["val"].get("mid_refined")
        if "val_ema" in record:  # the moving average of the weights (--ema), written as the model
            post["val_ema_mid"] = record["val_ema"].get("mid_refined")
        self.bar.set_postfix(post, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
