"""Names of the sensor-search schemes, importable without torch (the command line reads them).

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Table 4; the plans are in :mod:`.search`.
"""

SCHEMES = ("dynst", "iterative", "one-shot", "dst", "random")
