"""ConvLSTM encoder-forecaster.

Shi et al., "Convolutional LSTM Network: A Machine Learning Approach for Precipitation
Nowcasting", NeurIPS 2015 (arXiv:1506.04214).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import DataSpec, register_backbone
from .simvp import ConvSC


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell: all four gates from one convolution on ``cat(x, h)`` (Shi et al., Eq. 3).

    ``i, f, o = sigmoid(.)``, ``g = tanh(.)``, ``c' = f * c + i * g``, ``h' = o * tanh(c')``.
    The peephole terms of the paper (``W_c * c``) are omitted, as in most implementations;
    the forget-gate bias starts at 1.

    Args:
        c_in: input channels.
        hidden: hidden (and cell) channels.
        kernel_size: odd convolution size.

    Shapes:
        ``x`` ``[B, c_in, H, W]``, ``state`` ``(h, c)`` each ``[B, hidden, H, W]`` ->
        ``(h', c')``.
    """

    def __init__(self, c_in: int, hidden: int, kernel_size: int = 3):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(c_in + hidden, 4 * hidden, kernel_size, padding=kernel_size // 2)
        with torch.no_grad():
            self.conv.bias[hidden : 2 * hidden].fill_(1.0)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, g, o = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTM(nn.Module):
    """ConvLSTM encoder-forecaster (Shi et al., NeurIPS 2015, arXiv:1506.04214).

    A conv stem (3x3 conv + GroupNorm + SiLU, stride 2 when ``downsample``) embeds each
    frame; an encoder stack of ``n_layers`` :class:`ConvLSTMCell` reads the T embedded
    frames; a forecaster stack with its own weights, whose states start from the encoder's
    final states (as in the paper), then rolls out S steps. At each step the forecaster's
    input is the stem embedding of its own previous prediction (``feed="prediction"``; the
    first step gets the last input frame) or zeros (``feed="zero"``, the paper's
    input-free forecaster); its top hidden state is decoded per step by a conv layer
    (upsampling x2 when ``downsample``), cropped to H x W (odd sizes) and read out with a
    1x1 conv.

    Our addition: with ``residual=True`` (default) every step predicts the change from the
    last input frame (``y_s = readout_s + x[:, -1]``), which makes short training on small
    data sets stable.

    Args:
        input_size: C.
        window: T.
        horizon: S.
        hidden_size: channels of the stem and of every ConvLSTM layer.
        n_layers: ConvLSTM layers in the encoder (and in the forecaster).
        kernel_size: ConvLSTM kernel.
        downsample: run the recurrence at half resolution (stride-2 stem, x2 decoder).
        feed: forecaster input, ``"prediction"`` (autoregressive) or ``"zero"``.
        residual: add the last input frame to every output step.
        start_at_persistence: (with ``residual``) zero read-out at initialisation: the
            untrained model forecasts the last frame.

    Shapes:
        x: ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]`` (H, W may be odd). ``tod`` / ``dow``
        are ignored.
    """

    def __init__(
        self,
        input_size: int,
        window: int,
        horizon: int,
        hidden_size: int = 24,
        n_layers: int = 2,
        kernel_size: int = 3,
        downsample: bool = True,
        feed: str = "prediction",
        residual: bool = True,
        start_at_persistence: bool = False,
    ):
        super().__init__()
        if feed not in ("prediction", "zero"):
            raise ValueError(f"feed must be 'prediction' or 'zero', got {feed!r}")
        self.window, self.horizon, self.hidden_size = window, horizon, hidden_size
        self.feed, self.residual = feed, residual
        self.stem = ConvSC(input_size, hidden_size, down=downsample)
        self.encoder = nn.ModuleList([ConvLSTMCell(hidden_size, hidden_size, kernel_size) for _ in range(n_layers)])
        self.forecaster = nn.ModuleList([ConvLSTMCell(hidden_size, hidden_size, kernel_size) for _ in range(n_layers)])
        self.decoder = ConvSC(hidden_size, hidden_size, up=downsample)
        self.readout = nn.Conv2d(hidden_size, input_size, 1)
        if start_at_persistence and residual:  # the untrained model forecasts the last frame (as SimVP's option)
            nn.init.zeros_(self.readout.weight)
            nn.init.zeros_(self.readout.bias)

    @staticmethod
    def _step(cells: nn.ModuleList, inp: torch.Tensor, states: list) -> torch.Tensor:
        for i, cell in enumerate(cells):
            states[i] = cell(inp, states[i])
            inp = states[i][0]
        return inp

    def forward(self, x: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        B, T, C, H, W = x.shape
        emb = self.stem(x.reshape(B * T, C, H, W))
        emb = emb.view(B, T, *emb.shape[1:])  # [B, T, hidden_size, h, w]
        zeros = emb.new_zeros(B, self.hidden_size, *emb.shape[-2:])
        states = [(zeros, zeros) for _ in self.encoder]
        for t in range(T):
            self._step(self.encoder, emb[:, t], states)
        last = x[:, -1]
        prev = last
        outs = []
        for _ in range(self.horizon):
            inp = self.stem(prev) if self.feed == "prediction" else zeros
            top = self._step(self.forecaster, inp, states)
            y = self.readout(self.decoder(top)[..., :H, :W])
            if self.residual:
                y = y + last
            outs.append(y)
            prev = y
        return torch.stack(outs, dim=1)


@register_backbone("convlstm", kind="grid", summary="ConvLSTM encoder-forecaster (Shi et al., NeurIPS 2015), autoregressive roll-out")
def convlstm(spec: DataSpec, **kwargs) -> ConvLSTM:
    return ConvLSTM(input_size=spec.n_channels, window=spec.window, horizon=spec.horizon, **kwargs)
