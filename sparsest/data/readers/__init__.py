"""Readers for the on-disk formats that spatio-temporal data sets come in.

Every reader returns float32 arrays in the project-wide layouts (``[T, N, C]`` for sensor
graphs, ``[T, C, H, W]`` for grids, ``[N, N]`` adjacency) and keeps ``NaN`` as the marker
of a missing reading. Every problem with a file raises :class:`~sparsest.errors.DataError`
with a one-line message that starts with the file path and names the offending field, e.g.
``"/x/speed.csv: expected [T, N] or [T, N, C] values, got 1-d array of shape (5,)"``.

Formats and their sources:

* T-GCN CSVs (Zhao et al., IEEE T-ITS 2019, github.com/lehaifeng/T-GCN): ``los_speed.csv``
  (header of sensor ids, one row per step) and ``los_adj.csv`` (dense, no header).
* DCRNN (Li et al., ICLR 2018, github.com/liyaguang/DCRNN): ``metr-la.h5`` /
  ``pems-bay.h5`` (pandas HDF5), ``adj_mx.pkl`` (Python-2 pickle),
  ``graph_sensor_locations.csv``, and the Gaussian-kernel graph of ``gen_adj_mx.py``.
* PEMS03/04/07/08 (ASTGCN, Guo et al., AAAI 2019; STSGCN, Song et al., AAAI 2020,
  github.com/Davidham3/STSGCN): ``PEMS0X.npz`` (key ``data``) and the ``from,to,cost``
  distance CSV; edge lists with ``source,target`` or ``src,dst`` columns are read too.
* TaxiBJ (ST-ResNet, Zhang et al., AAAI 2017, github.com/lucktroy/DeepST): ``.h5`` with
  ``data`` [T, 2, 32, 32] and ``date``.
* WeatherBench (Rasp et al., JAMES 2020, github.com/pangeo-data/WeatherBench): netCDF with
  ``(time, [level,] lat, lon)`` variables; plus ``.npz`` grids such as the ERA5 ``t2m.npz``.

Modules, by format: :mod:`.signals`, :mod:`.adjacency`, :mod:`.locations`, :mod:`.hdf5`
(PEMS0X ``.npz``, METR-LA and TaxiBJ ``.h5``), :mod:`.grids`, :mod:`.unpickle`,
:mod:`.sniff`; shared helpers in ``_common``, ``_csv`` and ``_timeindex``.
"""

from .adjacency import read_adjacency
from .grids import read_grid
from .hdf5 import read_metr_h5, read_pems_npz, read_taxibj_h5
from .locations import read_locations
from .signals import read_signals
from .sniff import sniff_kind
from .unpickle import safe_load_pickle

__all__ = [
    "safe_load_pickle",
    "read_signals",
    "read_adjacency",
    "read_locations",
    "read_pems_npz",
    "read_metr_h5",
    "read_taxibj_h5",
    "read_grid",
    "sniff_kind",
]
