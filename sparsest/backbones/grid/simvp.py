"""SimVP with the gated spatio-temporal attention translator (SimVP v2).

Gao et al., "SimVP: Simpler yet Better Video Prediction", CVPR 2022 (arXiv:2206.05099);
Tan et al., "SimVP: Towards Simple yet Powerful Spatiotemporal Predictive Learning",
arXiv:2211.12509 (the gSTA translator used here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import Conv2d
from ..registry import DataSpec, register_backbone


class ConvSC(nn.Module):
    """3x3 conv + GroupNorm + SiLU; ``down`` halves H and W, ``up`` doubles them."""

    def __init__(self, c_in: int, c_out: int, down: bool = False, up: bool = False):
        super().__init__()
        self.up = up
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2 if down else 1, padding=1)
        self.norm = nn.GroupNorm(2, c_out)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.act(self.norm(self.conv(x)))


class GASubBlock(nn.Module):
    """gSTA block: large-kernel gated attention + depthwise-conv MLP (SimVP v2, Sec. 3.2)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, layer_scale: float = 1e-2):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.proj1 = nn.Conv2d(dim, dim, 1)
        self.dw = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.dw_dil = Conv2d(dim, dim, 7, padding=9, groups=dim, dilation=3)  # pads explicitly: see layers.conv2d
        self.gate = nn.Conv2d(dim, 2 * dim, 1)
        self.proj2 = nn.Conv2d(dim, dim, 1)
        hidden = int(dim * mlp_ratio)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1),
        )
        self.ls1 = nn.Parameter(layer_scale * torch.ones(dim, 1, 1))
        self.ls2 = nn.Parameter(layer_scale * torch.ones(dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.proj1(self.norm1(x)))
        attn = self.dw_dil(self.dw(h))
        f, g = self.gate(attn).chunk(2, dim=1)
        h = self.proj2(torch.sigmoid(g) * f)
        x = x + self.ls1 * h
        return x + self.ls2 * self.mlp(self.norm2(x))


class SimVP(nn.Module):
    """SimVP: CNN encoder per frame, gSTA translator over stacked frames, CNN decoder.

    The encoder maps every input frame to ``hidden_size`` channels at half resolution; the
    translator mixes the T stacked frames (``T * hidden_size`` channels) with ``n_t`` gSTA blocks
    and emits S frames; the decoder upsamples each, adds the first encoder layer's features
    of the last input frame (SimVP's skip connection; the last frame is used because S may
    differ from T) and reads out C channels. Odd H or W are handled by cropping.

    Our addition: with ``residual=True`` (default) the model predicts the change from the
    last input frame, which makes short training on small data sets stable.

    Args:
        input_size: C.
        window: T.
        horizon: S.
        hidden_size: spatial hidden channels (SimVP's ``hid_S``); hid_t: translator channels.
        n_s: encoder / decoder layers (every second one resamples); n_t: gSTA blocks.
        residual: add the last input frame to the output.
        start_at_persistence: (with ``residual``) initialise the read-out to zero, so the
            untrained model forecasts exactly the last frame and training moves it from
            there (ours; helps where persistence is hard to beat, e.g. radar rain).

    Shapes:
        x: ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]``. ``tod`` / ``dow`` are ignored.
    """

    def __init__(
        self,
        input_size: int,
        window: int,
        horizon: int,
        hidden_size: int = 16,
        hid_t: int = 64,
        n_s: int = 2,
        n_t: int = 4,
        residual: bool = True,
        start_at_persistence: bool = False,
    ):
        super().__init__()
        self.window, self.horizon, self.hidden_size, self.residual = window, horizon, hidden_size, residual
        downs = [i % 2 == 1 for i in range(n_s)]
        enc = [ConvSC(input_size, hidden_size, down=downs[0])]
        enc += [ConvSC(hidden_size, hidden_size, down=d) for d in downs[1:]]
        self.encoder = nn.ModuleList(enc)
        self.translator = nn.Sequential(
            nn.Conv2d(window * hidden_size, hid_t, 1),
            *[GASubBlock(hid_t) for _ in range(n_t)],
            nn.Conv2d(hid_t, horizon * hidden_size, 1),
        )
        self.decoder = nn.ModuleList([ConvSC(hidden_size, hidden_size, up=d) for d in reversed(downs)])
        self.readout = nn.Conv2d(hidden_size, input_size, 1)
        if start_at_persistence and residual:
            nn.init.zeros_(self.readout.weight)
            nn.init.zeros_(self.readout.bias)

    def forward(self, x: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        B, T, C, H, W = x.shape
        h = x.reshape(B * T, C, H, W)
        skip = None
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i == 0:
                skip = h.view(B, T, *h.shape[1:])[:, -1]  # [B, hidden_size, H, W] of the last frame
        _, Ch, Hh, Wh = h.shape
        z = self.translator(h.reshape(B, T * Ch, Hh, Wh))  # [B, S * hidden_size, h, w] (reshape: tiled layers run channels-last)
        z = z.reshape(B * self.horizon, self.hidden_size, Hh, Wh)
        for i, layer in enumerate(self.decoder):
            z = layer(z)
            if i == len(self.decoder) - 1:
                z = z[..., :H, :W]  # crop after the last upsampling
                z = z + skip.repeat_interleave(self.horizon, dim=0)
        y = self.readout(z).view(B, self.horizon, C, H, W)
        if self.residual:
            y = y + x[:, -1:]
        return y


@register_backbone("simvp", kind="grid", summary="SimVP v2 (Gao et al., CVPR 2022; Tan et al. 2022): CNN encoder, gSTA translator, CNN decoder")
def simvp(spec: DataSpec, **kwargs) -> SimVP:
    return SimVP(input_size=spec.n_channels, window=spec.window, horizon=spec.horizon, **kwargs)
