"""InfoBatch as published vs held to the budget, the annealing boundary, scores over observed
nodes only, and the per-window loss weights of the training step."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sparsest.data.core import SpatioTemporalData
from tests.pruning.samples.test_samples import _Lin  # the tiny linear forecaster
from sparsest.data.windows import StandardScaler, WindowDataset
from sparsest.engine.module import ForecastModule, node_losses, weighted_window_mae
from sparsest.pruning.samples import (
    IndexedDataset,
    PrunedSampler,
    PruningOptions,
    SamplePruning,
    SelectionPolicy,
    complexity_score,
    mean_loss_score,
    prune_ratio_at,
)
from sparsest.pruning.samples.policy import (
    epoch_generator,
    select_infobatch,
    select_infobatch_budget,
)

# 10 windows, mean score 4.0: index 5 sits exactly at the mean (kept, not "below"), 0 3 6 above,
# 1 2 4 7 8 9 below (n_below = 6)
SCORES = torch.tensor([12.0, 1.0, 2.0, 9.0, 1.0, 4.0, 7.0, 2.0, 1.0, 1.0], dtype=torch.float64)
ABOVE = [0, 3, 5, 6]
BELOW = [1, 2, 4, 7, 8, 9]


def _kept_mask(sel, n):
    kept = torch.zeros(n, dtype=torch.bool)
    kept[sel.indices] = True
    return kept


# -- (a) InfoBatch as published

@pytest.mark.parametrize("epoch", [1, 2, 3])
def test_infobatch_hand_worked_epoch(epoch):
    assert float(SCORES.mean()) == 4.0
    sel = select_infobatch(SCORES, 0.5, epoch_generator(0, epoch))
    kept = _kept_mask(sel, 10)
    drawn = sorted(set(sel.indices.tolist()) - set(ABOVE))
    assert kept[ABOVE].all()  # at or above the mean: always kept
    assert set(drawn) <= set(BELOW)  # the drawn ones are below-mean windows
    assert len(BELOW) - len(drawn) == round(0.5 * 6) == 3  # dropped: round(r * n_below)
    assert sel.n_kept == 4 + 3 and sel.indices.tolist() == sorted(ABOVE + drawn)
    expect_w = torch.ones(10)
    expect_w[drawn] = 2.0  # 1 / (1 - r)
    assert torch.equal(sel.weights, expect_w)
    # the policy draws the same from (seed, epoch), and only inside the pruned epochs
    pol = SelectionPolicy("infobatch", 10, 0.5, epochs=8, seed=0)
    same = pol.select(epoch, SCORES)
    assert torch.equal(same.indices, sel.indices) and torch.equal(same.weights, sel.weights)


def test_infobatch_ratio_is_of_the_below_mean_windows_and_not_clamped():
    n = 1000
    scores = torch.cat([torch.full((300,), 5.0), torch.full((700,), 1.0)]).double()  # 700 below the mean 2.2
    for r in (0.1, 0.3, 0.7, 0.9, 0.95):
        sel = select_infobatch(scores, r, epoch_generator(3, 1))
        kept = _kept_mask(sel, n)
        assert kept[:300].all() and int(kept[300:].sum()) == 700 - round(r * 700)
        assert sel.n_kept == n - round(r * 700) > round((1 - r) * n)  # more than the budget (1 - r) n
        assert torch.allclose(sel.weights[300:][kept[300:]], torch.tensor(1 / (1 - r)))
        assert (sel.weights[:300] == 1).all()
    # r > 0.9 is used as given (the authors clamp keep_ratio at 0.1)
    assert select_infobatch(scores, 0.95, epoch_generator(3, 1)).n_kept == 300 + 35
    with pytest.raises(ValueError, match="prune_ratio"):
        select_infobatch(scores, 1.0, epoch_generator(0, 1))


def test_infobatch_unvisited_windows_kept_and_out_of_the_mean():
    scores = SCORES.clone()
    scores[0] = math.inf  # never scored: always kept, not in the mean (mean of the rest = 28 / 9)
    sel = select_infobatch(scores, 0.5, epoch_generator(0, 1))
    kept = _kept_mask(sel, 10)
    assert kept[[0, 3, 5, 6]].all()  # 4 > 28 / 9: still above
    assert select_infobatch(torch.full((10,), math.inf), 0.5, epoch_generator(0, 1)).n_kept == 10


@pytest.mark.parametrize("epochs, first_full", [(8, 7), (10, 8), (16, 14), (4, 3), (2, 1)])
def test_annealing_boundary_is_the_authors(epochs, first_full):
    """Authors' IBSampler: epoch e resets with iterations = e + 1, full data once iterations > delta * E."""
    rs = [prune_ratio_at(e, epochs, 0.5) for e in range(epochs)]
    assert rs[0] == 0.0  # warm-up
    assert rs[1:first_full] == [0.5] * (first_full - 1)
    assert rs[first_full:] == [0.0] * (epochs - first_full)
    assert first_full == math.floor(0.875 * epochs)
    assert [e + 1 > 0.875 * epochs for e in range(epochs)] == [e >= first_full for e in range(epochs)]
    pol = SelectionPolicy("infobatch", 10, 0.5, epochs=epochs, seed=0)
    full = pol.select(first_full, SCORES)
    assert full.n_kept == 10 and torch.all(full.weights == 1)
    if first_full > 1:
        assert pol.select(first_full - 1, SCORES).n_kept == 7


