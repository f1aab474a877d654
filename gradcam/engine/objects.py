"""FOMO's pass over a batch: decode every image's grid, plan its targets (each detection, each missed
box), explain them all in one CAM pass, and score each object's map for faithfulness within its
neighbourhood. The layers below the shallowest explained one run once per image (ModelAdapter.cut)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gradcam.engine import detection
from gradcam.engine.faithfulness import given
from gradcam.engine.fomo import Box
from gradcam.engine.preprocess import as_rgb, display_image
from gradcam.engine.tasks import Detection
from gradcam.errors import GradcamError


def explain_objects(
    explainer,
    inputs: np.ndarray,
    frames: Sequence[detection.Frame],
    boxes: Sequence[Sequence[Box] | None],
    threshold,
    plans: Sequence[detection.Plan] | None = None,
) -> list[detection.ObjectMaps]:
    """A preprocessed batch -> per image, its objects with their maps (explainer: gradcam.explainer.Explainer).
    plans: the objects to explain, as another model found them (the TFLite model's maps of the
    Keras model's objects); None: the objects this model finds."""
    start = explainer.start(inputs)
    grids = explainer.forward.predict(start)
    if plans is None:
        plans = [
            detection.plan(i, grid, frame, explainer.classes, image_boxes, threshold)
            for i, (grid, frame, image_boxes) in enumerate(zip(grids, frames, boxes, strict=True))
        ]
    targets = [t for p in plans for t in p.targets]
    maps, scores = [], []
    if targets:
        masks = np.stack([t.mask(explainer.adapter.num_outputs) for t in targets])
        owners = np.array([t.owner for t in targets], np.int32)
        batch = explainer.cam(start, masks, owners)
        scores = _scores(explainer.score_objects, inputs, owners, batch, masks, targets)
        maps = list(explainer.normalised(batch).maps)
    out, first = [], 0
    for p, grid in zip(plans, grids, strict=True):
        last = first + len(p.targets)
        out.append(detection.ObjectMaps(p, maps[first:last], scores[first:last], grid))
        first = last
    return out


def _scores(score: Callable | None, inputs, owners, batch, masks, targets) -> list[float | None]:
    """Each object map's faithfulness (from its raw map), None where not measured."""
    if score is None:
        return [None] * len(targets)
    found = score(inputs, owners, batch.maps, batch.scores, masks)
    return [None if t.class_index < 0 else given(s) for t, s in zip(targets, found, strict=True)]


def detect(explainer, images: Sequence[np.ndarray], boxes, threshold) -> list[detection.DetectionExplanation]:
    """Explainer.detect: every detection in uint8 images explained and, where boxes are given (in the
    images' pixels), every box the model missed."""
    if not isinstance(explainer.task, Detection):
        raise GradcamError(f"detect() explains object detection (FOMO) models; this is a {explainer.task.name} model")
    images = [as_rgb(image, f"image {i}") for i, image in enumerate(images)]
    if not images:
        return []
    prepared = [explainer.prepare(image) for image in images]
    frames = [
        explainer.frame((image.shape[1], image.shape[0]), geometry)
        for image, (_, geometry) in zip(images, prepared, strict=True)
    ]
    inputs = np.stack([x for x, _ in prepared])
    results = explain_objects(explainer, inputs, frames, boxes or [None] * len(images), threshold)
    return [
        detection.finish(display_image(image, explainer.spec), frame, objects)
        for image, frame, objects in zip(images, frames, results, strict=True)
    ]
