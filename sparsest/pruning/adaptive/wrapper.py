"""``DynaPruner``: input-adaptive data and filter co-pruning around any grid backbone.

Zhang et al., "Dyna-Pruner: Input-Adaptive Data-Model Co-Pruning for Efficient and Scalable
Spatio-Temporal Media Prediction", arXiv:2606.15346 (Sec. III, Eqs. 1-4); our reading is
``../shared/design/METHODS.md`` section 2. Per sample:

1. ``S = g(X)`` (:class:`~.masks.MaskGenerator`, Eq. 3), ``[B, H, W]`` in (0, 1).
2. Data mask ``M_data``: the top ``(1 - s_d)`` fraction of S, hard, with an STE
   (:func:`~.masks.topk_ste`); the backbone sees :func:`~.masks.apply_data_mask`.
3. Unit importance (the shared-importance synchronisation). A *unit* is a channel of a
   gated convolution (:class:`~.gating.GatedConv2d`: an input channel of a dense conv, a
   filter of a depthwise conv; "filter" below means unit). For every unit k,
   ``I_k = sum_r pi_kr * mean(S over region r) + b_k`` with ``pi_k = softmax(alpha_k)`` a
   learned distribution over a coarse grid of R regions (default 4 x 6): each filter's
   *receptive field at the region scale*, so I_k is the mean importance of the area the
   filter serves, and filters serving regions that S deems unimportant are pruned. Ours:
   the paper only says "aggregating the scores in S within its receptive field". A filter
   of a convolution is applied at every position (weight sharing), so its literal
   receptive field is the whole grid and the plain mean of S would give every filter of a
   layer the same I (all on or all off together); the learned region weights make I
   filter-specific while remaining an average of S. ``b_k`` (ours) is a learned per-filter
   offset, initialised from the filter's L1 norm (z-scored in its layer, times 0.1), so
   training starts from a magnitude ordering and can learn filters that are always needed
   or never needed (the latter are what the static compact model removes).
4. Filter mask ``M_weight = 1[I_k > tau_l]`` with a learnable threshold ``tau_l`` per gated
   layer and a sigmoid STE (:func:`~.masks.threshold_ste`).
5. Loss (Eq. 4 plus the constraint of Eq. 2): ``task + lambda_d * mean(S) + lambda_w *
   mean(I) + lambda_target * mean_l |f_l - (1 - s_w)|`` where ``f_l`` is layer l's active
   fraction in the batch (hard forward, sigmoid backward). The last term (ours) is what
   moves each threshold until the model sparsity reaches ``s_w`` (Eq. 2 as a soft
   constraint); it is exposed through :meth:`penalty`, which
   :class:`sparsest.engine.module.ForecastModule` adds to the loss.

Readings (``reading``; one code path, compared side by side by ``sparsest compress``):

- ``"channels-hard"``: the reading above as first built: hard 0/1 masks from the first
  step (STE), one target per layer.
- ``"channels"``: as the paper trains (Sec. III-D1, "soft masks for data and model are
  derived"): the data mask and the unit masks are soft (sigmoids around the budget's
  threshold) with a temperature that anneals geometrically over the first
  ``hard_from`` fraction of the training steps, then hard with a straight-through
  gradient (:func:`~.masks.soft_topk`, :func:`~.masks.soft_threshold`); ONE global budget
  over all K units (Eq. 2, ``||M_weight||_0 / K <= 1 - s_w``: layers share it unevenly),
  and at the switch to hard the thresholds are shifted together so the batch meets it
  (:meth:`calibrate_budget` does it on a whole data set).
- ``"tiles"``: the spatial reading (:mod:`.tiles`). S is averaged over a ``tiles`` grid of
  regions; each sample keeps the top ``1 - s_d`` of its tiles (soft-to-hard as above);
  the data mask is that tile mask at pixel resolution; every gated convolution computes
  its outputs on the active tiles only (0 elsewhere); and the forecast outside the active
  tiles is the last input frame (ours: a skipped region is forecast by persistence,
  "nothing happens there", which is exact for clear sky that stays clear). No channel
  gating: ``model_sparsity`` is not used.
- ``"tiles+channels"``: tiles and the soft-to-hard, global-budget unit gating together.

Execution (``mode``): ``"masked"`` multiplies the gated channels by the masks (training, batched
evaluation; computes everything), ``"gated"`` computes only each sample's active filters
(sliced weights, one sample at a time; the batch-1 inference path that is really cheaper).
With a tile reading, ``"gated"`` also computes only the active tiles, and ``"tiled"`` runs a
whole batch on its active tiles (units masked, not sliced: the batch path of the compact
model). For the ``"tiles"`` reading of SimVP both run the whole network on the compact rows
of the active pixels (:mod:`.rows`, DynConv-style: no layer between the convolutions
touches a whole frame), where :func:`.rows.supports` allows. All are numerically equal
(tested). :meth:`compact` removes filters that are active
for fewer than ``min_usage`` of the samples, for batch inference.

Without tiles the data mask saves no compute in these dense CNN / ConvLSTM backbones (a zero
or constant pixel costs the same to convolve); the compute saving is then the unit gating. ``policy=
"random"`` is the random baseline: uniform random scores for the data mask and Bernoulli
``(1 - s_w)`` filter masks, per sample, through the same code.

Either half can be switched off (the ablation of the paper's Table IV):

- ``model_sparsity=0`` ("DP only"): no channel gating. Every gated unit is on, the filter
  importance, thresholds and their loss terms are not built (no ``alpha`` / ``beta`` /
  ``tau``), and ``"gated"`` execution runs the backbone as it is. The gates stay attached,
  so a static ``keep`` set on them (e.g. :func:`~.baselines.l1_prune_gates`, the
  "independent DP + MP" row) is still honoured.
- ``data_sparsity=0`` ("MP only"): no data mask. The backbone sees the input unchanged
  (``data_mask`` is all ones, without gradient), the ``lambda_d`` term is dropped, and the
  generator is trained only through the channel importance.
- Both 0 is refused (nothing would be pruned; that is the dense model).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...backbones import DataSpec
from . import rows
from .compiled_rows import CompiledRows
from .gating import attach_gates, clear_gates, find_prunable_convs, l1_prior as _l1_prior, spans as _spans
from .masks import MaskGenerator, apply_data_mask, warm_start_generator, flip_important, region_scores, soft_threshold, soft_topk, threshold_ste, topk_ste
from .tiles import active_tiles, expand_tiles, tile_scores

POLICIES = ("dyna", "random")
READINGS = ("tiles", "tiles+channels", "channels", "channels-hard")
"""Readings of Dyna-Pruner (module doc, "Readings"); the first is the default."""
TILE_PIXELS = 8
"""Smallest default tile side at the input resolution, in pixels."""
TILE_GRID = 8
"""Most default tiles per side: frames larger than 64 x 64 get an 8 x 8 grid of larger tiles
(on radar-bom-2km, 128 x 128, 16-pixel tiles ran twice as fast as dense at batch 1 where
8-pixel tiles gave x1.74, at the same accuracy; README, Dyna-Pruner)."""


class DynaPruner(nn.Module):
    """Wrap a grid backbone with Dyna-Pruner's data and filter masks (see module doc).

    The backbone object is modified in place (its prunable ``Conv2d`` children are wrapped
    by :class:`~.gating.GatedConv2d`; their weights are reused): pass a copy if the dense
    model is still needed. The backbone's code is not edited.

    Args:
        backbone: grid forecaster, ``forward(x, tod, dow)`` ``[B, T, C, H, W]`` ->
            ``[B, S, C, H, W]`` (scaled units).
        spec: the data's :class:`~sparsest.backbones.DataSpec` (T, C, H, W).
        data_sparsity: s_d, fraction of pixels pruned per sample, in [0, 1) (paper: 0.7).
        model_sparsity: s_w, target fraction of gated filters off, in [0, 1) (paper: 0.7).
        policy: ``"dyna"`` (learned) or ``"random"`` (baseline).
            ``data_sparsity=0`` or ``model_sparsity=0`` switches that half off (module doc).
        fill: what pruned pixels show the backbone, see :func:`~.masks.apply_data_mask`.
        min_channels: gate Conv2d layers with at least this many output channels.
        regions: grid of regions for the filter importance (rows, cols).
        temperature: of the threshold STE, in units of I.
        lambda_d, lambda_w: Eq. 4 weights of mean(S) and mean(I).
        lambda_target: weight of the model-sparsity target term.
        gen_hidden: hidden channels of the mask generator.
        reading: one of :data:`READINGS` (module doc).
        tiles: (rows, cols) of the tile grid of the tile readings; None: tiles of about
            :data:`TILE_PIXELS` pixels a side, at most :data:`TILE_GRID` per side (8 x 8
            tiles of 8 px on a 64 x 64 frame, of 16 px on 128 x 128, 4 x 4 on 32 x 32).
        hard_from: fraction of the training steps after which soft masks are hard (soft
            readings), in (0, 1].
        total_steps: training steps of the whole schedule (the driver sets it; a buffer, so
            a resumed run continues the schedule).

    Raises:
        ValueError: a sparsity outside [0, 1), both sparsities 0, a bad policy or fill, or a
            backbone without prunable Conv2d, an unknown reading.

    Shapes:
        ``forward(x, tod, dow)``: x ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]``; after each
        forward ``last`` holds ``S`` ``[B, H, W]``, ``data_mask`` ``[B, H, W]``,
        ``importance`` and ``filter_mask`` ``[B, K]`` (K gated filters in total).
    """

    def __init__(
        self,
        backbone: nn.Module,
        spec: DataSpec,
        data_sparsity: float = 0.7,
        model_sparsity: float = 0.7,
        policy: str = "dyna",
        fill: str = "last",
        min_channels: int = 8,
        regions: tuple[int, int] = (4, 6),
        temperature: float = 0.05,
        lambda_d: float = 0.01,
        lambda_w: float = 0.01,
        lambda_target: float = 1.0,
        gen_hidden: int = 16,
        reading: str = "channels-hard",
        tiles: tuple[int, int] | None = None,
        hard_from: float = 0.6,
        total_steps: int = 0,
    ):
        super().__init__()
        if reading not in READINGS:
            raise ValueError(f"reading must be one of {READINGS}, got {reading!r}")
        if not 0 < hard_from <= 1:
            raise ValueError(f"hard_from must be in (0, 1], got {hard_from!r}")
        if reading == "tiles":
            model_sparsity = 0.0  # tiles only: no unit gating
        for name, v in (("data_sparsity", data_sparsity), ("model_sparsity", model_sparsity)):
            if not 0 <= v < 1:
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        if data_sparsity == 0 and model_sparsity == 0:
            raise ValueError("data_sparsity and model_sparsity are both 0: nothing would be pruned (use the dense backbone)")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if fill not in ("last", "zero"):
            raise ValueError(f"fill must be 'last' or 'zero', got {fill!r}")
        self.backbone = backbone
        self.data_sparsity, self.model_sparsity = float(data_sparsity), float(model_sparsity)
        self.policy, self.fill, self.temperature = policy, fill, float(temperature)
        self.lambda_d, self.lambda_w, self.lambda_target = lambda_d, lambda_w, lambda_target
        self.regions = tuple(regions)
        if tiles is None:
            tiles = tuple(max(1, min(TILE_GRID, round(side / TILE_PIXELS))) for side in (spec.height, spec.width))
        self.reading, self.tiles, self.hard_from = reading, (int(tiles[0]), int(tiles[1])), float(hard_from)
        if min(self.tiles) < 1:
            raise ValueError(f"tiles must be >= 1 x 1, got {tiles!r}")
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("total_steps", torch.tensor(int(total_steps), dtype=torch.long))
        self.gate_names = find_prunable_convs(backbone, min_channels)
        if not self.gate_names:
            raise ValueError(f"{type(backbone).__name__} has no Conv2d with >= {min_channels} output channels to gate")
        self.gates = attach_gates(backbone, self.gate_names)
        self.sizes = [g.n_units for g in self.gates]
        self.n_pixels = spec.height * spec.width
        self.register_buffer("layer_of", torch.repeat_interleave(torch.arange(len(self.sizes)), torch.tensor(self.sizes)))
        if policy == "dyna":
            self.generator = MaskGenerator(spec.window * spec.n_channels, gen_hidden)
        if policy == "dyna" and self.gating:
            n_regions = self.regions[0] * self.regions[1]
            self.alpha = nn.Parameter(torch.randn(sum(self.sizes), n_regions))
            self.beta = nn.Parameter(torch.cat([_l1_prior(g.unit_weights()) for g in self.gates]))
            self.tau = nn.Parameter(torch.zeros(len(self.sizes)))
        self.mode = "masked"
        self._scale: float | None = None
        self._was_soft = False
        self.mask_failure = 0.0  # fraction of kept data-mask entries flipped to pruned (robustness)
        self.failure_generator: torch.Generator | None = None
        self.last: dict = {}

    # ---- masks
    @property
    def prune_data(self) -> bool:
        """False for ``data_sparsity == 0`` ("MP only"); derived, so older pickles still load."""
        return self.data_sparsity > 0

    @property
    def gating(self) -> bool:
        """False for ``model_sparsity == 0`` ("DP only"): every gated unit is on."""
        return self.model_sparsity > 0

    @property
    def spatial(self) -> bool:
        """True for the tile readings."""
        return self.reading.startswith("tiles")

    @property
    def soft(self) -> bool:
        """True for the soft-to-hard readings (all but ``channels-hard``)."""
        return self.reading != "channels-hard"

    @property
    def n_tiles(self) -> int:
        return self.tiles[0] * self.tiles[1]

    @property
    def keep_tiles(self) -> int:
        return max(1, int(round((1 - self.data_sparsity) * self.n_tiles)))

    def temperature_scale(self) -> float | None:
        """Soft-mask temperature factor of the current training step: geometric from 1 to
        0.1 over the first ``hard_from`` of ``total_steps``; None once hard (always in eval
        mode, for ``channels-hard``, and without a schedule, ``total_steps == 0``)."""
        if not self.soft or not self.training or int(self.total_steps) <= 0:
            return None
        p = float(self.steps_done) / float(self.total_steps)
        if p >= self.hard_from:
            return None
        return 0.1 ** (p / self.hard_from)

    @property
    def keep_pixels(self) -> int:
        return max(1, int(round((1 - self.data_sparsity) * self.n_pixels)))

    def importance_map(self, x: torch.Tensor) -> torch.Tensor:
        """S ``[B, H, W]`` (random uniform for the random policy)."""
        if self.policy == "dyna":
            return self.generator(x)
        B, _, _, H, W = x.shape
        return torch.rand(B, H, W, device=x.device)

    def filter_importance(self, scores: torch.Tensor) -> torch.Tensor:
        """I ``[B, K]`` from S ``[B, H, W]`` (module doc, step 3)."""
        s_bar = region_scores(scores, self.regions)  # [B, R]
        if torch.is_grad_enabled() or torch.jit.is_tracing():
            pi = torch.softmax(self.alpha, dim=1)
        else:  # inference: reuse until alpha changes (in-place updates bump its version)
            key = (self.alpha._version, self.alpha.data_ptr())
            if getattr(self, "_pi_key", None) != key:
                self._pi, self._pi_key = torch.softmax(self.alpha, dim=1), key
            pi = self._pi
        return s_bar @ pi.T + self.beta  # [B, K]

    def filter_masks(self, scores: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(I, M_weight)``, each ``[B, K]`` (I is None for the random policy and without
        gating; ``M_weight`` is then all ones when ``model_sparsity == 0``)."""
        if not self.gating:
            return None, scores.new_ones(scores.shape[0], len(self.layer_of))
        if self.policy == "random":
            B = scores.shape[0]
            m = torch.bernoulli(torch.full((B, len(self.layer_of)), 1 - self.model_sparsity, device=scores.device))
            return None, m
        imp = self.filter_importance(scores)
        if not self.soft:
            return imp, threshold_ste(imp, self.tau[self.layer_of], self.temperature)
        return imp, soft_threshold(imp, self.tau[self.layer_of], self.temperature, self._scale)

    def layer_fractions(self, filter_mask: torch.Tensor) -> torch.Tensor:
        """Active fraction of each gated layer over the batch, ``[L]`` (differentiable)."""
        per_filter = filter_mask.mean(0)  # [K]
        sums = per_filter.new_zeros(len(self.sizes)).index_add(0, self.layer_of, per_filter)
        return sums / torch.tensor(self.sizes, dtype=sums.dtype, device=sums.device)

    def warm_start_generator(self, batches, steps: int = 100, lr: float = 1e-2) -> float:
        """:func:`~.masks.warm_start_generator` on this model's generator (no-op, 0.0, for the
        random policy): S starts where the future changes instead of flat."""
        return 0.0 if self.policy != "dyna" else warm_start_generator(self.generator, batches, steps, lr)

    @torch.no_grad()
    def calibrate_thresholds(self, x: torch.Tensor) -> None:
        """Set each ``tau_l`` to the ``s_w`` quantile of layer l's importances on ``x`` so
        training starts at the target model sparsity (ours; without it the thresholds
        start at 0, every filter on, and first have to climb there). No-op without gating."""
        if self.policy != "dyna" or not self.gating:
            return
        imp = self.filter_importance(self.importance_map(x))  # [B, K]
        for l, (a, b) in enumerate(_spans(self.sizes)):
            self.tau[l] = torch.quantile(imp[:, a:b].flatten(), self.model_sparsity)

    @torch.no_grad()
    def calibrate_budget(self, batches) -> float:
        """Shift every threshold by one offset so the hard unit masks of the samples in
        ``batches`` (an iterable of batch dicts with ``x``) keep exactly ``1 - s_w`` of all
        K units on average (Eq. 2 as an equality; the layers' shares stay uneven). Runs in
        eval mode; returns the offset (0 and no-op without learned gating)."""
        if self.policy != "dyna" or not self.gating:
            return 0.0
        was = self.training
        self.eval()
        vals = [(self.filter_importance(self.importance_map(b["x"])) - self.tau[self.layer_of]).flatten() for b in batches]
        self.train(was)
        delta = float(torch.quantile(torch.cat(vals).double(), self.model_sparsity))
        self.tau += delta
        return delta

    # ---- forward
    def _data_mask(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(pixel data mask [B, H, W], tile mask [B, rows, cols] or None)``."""
        if self.spatial:
            ts = tile_scores(scores, self.tiles)
            tm = soft_topk(ts, self.keep_tiles, self._scale) if self.soft else topk_ste(ts, self.keep_tiles)
            if self.mask_failure > 0:
                tm = flip_important(tm, self.mask_failure, self.failure_generator)
            return expand_tiles(tm, scores.shape[-2:]), tm
        dm = soft_topk(scores, self.keep_pixels, self._scale) if self.soft else topk_ste(scores, self.keep_pixels)
        if self.mask_failure > 0:
            dm = flip_important(dm, self.mask_failure, self.failure_generator)
        return dm, None

    def forward(self, x: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        if self.mode not in ("masked", "gated", "tiled"):
            raise ValueError(f"mode must be 'masked', 'gated' or 'tiled', got {self.mode!r}")
        self._scale = self.temperature_scale()
        if self.training and self.soft and int(self.total_steps) > 0:
            if self._scale is None and self._was_soft:  # first hard step: meet the budget on this batch
                self.calibrate_budget([{"x": x}])
            self._was_soft = self._scale is not None
            self.steps_done += 1
        scores = self.importance_map(x)  # [B, H, W]
        tile_mask = None
        if self.prune_data or self.mask_failure > 0:
            data_mask, tile_mask = self._data_mask(scores)
            x_in = apply_data_mask(x, data_mask, self.fill)
        else:  # "MP only": the input is not masked
            data_mask, x_in = torch.ones_like(scores), x
        imp, filt = self.filter_masks(scores)  # [B, K]
        self.last = {"S": scores, "data_mask": data_mask, "tile_mask": tile_mask, "importance": imp, "filter_mask": filt}
        try:
            y = self._run(x_in, tod, dow, filt, tile_mask)
        finally:
            clear_gates(self.gates)
        if tile_mask is not None:  # skipped regions: persistence
            last = x[:, -1:]
            y = last + data_mask[:, None, None].to(y.dtype) * (y - last)
        return y

    def _run(self, x_in, tod, dow, filt, tile_mask):
        tiled = tile_mask is not None and self.mode in ("gated", "tiled")
        if self.mode == "gated" and self.gating:  # batch 1 path: sliced units (+ tiles), one sample at a time
            return self._forward_gated(x_in, tod, dow, filt.detach() > 0.5, tile_mask)
        plan = active_tiles(tile_mask.detach()) if tiled else None  # one plan per forward: every layer shares its index caches
        if tiled and not self.gating and not self.training and rows.ENABLED and self._rows_supported(tuple(x_in.shape[-2:])):
            compiled = self.__dict__.get("_compiled_rows")
            if compiled is not None:
                return compiled(x_in, plan)
            return rows.simvp_forward(self.backbone, x_in, plan, self.tiles)  # compact rows through the whole network
        for g, m in zip(self.gates, filt.split(self.sizes, dim=1)):
            if self.gating:
                g.mask = m
            if tiled:
                g.tile_index, g.grid, g.tile_batch = plan, self.tiles, x_in.shape[0]
            elif tile_mask is not None:
                g.spatial = tile_mask
        return self.backbone(x_in, tod, dow)

    def compile_rows(self, **compile_options) -> None:
        """Run the ``tiles`` reading of a SimVP through ``torch.compile`` from now on
        (:class:`.compiled_rows.CompiledRows`; equal values; the first forward per input shape compiles).

        Raises:
            ValueError: the model is not a SimVP with a tile reading.
        """
        if not self.spatial or self.gating or type(self.backbone) is not rows.SimVP:
            raise ValueError(f"compile_rows needs the 'tiles' reading of a SimVP (got {self.reading!r})")
        self.__dict__["_compiled_rows"] = CompiledRows(self.backbone, self.tiles, **compile_options)

    def _rows_supported(self, hw: tuple[int, int]) -> bool:
        """:func:`.rows.supports` for ``hw`` frames, once per frame size and set of removed
        units (``keep``, the only channel state a gate holds between forwards; walking the
        backbone on every forward cost ~0.25 ms, ~1% of a batch-1 forward)."""
        key = (hw, tuple(g.keep is None for g in self.gates))
        cache = self.__dict__.setdefault("_rows_ok", {})  # plain dict, not module state (models pickled before it load)
        if key not in cache:
            cache[key] = rows.supports(self.backbone, hw, self.tiles)
        return cache[key]

    def _forward_gated(self, x_in, tod, dow, on: torch.Tensor, tile_mask=None) -> torch.Tensor:
        outs = []
        on_np = on.cpu().numpy()  # one transfer; numpy nonzero per layer is ~20x cheaper than torch's
        for b in range(x_in.shape[0]):
            tiles = None if tile_mask is None else active_tiles(tile_mask[b : b + 1].detach())
            for g, (lo, hi) in zip(self.gates, _spans(self.sizes)):
                idx = torch.from_numpy(np.flatnonzero(on_np[b, lo:hi])).to(x_in.device)
                if g.keep is not None:  # compact model: removed filters stay off
                    idx = idx[torch.isin(idx, g.keep)]
                g.active = idx
                if tiles is not None:
                    g.tile_index, g.grid, g.tile_batch = tiles, self.tiles, 1
            sl = slice(b, b + 1)
            outs.append(self.backbone(x_in[sl], None if tod is None else tod[sl], None if dow is None else dow[sl]))
        return torch.cat(outs)

    tau_lr: float = 0.01  # learning rate of the thresholds (the driver sets it)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """AdamW groups (the engine's optimiser hook): everything at ``lr`` / ``weight_decay``
        but the thresholds ``tau``, at :attr:`tau_lr` without weight decay."""
        groups = [{"params": [p for n, p in self.named_parameters() if n != "tau"], "lr": lr, "weight_decay": weight_decay}]
        if isinstance(getattr(self, "tau", None), nn.Parameter):
            groups.append({"params": [self.tau], "lr": self.tau_lr, "weight_decay": 0.0})
        return groups

    def penalty(self) -> torch.Tensor:
        """The sparsity terms of the loss (module doc, step 5) for the last forward: the
        ``lambda_d`` term only with a data mask, the ``lambda_w`` and target terms only with
        gating. A 0-d tensor (0 for the random policy or before any forward)."""
        if self.policy != "dyna" or not self.last:
            return torch.zeros(())
        out = torch.zeros((), device=self.last["S"].device)
        if self.prune_data:
            out = out + self.lambda_d * self.last["S"].mean()
        if self.gating:
            if self.soft:  # one global budget over all units (Eq. 2)
                target = (self.last["filter_mask"].mean() - (1 - self.model_sparsity)).abs()
            else:  # channels-hard: one target per layer
                frac = self.layer_fractions(self.last["filter_mask"])
                target = (frac - (1 - self.model_sparsity)).abs().mean()
            out = out + self.lambda_w * self.last["importance"].mean() + self.lambda_target * target
        return out

    # ---- statistics and compaction
    @torch.no_grad()
    def filter_usage(self, batches) -> torch.Tensor:
        """Fraction of samples for which each gated filter is active, ``[K]``, over an
        iterable of batch dicts (``x``, ``tod``, ``dow``); runs in eval mode."""
        was = self.training
        self.eval()
        total, n = torch.zeros(len(self.layer_of)), 0
        for batch in batches:
            x = batch["x"]
            _, m = self.filter_masks(self.importance_map(x))
            total += (m > 0.5).float().sum(0).cpu()
            n += x.shape[0]
        self.train(was)
        return total / max(n, 1)

    def compact(self, usage: torch.Tensor, min_usage: float = 0.05) -> dict:
        """Remove for good the filters active for fewer than ``min_usage`` of the samples
        (``usage`` from :meth:`filter_usage`); each layer keeps at least one filter.
        Sets every gate's ``keep``; per-sample masks still apply to the kept filters.

        Without gating (``model_sparsity == 0``) nothing is removed (every unit is always on);
        static ``keep`` sets already on the gates stay and are reported.

        Returns:
            ``{"removed": int, "total": int, "per_layer": {name: [kept, total]}, "min_usage": float}``.
        """
        removed, per_layer = 0, {}
        for name, g, u in zip(self.gate_names, self.gates, usage.split(self.sizes)):
            if self.gating:
                keep = torch.nonzero(u >= min_usage).squeeze(1)
                if keep.numel() == 0:
                    keep = u.argmax().view(1)
                g.keep = keep.to(self.layer_of.device)
            kept = g.n_units if g.keep is None else int(g.keep.numel())
            removed += g.n_units - kept
            per_layer[name] = [kept, g.n_units]
        return {"removed": removed, "total": int(sum(self.sizes)), "per_layer": per_layer, "min_usage": min_usage}


__all__ = ["DynaPruner", "POLICIES", "READINGS"]
