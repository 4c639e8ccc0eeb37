"""Sample pruning: train each epoch on fewer windows (ST-Prune, InfoBatch, random, static).

Pure score functions (:mod:`.scores`), per-epoch selection policies (:mod:`.policy`), a
DDP-aware sampler (:mod:`.sampler`) and the Lightning callback that ties them to any
backbone's training (:mod:`.callback`). Entry point: :func:`build_sample_pruning`.
"""

from .callback import TRAINER_KWARGS, EpochFractionLR, PruningOptions, SamplePruning, build_sample_pruning, cosine
from .policy import METHODS, Selection, SelectionPolicy, prune_ratio_at
from .sampler import IndexedDataset, PrunedSampler
from .scores import complexity_score, mean_loss_score, quantile_strata, window_complexity, window_stationarity

__all__ = ["METHODS", "TRAINER_KWARGS", "EpochFractionLR", "IndexedDataset", "PrunedSampler", "PruningOptions",
           "SamplePruning", "Selection", "SelectionPolicy", "build_sample_pruning", "complexity_score", "cosine",
           "mean_loss_score", "prune_ratio_at", "quantile_strata", "window_complexity", "window_stationarity"]
