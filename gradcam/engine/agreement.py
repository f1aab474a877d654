"""How far a map agrees with another: the TFLite model's (its twin's) against the Keras model's
(`map_agreement`), and any map against the model's own evidence (`evidence_at_peak`).

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

from gradcam.engine.maps import peak

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


# A map "agrees with the model's own evidence" from this share of it up (see evidence_at_peak).
AGREES = 0.5


def evidence_at_peak(cam: np.ndarray, reference: np.ndarray) -> float | None:
    """How much of the model's own evidence lies under a map's peak: the reference map (the fall of
    the explained score when each part is hidden, gradcam.engine.occlusion) at the cell under the
    map's peak (gradcam.engine.maps.peak), as a share of its largest fall; 0 where hiding the peak
    does not lower the score. None when the map is blank or no part lowers the score. A map along one
    axis (h x 1: an audio model's frames) reads each row's largest fall."""
    if cam.shape[1] == 1:
        reference = reference.max(axis=1, keepdims=True)
    top = float(reference.max())
    centre = peak(cam)
    if centre is None or not top > 0:
        return None
    (h, w), (rows, columns) = cam.shape, reference.shape
    x = min(columns - 1, int((centre[0] + 0.5) * columns / w))
    y = min(rows - 1, int((centre[1] + 0.5) * rows / h))
    return max(0.0, float(reference[y, x])) / top
