"""Dyna-Pruner: input-adaptive co-pruning of data (pixels) and model (conv filters).

Zhang et al., arXiv:2606.15346; our reading in ``../shared/design/METHODS.md`` section 2.

- :class:`DynaPruner` wraps any grid backbone (no backbone edits): mask generator, hard data
  mask (STE), receptive-field filter importance with learnable thresholds, the sparsity
  terms of the loss (``penalty()``), masked / gated execution and static compaction.
- :mod:`.gating`: per-sample filter gating of Conv2d layers found by walking the model.
- :mod:`.masks`: pure tensor functions (top-k STE, threshold STE, their soft-to-hard forms,
  data-mask fill).
- :mod:`.tiles`: the spatial reading: tile masks and convolutions computed on active tiles
  only (gather, compute, scatter).
- :mod:`.baselines`: MP (L1 filter pruning at matched FLOPs) and robustness evaluation.
- :mod:`.export`: TorchScript export (script, else trace) of the compact model, and the safe
  eager export :func:`save_compact` / :func:`load_compact` (state dict + JSON rebuild config).
"""

from .baselines import evaluate_perturbed, l1_filter_prune, l1_prune_gates, match_flops_ratio, torch_pruning_error
from .export import load_compact, save_compact, to_torchscript
from .gating import GatedConv2d, attach_gates, clear_gates, find_prunable_convs, gates_of
from .masks import MaskGenerator, apply_data_mask, flip_important, soft_threshold, soft_topk, threshold_ste, topk_ste
from .tiles import TilePlan, active_tiles, expand_tiles, tile_scores, tiled_conv2d
from .wrapper import POLICIES, READINGS, DynaPruner

__all__ = [
    "DynaPruner", "POLICIES", "READINGS", "TilePlan", "active_tiles", "expand_tiles", "tile_scores", "tiled_conv2d", "GatedConv2d", "attach_gates", "clear_gates", "find_prunable_convs", "gates_of",
    "MaskGenerator", "apply_data_mask", "flip_important", "soft_threshold", "soft_topk", "threshold_ste", "topk_ste",
    "evaluate_perturbed", "l1_filter_prune", "l1_prune_gates", "match_flops_ratio", "torch_pruning_error",
    "to_torchscript", "save_compact", "load_compact",
]
