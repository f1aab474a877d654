"""How numbers are rounded in results.json and results.csv: one rule for every column."""

from __future__ import annotations

import math


def rounded(x: float | None, places: int = 6) -> float | None:
    return None if x is None or math.isnan(x) else round(x, places)
