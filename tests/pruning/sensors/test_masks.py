import pytest
import torch

from sparsest.errors import ConfigError
from sparsest.pruning.masks import drop_regrow, n_to_prune, prune_smallest, pruning_schedule, random_keep
from sparsest.pruning.sensors.layout import SensorLayout
from sparsest.pruning.sensors.options import PLACEMENT_SCHEMES
from sparsest.pruning.sensors.search import SCHEMES, SearchSettings, SensorSearch, build_plan, init_keep
from sparsest.pruning.sensors.wrapper import SensorMaskedForecaster


@pytest.mark.parametrize("n,s,rounds", [(207, 0.3, 10), (144, 0.3, 10), (117, 0.5, 7), (10, 0.1, 3), (50, 0.0, 4)])
def test_schedule_reaches_target(n, s, rounds):
    sched = pruning_schedule(n, s, rounds)
    assert len(sched) == rounds and sched[-1] == n_to_prune(n, s) == round(s * n)
    assert all(b >= a for a, b in zip(sched, sched[1:]))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_sparsity_out_of_range(bad):
    with pytest.raises(ConfigError, match="--sparsity"):
        n_to_prune(10, bad)


def test_prune_smallest_only_touches_kept():
    scores = torch.tensor([0.5, -0.1, 2.0, 0.05, 1.0, -3.0])
    keep = torch.tensor([True, True, True, False, True, True])
    new = prune_smallest(scores, keep, 2)
    assert new.tolist() == [False, False, True, False, True, True]  # |m| 0.1 and 0.5 go; 0.05 was already off
    assert int(new.sum()) == int(keep.sum()) - 2


@pytest.mark.parametrize("seed", range(5))
def test_drop_regrow_invariants(seed):
    g = torch.Generator().manual_seed(seed)
    n = 50
    keep = random_keep(n, 0.3, g)
    grad = torch.rand(n, generator=g)
    new, dropped, regrown = drop_regrow(grad, keep, 4)
    assert int(new.sum()) == int(keep.sum())  # sparsity unchanged
    assert set(dropped.tolist()).isdisjoint(regrown.tolist())
    assert keep[dropped].all() and not keep[regrown].any()
    assert not new[dropped].any() and new[regrown].all()
    # dropped are the kept sensors with the smallest gradient, regrown the off ones with the largest
    assert grad[dropped].max() <= grad[keep & new].min()
    assert grad[regrown].min() >= grad[~keep & ~new].max() if (~keep & ~new).any() else True


def test_drop_regrow_caps_swap():
    keep = torch.tensor([True, True, False])
    new, d, r = drop_regrow(torch.tensor([1.0, 2.0, 3.0]), keep, 5)
    assert len(d) == len(r) == 1 and int(new.sum()) == 2


class _Id(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(n, 1))

    def forward(self, x, tod=None, dow=None):
        return (x * self.w)[:, -1:]


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s not in PLACEMENT_SCHEMES])
def test_every_search_scheme_reaches_target_sparsity(scheme):
    n = 40
    model = SensorMaskedForecaster(_Id(n), SensorLayout("graph", n))
    settings = SearchSettings(sparsity=0.3, rounds=5, network_steps=1, mask_steps=1, regrow_fraction=0.05)
    plan, random_start = build_plan(scheme, n, settings)
    init_keep(model, scheme, settings, seed=0)
    search = SensorSearch(model, plan)
    torch.manual_seed(0)
    for phase in plan:  # drive the plan without a trainer: random scores and gradients
        with torch.no_grad():
            model.scores.copy_(torch.rand(n))
            model.grad_acc.copy_(torch.rand(n))
        for action, k in phase.actions:
            search.apply(action, k)
    assert int((~model.keep).sum()) == 12  # round(0.3 * 40)
    assert random_start == (scheme in ("dst", "random"))
    swaps = [h for h in search.history if h["action"] == "drop_regrow"]
    assert (len(swaps) > 0) == (scheme in ("dynst-paper", "dst"))
    for h in swaps:
        assert set(h["dropped"]).isdisjoint(h["regrown"])


def test_unknown_scheme():
    with pytest.raises(ConfigError, match="--scheme"):
        build_plan("magic", 10, SearchSettings())


def test_grid_layout_patches_and_effective_mask_gradient():
    layout = SensorLayout("grid", grid_shape=(5, 7), patch_size=2)
    assert layout.n_sensors == 3 * 4
    assert layout.pixel_to_sensor[4, 6] == 11 and layout.pixel_to_sensor[0, 1] == 0

    class Net(torch.nn.Module):
        def forward(self, x, tod=None, dow=None):
            return x[:, -1:]

    model = SensorMaskedForecaster(Net(), layout)
    model.keep[3] = False
    model.track_grad = True
    x = torch.ones(2, 3, 1, 5, 7)
    y = model(x)
    assert y[0, 0, 0, 0, 6] == 0 and y[0, 0, 0, 0, 0] == 1  # patch 3 (rows 0-1, col 6) switched off
    y.sum().backward()
    assert model.grad_acc[3] > 0  # gradient w.r.t. k * m exists for a switched-off sensor
    assert model.scores.grad[3] == 0
