"""Dyna-Pruner's readings: tiled execution equals masked dense execution, the soft-to-hard
schedule ends with hard masks, the global unit budget is met, options are checked."""

import pytest
import torch
import torch.nn.functional as F

from sparsest.backbones import DataSpec, create_backbone
from sparsest.cli import main
from sparsest.efficiency import count_flops
from sparsest.pruning.adaptive import READINGS, DynaPruner, TilePlan, expand_tiles, soft_topk, tile_scores, tiled_conv2d

SPEC = DataSpec(kind="grid", window=4, horizon=3, n_channels=1, n_nodes=32 * 32, height=32, width=32)
TINY = {"simvp": {"hidden_size": 8, "hid_t": 16, "n_t": 1}, "tau": {"hidden_size": 8, "hid_t": 16, "n_t": 1},
        "convlstm": {"hidden_size": 8, "n_layers": 1}}


@pytest.mark.parametrize("H,W,k,stride,pad,dil,groups,grid,repeat", [
    (33, 49, 3, 1, 1, 1, 1, (4, 6), 1),   # odd frame, partial edge tiles
    (33, 49, 3, 2, 1, 1, 1, (8, 8), 2),   # stride 2, tiles outside the small output frame, frames per sample
    (64, 64, 7, 1, 9, 3, 8, (8, 8), 1),   # large dilated depthwise kernel on small tiles
    (16, 16, 5, 1, 2, 1, 8, (4, 4), 1),   # depthwise
    (17, 25, 1, 1, 0, 1, 1, (4, 6), 3),   # pointwise path
    (20, 20, 3, 1, 1, 1, 2, (4, 4), 1),   # grouped (neither dense nor depthwise): always the tile stack
])
@pytest.mark.parametrize("path", ["auto", "stack", "pixels"])
@pytest.mark.parametrize("B", [1, 3])  # one sample (shared tiles) and samples with different tiles
def test_tiled_conv_equals_masked_dense_conv(H, W, k, stride, pad, dil, groups, grid, repeat, path, B, monkeypatch):
    from sparsest.pruning.adaptive import tiles

    monkeypatch.setattr(tiles, "KXK", path)
    g = torch.Generator().manual_seed(0)
    C = 8
    x = torch.randn(B * repeat, C, H, W, generator=g)
    w, b = torch.randn(C, C // groups, k, k, generator=g), torch.randn(C, generator=g)
    mask = (torch.rand(B, *grid, generator=g) > 0.6).float()
    if B > 1:
        mask[0] = 0.0  # a sample with no active tile
    dense = F.conv2d(x, w, b, stride, pad, dil, groups)
    masked = dense * expand_tiles(mask, dense.shape[-2:]).repeat_interleave(repeat, 0)[:, None]
    tiled = tiled_conv2d(x, w, b, stride, pad, dil, groups, TilePlan(mask), grid, repeat)
    assert tiled.shape == dense.shape
    torch.testing.assert_close(tiled, masked, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["simvp", "tau", "convlstm"])
@pytest.mark.parametrize("reading", ["tiles", "tiles+channels", "channels"])
def test_readings_gated_and_tiled_execution_equal_masked(name, reading):
    torch.manual_seed(0)
    model = DynaPruner(create_backbone(name, SPEC, **TINY[name]), SPEC, 0.7, 0.5, reading=reading, tiles=(4, 4)).eval()
    x = torch.randn(3, SPEC.window, 1, SPEC.height, SPEC.width)
    model.calibrate_thresholds(x)
    outs = {}
    with torch.no_grad():
        for mode in ("masked", "gated", "tiled"):
            model.mode = mode
            outs[mode] = model(x)
    torch.testing.assert_close(outs["gated"], outs["masked"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(outs["tiled"], outs["masked"], atol=1e-5, rtol=1e-4)
    if reading.startswith("tiles"):  # outside the active tiles the forecast is the last frame (persistence)
        off = model.last["data_mask"] < 0.5  # [B, H, W]
        assert off.any()
        last = x[:, -1, 0]  # [B, H, W]
        for s in range(SPEC.horizon):
            assert torch.equal(outs["masked"][:, s, 0][off], last[off])


def test_tiled_execution_computes_fewer_flops():
    spec = DataSpec(kind="grid", window=4, horizon=3, n_channels=1, n_nodes=64 * 64, height=64, width=64)
    torch.manual_seed(0)
    dense = create_backbone("simvp", spec, hidden_size=8, hid_t=16, n_t=1).eval()
    model = DynaPruner(create_backbone("simvp", spec, hidden_size=8, hid_t=16, n_t=1), spec, 0.7, reading="tiles").eval()
    assert model.tiles == (8, 8)  # about 8 pixels a side by default
    x = torch.randn(1, 4, 1, 64, 64)
    model.mode = "gated"
    with torch.no_grad():
        assert count_flops(lambda: model(x)) < 0.6 * count_flops(lambda: dense(x))


@pytest.mark.parametrize("hw,grid", [((32, 48), (4, 6)), ((64, 64), (8, 8)), ((70, 70), (8, 8)), ((128, 128), (8, 8)),
                                     ((256, 40), (8, 5))])
def test_default_tile_grid_is_8_pixel_tiles_at_most_8_per_side(hw, grid):
    h, w = hw
    spec = DataSpec(kind="grid", window=4, horizon=3, n_channels=1, n_nodes=h * w, height=h, width=w)
    model = DynaPruner(create_backbone("simvp", spec, hidden_size=8, hid_t=16, n_t=1), spec, 0.7, reading="tiles")
    assert model.tiles == grid


def test_tile_scores_and_soft_topk():
    s = torch.arange(16.0).view(1, 4, 4)
    ts = tile_scores(s, (2, 2))
    assert torch.equal(ts, torch.tensor([[[2.5, 4.5], [10.5, 12.5]]]))
    soft = soft_topk(ts, 2, 1.0)
    assert ((soft > 0) & (soft < 1)).all() and soft[0, 1, 1] > 0.5 > soft[0, 0, 0]
    hard = soft_topk(ts, 2, None)
    assert torch.equal(hard, torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]))


def _train(model, steps, x, y):
    opt = torch.optim.AdamW([{"params": [p for n, p in model.named_parameters() if n != "tau"], "lr": 1e-3},
                             {"params": [model.tau], "lr": 0.05}])
    model.train()
    for _ in range(steps):
        loss = (model(x) - y).abs().mean() + model.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_soft_to_hard_schedule_ends_with_hard_masks_and_meets_the_global_budget():
    torch.manual_seed(0)
    steps = 20
    model = DynaPruner(create_backbone("simvp", SPEC, **TINY["simvp"]), SPEC, 0.6, 0.7, reading="tiles+channels", tiles=(4, 4),
                       hard_from=0.5, total_steps=steps)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 4, 1, 32, 32, generator=g), torch.randn(6, 3, 1, 32, 32, generator=g)
    model.calibrate_thresholds(x)
    model.train()
    scales = []
    for _ in range(steps):
        scales.append(model.temperature_scale())
        _train(model, 1, x, y)
        if scales[-1] is not None:  # soft: neither data nor unit masks are binary
            assert not _binary(model.last["tile_mask"]) and not _binary(model.last["filter_mask"])
    assert scales[0] == pytest.approx(1.0) and all(a > b for a, b in zip(scales[:9], scales[1:10]))
    assert scales[10:] == [None] * 10  # hard from half of the steps on
    assert _binary(model.last["tile_mask"]) and _binary(model.last["filter_mask"])  # training ended hard
    assert int(model.steps_done) == steps
    model.calibrate_budget([{"x": x}])
    model.eval()
    with torch.no_grad():
        model(x)
    active = float(model.last["filter_mask"].mean())
    assert active == pytest.approx(0.3, abs=0.02)  # Eq. 2: one budget over all units
    assert float(model.last["tile_mask"].mean()) == pytest.approx(round(0.4 * 16) / 16)