# -- (b) InfoBatch held to the budget

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_infobatch_budget_meets_the_budget_exactly(seed, ratio):
    n = 357
    g = torch.Generator().manual_seed(seed)
    skewed = torch.rand(n, generator=g, dtype=torch.float64) ** 4  # most below the mean
    heavy = 1 - torch.rand(n, generator=g, dtype=torch.float64) ** 4  # most above: over the budget
    keep = round((1 - ratio) * n)
    pol = SelectionPolicy("infobatch-budget", n, ratio, epochs=20, seed=seed)
    for scores in (skewed, heavy):
        for e in range(1, 5):
            sel = pol.select(e, scores)
            assert sel.n_kept == keep == sel.indices.unique().numel()
        low = scores < scores.mean()
        n_low = int(low.sum())
        sel = select_infobatch_budget(scores, keep, epoch_generator(seed, 1), hard_cap=0.5)
        kept = _kept_mask(sel, n)
        if n - n_low <= keep:  # InfoBatch with r chosen for the budget
            take = keep - (n - n_low)
            assert kept[~low].all() and int(kept[low].sum()) == take
            if take:
                assert torch.allclose(sel.weights[kept & low], torch.tensor(n_low / take))
                ib = select_infobatch(scores, 1 - take / n_low, epoch_generator(seed, 1))
                assert torch.equal(ib.indices, sel.indices)  # the same draw as InfoBatch at that r
        else:  # capped: the highest hard_cap * keep outright, the rest drawn from the others
            n_cap = math.floor(0.5 * keep)
            top = torch.argsort(scores, descending=True)[:n_cap]
            assert kept[top].all() and (sel.weights[top] == 1).all()


def test_infobatch_budget_unvisited_kept_beyond_the_cap():
    n = 1000
    scores = torch.cat([torch.linspace(10.0, 5.0, 300), torch.full((700,), 1.0)]).double()
    scores[:80] = math.inf
    sel = select_infobatch_budget(scores, 100, epoch_generator(0, 1), hard_cap=0.5)
    assert sel.n_kept == 100 and _kept_mask(sel, n)[:80].all()
    with pytest.raises(ValueError, match="hard_cap"):
        select_infobatch_budget(scores, 100, epoch_generator(0, 1), hard_cap=0.0)


# -- (c) scores over observed nodes only

def test_node_losses_nan_where_unobserved():
    err = torch.rand(2, 3, 4, 1)  # graph [B, S, N, C]
    mask = torch.ones_like(err)
    mask[0, :, 2:] = 0  # window 0: nodes 2, 3 never observed
    mask[1, 0, 1] = 0  # window 1: node 1 observed in 2 of 3 steps
    nl = node_losses(err, mask)
    assert torch.isnan(nl[0, 2:]).all() and not torch.isnan(nl[0, :2]).any() and not torch.isnan(nl[1]).any()
    assert torch.isclose(nl[1, 1], err[1, 1:, 1].mean())
    grid = torch.rand(1, 2, 1, 2, 2)  # [B, S, C, H, W]
    gm = torch.ones_like(grid)
    gm[..., 0, 1] = 0
    assert torch.isnan(node_losses(grid, gm)[0, 1]) and torch.isfinite(node_losses(grid, gm)[0, [0, 2, 3]]).all()


