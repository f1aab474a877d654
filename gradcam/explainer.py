"""The public Python API: build an explainer from a model once, call it on batches of images.

from gradcam import Explainer
explainer = Explainer.from_file("model.h5", classes=["circle", "square", "triangle"])
for result in explainer.explain(images):        # uint8 arrays of any size: RGB, grayscale or RGBA
    result.label, result.confidence, result.heatmap, result.overlay

A FOMO model's explainer gives, per image, every detection and every missed box with its map:
    for result in explainer.detect(images, boxes):  # boxes: gradcam.fomo.Box lists, or None
        result.counts, [(o.label, o.kind, o.peak_in_box) for o in result.objects]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradcam import detection
from gradcam.cam import layer_methods, make_cam, normalize, peak
from gradcam.errors import GradcamError
from gradcam.fomo import DEFAULT_THRESHOLD, Box
from gradcam.model import ModelAdapter, load_model
from gradcam.overlay import blend, panel
from gradcam.preprocess import Geometry, ImageSpec, as_rgb, display_image, preprocess
from gradcam.tasks import Answer, Task


@dataclass
class Explanation:
    """What the model said about one image and where it looked."""

    prediction: int | float  # class index, or the value for regression
    label: str  # the predicted class name (regression: the value as text)
    confidence: float  # probability of the prediction (regression: nan)
    scores: np.ndarray  # probabilities per class (regression: the raw output)
    cam: np.ndarray  # normalised map at the finest explained layer's resolution (h, w)
    heatmap: np.ndarray  # the map on the original image, 0..1 (H0, W0)
    image: np.ndarray  # the original as displayed (RGB uint8)
    region: tuple[int, int, int, int]  # (x0, y0, x1, y1) of the original that the model saw
    peak: tuple[int, int] | None  # (x, y) original pixel at the centre of the map's hottest region; None: blank

    def overlay(self, alpha: float = 0.4) -> np.ndarray:
        return blend(self.image, self.heatmap, alpha, self.region)

    def panel(self, alpha: float, caption: str) -> np.ndarray:
        return panel(self.image, self.heatmap, alpha, caption, self.region)

    @property
    def answer(self) -> Answer:
        return Answer(self.prediction, self.label, self.confidence, self.scores)

    @property
    def empty(self) -> bool:
        """True when nothing in the image raised the explained score: the map is all zero."""
        return not self.cam.max() > 0


class Explainer:
    """Preprocessing, model and CAM method together, traced once and reused for every batch."""

    def __init__(
        self,
        model,
        classes: Sequence[str] | None = None,
        *,
        layer: str = "auto",
        method: str = "gradcam",
        pooling: str = "mean",
        normalization: str = "percentile",
        resize_mode: str = "squash",
        grayscale: bool | None = None,
        input_scaling: str = "0..1",
        impulse_shape: tuple[int, int, int] | None = None,
    ):
        self.adapter = ModelAdapter(model, layer, impulse_shape)
        height, width, channels = self.adapter.image_shape
        if grayscale is None:
            grayscale = channels == 1
        if (1 if grayscale else 3) != channels:
            raise GradcamError(
                f"colour depth {'Grayscale' if grayscale else 'RGB'} does not match the model input "
                f"with {channels} channel(s)"
            )
        self.spec = ImageSpec(width, height, grayscale, resize_mode, input_scaling)
        self.classes = self.task.class_names(classes, self.adapter.num_outputs)
        self.cam = make_cam(self.adapter, method, pooling)
        self.method = method
        self.normalization = normalization

    @classmethod
    def from_file(cls, path: str | Path, classes: Sequence[str] | None = None, **options) -> Explainer:
        return cls(load_model(path), classes, **options)

    @property
    def task(self) -> Task:
        """What the model's output means (classification, binary, regression)."""
        return self.adapter.task

    @property
    def layer_name(self) -> str:
        """The explained layers, deepest first, comma separated."""
        return self.adapter.layer_name

    def layers(self) -> list[dict]:
        """The explained layers, deepest first: name, type, output size and the method used on each."""
        methods = layer_methods(self.method, len(self.adapter.layers))
        return [
            {"name": layer.name, "type": layer.kind, "size": layer.size, "method": method}
            for layer, method in zip(self.adapter.layers, methods, strict=True)
        ]

    def last_conv(self) -> dict:
        """The model's last 2-D convolution, explained or not: name and output size."""
        layer = self.adapter.last_conv
        return {"name": layer.name, "size": layer.size}

    @property
    def resolution(self) -> tuple[int, int]:
        """(height, width) of the explained map: the finest explained layer's."""
        return max((layer.height, layer.width) for layer in self.adapter.layers)

    def target_index(self, label: str | None) -> int:
        """The class index to explain for `label` (None: the predicted class)."""
        return self.task.target_index(label, self.classes)

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """RGB uint8 image -> (model input, geometry). Thread-safe: OpenCV and NumPy only."""
        return preprocess(image, self.spec)

    def run(self, inputs: np.ndarray, targets: np.ndarray | None = None, owners: np.ndarray | None = None):
        """Preprocessed batch -> CamBatch with maps normalised to 0..1, one per target (see BaseCAM)."""
        batch = self.cam(inputs, targets, owners)
        batch.maps[...] = normalize(batch.maps, self.normalization)
        return batch

    def frame(self, image_size: tuple[int, int], geometry: Geometry, original: tuple[int, int] | None = None):
        """Where the model's output grid lies in an image of this (width, height) (FOMO)."""
        grid = self.adapter.output_shape[:2]
        model_size = (self.spec.width, self.spec.height)
        return detection.Frame(geometry, model_size, grid, image_size, original or image_size)

    def run_objects(
        self,
        inputs: np.ndarray,
        frames: Sequence[detection.Frame],
        boxes: Sequence[Sequence[Box] | None],
        threshold: float = DEFAULT_THRESHOLD,
    ) -> list[tuple[detection.Plan, list[np.ndarray]]]:
        """FOMO: a preprocessed batch -> per sample, its detections and missed boxes (the plan)
        and their normalised maps: a forward pass to decode, then one CAM pass for all objects."""
        grids = self.adapter.predict(inputs)
        plans = [
            detection.plan(i, grid, frame, self.classes, sample_boxes, threshold)
            for i, (grid, frame, sample_boxes) in enumerate(zip(grids, frames, boxes, strict=True))
        ]
        targets = [t for p in plans for t in p.targets]
        maps = []
        if targets:
            channels = self.adapter.num_outputs
            masks = np.stack([t.mask(channels) for t in targets])
            maps = list(self.run(inputs, masks, np.array([t.owner for t in targets], np.int32)).maps)
        out, start = [], 0
        for p in plans:
            out.append((p, maps[start : start + len(p.targets)]))
            start += len(p.targets)
        return out

    def detect(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[Sequence[Box] | None] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> list[detection.DetectionExplanation]:
        """FOMO: explain every detection in uint8 images and, where boxes are given (in the
        images' pixels), every box the model missed."""
        if not self.task.detects:
            raise GradcamError(f"detect() explains object detection (FOMO) models; this is a {self.task.name} model")
        images = [as_rgb(image, f"image {i}") for i, image in enumerate(images)]
        if not images:
            return []
        prepared = [self.prepare(image) for image in images]
        frames = [
            self.frame((image.shape[1], image.shape[0]), geometry)
            for image, (_, geometry) in zip(images, prepared, strict=True)
        ]
        results = self.run_objects(np.stack([x for x, _ in prepared]), frames, boxes or [None] * len(images), threshold)
        return [
            detection.finish(display_image(image, self.spec), frame, plan, cams)
            for image, frame, (plan, cams) in zip(images, frames, results, strict=True)
        ]

    def answer(self, outputs: np.ndarray) -> Answer:
        """One sample's model outputs (after the activation) -> prediction, label, confidence, scores."""
        return self.task.answer(outputs, self.classes)

    def finish(self, image: np.ndarray, geometry: Geometry, cam: np.ndarray, _scores, probabilities) -> Explanation:
        """Put one sample's map back on its original image. Thread-safe."""
        size, model_size = (image.shape[1], image.shape[0]), (self.spec.width, self.spec.height)
        heatmap = geometry.to_original(cam, size, model_size)
        centre = peak(cam)
        hottest = None if centre is None else geometry.point_to_original(centre, cam.shape, model_size)
        answer = self.answer(probabilities)
        shown = display_image(image, self.spec)
        return Explanation(
            answer.prediction,
            answer.label,
            answer.confidence,
            answer.scores,
            cam,
            heatmap,
            shown,
            geometry.valid,
            hottest,
        )

    def explain(self, images: Sequence[np.ndarray], target_class: str | None = None) -> list[Explanation]:
        """Explain uint8 images of any size (RGB; grayscale and RGBA as `as_rgb` says), each with
        respect to its predicted class or `target_class`."""
        if self.task.detects:
            raise GradcamError("this is an object detection (FOMO) model: explain its objects with detect()")
        images = [as_rgb(image, f"image {i}") for i, image in enumerate(images)]
        if not images:
            return []
        prepared = [self.prepare(image) for image in images]
        inputs = np.stack([x for x, _ in prepared])
        targets = np.full(len(images), self.target_index(target_class), dtype=np.int32)
        batch = self.run(inputs, targets)
        return [
            self.finish(image, geometry, *batch.sample(i))
            for i, (image, (_, geometry)) in enumerate(zip(images, prepared, strict=True))
        ]
