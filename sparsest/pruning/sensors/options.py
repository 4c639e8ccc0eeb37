"""Names of the sensor-search schemes, importable without torch (the command line reads them).

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Table 4; the plans are in :mod:`.search`,
the placements (qr, greedy, keep-set) in :mod:`.placement`.
"""

SCHEMES = ("dynst", "dynst-paper", "iterative", "one-shot", "dst", "random", "qr", "keep-set")

PLACEMENT_SCHEMES = ("dynst", "qr", "keep-set")
"""Schemes without network-training search phases: the keep-set comes from
:mod:`.placement` (dynst: QR start + drop / regrow by the validation loss)."""

BENCH_SCHEMES = tuple(s for s in SCHEMES if s != "keep-set")
"""Schemes a bench compares by default (keep-set needs the user's file)."""
