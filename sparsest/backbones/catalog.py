"""Names, kinds and one-line summaries of the built-in backbones, without importing torch.

``sparsest backbones`` prints this; ``tests/backbones`` checks it equals the registry (so
the two cannot drift apart). Each backbone's code and registration live in its own module."""

from __future__ import annotations

# name -> (kind, summary, trainable)
CATALOG: dict[str, tuple[str, str, bool]] = {
    'convlstm': ('grid', 'ConvLSTM encoder-forecaster (Shi et al., NeurIPS 2015), autoregressive roll-out', True),
    'extrapolation': ('grid', 'baseline: pysteps optical flow (Lucas-Kanade) + semi-Lagrangian advection of the last frame', False),
    'gwn': ('graph', 'Graph WaveNet (Wu et al., IJCAI 2019): dilated gated TCN + diffusion GCN, adaptive adjacency', True),
    'historical-average': ('any', 'baseline: training mean per sensor and time of day', False),
    'lower-bound': ('any', "baseline: the data set's physical lower bound everywhere (radar: no rain)", False),
    'persistence': ('any', 'baseline: last observed value repeated', False),
    'simvp': ('grid', 'SimVP v2 (Gao et al., CVPR 2022; Tan et al. 2022): CNN encoder, gSTA translator, CNN decoder', True),
    'staeformer': ('graph', 'STAEformer (Liu et al., CIKM 2023): temporal + spatial transformers on adaptive embeddings', True),
    'stgcn': ('graph', 'STGCN(1st) (Yu et al., IJCAI 2018): gated temporal conv + first-order GCN blocks', True),
    'stid': ('graph', 'STID (Shao et al., CIKM 2022): identity embeddings + MLP, graph-free', True),
    'tau': ('grid', 'TAU (Tan et al., CVPR 2023): SimVP encoder/decoder, temporal attention unit translator', True),
    'vit': ('grid', 'ViT (Dosovitskiy et al., ICLR 2021) on space-time patches, dense head; encodes kept sensor patches only', True),
}
