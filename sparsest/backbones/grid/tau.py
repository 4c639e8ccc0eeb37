"""TAU: SimVP's encoder / decoder with the Temporal Attention Unit as translator.

Tan et al., "Temporal Attention Unit: Towards Efficient Spatiotemporal Predictive
Learning", CVPR 2023 (arXiv:2206.12126).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import DataSpec, register_backbone
from .simvp import GASubBlock, SimVP


class TAUSubBlock(GASubBlock):
    """One TAU block: temporal attention (statical x dynamical) + depthwise-conv MLP.

    Reuses :class:`~.simvp.GASubBlock`'s norms, 1x1 projections, large-kernel depthwise
    convolutions (5x5, then 7x7 with dilation 3), MLP and layer scales; only the gating
    differs (TAU, Sec. 3.2):

    - statical attention ``SA = Conv1x1(DWConv_dil(DWConv(h)))`` (intra-frame, large
      receptive field);
    - dynamical attention ``DA = sigmoid(FC(ReLU(FC(AvgPool(h)))))`` (squeeze-and-excitation
      over the channels, i.e. over the stacked frames: inter-frame);
    - the block's attention output is ``proj2(SA * DA * h) + u`` (``u``: the normalised
      input, TAU's attention shortcut), added to the input with a layer scale, then the
      MLP sub-block is applied the same way.

    Args:
        dim: channels.
        mlp_ratio: hidden-channel multiplier of the MLP sub-block.
        layer_scale: initial value of the two layer scales.
        se_hidden: hidden width of the squeeze-and-excitation MLP; default as in the
            reference code, ``dim // max(dim // 16, 4)`` (16 for dim >= 64).

    Shapes:
        ``[B, dim, H, W]`` -> ``[B, dim, H, W]``.
    """

    def __init__(self, dim: int, mlp_ratio: float = 4.0, layer_scale: float = 1e-2, se_hidden: int | None = None):
        super().__init__(dim, mlp_ratio=mlp_ratio, layer_scale=layer_scale)
        del self.gate  # gSTA's sigmoid gate is replaced by SA x DA
        self.conv1 = nn.Conv2d(dim, dim, 1)
        hidden = se_hidden or max(dim // max(dim // 16, 4), 1)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(dim, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, dim, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.norm1(x)
        h = F.gelu(self.proj1(u))
        sa = self.conv1(self.dw_dil(self.dw(h)))  # statical attention [B, dim, H, W]
        da = self.se(h)[:, :, None, None]  # dynamical attention [B, dim, 1, 1]
        x = x + self.ls1 * (self.proj2(sa * da * h) + u)
        return x + self.ls2 * self.mlp(self.norm2(x))


class TAU(SimVP):
    """TAU (Tan et al., CVPR 2023, arXiv:2206.12126): SimVP with a TAU translator.

    The encoder, decoder, skip connection and odd-size cropping are SimVP's
    (:class:`~.simvp.SimVP`); the translator is ``n_t`` :class:`TAUSubBlock` between two
    1x1 convolutions mapping ``T * hidden_size`` -> ``hid_t`` -> ``S * hidden_size`` channels. TAU's
    differential divergence regularisation is a training loss, not part of the module, and
    is not included.

    Our addition: with ``residual=True`` (default) the model predicts the change from the
    last input frame, which makes short training on small data sets stable.

    Args:
        input_size: C.
        window: T.
        horizon: S.
        hidden_size: spatial hidden channels (``hid_S``); hid_t: translator channels.
        n_s: encoder / decoder layers (every second one resamples); n_t: TAU blocks.
        mlp_ratio: MLP hidden-channel multiplier inside the TAU blocks.
        residual: add the last input frame to the output.
        start_at_persistence: as :class:`~sparsest.backbones.grid.simvp.SimVP`.

    Shapes:
        x: ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]`` (H, W may be odd). ``tod`` / ``dow``
        are ignored.
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
        mlp_ratio: float = 4.0,
        residual: bool = True,
        start_at_persistence: bool = False,
    ):
        super().__init__(input_size, window, horizon, hidden_size=hidden_size, hid_t=hid_t, n_s=n_s, n_t=0, residual=residual,
                         start_at_persistence=start_at_persistence)
        self.translator = nn.Sequential(
            nn.Conv2d(window * hidden_size, hid_t, 1),
            *[TAUSubBlock(hid_t, mlp_ratio=mlp_ratio) for _ in range(n_t)],
            nn.Conv2d(hid_t, horizon * hidden_size, 1),
        )


@register_backbone("tau", kind="grid", summary="TAU (Tan et al., CVPR 2023): SimVP encoder/decoder, temporal attention unit translator")
def tau(spec: DataSpec, **kwargs) -> TAU:
    return TAU(input_size=spec.n_channels, window=spec.window, horizon=spec.horizon, **kwargs)
