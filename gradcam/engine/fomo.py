"""FOMO's output read as Edge Impulse reads it: cells -> detections -> matched against the boxes.

A FOMO model gives a grid of class probabilities, (h, w, N + 1) with channel 0 background. A cell
is an object cell when its arg-max is an object class with a probability of at least the
threshold; touching object cells of one class (8-connected) form one detection, its centroid the
mean of their cells' centres, its confidence the highest of their probabilities. A detection is
a true positive when its centroid lies inside a ground-truth box of its label that no other
detection matched (detections taken most confident first); boxes left unmatched are missed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_THRESHOLD = 0.5  # Edge Impulse's minConfidenceRating


@dataclass(frozen=True)
class Box:
    """A ground-truth box: label and top-left corner, width and height in the image file's pixels."""

    label: str
    x: float
    y: float
    width: float
    height: float

    def contains(self, point: tuple[float, float]) -> bool:
        return self.x <= point[0] <= self.x + self.width and self.y <= point[1] <= self.y + self.height

    def as_dict(self) -> dict:
        return {"label": self.label, "x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class Detection:
    """One detection on the output grid."""

    class_index: int  # among the object classes (background excluded)
    confidence: float
    cells: np.ndarray  # (h, w) bool: the detection's cells
    centroid: tuple[float, float]  # (x, y) in grid units, cell edges at 0 .. w


def cell_target(cells: np.ndarray, class_index: int, channels: int) -> np.ndarray:
    """(h, w, channels) float mask: `cells` in the channel of object class `class_index`."""
    mask = np.zeros((*cells.shape, channels), np.float32)
    mask[..., class_index + 1] = cells
    return mask


def decode(probabilities: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> list[Detection]:
    """The detections in one output grid (h, w, N + 1), most confident first."""
    best = probabilities.argmax(axis=-1)
    confidence = probabilities.max(axis=-1)
    objects = (best > 0) & (confidence >= threshold)
    found = []
    for channel in np.unique(best[objects]):
        count, regions = cv2.connectedComponents((objects & (best == channel)).astype(np.uint8), connectivity=8)
        for region in range(1, count):
            cells = regions == region
            rows, cols = np.nonzero(cells)
            centroid = (float(cols.mean()) + 0.5, float(rows.mean()) + 0.5)
            found.append(Detection(int(channel) - 1, float(confidence[cells].max()), cells, centroid))
    return sorted(found, key=lambda d: -d.confidence)


def same_objects(a: list[Detection], b: list[Detection]) -> bool:
    """Whether two readings of one image (the Keras model's and the TFLite model's) found the same
    objects: each detection of one matched by one of the other of its class, its centroid in the
    same cell."""

    def found(detections: list[Detection]) -> Counter:
        return Counter((d.class_index, int(d.centroid[0]), int(d.centroid[1])) for d in detections)

    return found(a) == found(b)


def match(labels: list[str], centroids: list[tuple[float, float]], boxes: list[Box]) -> list[int | None]:
    """For each detection (label, centroid in image pixels, most confident first): the index of the
    box it matches, or None (a false positive). Each box matches at most one detection."""
    taken: set[int] = set()
    matched: list[int | None] = []
    for label, centroid in zip(labels, centroids, strict=True):
        hit = next(
            (i for i, box in enumerate(boxes) if i not in taken and box.label == label and box.contains(centroid)),
            None,
        )
        if hit is not None:
            taken.add(hit)
        matched.append(hit)
    return matched


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives, with the rates they give."""

    tp: int
    fp: int
    fn: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else None
