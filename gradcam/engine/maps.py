"""A map once made: scaled to 0..1 for display and comparison, and where it peaks. NumPy and OpenCV only."""

from __future__ import annotations

import cv2
import numpy as np

from gradcam.choices import NORMALIZATIONS
from gradcam.errors import check_choice


def normalize(maps: np.ndarray, mode: str = "percentile", percentile: float = 99.0) -> np.ndarray:
    """Scale each map to 0..1: `simple` divides by its maximum; `percentile` divides by its 99th
    percentile and clips, so a few extreme cells do not wash out the rest. A zero map stays zero."""
    check_choice("heatmap normalization", mode, NORMALIZATIONS)
    flat = maps.reshape(len(maps), int(np.prod(maps.shape[1:]))).astype(np.float32)
    top = flat.max(axis=1) if mode == "simple" else np.percentile(flat, percentile, axis=1)
    top = np.where(top > 0, top, flat.max(axis=1))  # a map whose 99th percentile is 0 but has a peak
    safe = np.where(top > 0, top, 1.0)[:, None]
    return np.clip(flat / safe, 0.0, 1.0).reshape(maps.shape)


def peak(cam: np.ndarray, share: float = 0.9) -> tuple[float, float] | None:
    """(x, y) of the centre of the hottest region, in map cells (cell centres at 0, 1, ...): of the
    connected regions at `share` of the maximum or more, the one holding the most heat, and its
    heat-weighted centroid. On a coarse or clipped map the maximum is a plateau; its first cell
    (argmax) would sit on its corner. None for an all-zero map."""
    top = float(cam.max())
    if not top > 0:
        return None
    count, regions = cv2.connectedComponents((cam >= share * top).astype(np.uint8), connectivity=8)
    heat = np.bincount(regions.ravel(), weights=cam.ravel(), minlength=count)
    hottest = int(np.argmax(heat[1:])) + 1
    ys, xs = np.nonzero(regions == hottest)
    weights = cam[ys, xs] / cam[ys, xs].sum()
    return float(xs @ weights), float(ys @ weights)