def test_scores_ignore_unobserved_nodes():
    observed = torch.tensor([[10.0, 8.0, 1.0, 1.0, 2.0, 3.0, 1.0, 2.0, 1.0, 1.0]], dtype=torch.float64)  # 10 observed
    with_outage = torch.cat([observed, torch.full((1, 10), math.nan, dtype=torch.float64)], dim=1)  # + 10 unobserved
    as_zero = torch.nan_to_num(with_outage, nan=0.0)  # what the old 0-filled node losses gave
    assert torch.allclose(mean_loss_score(with_outage), observed.mean(1))
    assert mean_loss_score(as_zero) < mean_loss_score(with_outage)  # 0s would make it look easy
    # top-k over the observed nodes: k = ceil(0.1 * 10) = 1 (over all 20 nodes it would be 2)
    s = complexity_score(with_outage, beta=1.0, topk_fraction=0.1)
    assert torch.allclose(s, observed.mean(1) + 10.0)
    assert torch.allclose(s, complexity_score(observed, beta=1.0, topk_fraction=0.1))
    assert torch.allclose(complexity_score(as_zero, 1.0, 0.1), as_zero.mean(1) + 9.0)
    # k at least 1; per-row k; a window with no observed node gets NaN
    rows = torch.tensor([[5.0, math.nan, math.nan], [1.0, 2.0, 3.0], [math.nan] * 3], dtype=torch.float64)
    s = complexity_score(rows, beta=1.0, topk_fraction=0.5)
    assert torch.allclose(s[:2], torch.tensor([5.0 + 5.0, 2.0 + 2.5], dtype=torch.float64)) and torch.isnan(s[2])
    assert torch.isnan(mean_loss_score(rows)[2])


def test_complexity_score_equals_a_row_by_row_reference_with_outages():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 37, generator=g, dtype=torch.float64)
    x[torch.rand(200, 37, generator=g) < torch.rand(200, 1, generator=g)] = math.nan  # 0-100% of each row missing
    s = complexity_score(x, beta=0.7, topk_fraction=0.2)
    for row, got in zip(x, s):
        o = row[~torch.isnan(row)]
        if o.numel() == 0:
            assert torch.isnan(got)
            continue
        k = max(1, math.ceil(0.2 * o.numel()))
        assert got.item() == pytest.approx(o.mean().item() + 0.7 * o.sort(descending=True).values[:k].mean().item())


class _Strategy:
    def __init__(self):
        self.seen = []

    def reduce(self, t, reduce_op="sum"):
        self.seen.append(t.clone())
        return t  # as if the other rank contributed nothing


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("method", ["infobatch", "st-prune"])
def test_callback_keeps_previous_score_for_unobserved_window(world, method):
    n = 6
    pol = SelectionPolicy(method, n, 0.5, epochs=8, seed=0)
    view = IndexedDataset([{"x": torch.zeros(1)}] * n)
    cb = SamplePruning(pol, view, PrunedSampler(n), PruningOptions(method, 0.5, complexity_weight=0.0))
    strategy = _Strategy()
    trainer = SimpleNamespace(world_size=world, current_epoch=0, strategy=strategy)
    module = SimpleNamespace(device=torch.device("cpu"))

    def epoch(node_loss):
        batch = {"pad": torch.zeros(n, dtype=torch.bool), "index": torch.arange(n)}
        cb.on_train_batch_start(trainer, module, batch, 0)
        cb.on_train_batch_end(trainer, module, {"loss": torch.tensor(0.0), "sample_node_loss": node_loss}, batch, 0)
        cb.on_train_epoch_end(trainer, module)

    nl = torch.arange(1.0, 1.0 + 3 * n).reshape(n, 3)
    nl[5] = math.nan  # window 5 never observed
    epoch(nl)
    first = cb.scores.clone()
    assert math.isinf(first[5]) and torch.isfinite(first[:5]).all()  # not scored: still unvisited
    nl2 = nl + 100
    nl2[2] = math.nan  # window 2 has an outage this visit
    nl2[3, 1:] = math.nan  # window 3 observes node 0 only
    epoch(nl2)
    assert cb.scores[2] == first[2]  # previous score kept, not NaN
    assert not torch.isnan(cb.scores).any()
    assert math.isclose(float(cb.scores[3]), float(nl2[3, 0]) * (2.0 if method == "st-prune" else 1.0))
    for t in strategy.seen:  # the DDP all-reduce never sees a NaN
        assert not torch.isnan(t).any()
    assert len(strategy.seen) == (2 if world > 1 else 0)


