"""Radar rain sets (radar-bom, radar-knmi and their full-resolution -full forms), the block
mean that coarsens them, grid ``domain``, and the optical-flow ``extrapolation`` baseline."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsest.backbones import DataSpec, create_backbone, get_backbone_entry, list_backbones
from sparsest.data import SpatioTemporalData, StandardScaler
from sparsest.data.coarsen import block_mean, span_to_multiple
from sparsest.datasets import get_dataset_entry, load_dataset
from sparsest.datasets.builtin import BOM_FACTOR, KNMI_FACTOR
from sparsest.errors import ConfigError, DataError
from tests.conftest import SHARED_DATA, requires_shared

BOM = SHARED_DATA / "radar-bom-brisbane" / "bom_66_20201031_prcp_c10.npz"
KNMI = SHARED_DATA / "radar-knmi" / "knmi_nl25_20100826_5min.npz"


@pytest.fixture(scope="module")
def bom_raw():
    with np.load(BOM) as z:
        return z["precip_code"], float(z["scale_factor"])


@pytest.fixture(scope="module")
def bom():
    return load_dataset("radar-bom", SHARED_DATA)[0]


@pytest.fixture(scope="module")
def knmi_raw():
    with np.load(KNMI) as z:
        return z["accum_code"], float(z["gain"]), float(z["offset"])


@pytest.fixture(scope="module")
def knmi():
    return load_dataset("radar-knmi", SHARED_DATA)[0]


# ----------------------------------------------------------------------------- block mean


def test_block_mean_over_valid_pixels_and_all_missing_block_is_nan():
    nan = np.nan
    v = np.array([[1, 3, nan, nan, nan, nan],
                  [5, 7, nan, 2, nan, nan]], dtype=np.float32)  # three 2 x 2 blocks: 4, 3 and 0 valid pixels
    out = block_mean(v, 2)
    assert out.shape == (1, 3) and out.dtype == np.float32
    assert out[0, 0] == 4.0 and np.isnan(out[0, 1]) and np.isnan(out[0, 2])  # 1 of 4 valid < half; none valid: NaN, never 0
    v[0, 3] = 4.0  # now 2 of 4 valid: exactly half is enough
    assert block_mean(v, 2)[0, 1] == 3.0
    z = np.zeros((3, 2, 4, 4), dtype=np.float32)  # leading axes pass through; zeros stay zeros
    assert block_mean(z, 4).shape == (3, 2, 1, 1) and (block_mean(z, 4) == 0).all()
    with pytest.raises(ValueError, match="whole number"):
        block_mean(np.zeros((5, 4)), 2)


def test_span_to_multiple_grows_inside_the_array_or_trims():
    assert span_to_multiple(160, 579, 700, 3) == (160, 580)
    assert span_to_multiple(220, 637, 765, 3) == (220, 637)  # 417 = 3 x 139 already
    assert span_to_multiple(0, 5, 5, 2) == (0, 4)  # 6 would not fit: trimmed
    assert span_to_multiple(8, 10, 10, 4) == (6, 10)  # pushed back inside


def test_grid_domain_allows_cells_never_observed_outside_it():
    v = np.random.default_rng(0).normal(size=(5, 1, 3, 4)).astype(np.float32)
    v[:, :, 0, 0] = np.nan
    with pytest.raises(DataError, match="1 grid cell"):
        SpatioTemporalData(v, "grid").validate()
    dom = np.ones((3, 4), dtype=bool)
    dom[0, 0] = False
    SpatioTemporalData(v, "grid", domain=dom).validate()
    dom[1, 1] = False  # a cell with values outside the domain
    with pytest.raises(DataError, match="outside the domain hold values"):
        SpatioTemporalData(v, "grid", domain=dom).validate()
    with pytest.raises(DataError, match="bool"):
        SpatioTemporalData(v, "grid", domain=np.ones((4, 3), dtype=bool)).validate()


# ----------------------------------------------------------------------------- the data sets


def test_radar_sets_listed():
    for name, w, h in (("radar-bom", 6, 6), ("radar-bom-2km", 6, 6), ("radar-bom-full", 6, 6), ("radar-knmi", 3, 6), ("radar-knmi-full", 3, 6)):
        e = get_dataset_entry(name)
        assert e is not None and e.kind == "grid" and (e.window, e.horizon) == (w, h), name
    assert "heavy for a CPU" in get_dataset_entry("radar-bom-full").summary
    assert "heavy for a CPU" in get_dataset_entry("radar-knmi-full").summary


@requires_shared
def test_radar_bom_shape_units_rate_and_missing(bom, bom_raw):
    code, scale = bom_raw
    d, f = bom, BOM_FACTOR
    n = 512 // f
    assert d.values.shape == (144, 1, n, n) and d.values.dtype == np.float32  # [T, C, H, W]
    assert (d.units, d.channels, d.steps_per_day, d.kind) == ("mm/h", ["rain_rate"], 144, "grid")
    assert d.timestamps[0] == np.datetime64("2020-10-31T00:00") and d.timestamps[-1] == np.datetime64("2020-10-31T23:50")
    assert len(d.latitude) == n and len(d.longitude) == n and d.latitude[0] > d.latitude[-1]
    assert any(f"{f} x {f} block means" in m for m in d.notes) and any("missing" in m for m in d.notes)
    assert (code == -2).sum() > 0  # -1 = no data, and a few -2 (undocumented): both missing
    blocks = code.reshape(144, n, f, n, f)
    n_bad = (blocks < 0).sum(axis=(2, 4))
    # the rainiest all-valid block, by hand: mean of its codes x 0.05 mm per 10 min x 6 -> mm/h
    t, i, j = np.unravel_index(np.nanargmax(np.where(n_bad == 0, d.values[:, 0], np.nan)), n_bad.shape)
    raw = code[t, f * i:f * (i + 1), f * j:f * (j + 1)]
    assert d.values[t, 0, i, j] == pytest.approx(raw.mean() * scale * 6, rel=1e-5)
    assert d.values[t, 0, i, j] > 20  # mm/h: a heavy cell, not mm per 10 min
    # blocks with no-data pixels: mean over the valid ones while at least half are valid, else NaN
    assert np.array_equal(np.isnan(d.values[:, 0]), n_bad > f * f // 2)
    t, i, j = np.argwhere((n_bad > 0) & (n_bad <= f * f // 2))[0]
    raw = code[t, f * i:f * (i + 1), f * j:f * (j + 1)]
    assert d.values[t, 0, i, j] == pytest.approx(raw[raw >= 0].mean() * scale * 6, rel=1e-5)
    assert np.nanmin(d.values) == 0


@requires_shared
def test_radar_knmi_crop_coarsening_and_outside_is_nan(knmi, knmi_raw):
    code, gain, offset = knmi_raw
    d, f = knmi, KNMI_FACTOR
    assert (code[:, :220] == 65535).all() and (code[:, 637:] == 65535).all()  # the composite's bounding box
    assert (code[:, :, :160] == 65535).all() and (code[:, :, 579:] == 65535).all()
    (r0, r1), (c0, c1) = span_to_multiple(220, 637, 765, f), span_to_multiple(160, 579, 700, f)
    sub = code[:, r0:r1, c0:c1]  # the crop, grown to a multiple of the factor
    h, w = (r1 - r0) // f, (c1 - c0) // f
    assert d.values.shape == (92, 1, h, w)
    assert (d.units, d.channels, d.steps_per_day) == ("mm/h", ["rain_rate"], 288)
    n_valid = (sub != 65535).reshape(92, h, f, w, f).sum(axis=(2, 4))
    assert np.array_equal(np.isnan(d.values[:, 0]), 2 * n_valid < f * f)  # fewer than half valid: missing
    all_out = n_valid[0] == 0  # blocks wholly outside the composite: NaN at every step, never 0, outside the domain
    assert all_out.sum() > 0.15 * h * w and np.isnan(d.values[:, 0, all_out]).all()
    assert not d.domain[all_out].any() and d.domain.sum() == int((2 * n_valid[0] >= f * f).sum())
    assert not np.isnan(d.values[:, 0, d.domain]).any()
    # one rainy block by hand: mean of its codes x 0.01 mm per 5 min x 12 -> mm/h
    t, i, j = np.unravel_index(np.nanargmax(np.where(n_valid == f * f, d.values[:, 0], np.nan)), n_valid.shape)
    raw = sub[t, f * i:f * (i + 1), f * j:f * (j + 1)].astype(float)
    assert d.values[t, 0, i, j] == pytest.approx((raw * gain + offset).mean() * 12, rel=1e-5)
    assert any(f"{f} x {f} block means" in m for m in d.notes)


@requires_shared
def test_full_resolution_sets_nan_exactly_where_the_file_has_no_data(bom_raw, knmi_raw):
    code, scale = bom_raw
    d = load_dataset("radar-bom-full", SHARED_DATA)[0]
    assert d.values.shape == (144, 1, 512, 512)
    assert np.array_equal(np.isnan(d.values[:, 0]), code < 0)
    assert np.nanmin(d.values) == 0
    assert d.values[21, 0, 436, 249] == pytest.approx(code[21, 436, 249] * scale * 6)
    code, gain, offset = knmi_raw
    d = load_dataset("radar-knmi-full", SHARED_DATA)[0]
    assert d.values.shape == (92, 1, 417, 419)
    assert np.array_equal(np.isnan(d.values[:, 0]), code[:, 220:637, 160:579] == 65535)


@requires_shared
def test_radar_bom_2km_is_the_4_x_4_block_mean_of_the_file(bom, bom_raw):
    code, scale = bom_raw
    d = load_dataset("radar-bom-2km", SHARED_DATA)[0]
    assert d.values.shape == (144, 1, 128, 128) and d.name == "radar-bom-2km"
    assert any("4 x 4 block means" in m and "2 km" in m for m in d.notes)
    block = code[30, 200:204, 240:244]
    if (block >= 0).all():  # an all-valid block: its plain mean in mm/h
        assert d.values[30, 0, 50, 60] == pytest.approx(block.mean() * scale * 6, rel=1e-5)
    # where all 64 pixels of a 4 km block are valid, its four 2 km cells average to it
    coarse = d.values[:, 0].reshape(144, 64, 2, 64, 2).mean(axis=(2, 4))
    full = (code >= 0).reshape(144, 64, 8, 64, 8).all(axis=(2, 4))
    assert full.mean() > 0.5
    np.testing.assert_allclose(coarse[full], bom.values[:, 0][full], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- extrapolation


def test_extrapolation_registered_for_grids_only_and_imports_lazily():
    e = get_backbone_entry("extrapolation")
    assert e.kind == "grid" and not e.trainable and "extrapolation" not in list_backbones("graph")
    with pytest.raises(ConfigError):
        create_backbone("extrapolation", DataSpec(kind="graph", window=4, horizon=2, n_channels=1, n_nodes=3))
    import sparsest.backbones.baselines as mod  # pysteps (seconds to import) only inside the method, never at module level

    top = [n for n in ast.parse(Path(mod.__file__).read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top for a in n.names] + [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert not any(x.split(".")[0] in ("pysteps", "cv2") for x in names), names


def _blob_series(T=12, H=40, W=48):
    yy, xx = np.mgrid[:H, :W]
    frames = [4.0 * np.exp(-((yy - 20.0) ** 2 + (xx - 10.0 - t) ** 2) / (2 * 3.0 ** 2)) for t in range(T)]  # 1 pixel / step east
    v = np.stack(frames)[:, None].astype(np.float32)
    v[v < 1e-3] = 0.0  # clear sky, as rain
    return SpatioTemporalData(v, "grid", units="mm/h").validate()


def test_extrapolation_beats_persistence_on_a_moving_blob(capsys):
    data = _blob_series()
    scaler = StandardScaler.fit(data, (0, 12))
    spec = DataSpec(kind="grid", window=6, horizon=6, n_channels=1, n_nodes=40 * 48, height=40, width=48)
    model = create_backbone("extrapolation", spec).fit(data, (0, 12), None, scaler)
    assert model.fill_used == "zero"  # >= 0 with exact zeros: rain-like
    mean, std = (t.float() for t in scaler.tensors())
    x = ((torch.from_numpy(data.values[:6]) - mean) / std)[None]  # [1, T, C, H, W] scaled
    y = torch.from_numpy(data.values[6:])[None]  # [1, S, C, H, W] physical
    with torch.no_grad():
        y_hat = model(x, None, None)
        y_per = create_backbone("persistence", spec)(x)
    assert y_hat.shape == (1, 6, 1, 40, 48) and y_hat.dtype == torch.float32
    mse = float(((y_hat * std + mean - y) ** 2).mean())
    mse_per = float(((y_per * std + mean - y) ** 2).mean())
    print(f"blob: MSE extrapolation {mse:.3g}, persistence {mse_per:.3g}")
    assert mse < 0.2 * mse_per


def test_extrapolation_missing_input_and_outside_are_zero_rain():
    data = _blob_series()
    scaler = StandardScaler.fit(data, (0, 12))
    model = create_backbone("extrapolation", DataSpec(kind="grid", window=3, horizon=2, n_channels=1, n_nodes=40 * 48,
                                                      height=40, width=48)).fit(data, (0, 12), None, scaler)
    mean, std = (float(t.reshape(-1)[0]) for t in scaler.tensors())
    y = model(torch.zeros(2, 3, 1, 40, 48), None, None)  # every input missing (0 = the windowing's fill)
    assert torch.allclose(y * std + mean, torch.zeros(()), atol=1e-5)  # 0 mm/h, not the training mean
    temp = SpatioTemporalData(data.values + 270.0, "grid", units="K").validate()  # no zeros: outside = last value
    assert create_backbone("extrapolation", DataSpec(kind="grid", window=3, horizon=2, n_channels=1, n_nodes=1, height=40,
                           width=48)).fit(temp, (0, 12), None, StandardScaler.fit(temp, (0, 12))).fill_used == "last"


@requires_shared
def test_baselines_on_radar_bom_include_extrapolation(capsys):
    from sparsest.engine.options import CommonOptions
    from sparsest.engine.prepare import baselines, prepare

    prep = prepare(CommonOptions(data="radar-bom", data_dir=str(SHARED_DATA)))
    assert (prep.spec.window, prep.spec.horizon, prep.spec.height, prep.spec.width) == (6, 6, 512 // BOM_FACTOR, 512 // BOM_FACTOR)
    out = baselines(prep)
    assert set(out) == {"persistence", "historical_average", "extrapolation", "lower_bound"}
    mse = {k: v["mse"] for k, v in out.items()}
    with capsys.disabled():
        print(f"\nradar-bom test MSE (mm/h)^2: " + ", ".join(f"{k} {v:.4f}" for k, v in mse.items()))
    assert np.isfinite(list(mse.values())).all()
    assert mse["extrapolation"] < 1.5 * mse["persistence"]  # within reason (it wins on this day: 0.022 vs 0.026)


def test_baselines_on_graph_data_skip_extrapolation():
    from sparsest.engine.options import CommonOptions
    from sparsest.engine.prepare import baselines, prepare

    assert set(baselines(prepare(CommonOptions(data="ghcnd-us")))) == {"persistence", "historical_average"}


def test_forecasts_are_clipped_at_the_data_lower_bound_and_models_can_start_at_persistence():
    from sparsest.data.windows import StandardScaler
    from sparsest.engine.module import ForecastModule

    scaler = StandardScaler(np.array([1.0]), np.array([2.0]), "grid", floor=0.0)
    y = scaler.physical(torch.tensor([[-1.0, 0.0, 1.0]]).view(1, 1, 1, 1, 3))
    assert y.flatten().tolist() == [0.0, 1.0, 3.0]  # -1 scaled = -1 mm/h, clipped at 0
    assert StandardScaler.from_dict(scaler.to_dict()).floor == 0.0
    spec = DataSpec(kind="grid", window=4, horizon=3, n_channels=1, n_nodes=64, height=8, width=8)
    for name in ("simvp", "tau", "convlstm"):
        m = create_backbone(name, spec, start_at_persistence=True)
        x = torch.randn(2, 4, 1, 8, 8)
        assert torch.equal(m(x), x[:, -1:].expand(-1, 3, -1, -1, -1))  # the untrained model is persistence
        module = ForecastModule(m, scaler)
        out = module({"x": x, "tod": None, "dow": None})
        assert (out >= 0).all() and module.floor == 0.0


@requires_shared
def test_radar_sets_have_a_zero_lower_bound(bom):
    assert bom.lower_bound == 0.0
