"""Importance-map figures of a Dyna-Pruner run (one PNG per test window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...pruning.adaptive import DynaPruner


def plot_maps(model: DynaPruner, samples: list[dict], scaler, out_dir: Path, units: str) -> list[str]:
    """Per-sample PNG: last input frame, importance S with the data mask, |future change|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    mean, std = (t.float() for t in scaler.tensors())
    model.eval()
    names = []
    for s in samples:
        with torch.no_grad():
            model(s["x"], s["tod"], s["dow"])
        S = model.last["S"][0].numpy()
        keep = model.last["data_mask"][0].detach().numpy() > 0.5
        x_last = (s["x"][0, -1] * std.view(-1, 1, 1) + mean.view(-1, 1, 1))[0].numpy()  # physical, channel 0
        change = np.abs(s["y"][0, -1, 0].numpy() - x_last)
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        field_cmap = "Blues" if units == "mm/h" else "coolwarm"  # rain: sequential, 0 = white
        for ax, img, title, cmap in ((axes[0], x_last, f"input, last frame ({units})", field_cmap),
                                     (axes[1], S, "importance S (outline: kept " + ("tiles, computed" if model.spatial else "pixels") + ")", "viridis"),
                                     (axes[2], change, f"|future change| at the last step ({units})", "magma")):
            im = ax.imshow(img, cmap=cmap, aspect="auto")
            fig.colorbar(im, ax=ax, fraction=0.046)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[1].contour(keep.astype(float), levels=[0.5], colors="white", linewidths=0.6)
        axes[2].contour(keep.astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
        units_on = "" if not model.gating else f", {float(model.last['filter_mask'][0].mean()):.0%} of gated units active"
        fig.suptitle(f"window t0={int(s['t0'])}: data mask keeps {keep.mean():.0%} of pixels"
                     + (" (the convolutions compute only there)" if model.spatial else "") + units_on, fontsize=10)
        fig.tight_layout()
        name = f"importance_t0_{int(s['t0'])}.png"
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names
