"""Keep-sets chosen without training the network: QR sensor placement, the drop / regrow
search of sparsest's default ``dynst`` scheme, and a user's keep-set file.

- :func:`snapshot_matrix`: the training snapshots ``Z`` ``[n_samples, N_s]``, one column
  per sensor, one row per (time step, channel) of the training split (grids: per (time
  step, channel, pixel offset inside a patch), so a patch is one column: the layout the
  kept-to-all propagation mixes). Standardised with the run's scaler; missing readings
  are the training mean (0).
- :func:`qr_ranking`: sparse sensor placement by QR pivoting on the dominant SVD modes of
  ``Z`` (PySensors ``SSPOR`` with an ``SVD`` basis and the ``QR`` optimiser; Manohar et
  al., "Data-driven sparse sensor placement for reconstruction", IEEE Control Systems
  2018). It keeps the sensors whose readings best span those modes.
- :class:`ReadoutSurrogate` and :func:`swap_search`: from the QR keep-set, exchanges of a
  kept and a switched-off sensor that lower the full-field error of the trained dense
  forecaster with a linear kept-to-all read-out, measured on held-out time blocks.
- :func:`read_keep_set`: a user's own list of sensor ids.
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError

MAX_SNAPSHOTS = 20_000
"""Rows of ``Z`` used at most (evenly spaced over the training split)."""


def snapshot_matrix(values: np.ndarray, kind: str, time_range: tuple[int, int], mean: np.ndarray, std: np.ndarray,
                    pixel_to_sensor: np.ndarray | None = None, max_rows: int = MAX_SNAPSHOTS) -> np.ndarray:
    """The standardised training snapshots, one column per sensor.

    Args:
        values: graph ``[T, N, C]`` or grid ``[T, C, H, W]`` readings (NaN = missing).
        kind: ``"graph"`` or ``"grid"``.
        time_range: ``(start, stop)`` rows of the training split.
        mean, std: the scaler's per-channel ``[C]`` statistics.
        pixel_to_sensor: grids only, ``[H, W]`` patch index of every pixel
            (:attr:`SensorLayout.pixel_to_sensor`). A patch's pixels become rows (one per
            offset inside the patch); border patches, which are smaller, repeat their
            last pixel so every patch has ``p * p`` rows per step and channel.
        max_rows: at most this many rows (time steps thinned evenly).

    Returns:
        ``Z`` ``[n_samples, N_s]`` float64, missing entries 0.
    """
    a, b = time_range
    v = np.asarray(values[a:b], dtype=np.float64)
    if kind == "graph":
        z = (v - mean) / std  # [T, N, C]
    else:
        z = (v - mean[:, None, None]) / std[:, None, None]  # [T, C, H, W]
    z = to_columns(z, kind, pixel_to_sensor)
    if z.shape[0] > max_rows:
        z = z[np.linspace(0, z.shape[0] - 1, max_rows).round().astype(np.int64)]
    return np.nan_to_num(z, nan=0.0)


def to_columns(a: np.ndarray, kind: str, pixel_to_sensor: np.ndarray | None = None) -> np.ndarray:
    """One column per sensor: graph ``[..., N, C]`` -> ``[(..., C), N]``; grid
    ``[..., C, H, W]`` -> ``[(..., C, offset), N_s]`` with the pixels of a patch as rows (a
    smaller border patch repeats its last pixel)."""
    if kind == "graph":
        n = a.shape[-2]
        return np.moveaxis(a, -1, -2).reshape(-1, n)
    p2s = np.asarray(pixel_to_sensor)
    n_s = int(p2s.max()) + 1
    flat = a.reshape(-1, a.shape[-2] * a.shape[-1])  # [(..., c), H*W]
    order = np.argsort(p2s.ravel(), kind="stable")
    counts = np.bincount(p2s.ravel(), minlength=n_s)
    per = int(counts.max())
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    cols = np.empty((n_s, per), dtype=np.int64)
    for j in range(n_s):
        idx = order[starts[j]:starts[j] + counts[j]]
        cols[j] = np.concatenate([idx, np.repeat(idx[-1:], per - counts[j])])
    z = flat[:, cols]  # [(..., c), N_s, per]
    return np.moveaxis(z, 2, 1).reshape(-1, n_s)


def forecast_columns(model, dataset, mean: np.ndarray, std: np.ndarray, kind: str,
                     pixel_to_sensor: np.ndarray | None = None, batch_size: int = 64,
                     max_rows: int = 4 * MAX_SNAPSHOTS) -> tuple[np.ndarray, np.ndarray]:
    """The dense forecaster's forecasts and the truth on ``dataset``, one column per sensor.

    Args:
        model: forecasts standardised units, ``model(x, tod, dow)``.
        dataset: a :class:`~sparsest.data.windows.WindowDataset` (the training split); read
            in order with its own loader, so no training generator is consumed.
        mean, std: the scaler's ``[C]`` statistics.

    Returns:
        ``(x, y, observed)``, all ``[n_samples, N_s]``: forecasts and truth standardised
        (rows: window, horizon, channel and, on grids, pixel offset), and which truths were
        observed (a missing one holds the forecast's value).
    """
    import torch
    from torch.utils.data import DataLoader

    from ...data.windows import collate_windows

    shape = (-1, 1) if kind == "graph" else (-1, 1, 1)
    m = torch.as_tensor(np.asarray(mean, np.float32).reshape(shape))
    sd = torch.as_tensor(np.asarray(std, np.float32).reshape(shape))
    was = model.training
    model.eval()
    xs, ys, ms = [], [], []
    with torch.no_grad():
        for b in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_windows):
            f = model(b["x"], b["tod"], b["dow"])
            t = torch.where(b["y_mask"], (b["y"] - m) / sd, f)
            xs.append(to_columns(f.double().numpy(), kind, pixel_to_sensor))
            ys.append(to_columns(t.double().numpy(), kind, pixel_to_sensor))
            ms.append(to_columns(b["y_mask"].numpy(), kind, pixel_to_sensor))
    model.train(was)
    x, y, obs = np.concatenate(xs), np.concatenate(ys), np.concatenate(ms)
    if x.shape[0] > max_rows:
        keep = np.linspace(0, x.shape[0] - 1, max_rows).round().astype(np.int64)
        x, y, obs = x[keep], y[keep], obs[keep]
    return x, y, obs


def qr_modes(shape: tuple[int, int], n_keep: int, n_modes: int | None = None) -> int:
    """The SVD modes :func:`qr_ranking` pivots on: ``n_modes``, or by default ``n_keep``
    capped at the rank bound ``min(n_samples, N_s) - 1`` of snapshots shaped ``shape``."""
    return min(n_keep, max(1, min(shape) - 1)) if n_modes is None else n_modes


def qr_ranking(z: np.ndarray, n_keep: int, n_modes: int | None = None, seed: int = 0) -> np.ndarray:
    """PySensors QR placement: the ``n_keep`` selected sensors, best first.

    Args:
        z: ``[n_samples, N_s]`` snapshots (:func:`snapshot_matrix`).
        n_keep: sensors to keep, 1 <= n_keep <= N_s.
        n_modes: SVD modes the QR pivots on [default: ``n_keep``, capped at the data's rank
            bound ``min(n_samples, N_s) - 1``]. Beyond ``n_modes`` pivots PySensors ranks
            at random, so fewer modes than kept sensors leaves part of the keep-set random.
        seed: seeds the randomized SVD and PySensors' shuffle after the ranked pivots.

    Raises:
        ConfigError: ``n_modes`` out of range.
    """
    from pysensors import SSPOR
    from pysensors.basis import SVD

    n, n_s = z.shape
    cap = max(1, min(n, n_s) - 1)
    r = qr_modes(z.shape, n_keep, n_modes)
    if not 1 <= r <= cap:
        raise ConfigError(f"--qr-modes: must be in [1, {cap}] for these data ({n} snapshots of {n_s} sensors), got {r}")
    model = SSPOR(basis=SVD(n_basis_modes=r, random_state=seed), n_sensors=n_keep)
    model.fit(z - z.mean(axis=0), quiet=True, seed=seed)
    return np.asarray(model.get_selected_sensors(), dtype=np.int64)


class ReadoutSurrogate:
    """Full-field held-out MAE of a keep-set, without training: kept sensors keep the dense
    forecaster's forecast, each switched-off sensor gets a ridge read-out from the kept
    sensors' forecasts (the linear kept-to-all step the fine-tuning trains,
    :class:`~sparsest.pruning.sensors.wrapper.KeptToAllPropagation`).

    The error is measured block by block, leave one block out: the rows are cut into
    contiguous time blocks (``groups``), and each block is read out by a ridge fit on all
    the other blocks. A read-out is never scored on the rows it was fitted on (a greedy
    least-squares selection scored in-sample switched off the hard sensors and lost
    badly), and the keep-set is not tuned to one short split: scored on the validation
    day alone, drop / regrow lowered the validation MAE of the fine-tuned model and raised
    its test MAE.

    Args:
        x, y: ``[n, N_s]`` dense forecasts and truth, standardised (:func:`forecast_columns`).
        obs: ``[n, N_s]`` which truths were observed.
        groups: ``[n]`` block index of each row (0 .. G-1).
        ridge: read-out ridge, relative to the mean variance of the forecasts.
    """

    def __init__(self, x, y, obs, groups, ridge: float = 0.1):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        w = np.asarray(obs, dtype=np.float64)
        groups = np.asarray(groups)
        self.blocks = []
        sxx, sxy = x.T @ x, x.T @ y
        sx, sy, n = x.sum(axis=0), y.sum(axis=0), len(x)
        lam = None
        for g in np.unique(groups):
            rows = groups == g
            xg, yg = x[rows], y[rows]
            m = n - len(xg)
            mx, my = (sx - xg.sum(axis=0)) / m, (sy - yg.sum(axis=0)) / m
            s = (sxx - xg.T @ xg) / m - np.outer(mx, mx)
            c = (sxy - xg.T @ yg) / m - np.outer(mx, my)
            if lam is None:
                lam = ridge * float(np.mean(np.diag(s))) + 1e-12
            self.blocks.append((s, c, mx, my, xg - mx, yg, w[rows]))
        self.lam = lam
        self.n_obs = np.maximum(w.sum(axis=0), 1.0)
        self.own = (np.abs(x - y) * w).sum(axis=0) / self.n_obs  # kept: the dense MAE [N_s]

    def reconstruct(self, kept: np.ndarray, off: np.ndarray) -> np.ndarray:
        """Held-out MAE ``[len(off)]`` of the ``off`` sensors read out from ``kept``."""
        err = np.zeros(len(off))
        eye = self.lam * np.eye(len(kept))
        for s, c, _, my, xg, yg, wg in self.blocks:
            wts = np.linalg.solve(s[np.ix_(kept, kept)] + eye, c[np.ix_(kept, off)])
            err += (np.abs(xg[:, kept] @ wts + my[off] - yg[:, off]) * wg[:, off]).sum(axis=0)
        return err / self.n_obs[off]

    def reconstruct_each_kept(self, kept: np.ndarray) -> np.ndarray:
        """Held-out MAE ``[len(kept)]`` of each kept sensor ``i`` read out from ``kept \\ {i}``,
        all at once: with ``P = (S_KK + lam I)^-1`` and ``Q = P C_KK``, the coefficients of
        ``i`` from the others are ``Q_:i - P_:i c_ii - P_:i (Q_ii - P_ii c_ii) / P_ii``
        (block inverse; entry ``i`` is 0)."""
        err = np.zeros(len(kept))
        eye = self.lam * np.eye(len(kept))
        for s, c, _, my, xg, yg, wg in self.blocks:
            p = np.linalg.inv(s[np.ix_(kept, kept)] + eye)
            ckk = c[np.ix_(kept, kept)]
            q = p @ ckk
            dc, dp = np.diag(ckk), np.diag(p)
            w = q - p * dc[None, :] - p * ((np.diag(q) - dp * dc) / dp)[None, :]
            err += (np.abs(xg[:, kept] @ w + my[kept] - yg[:, kept]) * wg[:, kept]).sum(axis=0)
        return err / self.n_obs[kept]

    def per_sensor(self, keep: np.ndarray) -> np.ndarray:
        """Held-out MAE ``[N_s]`` of every sensor (standardised units) under ``keep``."""
        kept, off = np.where(keep)[0], np.where(~keep)[0]
        e = self.own.copy()
        if off.size:
            e[off] = self.reconstruct(kept, off)
        return e

    def total(self, keep: np.ndarray) -> float:
        """Full-field held-out MAE (standardised), the mean over sensors."""
        return float(self.per_sensor(keep).mean())


def swap_search(keep: np.ndarray, surrogate: ReadoutSurrogate, candidates: int = 8,
                max_swaps: int = 40) -> tuple[np.ndarray, list[dict]]:
    """Drop / regrow at fixed sparsity by the held-out full-field loss (sparsest's search).

    Each round ranks the kept sensors by what switching each one off alone would cost
    (its read-out MAE from the other kept sensors minus its own forecast MAE) and the
    switched-off ones by what keeping each would gain (its read-out MAE minus its own),
    tries every exchange among the ``candidates`` cheapest and most costly, and applies
    the one that lowers :meth:`ReadoutSurrogate.total` (held-out, leave one time block
    out) most. It stops when no exchange helps or after ``max_swaps``. The number kept
    never changes. Cost per round: ``candidates^2 + 1`` ridge fits per block.

    Args:
        keep: ``[N_s]`` bool start (the QR keep-set by default).
        surrogate: the :class:`ReadoutSurrogate` of the data and dense model.
        candidates: sensors tried on each side per round (``candidates^2`` exchanges).
        max_swaps: exchanges at most.

    Returns:
        the final keep-mask and the history (one dict per swap: dropped, regrown, total).

    Source: DynST's drop / regrow (Wu et al., KDD 2025, Eqs. 5-7) with the criterion
    replaced by the measured held-out full-field loss of the linear read-out (ours).
    """
    keep = keep.copy()
    best = surrogate.total(keep)
    history = [{"action": "start", "heldout_mae_std": best}]
    for _ in range(max_swaps):
        kept, off = np.where(keep)[0], np.where(~keep)[0]
        if not (kept.size > 1 and off.size):
            break
        e = surrogate.per_sensor(keep)
        cost_off = surrogate.reconstruct_each_kept(kept) - surrogate.own[kept]
        gain_in = e[off] - surrogate.own[off]
        outs = kept[np.argsort(cost_off, kind="stable")[:candidates]]
        ins = off[np.argsort(-gain_in, kind="stable")[:candidates]]
        trial = (np.inf, -1, -1)
        for i in outs:
            for j in ins:
                k2 = keep.copy()
                k2[i], k2[j] = False, True
                v = surrogate.total(k2)
                if v < trial[0]:
                    trial = (v, int(i), int(j))
        if trial[0] >= best * (1 - 1e-6):
            break
        best, i, j = trial
        keep[i], keep[j] = False, True
        history.append({"action": "swap", "dropped": i, "regrown": j, "heldout_mae_std": best})
    return keep, history


def keep_from_selected(selected: np.ndarray, n_sensors: int) -> np.ndarray:
    """``[N_s]`` bool keep-mask with exactly the ``selected`` sensors kept."""
    keep = np.zeros(n_sensors, dtype=bool)
    keep[np.asarray(selected, dtype=np.int64)] = True
    return keep


def read_keep_set(path: str, ids: list[str]) -> np.ndarray:
    """A user's keep-set file: sensor ids to keep, one per line, or a CSV with a
    ``sensor_id`` column (and optionally a ``kept`` 0/1 column, as ``sensors.csv`` of a run
    writes). Lines starting with ``#`` and blank lines are skipped.

    Args:
        path: the file.
        ids: the data's sensor ids in sensor order (grids: ``r{row}c{col}`` patch names).

    Returns:
        ``[N_s]`` bool keep-mask.

    Raises:
        ConfigError: missing file, unknown or duplicate ids, an empty set or all sensors
            (one line naming the file and the first offending ids).
    """
    import csv
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--keep-set {p}: no such file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--keep-set {p}: cannot read ({e.__class__.__name__})") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    wanted: list[str]
    if lines and "sensor_id" in [c.strip() for c in lines[0].split(",")]:
        rows = list(csv.DictReader(lines))
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in rows]
        if "kept" in rows[0] if rows else False:
            bad = [r["kept"] for r in rows if r["kept"] not in ("0", "1")]
            if bad:
                raise ConfigError(f"--keep-set {p}: column kept must be 0 or 1, got {bad[0]!r}")
            rows = [r for r in rows if r["kept"] == "1"]
        wanted = [r["sensor_id"] for r in rows]
    else:
        wanted = [ln.split(",")[0].strip() for ln in lines]
    index = {s: i for i, s in enumerate(ids)}
    unknown = [w for w in wanted if w not in index]
    if unknown:
        more = f" (and {len(unknown) - 3} more)" if len(unknown) > 3 else ""
        raise ConfigError(f"--keep-set {p}: unknown sensor ids {', '.join(map(repr, unknown[:3]))}{more}; "
                          f"the data's ids look like {', '.join(ids[:3])}")
    seen, dups = set(), []
    for w in wanted:
        if w in seen:
            dups.append(w)
        seen.add(w)
    if dups:
        raise ConfigError(f"--keep-set {p}: duplicate sensor ids {', '.join(map(repr, dups[:3]))}")
    if not wanted:
        raise ConfigError(f"--keep-set {p}: no sensor ids in the file")
    if len(wanted) == len(ids):
        raise ConfigError(f"--keep-set {p}: keeps all {len(ids)} sensors; nothing to switch off")
    return keep_from_selected(np.array([index[w] for w in wanted]), len(ids))

