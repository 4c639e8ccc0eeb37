"""Options of sample pruning, importable without torch (the command line reads them).

Source: ST-Prune (arXiv:2602.19113), METHODS.md section 3; InfoBatch (arXiv:2303.04947).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError

#: ``infobatch`` = InfoBatch as published (r = ``prune_ratio`` of the below-mean windows dropped);
#: ``infobatch-budget`` = ours, InfoBatch held to the budget ``(1 - R) n`` of all windows
#: (see :mod:`sparsest.pruning.samples.policy`)
METHODS = ("none", "st-prune", "infobatch", "infobatch-budget", "random", "static")
RESCALE = ("strata", "mass")  # ST-Prune loss rescaling of kept low-score windows (select_st_prune)


@dataclass
class PruningOptions:
    """Hyper-parameters of sample pruning (defaults: our reading of ST-Prune / InfoBatch).

    Attributes:
        method: one of ``none, st-prune, infobatch, infobatch-budget, random, static``
            (``infobatch``: as published; ``infobatch-budget``: ours, held to the budget).
        prune_ratio: in [0, 1). R, the fraction of all training windows skipped per pruned
            epoch (``st-prune``, ``infobatch-budget``, ``random``, ``static``); for
            ``infobatch`` InfoBatch's r, the fraction of the *below-mean* windows dropped (it
            keeps every above-mean window, so it visits more than ``(1 - r) n``).
        anneal: fraction of epochs that may be pruned (InfoBatch's delta, 0.875): full data
            from epoch ``floor(anneal * epochs)`` on (the authors' boundary).
        beta: weight of the top-k node-loss term of the ST-Prune score.
        topk_fraction: k of that term as a fraction of the nodes.
        complexity_weight: exponent gamma of the intrinsic-complexity factor
            ``(c / mean c) ** gamma`` (0 = off).
        n_strata: stationarity strata.
        hard_cap: ST-Prune's (and ``infobatch-budget``'s) cap on hard windows kept outright
            (fraction of the budget).
        warmup_epochs: full-data epochs at the start.
        rescale: ST-Prune's loss rescaling of kept low-score windows: ``strata`` (stratum
            shares of the low pool kept, mean weight 1) or ``mass`` (each stratum's whole loss).
    """

    method: str = "none"
    prune_ratio: float = 0.5
    anneal: float = 0.875
    beta: float = 1.0
    topk_fraction: float = 0.1
    complexity_weight: float = 0.5
    n_strata: int = 4
    hard_cap: float = 0.5
    warmup_epochs: int = 1
    rescale: str = "strata"

    def check(self, flag: str = "--sample-pruning") -> "PruningOptions":
        """Raises ConfigError naming the option."""
        if self.method not in METHODS:
            raise ConfigError(f"{flag}: unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if not 0 <= self.prune_ratio < 1:
            raise ConfigError(f"--prune-ratio: must be in [0, 1), got {self.prune_ratio}")
        if not 0 < self.anneal <= 1:
            raise ConfigError(f"--anneal: must be in (0, 1], got {self.anneal}")
        if self.rescale not in RESCALE:
            raise ConfigError(f"--rescale: must be one of {', '.join(RESCALE)}, got {self.rescale!r}")
        if not 0 < self.hard_cap <= 1:
            raise ConfigError(f"--hard-cap: must be in (0, 1], got {self.hard_cap}")
        if self.n_strata < 1:
            raise ConfigError(f"--n-strata: must be >= 1, got {self.n_strata}")
        if self.beta < 0 or not 0 < self.topk_fraction <= 1:
            raise ConfigError("--beta must be >= 0 and --topk-fraction in (0, 1]")
        return self