# -- (d) per-window loss weights

def test_weighted_window_mae_weight_independent_of_observed_count():
    err = torch.empty(2, 3, 4, 2)  # [B, S, N, C]
    err[0], err[1] = 2.0, 5.0
    full = torch.ones_like(err)
    half = full.clone()
    half[1, :, :2] = 0  # window 1: half its entries unobserved
    w = torch.tensor([1.0, 3.0])
    a = weighted_window_mae(err, full, w)
    b = weighted_window_mae(err, half, w)
    assert torch.isclose(a, torch.tensor((1 * 2.0 + 3 * 5.0) / 2)) and torch.isclose(a, b)
    # (the old pooled form (err * m * w).sum() / m.sum() gave window 1 half the weight here)
    assert not torch.isclose(b, (err * half * w[:, None, None, None]).sum() / half.sum())
    # padding contributes nothing and is not counted; neither is a window with no observed entry
    err3 = torch.cat([err, torch.full((2, 3, 4, 2), 7.0)])
    m3 = torch.cat([half, torch.ones(1, 3, 4, 2), torch.zeros(1, 3, 4, 2)])
    w3 = torch.tensor([1.0, 3.0, 0.0, 4.0])
    pad = torch.tensor([False, False, True, False])
    assert torch.isclose(weighted_window_mae(err3, m3, w3, pad), b)
    # no real window at all: 0, still differentiable
    e = torch.rand(1, 2, 2, 1, requires_grad=True)
    z = weighted_window_mae(e, torch.zeros_like(e), torch.ones(1))
    assert float(z.detach()) == 0.0 and z.requires_grad




def test_training_step_per_window_weights():
    rng = np.random.default_rng(0)
    t = np.arange(300)[:, None]
    v = (np.sin(2 * np.pi * t / 24 + np.arange(5)) + 0.1 * rng.normal(size=(300, 5)))[..., None].astype(np.float32)
    data = SpatioTemporalData(values=v, kind="graph", name="tiny", source="tiny", steps_per_day=24)
    scaler = StandardScaler.fit(data, (0, 200))
    ds = IndexedDataset(WindowDataset(data, (0, 200), 6, 3, scaler))
    items = [ds[i] for i in range(3)] + [ds[len(ds) + 0]]  # the last one is a padding copy of window 0
    batch = torch.utils.data.default_collate(items)
    batch["y_mask"] = batch["y_mask"].clone()
    batch["y_mask"][1, :, :2] = False  # window 1 observes 3 of its 5 nodes
    module = ForecastModule(_Lin(6, 3), scaler)
    batch["weight"] = torch.tensor([1.0, 2.0, 0.5, 0.0])
    loss = module.training_step(batch, 0)["loss"]
    with torch.no_grad():
        err = (module.forward_scaled(batch) - (batch["y"] - module.mean) / module.std).abs()
    m = batch["y_mask"].float()
    per = [(err[b] * m[b]).sum() / m[b].sum() for b in range(3)]
    expect = (1.0 * per[0] + 2.0 * per[1] + 0.5 * per[2]) / 3  # padding: not counted
    assert torch.isclose(loss, expect, atol=1e-6) and loss.requires_grad
    # the padding item contributes 0: dropping it changes nothing
    sub = {k: (v[:3] if torch.is_tensor(v) else v) for k, v in batch.items()}
    assert torch.isclose(module.training_step(sub, 0)["loss"], loss, atol=1e-6)
    # no weight key: the pooled masked MAE, as before
    plain = module.training_step({k: v for k, v in sub.items() if k not in ("weight", "pad")}, 0)["loss"]
    assert torch.isclose(plain, (err[:3] * m[:3]).sum() / m[:3].sum(), atol=1e-6)
