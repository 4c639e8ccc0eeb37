"""The one training loop: a LightningModule around any backbone, plus evaluation.

No method names live here: methods plug in through callbacks and through two optional
hooks of the model: ``penalty()`` (a scalar added to the loss) and ``param_groups(lr,
weight_decay)`` (the optimiser's parameter groups, e.g. a separate learning rate for mask
scores or thresholds).
"""

from __future__ import annotations

import time

import lightning as L
import torch
from torch import nn

from ..data.windows import StandardScaler, to_physical_range
from ..metrics import HorizonMetrics, masked_mae, masked_mse


class ForecastModule(L.LightningModule):
    """Trains ``model`` with the masked MAE loss; validates on masked MAE in physical units.

    The loss is computed in scaled (z-score) units so every channel weighs the same and
    regularisation weights are scale-free; validation MAE (``val_mae``, what early
    stopping and checkpointing monitor) is in the data's physical units. Missing targets
    are masked out of both.

    If the model has a ``penalty()`` method returning a scalar tensor (e.g. the L1 pull on
    sensor-mask scores while they train), it is added to the loss. If it has
    ``param_groups(lr, weight_decay)``, that gives the AdamW parameter groups.

    Args:
        model: ``forward(x, tod, dow)``; see :mod:`sparsest.backbones.registry`.
        scaler: the train-only scaler (to bring forecasts back to physical units).
        lr: learning rate of the network parameters (AdamW).
        weight_decay: AdamW weight decay of the network parameters.
        loss: ``"mae"`` (default) or ``"mse"``: the training loss on the scaled targets (the
            per-entry error below is ``|e|`` or ``e**2``).
        clip_forecast: train on the forecast clipped at the scaler's lower bound
            (``scaler.floor``, e.g. 0 mm/h), the forecast that is scored, with the gradient
            passed straight through the clip (Bengio et al. 2013's straight-through
            estimator): a forecast below the bound still learns. Without the clip, a model
            whose dry area drifts a little below 0 scores the same but trains on a
            different error, and the validation MAE jumps between epochs.

    Raises:
        ValueError: ``loss`` not ``mae`` / ``mse``; ``clip_forecast`` with a scaler without a
            lower bound.
    """

    def __init__(self, model: nn.Module, scaler: StandardScaler, lr: float = 2e-3, weight_decay: float = 1e-4,
                 loss: str = "mae", clip_forecast: bool = False):
        super().__init__()
        self.model = model
        mean, std = scaler.tensors()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.floor = getattr(scaler, "floor", None)
        self.resolution = getattr(scaler, "resolution", None)
        if loss not in ("mae", "mse"):
            raise ValueError(f"loss must be 'mae' or 'mse', got {loss!r}")
        if clip_forecast and self.floor is None:
            raise ValueError("clip_forecast needs a data set with a lower bound (scaler.floor is None)")
        self.lr, self.weight_decay, self.loss = lr, weight_decay, loss
        self.clip_forecast = clip_forecast
        self.record_sample_loss = False  # callbacks switch on per-sample, per-node losses
        self.sample_loss_time_s = 0.0  # time spent computing them [s]

    def forward_scaled(self, batch: dict) -> torch.Tensor:
        """Forecast in scaled units, ``[B, S, ...]``."""
        return self.model(batch["x"], batch["tod"], batch["dow"])

    def forward(self, batch: dict) -> torch.Tensor:
        """Forecast in physical units, ``[B, S, ...]``."""
        return to_physical_range(self.forward_scaled(batch) * self.std + self.mean, self.floor, self.resolution)

    def training_step(self, batch: dict, batch_idx: int) -> dict:
        """Masked MAE in scaled units (+ the model's penalty).

        Without ``batch["weight"]`` (e.g. plain ``sparsest run``): the masked MAE over every
        observed target entry of the batch. With ``batch["weight"]`` ``[B]`` (the sample-pruning
        loader, every method ``none`` included): each window's weight multiplies that window's
        own masked MAE, ``loss = sum_b w_b * mean_obs(err_b) / B_real``, where B_real counts
        the real windows (not ``batch["pad"]`` padding, whose weight is 0 anyway) with at least
        one observed target entry; a window without one contributes nothing. So a window's
        share of the loss does not depend on how many of its entries are observed. With all
        weights 1 and every window fully observed both give the same loss.

        When ``self.record_sample_loss`` is True (set by a callback), the output also holds
        ``sample_node_loss``: the detached per-sample, per-node (per-pixel) masked MAE
        ``[B, N]`` (grids: ``[B, H * W]``; NaN where a node has no observed target entry), so
        callbacks can score samples without another forward.

        Returns:
            ``{"loss": scalar, ["sample_node_loss": [B, N]]}``.
        """
        y_scaled = (batch["y"] - self.mean) / self.std
        y_hat = self.forward_scaled(batch)
        if self.clip_forecast:  # straight-through clip at the lower bound, in scaled units
            y_hat = y_hat + (torch.maximum(y_hat, (self.floor - self.mean) / self.std) - y_hat).detach()
        err = (y_hat - y_scaled).abs()  # [B, S, ...]
        if self.loss == "mse":
            err = err ** 2
        m = batch["y_mask"].to(err.dtype)
        weight = batch.get("weight")
        sums = node_sums(err, m) if self.record_sample_loss else None  # the window loss and the scores share them
        if weight is None:
            loss = masked_mae_from_error(err, m)
        else:
            loss = weighted_window_mae(err, m, weight, batch.get("pad"), sums=sums)
        penalty = getattr(self.model, "penalty", None)
        if callable(penalty):
            loss = loss + penalty()
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["x"].shape[0])
        out = {"loss": loss}
        if self.record_sample_loss:
            t0 = time.perf_counter()
            out["sample_node_loss"] = losses_from_sums(sums[0].detach(), sums[1])
            self.sample_loss_time_s += time.perf_counter() - t0
        return out

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        y_hat = self(batch)
        n = batch["x"].shape[0]
        self.log("val_mae", masked_mae(y_hat, batch["y"], batch["y_mask"]), prog_bar=True, on_epoch=True, batch_size=n, sync_dist=True)
        self.log("val_mse", masked_mse(y_hat, batch["y"], batch["y_mask"]), on_epoch=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        hook = getattr(self.model, "param_groups", None)
        if callable(hook):
            groups = hook(self.lr, self.weight_decay)
        else:
            groups = [{"params": list(self.model.parameters()), "lr": self.lr, "weight_decay": self.weight_decay}]
        return torch.optim.AdamW(groups)


def masked_mae_from_error(err: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean of absolute errors ``err`` ``[B, S, ...]`` under float ``mask``."""
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def weighted_window_mae(err: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                        pad: torch.Tensor | None = None, sums: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Per-window weighted masked MAE: ``sum_b w_b * mean_obs(err_b) / B_real``.

    ``mean_obs(err_b)`` is window b's mean absolute error over its observed entries; B_real
    counts the windows that are not padding (``pad``) and have at least one observed entry.
    Padding windows and windows without an observed entry contribute nothing (0 when the
    batch has none left, still attached to the graph).

    Shapes: ``err``, ``mask`` graph ``[B, S, N, C]`` or grid ``[B, S, C, H, W]`` (float mask),
    ``weight`` ``[B]``, ``pad`` ``[B]`` bool or None -> scalar; ``sums``: :func:`node_sums` of ``err`` and ``mask`` when the
    caller has them already (then ``err`` is not reduced again). Units: those of ``err``.
    """
    b = err.shape[0]
    num, den = node_sums(err, mask) if sums is None else sums  # [B, N] each
    obs = den.sum(dim=1)  # [B] observed entries per window
    per_window = num.sum(dim=1) / obs.clamp_min(1.0)  # [B]
    real = obs > 0
    if pad is not None:
        real = real & ~pad.to(device=err.device, dtype=torch.bool).reshape(b)
    w = weight.to(device=err.device, dtype=err.dtype).reshape(b) * real.to(err.dtype)
    return (w * per_window).sum() / real.sum().clamp_min(1).to(err.dtype)


def node_sums(err: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-location sums of the masked error and of the mask: graph
    ``[B, S, N, C]`` -> two ``[B, N]``, grid ``[B, S, C, H, W]`` -> two ``[B, H * W]``
    (``err`` keeps its autograd graph)."""
    if err.dim() == 4:  # graph [B, S, N, C]
        return (err * mask).sum(dim=(1, 3)), mask.sum(dim=(1, 3))
    return (err * mask).sum(dim=(1, 2)).flatten(1), mask.sum(dim=(1, 2)).flatten(1)  # grid [B, S, C, H, W]


def losses_from_sums(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``den > 0``, NaN where a location has no observed entry."""
    return (num / den.clamp_min(1.0)).masked_fill(den == 0, float("nan"))


def node_losses(err: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-location masked mean of ``err``: graph ``[B, S, N, C]`` -> ``[B, N]``,
    grid ``[B, S, C, H, W]`` -> ``[B, H * W]``; NaN where a location has no observed entry
    (so scores can leave it out instead of counting it as a perfect forecast)."""
    return losses_from_sums(*node_sums(err, mask))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    scaler: StandardScaler,
    horizon: int,
    location_masks: dict[str, torch.Tensor] | None = None,
) -> dict[str, dict]:
    """Masked MAE / RMSE / MAPE / MSE of ``model`` on ``loader``, per horizon and overall.

    Args:
        model: forecasts scaled units (``forward(x, tod, dow)``).
        loader: yields :class:`~sparsest.data.windows.WindowDataset` batches.
        scaler: brings forecasts back to physical units.
        horizon: S.
        location_masks: extra subsets to score, name -> bool mask broadcastable to one
            target step (graph ``[N, 1]``, grid ``[1, H, W]``), e.g. ``{"kept": ...}``.

    Returns:
        ``{"all": metrics, name: metrics, ...}`` with the keys of
        :meth:`sparsest.metrics.HorizonMetrics.compute`.
    """
    was_training = model.training
    model.eval()
    subsets = {"all": None, **(location_masks or {})}
    meters = {k: HorizonMetrics(horizon, sync_on_compute=False) for k in subsets}  # rank 0 evaluates the whole test split alone
    for batch in loader:
        y_hat = scaler.physical(model(batch["x"], batch["tod"], batch["dow"]))
        for name, loc in subsets.items():
            m = batch["y_mask"] if loc is None else batch["y_mask"] & loc.to(torch.bool)
            meters[name].update(y_hat, batch["y"], m)
    model.train(was_training)
    return {k: v.compute() for k, v in meters.items()}
