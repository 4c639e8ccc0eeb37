"""Markdown tables for the bench suites' outputs."""

from __future__ import annotations

import pandas as pd


def markdown(df: pd.DataFrame) -> str:
    """``df`` as a GitHub Markdown table (NaN shown as an en dash: not run)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(("–" if v != v else f"{v:.4g}") if isinstance(v, float) else str(v) for v in r) + " |")  # NaN: not run
    return "\n".join(lines)

