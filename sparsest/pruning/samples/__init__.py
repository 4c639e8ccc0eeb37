"""Sample pruning: train each epoch on fewer windows (ST-Prune, InfoBatch, random, static).

Pure score functions (:mod:`.scores`), per-epoch selection policies (:mod:`.policy`), a
DDP-aware sampler (:mod:`.sampler`) and the Lightning callback that ties them to any
backbone's training (:mod:`.callback`). Entry point: :func:`build_sample_pruning`.
The names below load on first use, so the options (:mod:`.options`) import without torch.
"""

from ..._lazy import lazy_attributes

_WHERE = {
    "TRAINER_KWARGS": "callback", "EpochFractionLR": "callback", "SamplePruning": "callback", "build_sample_pruning": "callback",
    "cosine": "callback", "SamplePruningSetup": "callback", "PruningOptions": "options", "METHODS": "options", "RESCALE": "options",
    "Selection": "policy", "SelectionPolicy": "policy", "prune_ratio_at": "policy", "IndexedDataset": "sampler",
    "PrunedSampler": "sampler", "complexity_score": "scores", "mean_loss_score": "scores", "quantile_strata": "scores",
    "window_complexity": "scores", "window_stationarity": "scores",
}

__getattr__ = lazy_attributes(__name__, _WHERE)


__all__ = sorted(_WHERE)
