"""Explaining a FOMO model object by object: each detection, and each object it missed, gets a map.

For one batch: a forward pass gives the grids; each grid is decoded (gradcam.engine.fomo), the
detections matched against the image's boxes, and one target made per detection (its class's
logits at its cells) and per missed box (its class's logits at the cells inside the box: where
did the model look instead?). One CAM pass then explains every target of the batch: the images
are gathered per target, so the backward pass is one for the batch, not one per object.

Points travel between three frames: grid units (cell edges at 0 .. w), the model input's pixels,
and the image's pixels (the file's, through the preprocessing geometry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from gradcam.engine.fomo import Box, Counts, Detection, cell_target, decode, match
from gradcam.engine.maps import peak
from gradcam.engine.overlay import blend, draw_objects, panel
from gradcam.engine.preprocess import Geometry


@dataclass(frozen=True)
class Frame:
    """Where a sample's grid lies in its image: the preprocessing geometry of the image as given,
    the model input's size (width, height), the grid's (h, w), and the image's size in its file
    (boxes and reported points are in the file's pixels; the image given may be smaller)."""

    geometry: Geometry
    model_size: tuple[int, int]
    grid: tuple[int, int]
    shown: tuple[int, int]  # (width, height) of the image given
    original: tuple[int, int]  # (width, height) in the file

    def _ratio(self) -> tuple[float, float]:
        return self.original[0] / self.shown[0], self.original[1] / self.shown[1]

    def grid_to_file(self, point: tuple[float, float]) -> tuple[float, float]:
        (h, w), (mw, mh), (rx, ry) = self.grid, self.model_size, self._ratio()
        x, y = self.geometry.from_model((point[0] * mw / w, point[1] * mh / h))
        return x * rx, y * ry

    def map_to_file(self, point: tuple[float, float], map_shape: tuple[int, int]) -> tuple[float, float]:
        """A point of a map at its own resolution (cell centres at 0, 1, ...) -> the file's pixels."""
        (h, w), (mh, mw) = self.grid, map_shape
        return self.grid_to_file(((point[0] + 0.5) * w / mw, (point[1] + 0.5) * h / mh))

    def file_to_grid(self, point: tuple[float, float]) -> tuple[float, float]:
        (h, w), (mw, mh), (rx, ry) = self.grid, self.model_size, self._ratio()
        x, y = self.geometry.to_model((point[0] / rx, point[1] / ry))
        return x * w / mw, y * h / mh

    def file_to_shown(self, box: Box) -> tuple[int, int, int, int]:
        rx, ry = self._ratio()
        return (round(box.x / rx), round(box.y / ry), round((box.x + box.width) / rx), round((box.y + box.height) / ry))

    def box_cells(self, box: Box) -> np.ndarray:
        """(h, w) bool: the cells whose centres lie inside the box; the cell under its centre when
        the box is smaller than a cell."""
        (h, w), (x0, y0), (x1, y1) = self.grid, *self._corners(box)
        cols, rows = np.arange(w) + 0.5, np.arange(h) + 0.5
        cells = ((rows >= y0) & (rows <= y1))[:, None] & ((cols >= x0) & (cols <= x1))[None, :]
        if not cells.any():
            col = min(max(int((x0 + x1) / 2), 0), w - 1)
            row = min(max(int((y0 + y1) / 2), 0), h - 1)
            cells[row, col] = True
        return cells

    def _corners(self, box: Box) -> tuple[tuple[float, float], tuple[float, float]]:
        return self.file_to_grid((box.x, box.y)), self.file_to_grid((box.x + box.width, box.y + box.height))


@dataclass(frozen=True)
class Target:
    """One object to explain: a detection (with the box it matched, if any) or a missed box."""

    owner: int  # the sample's index in the batch
    label: str
    cells: np.ndarray  # (h, w) bool
    class_index: int  # -1: not a model class (a missed box with an unknown label)
    detection: Detection | None = None  # None: a missed box
    centroid: tuple[float, float] | None = None  # the detection's, in the file's pixels
    box: Box | None = None  # the matched or missed box

    def mask(self, channels: int) -> np.ndarray:
        if self.class_index < 0:
            return np.zeros((*self.cells.shape, channels), np.float32)
        return cell_target(self.cells, self.class_index, channels)


@dataclass(frozen=True)
class Plan:
    """One image's detections and missed boxes, as targets, and how they score."""

    targets: list[Target]
    boxes: list[Box] | None  # None: the image has no boxes listed (unlabeled)
    counts: Counts | None


def plan(
    owner: int,
    grid: np.ndarray,
    frame: Frame,
    classes: list[str],
    boxes: Sequence[Box] | None,
    threshold: float,
) -> Plan:
    """Decode one sample's output grid (h, w, N + 1) and match it against its boxes."""
    detections = decode(grid, threshold)
    centroids = [frame.grid_to_file(d.centroid) for d in detections]
    labels = [classes[d.class_index] for d in detections]
    boxes = None if boxes is None else list(boxes)
    matched = match(labels, centroids, boxes or [])
    targets = [
        Target(owner, label, d.cells, d.class_index, d, c, None if m is None else boxes[m])
        for d, c, label, m in zip(detections, centroids, labels, matched, strict=True)
    ]
    if boxes is None:
        return Plan(targets, None, None)
    found = {m for m in matched if m is not None}
    missed = [box for i, box in enumerate(boxes) if i not in found]
    # A box whose label is not a model class cannot be explained: it gets a blank map.
    targets += [
        Target(
            owner, box.label, frame.box_cells(box), classes.index(box.label) if box.label in classes else -1, box=box
        )
        for box in missed
    ]
    return Plan(targets, boxes, Counts(len(found), len(detections) - len(found), len(missed)))


@dataclass
class ObjectMap:
    """One explained object: a detection or a missed box, its map and the map's peak."""

    label: str
    kind: str  # "detection" or "missed"
    confidence: float | None  # the detection's; None for a missed box
    centroid: tuple[float, float] | None  # the detection's, file pixels
    box: Box | None  # the box it matched, or the missed box
    cam: np.ndarray  # normalised map at the explained resolution
    peak: tuple[float, float] | None  # file pixels; None: the map is all zero
    faithfulness: float | None = None  # within the object's neighbourhood (gradcam.engine.faithfulness)

    @property
    def matched(self) -> bool:
        return self.kind == "detection" and self.box is not None

    @property
    def peak_in_box(self) -> bool | None:
        """Whether the map's peak lies in the object's box (None: there is no box)."""
        if self.box is None:
            return None
        return self.peak is not None and self.box.contains(self.peak)


@dataclass
class DetectionExplanation:
    """What a FOMO model found in one image, each object with its map."""

    objects: list[ObjectMap]
    boxes: list[Box] | None
    counts: Counts | None
    heatmap: np.ndarray  # the objects' maps combined (their maximum), on the image, 0..1
    image: np.ndarray  # as given (RGB uint8)
    region: tuple[int, int, int, int]
    frame: Frame = field(repr=False)

    @property
    def correct(self) -> bool | None:
        """Every box found and nothing else (None: no boxes listed)."""
        return None if self.counts is None else self.counts.fp == 0 and self.counts.fn == 0

    def _drawn(self, picture: np.ndarray, left: int = 0) -> np.ndarray:
        """Boxes (found or missed) and detections (centroid and label) drawn on the picture, whose
        overlay starts `left` pixels from its left edge."""
        found = {id(o.box) for o in self.objects if o.matched}
        boxes = [(self.frame.file_to_shown(b), id(b) in found) for b in self.boxes or []]
        ratio = self.frame.shown[0] / self.frame.original[0]
        marks = [
            (
                (o.centroid[0] * ratio, o.centroid[1] * ratio),
                f"{o.label} {o.confidence:.0%}",
                None if self.boxes is None else o.matched,
            )
            for o in self.objects
            if o.kind == "detection"
        ]
        return draw_objects(picture, boxes, marks, left)

    def overlay(self, alpha: float = 0.4) -> np.ndarray:
        return self._drawn(blend(self.image, self.heatmap, alpha, self.region))

    def panel(self, alpha: float, caption: str) -> np.ndarray:
        return self._drawn(panel(self.image, self.heatmap, alpha, caption, self.region), 2 * self.image.shape[1])


class ObjectMaps(NamedTuple):
    """One image's objects: its plan (detections and missed boxes), their normalised maps, each
    map's faithfulness (None: not measured, or a box of no model class), and the model's output
    grid."""

    plan: Plan
    cams: list[np.ndarray]
    faithfulness: list[float | None]
    grid: np.ndarray


def finish(image: np.ndarray, frame: Frame, found: ObjectMaps) -> DetectionExplanation:
    """Put one image's object maps back on it. Thread-safe."""
    objects = []
    heatmap = np.zeros(image.shape[:2], np.float32)
    plan = found.plan
    for target, cam, trust in zip(plan.targets, found.cams, found.faithfulness, strict=True):
        heatmap = np.maximum(heatmap, frame.geometry.to_original(cam, frame.shown, frame.model_size))
        centre = peak(cam)
        hottest = None if centre is None else frame.map_to_file(centre, cam.shape)
        confidence = None if target.detection is None else target.detection.confidence
        kind = "missed" if target.detection is None else "detection"
        objects.append(ObjectMap(target.label, kind, confidence, target.centroid, target.box, cam, hottest, trust))
    return DetectionExplanation(objects, plan.boxes, plan.counts, heatmap, image, frame.geometry.valid, frame)
