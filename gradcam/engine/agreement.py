"""How far two maps of one sample agree: the TFLite model's (its twin's) against the Keras model's.

The measure is Spearman's rank correlation of the two maps' cells at the map's resolution: it asks
whether both models rank the same places as most and least important, whatever each map's scale,
and it needs no threshold of "hot". 1: the same order; 0: unrelated; below 0: opposite. Tied cells
(a ReLU's zeros) take their mean rank. A map with no order at all (blank, or constant) agrees with
nothing: None.

ELSEWHERE, the value below which the TFLite model "looks elsewhere", comes from
bench/agreement_threshold.py (see docs/tflite.md): int8 models calibrated as Studio
calibrates them stay above it on nearly every sample, models calibrated on a few unrepresentative
images fall below it on many.
"""

from __future__ import annotations

import cv2
import numpy as np

ELSEWHERE = 0.5


def _ranks(values: np.ndarray) -> np.ndarray:
    """The values' ranks, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    _unique, tie, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(tie, ranks) / counts)[tie]


def map_agreement(reference: np.ndarray, other: np.ndarray) -> float | None:
    """Spearman's rank correlation of two maps (h, w); `other` is resized to `reference`'s cells
    first. None when either map has no order (all its cells equal)."""
    if other.shape != reference.shape:
        other = cv2.resize(other.astype(np.float32), reference.shape[::-1], interpolation=cv2.INTER_AREA)
    a, b = reference.ravel(), other.ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])