def _binary(m):
    return bool(((m == 0) | (m == 1)).all())


def test_every_reading_builds_and_tiles_reading_has_no_unit_gating():
    for reading in READINGS:
        m = DynaPruner(create_backbone("simvp", SPEC, **TINY["simvp"]), SPEC, 0.7, 0.7, reading=reading)
        assert m.gating == (reading != "tiles") and m.spatial == reading.startswith("tiles")
    with pytest.raises(ValueError, match="reading"):
        DynaPruner(create_backbone("simvp", SPEC, **TINY["simvp"]), SPEC, 0.7, 0.7, reading="pixels")


@pytest.mark.parametrize("args,needle", [
    (["--reading", "tiles", "--model-sparsity", "0.5"], "--model-sparsity"),
    (["--tiles", "4"], "--tiles"),
    (["--reading", "channels", "--tiles", "4", "4"], "--tiles"),
    (["--reading", "channels-hard", "--hard-from", "0.5"], "--hard-from"),
    (["--hard-from", "0"], "--hard-from"),
    (["--reading", "tiles", "--data-sparsity", "0"], "--data-sparsity"),
    (["--reading", "blocks"], "--reading"),
    (["--loss", "huber"], "--loss"),
])
def test_reading_options_are_checked(tmp_path, capsys, args, needle):
    code = main(["compress", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not any(tmp_path.iterdir())


def test_generator_warm_start_points_the_tiles_at_the_future_change():
    torch.manual_seed(0)
    m = DynaPruner(create_backbone("simvp", SPEC, **TINY["simvp"]), SPEC, 0.75, reading="tiles", tiles=(4, 4))
    x, y = torch.zeros(4, 4, 1, 32, 32), torch.zeros(4, 3, 1, 32, 32)
    x[:, :, :, 2:8, 2:8] = 1.0  # a cell in the top-left tile, moving down-right
    y[:, :, :, 4:10, 4:10] = 1.0
    batches = [{"x": x, "y_scaled": y, "y_mask": torch.ones_like(y, dtype=torch.bool)}]
    m.eval()
    with torch.no_grad():
        m(x)
    assert float(m.last["S"].std()) < 1e-6  # flat before
    m.warm_start_generator(batches, steps=150)
    with torch.no_grad():
        m(x)
    assert m.last["tile_mask"][:, :2, :2].sum() >= 4 * 3  # the 4 kept tiles sit where the cell moves


@pytest.mark.parametrize("H,W,grid,B,opts", [
    (32, 32, (4, 4), 3, TINY["simvp"]),                                # samples with different tiles
    (64, 48, (8, 6), 1, {"hidden_size": 8, "hid_t": 16, "n_t": 2}),   # batch 1, two gSTA blocks
    (40, 24, (5, 3), 2, {"hidden_size": 8, "hid_t": 16, "n_t": 1, "n_s": 4}),  # two down-samplings
])
def test_simvp_compact_rows_equal_masked_dense(H, W, grid, B, opts, monkeypatch):
    from sparsest.pruning.adaptive import rows

    spec = DataSpec(kind="grid", window=4, horizon=3, n_channels=1, n_nodes=H * W, height=H, width=W)
    torch.manual_seed(0)
    model = DynaPruner(create_backbone("simvp", spec, **opts), spec, 0.7, reading="tiles", tiles=grid).eval()
    for m in model.modules():  # BatchNorm statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(B, 4, 1, H, W)
    calls = []
    monkeypatch.setattr(rows, "simvp_forward", lambda *a, f=rows.simvp_forward: calls.append(1) or f(*a))
    with torch.no_grad():
        model.mode = "masked"
        masked = model(x)
        for mode in ("gated", "tiled"):
            model.mode = mode
            torch.testing.assert_close(model(x), masked, atol=1e-5, rtol=1e-4)
    assert len(calls) == 2  # both inference modes ran on compact rows
    assert rows.supports(model.backbone, (H, W), grid)


def test_compact_rows_fall_back_where_tiles_do_not_divide_the_frame():
    from sparsest.pruning.adaptive import rows

    spec = DataSpec(kind="grid", window=4, horizon=3, n_channels=1, n_nodes=33 * 49, height=33, width=49)
    model = DynaPruner(create_backbone("simvp", spec, **TINY["simvp"]), spec, 0.7, reading="tiles").eval()
    assert not rows.supports(model.backbone, (33, 49), model.tiles)
    channels = DynaPruner(create_backbone("simvp", SPEC, **TINY["simvp"]), SPEC, 0.7, 0.5, reading="tiles+channels").eval()
    gate = channels.backbone.translator[0]
    gate.mask = torch.ones(1, gate.n_units)  # channel state on a gate: the generic path
    assert not rows.supports(channels.backbone, (32, 32), channels.tiles)
    x = torch.randn(2, 4, 1, 33, 49)
    with torch.no_grad():
        model.mode = "masked"
        masked = model(x)
        model.mode = "tiled"
        torch.testing.assert_close(model(x), masked, atol=1e-5, rtol=1e-4)


def test_conv2d_pads_explicitly_with_the_same_values():
    from sparsest.backbones.layers import Conv2d, conv2d
    from sparsest.pruning.adaptive.gating import find_prunable_convs

    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(2, 8, 20, 20, generator=g), torch.randn(8, 1, 7, 7, generator=g), torch.randn(8, generator=g)
    torch.testing.assert_close(conv2d(x, w, b, 1, 9, 3, 8), F.conv2d(x, w, b, 1, 9, 3, 8))
    torch.testing.assert_close(conv2d(x, w, b, 2, (8, 1), 1, 8), F.conv2d(x, w, b, 2, (8, 1), 1, 8))
    m, ref = Conv2d(8, 8, 7, padding=9, dilation=3, groups=8), torch.nn.Conv2d(8, 8, 7, padding=9, dilation=3, groups=8)
    ref.load_state_dict(m.state_dict())  # the same parameters as nn.Conv2d
    torch.testing.assert_close(m(x), ref(x))
    assert find_prunable_convs(torch.nn.Sequential(m)) == ["0"]
    with pytest.raises(ValueError, match="padding_mode"):
        Conv2d(8, 8, 3, padding=1, padding_mode="reflect")


def test_simvp_compact_rows_with_uneven_tiles_per_sample():
    from sparsest.pruning.adaptive import rows
    from sparsest.pruning.adaptive.gating import clear_gates

    torch.manual_seed(1)
    model = DynaPruner(create_backbone("simvp", SPEC, **TINY["simvp"]), SPEC, 0.7, reading="tiles", tiles=(4, 4)).eval()
    mask = torch.zeros(2, 4, 4)
    mask[0, 1, 2] = mask[0, 3, 0] = 1.0  # 2 tiles
    mask[1, :2, 1:] = 1.0  # 6 tiles
    x = torch.randn(2, 4, 1, 32, 32)
    with torch.no_grad():
        for g in model.gates:
            g.spatial = mask
        dense = model.backbone(x)
        clear_gates(model.gates)
        got = rows.simvp_forward(model.backbone, x, TilePlan(mask), (4, 4))
    on = expand_tiles(mask, (32, 32)).bool()[:, None, None].expand_as(dense)
    torch.testing.assert_close(got[on], dense[on], atol=1e-5, rtol=1e-4)
    assert torch.equal(got[~on], x[:, -1:].expand_as(dense)[~on])  # persistence elsewhere


def test_compiled_rows_equal_eager_rows_for_new_plans_and_tile_counts():
    from sparsest.pruning.adaptive import rows

    torch.manual_seed(2)
    model = DynaPruner(create_backbone("simvp", SPEC, **TINY["simvp"]), SPEC, 0.7, reading="tiles", tiles=(4, 4)).eval()
    model.compile_rows(backend="eager")  # Dynamo tracing of the row forward (Inductor's code generation is torch's)
    compiled = model.__dict__["_compiled_rows"]
    x = torch.randn(1, 4, 1, 32, 32)
    masks = [torch.zeros(1, 4, 4) for _ in range(3)]
    masks[0][0, 0, :3] = 1.0
    masks[1][0, 2:, 3] = masks[1][0, 1, 1] = 1.0  # other tiles, as many
    masks[2][0, :2, :] = 1.0  # more tiles: other shapes, another recipe
    with torch.no_grad():
        for mask in masks:
            torch.testing.assert_close(compiled(x, TilePlan(mask)), rows.simvp_forward(model.backbone, x, TilePlan(mask), (4, 4)))
        y = model(x)  # the wrapper takes the compiled path
        model.__dict__.pop("_compiled_rows")
        torch.testing.assert_close(y, model(x))
    assert len(compiled.recipes) == 2
    with pytest.raises(ValueError, match="tiles"):
        DynaPruner(create_backbone("simvp", SPEC, **TINY["simvp"]), SPEC, 0.7, 0.5, reading="channels").compile_rows()
